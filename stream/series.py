"""Columnar per-sensor series: what the compliance engine computes on (NumPy arrays)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from stream.model import Reading, SensorKey, Status
from stream.schema import reading_from_last
from stream.storage.base import LastValue

#: Status as a small integer in arrays (matches ``stream.compliance.averaging``).
STATUS_CODE: dict[Status, int] = {
    Status.VALID: 0,
    Status.MAINTENANCE: 1,
    Status.MALFUNCTION: 2,
    Status.CALIBRATION: 3,
}


@dataclass(frozen=True, slots=True)
class SensorSeries:
    """Readings of one sensor: times (epoch ns), values and status codes, equal lengths."""

    ts_ns: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    status: npt.NDArray[np.int8]

    def __len__(self) -> int:
        return int(self.ts_ns.shape[0])

    @classmethod
    def empty(cls) -> SensorSeries:
        return cls(np.empty(0, np.int64), np.empty(0, np.float64), np.empty(0, np.int8))


def series_from_readings(readings: Iterable[Reading]) -> dict[SensorKey, SensorSeries]:
    """Group readings by sensor into columnar series (order within a sensor is kept)."""
    columns: dict[SensorKey, tuple[list[int], list[float], list[int]]] = defaultdict(
        lambda: ([], [], [])
    )
    for r in readings:
        ts, values, status = columns[r.key]
        ts.append(r.ts_ns)
        values.append(r.value)
        status.append(STATUS_CODE[r.status])
    return {
        key: SensorSeries(
            np.asarray(ts, np.int64), np.asarray(values, np.float64), np.asarray(st, np.int8)
        )
        for key, (ts, values, st) in columns.items()
    }


def series_from_stored(points: Iterable[LastValue]) -> dict[SensorKey, SensorSeries]:
    """Columnar series from stored ``readings`` points (see :mod:`stream.schema`)."""
    return series_from_readings(reading_from_last(p) for p in points)
