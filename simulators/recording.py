"""Recorded streams in the replay CSV format: ``time,plant,stack,sensor,value,status``.

``time`` is ISO-8601 with an offset (UTC recommended), ``status`` is optional (default
``valid``). Rows are checked like MQTT payloads (known sensor, finite value within the
sensor's valid range, known status), so a recording evaluated offline and the same recording
replayed live through the collector produce the same accepted readings. Rows that fail are
counted by reason, never silently dropped.

Reading a recording is the slow part of an offline evaluation (the engine itself is
vectorised), so the reader avoids per-row overhead: a plain ``csv.reader`` with column
positions, a cache for timestamps (the rows of one instant share one), and columns built
directly instead of one :class:`Reading` object per row.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np

from stream.model import Reading, SensorKey, Status
from stream.plant import PlantConfig, SensorConfig
from stream.series import STATUS_CODE, SensorSeries
from stream.timeparse import NaiveTimestampError, parse_iso_ns

REQUIRED_COLUMNS = ("time", "plant", "stack", "sensor", "value")
_STATUSES = {s.value: s for s in Status}

# Rows of one instant (every sensor of a plant) share a timestamp text; parse it once.
_parse_time = lru_cache(maxsize=4096)(parse_iso_ns)


class RecordingError(Exception):
    """The file cannot be read as a replay CSV (missing columns, unreadable file)."""


@dataclass
class Recording:
    """Accepted readings grouped by sensor, and the rows that were refused, by reason."""

    series: dict[SensorKey, SensorSeries]
    accepted: int
    rejected: Counter[str] = field(default_factory=Counter)
    first_rejections: list[str] = field(default_factory=list)


class _Row(NamedTuple):
    """An accepted row, before it becomes a :class:`Reading` or a column entry."""

    key: SensorKey
    sensor: SensorConfig
    ts_ns: int
    value: float
    status: Status


class _Refused(NamedTuple):
    reason: str
    message: str


class _Columns(NamedTuple):
    """Positions of the columns in the header (``status`` is optional)."""

    time: int
    plant: int
    stack: int
    sensor: int
    value: int
    status: int | None
    width: int  # fields in the header
    needed: int  # fields a row needs to carry every required column

    @classmethod
    def from_header(cls, path: Path, header: list[str]) -> _Columns:
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise RecordingError(
                f"{path}: missing column(s) {', '.join(missing)}; the header must be "
                "time,plant,stack,sensor,value[,status]"
            )
        time, plant, stack, sensor, value = (header.index(c) for c in REQUIRED_COLUMNS)
        status = header.index("status") if "status" in header else None
        needed = max(time, plant, stack, sensor, value) + 1
        return cls(time, plant, stack, sensor, value, status, len(header), needed)


def _checked_rows(path: Path, config: PlantConfig) -> Iterator[_Row | _Refused]:
    """Every data row of the file, accepted or refused with a reason and a line number."""
    try:
        # utf-8-sig: a recording exported by a spreadsheet starts with a byte-order mark.
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as err:
        raise RecordingError(f"{path}: cannot read: {err.strerror}") from err
    with handle:
        reader = csv.reader(handle)
        columns = _Columns.from_header(path, next(reader, []))
        sensors = dict(config.sensors())
        for row in reader:
            if row:  # csv.reader gives [] for a blank line
                yield _check(row, reader.line_num, columns, sensors)


def _check(
    row: list[str], line: int, columns: _Columns, sensors: dict[SensorKey, SensorConfig]
) -> _Row | _Refused:
    """The same checks as an MQTT payload gets (see the module docstring)."""
    if len(row) < columns.needed:
        return _Refused(
            "missing_field", f"line {line}: {len(row)} field(s), expected {columns.width}"
        )
    key = SensorKey(row[columns.plant], row[columns.stack], row[columns.sensor])
    cfg = sensors.get(key)
    if cfg is None:
        return _Refused("unknown_sensor", f"line {line}: {'/'.join(key)} is not configured")
    try:
        ts_ns = _parse_time(row[columns.time])
    except NaiveTimestampError as err:
        return _Refused("naive_timestamp", f"line {line}: time {err}")
    except ValueError as err:
        return _Refused("invalid_time", f"line {line}: time {err}")
    text = row[columns.value]
    try:
        value = float(text)
    except ValueError:
        return _Refused("invalid_value", f"line {line}: value {text!r} is not a number")
    if not math.isfinite(value):
        return _Refused("non_finite", f"line {line}: value {text!r} is not finite")
    lo, hi = cfg.valid_range
    if not lo <= value <= hi:
        return _Refused("out_of_range", f"line {line}: value {value} outside [{lo}, {hi}]")
    i_status = columns.status
    raw = row[i_status].strip() if i_status is not None and i_status < len(row) else ""
    status = _STATUSES.get(raw or "valid")
    if status is None:
        return _Refused("invalid_status", f"line {line}: status {raw!r} is unknown")
    return _Row(key, cfg, ts_ns, value, status)


def iter_replay_csv(path: Path, config: PlantConfig) -> Iterator[Reading | tuple[str, str]]:
    """Yield a :class:`Reading` per accepted row, or ``(reason, message)`` per refused row."""
    for item in _checked_rows(path, config):
        if isinstance(item, _Refused):
            yield item.reason, item.message
        else:
            key, cfg = item.key, item.sensor
            yield Reading(*key, item.ts_ns, item.value, cfg.quantity.value, cfg.unit, item.status)


def read_replay_csv(path: Path, config: PlantConfig, *, keep_messages: int = 10) -> Recording:
    """Read a whole recording into per-sensor series (rows keep their file order)."""
    columns: dict[SensorKey, tuple[list[int], list[float], list[int]]] = {}
    rejected: Counter[str] = Counter()
    messages: list[str] = []
    accepted = 0
    for item in _checked_rows(path, config):
        if isinstance(item, _Refused):
            rejected[item.reason] += 1
            if len(messages) < keep_messages:
                messages.append(item.message)
            continue
        column = columns.get(item.key)
        if column is None:
            column = columns[item.key] = ([], [], [])
        column[0].append(item.ts_ns)
        column[1].append(item.value)
        column[2].append(STATUS_CODE[item.status])
        accepted += 1
    series = {
        key: SensorSeries(
            np.asarray(ts, np.int64), np.asarray(values, np.float64), np.asarray(st, np.int8)
        )
        for key, (ts, values, st) in columns.items()
    }
    return Recording(series, accepted, rejected, messages)
