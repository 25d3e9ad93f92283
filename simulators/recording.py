"""Recorded streams in the replay CSV format: ``time,plant,stack,sensor,value,status``.

``time`` is ISO-8601 with an offset (UTC recommended), ``status`` is optional (default
``valid``). Rows are checked like MQTT payloads (known sensor, finite value within the
sensor's valid range, known status), so a recording evaluated offline and the same recording
replayed live through the collector produce the same accepted readings. Rows that fail are
counted by reason, never silently dropped.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from stream.model import Reading, SensorKey, Status
from stream.plant import PlantConfig
from stream.series import SensorSeries, series_from_readings
from stream.timeparse import NaiveTimestampError, parse_iso_ns

REQUIRED_COLUMNS = ("time", "plant", "stack", "sensor", "value")
_STATUSES = {s.value: s for s in Status}


class RecordingError(Exception):
    """The file cannot be read as a replay CSV (missing columns, unreadable file)."""


@dataclass
class Recording:
    """Accepted readings grouped by sensor, and the rows that were refused, by reason."""

    series: dict[SensorKey, SensorSeries]
    accepted: int
    rejected: Counter[str] = field(default_factory=Counter)
    first_rejections: list[str] = field(default_factory=list)


def iter_replay_csv(path: Path, config: PlantConfig) -> Iterator[Reading | tuple[str, str]]:
    """Yield a :class:`Reading` per accepted row, or ``(reason, message)`` per refused row."""
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as err:
        raise RecordingError(f"{path}: cannot read: {err.strerror}") from err
    with handle:
        reader = csv.DictReader(handle)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise RecordingError(
                f"{path}: missing column(s) {', '.join(missing)}; the header must be "
                "time,plant,stack,sensor,value[,status]"
            )
        sensors = {key: cfg for key, cfg in config.sensors()}
        for row in reader:
            line = reader.line_num
            key = SensorKey(row["plant"], row["stack"], row["sensor"])
            cfg = sensors.get(key)
            if cfg is None:
                yield "unknown_sensor", f"line {line}: {'/'.join(key)} is not configured"
                continue
            try:
                ts_ns = parse_iso_ns(row["time"])
            except NaiveTimestampError as err:
                yield "naive_timestamp", f"line {line}: time {err}"
                continue
            except ValueError as err:
                yield "invalid_time", f"line {line}: time {err}"
                continue
            try:
                value = float(row["value"])
            except (TypeError, ValueError):
                yield "invalid_value", f"line {line}: value {row['value']!r} is not a number"
                continue
            if not math.isfinite(value):
                yield "non_finite", f"line {line}: value {row['value']!r} is not finite"
                continue
            lo, hi = cfg.valid_range
            if not lo <= value <= hi:
                yield "out_of_range", f"line {line}: value {value} outside [{lo}, {hi}]"
                continue
            status = _STATUSES.get((row.get("status") or "valid").strip())
            if status is None:
                yield "invalid_status", f"line {line}: status {row.get('status')!r} is unknown"
                continue
            yield Reading(*key, ts_ns, value, cfg.quantity.value, cfg.unit, status)


def read_replay_csv(path: Path, config: PlantConfig, *, keep_messages: int = 10) -> Recording:
    """Read a whole recording into per-sensor series."""
    readings: list[Reading] = []
    rejected: Counter[str] = Counter()
    messages: list[str] = []
    for item in iter_replay_csv(path, config):
        if isinstance(item, Reading):
            readings.append(item)
        else:
            rejected[item[0]] += 1
            if len(messages) < keep_messages:
                messages.append(item[1])
    return Recording(series_from_readings(readings), len(readings), rejected, messages)
