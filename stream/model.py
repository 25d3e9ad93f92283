"""The reading model shared by every package (a leaf module: it imports nothing of ours).

A :class:`Reading` is one accepted measurement of one sensor at one instant. Timestamps are
integer nanoseconds since the Unix epoch (UTC), which keeps them exact, cheap to compare and
directly usable as InfluxDB line-protocol timestamps.

>>> r = Reading("demo", "boiler1", "nox", ts_ns=1_700_000_000_000_000_000, value=87.5,
...             quantity="nox", unit="mg/Nm3")
>>> r.time.isoformat()
'2023-11-14T22:13:20+00:00'
>>> r.status
<Status.VALID: 'valid'>
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import NamedTuple

NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000


class Status(StrEnum):
    """Analyser status carried with every value (EN 17255-1 data status).

    Only ``valid`` values may enter compliance averages; the others are stored and counted.
    """

    VALID = "valid"
    MAINTENANCE = "maintenance"
    MALFUNCTION = "malfunction"
    CALIBRATION = "calibration"


class SensorKey(NamedTuple):
    """Identifies a sensor: ``(plant, stack, sensor)``."""

    plant: str
    stack: str
    sensor: str


@dataclass(frozen=True, slots=True)
class Reading:
    """One accepted measurement.

    ``quantity`` (e.g. ``nox``, ``o2``) and ``unit`` come from the plant configuration of the
    sensor, so downstream stages need not look them up again.
    """

    plant: str
    stack: str
    sensor: str
    ts_ns: int
    value: float
    quantity: str
    unit: str
    status: Status = Status.VALID

    @property
    def key(self) -> SensorKey:
        return SensorKey(self.plant, self.stack, self.sensor)

    @property
    def time(self) -> datetime:
        return datetime_from_ns(self.ts_ns)


_new_object = object.__new__
_SET_PLANT, _SET_STACK, _SET_SENSOR, _SET_TS, _SET_VALUE, _SET_QUANTITY, _SET_UNIT, _SET_STATUS = (
    Reading.__dict__[f.name].__set__ for f in fields(Reading)
)


def new_reading(  # noqa: PLR0917 - Reading's fields in order, to be mapped over columns
    plant: str,
    stack: str,
    sensor: str,
    ts_ns: int,
    value: float,
    quantity: str,
    unit: str,
    status: Status = Status.VALID,
) -> Reading:
    """``Reading(...)`` at half the cost, for the paths that build one per received reading.

    The frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``
    (~0.9 µs a reading on Python 3.11); this sets the slots directly (~0.45 µs). Same
    object, still frozen.

    >>> new_reading("p", "s", "nox", 5, 1.5, "nox", "mg/Nm3") == Reading(
    ...     "p", "s", "nox", 5, 1.5, "nox", "mg/Nm3")
    True
    """
    r = _new_object(Reading)
    _SET_PLANT(r, plant)
    _SET_STACK(r, stack)
    _SET_SENSOR(r, sensor)
    _SET_TS(r, ts_ns)
    _SET_VALUE(r, value)
    _SET_QUANTITY(r, quantity)
    _SET_UNIT(r, unit)
    _SET_STATUS(r, status)
    return r


def datetime_from_ns(ts_ns: int) -> datetime:
    """Aware UTC datetime (microsecond resolution) from epoch nanoseconds.

    >>> datetime_from_ns(1_500_000_123_456_789).isoformat()
    '1970-01-18T08:40:00.123456+00:00'
    """
    seconds, ns = divmod(ts_ns, NS_PER_S)
    return datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=ns // 1000)


def ns_from_datetime(dt: datetime) -> int:
    """Epoch nanoseconds from an aware datetime; a naive one is refused.

    >>> ns_from_datetime(datetime(2024, 1, 1, tzinfo=UTC))
    1704067200000000000
    """
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError("naive datetime: a time zone is required")
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * NS_PER_S + delta.microseconds * 1000
