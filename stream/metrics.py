"""Prometheus metrics of the pipeline (exposed by the API at ``/metrics``).

Defined once per process at import, so several pipelines in one process (tests) share them.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MESSAGES_RECEIVED = Counter(
    "stackwatch_messages_received_total", "MQTT messages received by the collector."
)
READINGS_ACCEPTED = Counter(
    "stackwatch_readings_accepted_total", "Readings that passed validation."
)
READINGS_STORED = Counter(
    "stackwatch_readings_stored_total",
    "Readings durably written to the store, or to the spool while the store is unavailable.",
)
STORE_REFUSED = Counter(
    "stackwatch_store_refused_points_total",
    "Points the store refused permanently; they are dead-lettered to a file.",
)
STORE_ERRORS = Counter(
    "stackwatch_store_errors_total", "Failed store writes by kind.", ["retryable"]
)
WRITE_SECONDS = Histogram(
    "stackwatch_store_write_seconds", "Duration of one successful store write."
)
QUEUE_DEPTH = Gauge("stackwatch_write_queue_depth", "Decoded messages waiting to be written.")
MQTT_CONNECTED = Gauge("stackwatch_mqtt_connected", "1 while the collector is connected.")
DETECTION_LATE = Counter(
    "stackwatch_detection_late_readings_total",
    "Readings not scored because a later time step of their sensors was already scored.",
)
DETECTION_EVENTS = Counter(
    "stackwatch_detection_events_total", "Detection events raised, by type.", ["event"]
)
PEMS_PREDICTIONS = Counter(
    "stackwatch_pems_predictions_total",
    "PEMS predictions written, by use (check of a measured value, or substitute).",
    ["use"],
)
DERIVE_ERRORS = Counter(
    "stackwatch_derive_errors_total",
    "Failures of a stage deriving results from stored readings.",
    ["stage"],
)
SPOOL_BYTES = Gauge(
    "stackwatch_spool_bytes", "Serialised size of the point batches waiting in the spool."
)
SPOOL_BATCHES = Gauge("stackwatch_spool_batches", "Point batches waiting in the spool.")
SPOOL_OLDEST_AGE = Gauge(
    "stackwatch_spool_oldest_age_seconds",
    "Age of the oldest batch in the spool (0 when empty): how far the store is behind.",
)
SPOOL_FULL = Gauge(
    "stackwatch_spool_full",
    "1 while the spool refuses batches (bound or disk full) and messages are not acknowledged.",
)
SPOOLED_POINTS = Counter(
    "stackwatch_spool_spooled_points_total",
    "Points appended to the spool because the store failed or older batches were spooled.",
)
DRAINED_POINTS = Counter(
    "stackwatch_spool_drained_points_total", "Spooled points written to the store."
)
