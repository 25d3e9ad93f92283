"""The storage interface: points in, series and last values out.

Semantics follow InfluxDB, so both backends behave the same:

* A point is identified by ``(measurement, tag set, timestamp)``. Writing the same identity
  again overwrites the fields it carries (a redelivered message is harmless: idempotent).
* Aggregation windows are aligned to the Unix epoch (InfluxQL ``GROUP BY time(w)``), windows
  without data are omitted (``fill(none)``), a window is labelled by its start.
* Time ranges are half-open: ``start <= t < end``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple, Protocol, runtime_checkable

FieldValue = float | int | str | bool


class Point(NamedTuple):
    """One point: measurement, tags (strings), fields, timestamp in epoch nanoseconds.

    Read-only, tags and fields included (producers share one tags mapping between points). A
    named tuple: a batch builds one or more per reading, and a frozen dataclass cost 2.5× as
    much to construct.
    """

    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, FieldValue]
    ts_ns: int


class Aggregate(StrEnum):
    """Aggregation functions available on every backend."""

    MEAN = "mean"
    MIN = "min"
    MAX = "max"
    SUM = "sum"
    COUNT = "count"
    FIRST = "first"
    LAST = "last"


@dataclass(frozen=True, slots=True)
class SeriesQuery:
    """A time series of one numeric field over ``[start_ns, end_ns)``.

    ``where`` filters on tag equality. Without ``every_s`` the raw points are returned; with it
    the values are aggregated with ``aggregate`` per epoch-aligned window of ``every_s`` seconds.
    ``limit`` caps the number of rows (the earliest ones are kept).
    """

    measurement: str
    field: str
    start_ns: int
    end_ns: int
    where: Mapping[str, str] = dataclasses.field(default_factory=dict)
    every_s: int | None = None
    aggregate: Aggregate = Aggregate.MEAN
    limit: int | None = None

    def __post_init__(self) -> None:
        # Backends disagree on LIMIT 0 and zero-width windows, so neither is allowed.
        for what, n in (("every_s", self.every_s), ("limit", self.limit)):
            if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
                raise ValueError(f"{what} must be a positive integer, got {n!r}")


@dataclass(frozen=True, slots=True)
class SeriesRow:
    """One row of a series: time (window start when aggregated) and value."""

    ts_ns: int
    value: float


@dataclass(frozen=True, slots=True)
class LastValue:
    """The newest point of one series: its tags, time and all its fields."""

    tags: Mapping[str, str]
    ts_ns: int
    fields: Mapping[str, FieldValue]


class StoreError(Exception):
    """A storage operation failed.

    ``retryable`` is true for transient failures (connection refused, timeout, HTTP 429/5xx,
    database busy): the same write may succeed later. A non-retryable error means the data
    itself was refused (e.g. a field type conflict) and retrying it would fail again.
    """

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@runtime_checkable
class Store(Protocol):
    """Lifecycle: ``await start()`` once (may create the database), then any number of
    ``write``/queries, then ``await close()``. ``write`` returns only when the points are
    durable in the backend; it raises :class:`StoreError` otherwise and never retries itself.
    """

    @property
    def name(self) -> str:
        """Short backend name for logs and health output, e.g. ``influxdb`` or ``sqlite``."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> bool:
        """True when the backend answers; never raises."""
        ...

    async def write(self, points: Sequence[Point]) -> None: ...

    async def series(self, query: SeriesQuery) -> list[SeriesRow]: ...

    async def last(
        self, measurement: str, where: Mapping[str, str] | None = None
    ) -> list[LastValue]:
        """The newest point of every series of ``measurement`` matching ``where``.

        Sorted by tags (``sorted(tags.items())``) so results are comparable across backends.
        Looks back at most ``lookback_s`` configured on the backend (InfluxDB 3 caps scans).
        """
        ...

    async def scan(
        self, measurement: str, start_ns: int, end_ns: int, where: Mapping[str, str] | None = None
    ) -> list[LastValue]:
        """Every point of ``measurement`` in ``[start_ns, end_ns)`` matching ``where``, with all
        its tags and fields, ordered by (time, sorted tags). Used to rebuild in-memory state
        (e.g. the compliance engine's open days) after a restart. Bounded by the time range.

        Points of one series may share one ``tags`` mapping: treat it as read-only.
        """
        ...

    async def count(
        self,
        measurement: str,
        field: str,
        start_ns: int,
        end_ns: int,
        where: Mapping[str, str] | None = None,
    ) -> int:
        """Number of points with ``field`` in ``[start_ns, end_ns)`` matching ``where``."""
        ...
