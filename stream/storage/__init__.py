"""Storage backends behind one interface: InfluxDB (v1-compatible HTTP API) and embedded SQLite.

Both pass the same contract suite (``tests/stream/test_storage_contract.py``).
"""

from stream.storage.base import (
    Aggregate,
    FieldValue,
    LastValue,
    Point,
    SeriesQuery,
    SeriesRow,
    Store,
    StoreError,
)

__all__ = [
    "Aggregate",
    "FieldValue",
    "LastValue",
    "Point",
    "SeriesQuery",
    "SeriesRow",
    "Store",
    "StoreError",
]
