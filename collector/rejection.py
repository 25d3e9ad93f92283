"""Why an MQTT payload (or one element of it) was refused, and how refusals are accounted.

A bad publisher must never stop the collector, and must never flood its log either: every
rejection is counted (Prometheus ``stackwatch_rejected_readings_total{reason}``), the first
one of each kind is logged at WARNING so an operator notices it, the rest only at DEBUG.
The raw message can additionally be republished to a dead-letter topic for inspection;
:func:`deadletter_message` builds that message.

>>> topic, body = deadletter_message(
...     "stackwatch/demo/b1/nox", b'{"value": "high"}',
...     Rejection(RejectReason.INVALID_PAYLOAD, "'value' must be a number, got 'high'"),
...     1_717_243_200_000_000_000, "stackwatch/deadletter")
>>> topic
'stackwatch/deadletter/invalid_payload'
>>> orjson.loads(body)["received"]
'2024-06-01T12:00:00.000000000Z'
"""

from __future__ import annotations

import base64
import threading
import weakref
from dataclasses import dataclass
from enum import StrEnum

import orjson
import structlog
from prometheus_client import REGISTRY, CollectorRegistry, Counter

from stream.model import NS_PER_S, datetime_from_ns

DEADLETTER_PAYLOAD_LIMIT = 64 * 1024
"""Bytes of the original payload kept in a dead-letter message; longer ones are truncated."""


class RejectReason(StrEnum):
    """The kinds of refusal; the value is the Prometheus label and the dead-letter subtopic."""

    BAD_TOPIC = "bad_topic"
    """Wrong prefix, wrong number of levels or an empty level."""
    UNKNOWN_SENSOR = "unknown_sensor"
    """Well-formed topic, but the sensor is not in the plant configuration."""
    PAYLOAD_TOO_LARGE = "payload_too_large"
    """More than ``max_payload_bytes``; not even parsed."""
    MALFORMED_JSON = "malformed_json"
    """Not UTF-8, not JSON, or JSON extensions such as ``NaN``/``Infinity`` literals."""
    INVALID_PAYLOAD = "invalid_payload"
    """JSON of the wrong shape: wrong type, unknown or missing key, bad status or ts type."""
    NON_FINITE = "non_finite"
    """The value overflows a double (e.g. ``1e400``)."""
    OUT_OF_RANGE = "out_of_range"
    """The value is outside the sensor's ``valid_range`` (the bounds themselves are valid)."""
    NAIVE_TIMESTAMP = "naive_timestamp"
    """An ISO-8601 timestamp without a UTC offset: its instant is ambiguous."""
    ABSURD_TIMESTAMP = "absurd_timestamp"
    """Before ``earliest_year`` or too far in the future (e.g. epoch seconds sent as ms)."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """One refusal: of the whole message (``index`` None) or of one array element."""

    reason: RejectReason
    detail: str
    """Human-readable: what was wrong, quoting the (truncated) offending value."""
    index: int | None = None


_COUNTERS: weakref.WeakKeyDictionary[CollectorRegistry, Counter] = weakref.WeakKeyDictionary()
_COUNTERS_LOCK = threading.Lock()


def _counter(registry: CollectorRegistry) -> Counter:
    """The one rejection Counter of ``registry``.

    A registry refuses a second metric of the same name, so instances of
    :class:`RejectionCounter` (several collectors or tests in one process) share it.
    """
    with _COUNTERS_LOCK:
        counter = _COUNTERS.get(registry)
        if counter is None:
            counter = Counter(
                "stackwatch_rejected_readings_total",
                "MQTT payloads or payload elements rejected by the collector, by reason.",
                ["reason"],
                registry=registry,
            )
            _COUNTERS[registry] = counter
        return counter


class RejectionCounter:
    """Counts rejections per reason and logs each reason's first occurrence loudly.

    ``counts()`` is per instance; the Prometheus counter is per registry (default: the
    global one), so it sums over all instances using that registry.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        counter = _counter(REGISTRY if registry is None else registry)
        # Creating every child up front exports all reasons at 0, so rate() works from start.
        self._children = {reason: counter.labels(reason=reason.value) for reason in RejectReason}
        self._counts = dict.fromkeys(RejectReason, 0)
        # Per instance, not per module: the logger binds to the structlog configuration at its
        # first use, and with cache_logger_on_first_use a module-level one would stay bound to
        # whatever configuration was current then (e.g. a test's capture_logs).
        self._log = structlog.get_logger(__name__)

    def record(self, rejection: Rejection, topic: str) -> None:
        """Count ``rejection``; WARNING the first time its reason is seen, DEBUG afterwards."""
        reason = rejection.reason
        self._counts[reason] += 1
        self._children[reason].inc()
        log = self._log.warning if self._counts[reason] == 1 else self._log.debug
        log(
            "payload rejected",
            reason=reason.value,
            detail=rejection.detail,
            topic=topic,
            index=rejection.index,
        )

    def counts(self) -> dict[str, int]:
        """Rejections recorded by this instance, for every reason (zeros included)."""
        return {reason.value: n for reason, n in self._counts.items()}


def _json_safe(text: str) -> str:
    """``text`` with lone surrogates escaped, which orjson (strict UTF-8) would refuse."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _iso_ns(ts_ns: int) -> str:
    """RFC 3339 UTC with all nine fractional digits, so no precision is lost."""
    base = datetime_from_ns(ts_ns).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{ts_ns % NS_PER_S:09d}Z"


def deadletter_message(
    topic: str,
    payload: bytes,
    rejection: Rejection,
    received_ns: int,
    deadletter_topic: str,
) -> tuple[str, bytes]:
    """The ``(topic, body)`` to republish a rejected message under ``<deadletter_topic>/<reason>``.

    The body is a JSON object with ``topic``, ``reason``, ``detail``, ``index``, ``received``
    (RFC 3339 UTC, nanoseconds) and the original payload: as text under ``payload`` when it
    is valid UTF-8, otherwise base64 under ``payload_base64``. Only the first
    :data:`DEADLETTER_PAYLOAD_LIMIT` bytes are kept; ``truncated`` says whether any were cut.
    """
    raw = bytes(payload)
    kept = raw[:DEADLETTER_PAYLOAD_LIMIT]
    body: dict[str, object] = {
        "topic": _json_safe(topic),
        "reason": rejection.reason.value,
        "detail": _json_safe(rejection.detail),
        "index": rejection.index,
        "received": _iso_ns(received_ns),
    }
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        body["payload_base64"] = base64.b64encode(kept).decode("ascii")
    else:
        # The cut may split a multi-byte character; drop that partial tail only.
        body["payload"] = kept.decode("utf-8", "ignore")
    body["truncated"] = len(raw) > len(kept)
    return f"{deadletter_topic}/{rejection.reason.value}", orjson.dumps(body)
