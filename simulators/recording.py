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

The same readings can also be kept as JSON lines (``.jsonl``/``.ndjson``), one object per
line with the same keys: ``{"time": "<RFC 3339>", "plant", "stack", "sensor", "value",
"status"}``. Instead of ``time`` a line may carry ``ts`` the way an MQTT payload does (epoch
milliseconds, or an ISO-8601 string). Lines get the same checks and refusal reasons as CSV
rows, plus ``malformed_json`` (not a JSON object) and ``invalid_field`` (unknown key, or a
field of the wrong JSON type). :func:`iter_recording` and :func:`read_recording` read either
format, chosen by the file suffix (anything but ``.jsonl``/``.ndjson`` is read as CSV).
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np
import orjson

from stream.model import NS_PER_MS, Reading, SensorKey, Status
from stream.plant import PlantConfig, SensorConfig
from stream.series import STATUS_CODE, SensorSeries
from stream.timeparse import NaiveTimestampError, format_iso_ns, parse_iso_ns

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


_JSON_KEYS = frozenset({"time", "ts", "plant", "stack", "sensor", "value", "status"})


def _checked_lines(path: Path, config: PlantConfig) -> Iterator[_Row | _Refused]:
    """Every non-blank line of a JSON-lines recording, accepted or refused (like CSV rows)."""
    try:
        handle = path.open("rb")
    except OSError as err:
        raise RecordingError(f"{path}: cannot read: {err.strerror}") from err
    with handle:
        sensors = dict(config.sensors())
        for line, raw in enumerate(handle, start=1):
            text = raw.strip()
            if line == 1 and text.startswith(b"\xef\xbb\xbf"):
                text = text[3:]
            if text:
                yield _check_json(text, line, sensors)


def _check_json(text: bytes, line: int, sensors: dict[SensorKey, SensorConfig]) -> _Row | _Refused:
    """The checks of :func:`_check`, on one JSON object; refusals use the same reasons."""
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError as err:
        return _Refused("malformed_json", f"line {line}: not JSON: {err}"[:200])
    if type(obj) is not dict:
        return _Refused("malformed_json", f"line {line}: expected a JSON object")
    if not _JSON_KEYS.issuperset(obj):
        unknown = ", ".join(sorted(set(obj) - _JSON_KEYS)[:5])
        return _Refused("invalid_field", f"line {line}: unknown key(s) {unknown}")
    if "time" in obj and "ts" in obj:
        return _Refused("invalid_field", f"line {line}: both time and ts; give one")
    required = REQUIRED_COLUMNS[1:] if "ts" in obj else REQUIRED_COLUMNS  # ts replaces time
    missing = [k for k in required if k not in obj]
    if missing:
        return _Refused("missing_field", f"line {line}: missing {', '.join(missing)}")
    plant, stack, sensor = obj["plant"], obj["stack"], obj["sensor"]
    if not (type(plant) is str and type(stack) is str and type(sensor) is str):
        return _Refused("invalid_field", f"line {line}: plant, stack and sensor must be strings")
    key = SensorKey(plant, stack, sensor)
    cfg = sensors.get(key)
    if cfg is None:
        return _Refused("unknown_sensor", f"line {line}: {'/'.join(key)} is not configured")
    raw_time = obj["time"] if "time" in obj else obj["ts"]
    if type(raw_time) is str:
        try:
            ts_ns = _parse_time(raw_time)
        except NaiveTimestampError as err:
            return _Refused("naive_timestamp", f"line {line}: time {err}")
        except ValueError as err:
            return _Refused("invalid_time", f"line {line}: time {err}")
    elif type(raw_time) is int and "ts" in obj:
        ts_ns = raw_time * NS_PER_MS
    elif type(raw_time) is float and "ts" in obj and math.isfinite(raw_time):
        # At the float's shortest decimal form, as the MQTT decoder reads it.
        ts_ns = int(Decimal(repr(raw_time)).scaleb(6).to_integral_value(ROUND_HALF_EVEN))
    else:
        return _Refused("invalid_time", f"line {line}: time {raw_time!r} is not an ISO-8601 string")
    value = obj["value"]
    if type(value) is int:
        value = float(value)
    elif type(value) is not float:
        return _Refused("invalid_value", f"line {line}: value {value!r} is not a number"[:200])
    lo, hi = cfg.valid_range
    if not lo <= value <= hi:
        return _Refused("out_of_range", f"line {line}: value {value} outside [{lo}, {hi}]")
    raw_status = obj.get("status", "valid")
    status = _STATUSES.get(raw_status) if type(raw_status) is str else None
    if status is None:
        return _Refused("invalid_status", f"line {line}: status {raw_status!r} is unknown"[:200])
    return _Row(key, cfg, ts_ns, value, status)


def _reading_format(path: Path, fmt: str | None) -> str:
    """The format to read: ``fmt``, else ``jsonl`` for a ``.jsonl``/``.ndjson`` file, else
    ``csv`` (so CSV recordings with any name keep working)."""
    if fmt is not None:
        return recording_format(path, fmt)
    return "jsonl" if path.suffix.lower() in (".jsonl", ".ndjson") else "csv"


def _checked(path: Path, config: PlantConfig, fmt: str | None) -> Iterator[_Row | _Refused]:
    if _reading_format(path, fmt) == "jsonl":
        return _checked_lines(path, config)
    return _checked_rows(path, config)


def iter_recording(
    path: Path, config: PlantConfig, fmt: str | None = None
) -> Iterator[Reading | tuple[str, str]]:
    """Yield a :class:`Reading` per accepted row or line (file order), or ``(reason, message)``
    per refused one; CSV or JSON lines (see the module docstring)."""
    for item in _checked(path, config, fmt):
        if isinstance(item, _Refused):
            yield item.reason, item.message
        else:
            key, cfg = item.key, item.sensor
            yield Reading(*key, item.ts_ns, item.value, cfg.quantity.value, cfg.unit, item.status)


def iter_replay_csv(path: Path, config: PlantConfig) -> Iterator[Reading | tuple[str, str]]:
    """Yield a :class:`Reading` per accepted row, or ``(reason, message)`` per refused row."""
    return iter_recording(path, config, "csv")


def read_recording(
    path: Path, config: PlantConfig, *, fmt: str | None = None, keep_messages: int = 10
) -> Recording:
    """Read a whole recording (CSV or JSON lines) into per-sensor series (rows keep their
    file order)."""
    columns: dict[SensorKey, tuple[list[int], list[float], list[int]]] = {}
    rejected: Counter[str] = Counter()
    messages: list[str] = []
    accepted = 0
    for item in _checked(path, config, fmt):
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


read_replay_csv = read_recording
"""The former name of :func:`read_recording` (which also reads JSON lines now)."""


def count_records(path: Path) -> int:
    """Rows or lines in a recording, cheaply (a progress total, not a validation): lines less
    the header of a CSV; blank and refused lines are included.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "r.csv"
    >>> _ = path.write_text("time,plant,stack,sensor,value\\na\\nb")
    >>> count_records(path)
    2
    """
    lines = 0
    last = b"\n"
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                lines += chunk.count(b"\n")
                last = chunk[-1:]
    except OSError as err:
        raise RecordingError(f"{path}: cannot read: {err.strerror}") from err
    lines += last != b"\n"  # a last line without a newline
    header = 1 if _reading_format(path, None) == "csv" and lines else 0
    return lines - header


def last_record_ns(path: Path, *, tail_bytes: int = 65_536) -> int | None:
    """Time of the last record that has a readable time, from the file's tail (a recording
    is in time order, so this is where a replay ends); ``None`` if the tail has none.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "r.csv"
    >>> _ = path.write_text("time,plant,stack,sensor,value\\n1970-01-01T00:00:01Z,p,s,x,1\\n")
    >>> last_record_ns(path)
    1000000000
    """
    try:
        with path.open("rb") as handle:
            header = handle.readline().decode("utf-8-sig", "replace")
            size = handle.seek(0, 2)
            handle.seek(max(0, size - tail_bytes))
            tail = handle.read().decode("utf-8", "replace").splitlines()
    except OSError as err:
        raise RecordingError(f"{path}: cannot read: {err.strerror}") from err
    jsonl = _reading_format(path, None) == "jsonl"
    column = (
        None
        if jsonl
        else next(csv.reader([header]), []).index("time")
        if "time" in header
        else None
    )
    for line in reversed(tail):
        try:
            if jsonl:
                obj = orjson.loads(line)
                raw = obj.get("time", obj.get("ts")) if type(obj) is dict else None
                if type(raw) is int:
                    return raw * NS_PER_MS
                if type(raw) is str:
                    return parse_iso_ns(raw)
            elif column is not None:
                row = next(csv.reader([line]), [])
                if len(row) > column and row[column] != "time":
                    return parse_iso_ns(row[column])
        except (ValueError, orjson.JSONDecodeError):
            continue
    return None


@dataclass
class Refusals:
    """Refused rows of a recording read with :func:`iter_recording`, counted by reason with
    the first ``keep`` messages; :meth:`readings` passes the accepted readings through.

    >>> refusals = Refusals()
    >>> list(refusals.readings([("out_of_range", "line 2: ..."), ("out_of_range", "line 3")]))
    []
    >>> refusals.counts
    Counter({'out_of_range': 2})
    """

    counts: Counter[str] = field(default_factory=Counter)
    first: list[str] = field(default_factory=list)
    keep: int = 10

    def readings(self, items: Iterable[Reading | tuple[str, str]]) -> Iterator[Reading]:
        for item in items:
            if isinstance(item, Reading):
                yield item
            else:
                reason, message = item
                self.counts[reason] += 1
                if len(self.first) < self.keep:
                    self.first.append(message)


RECORDING_FORMATS = ("csv", "jsonl")


def recording_format(path: Path, fmt: str | None = None) -> str:
    """``csv`` or ``jsonl``: ``fmt`` if given, else from the file suffix (``.csv``, ``.jsonl``,
    ``.ndjson``; a ``.gz`` is not supported)."""
    if fmt is None:
        suffix = path.suffix.lower()
        fmt = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(suffix)
        if fmt is None:
            raise RecordingError(f"{path}: unknown recording format (use .csv or .jsonl)")
    if fmt not in RECORDING_FORMATS:
        raise RecordingError(f"unknown recording format {fmt!r} (csv or jsonl)")
    return fmt


class RecordingWriter:
    """Writes readings to a recording, CSV (``time,plant,stack,sensor,value,status``) or JSON
    lines with the same keys; times are RFC 3339 UTC with every nanosecond kept and values
    are written with ``repr``, so reading the file back gives the identical readings.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "rec.csv"
    >>> with RecordingWriter(path) as w:
    ...     w.write(Reading("p", "s", "nox", 1767225600_000000001, 12.5, "nox", "mg/Nm3"))
    >>> path.read_text().splitlines()
    ['time,plant,stack,sensor,value,status', '2026-01-01T00:00:00.000000001Z,p,s,nox,12.5,valid']
    """

    def __init__(self, path: Path, fmt: str | None = None) -> None:
        self.path = path
        self.format = recording_format(path, fmt)
        self.written = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = path.open("w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._handle, lineterminator="\n") if self.format == "csv" else None
        if self._csv is not None:
            self._csv.writerow((*REQUIRED_COLUMNS, "status"))

    def write(self, r: Reading) -> None:
        time = format_iso_ns(r.ts_ns)
        if self._csv is not None:
            self._csv.writerow((time, r.plant, r.stack, r.sensor, repr(r.value), r.status.value))
        else:
            record = {
                "time": time,
                "plant": r.plant,
                "stack": r.stack,
                "sensor": r.sensor,
                "value": r.value,
                "status": r.status.value,
            }
            self._handle.write(orjson.dumps(record).decode() + "\n")
        self.written += 1

    def write_many(self, readings: Iterable[Reading]) -> int:
        """Write every reading; returns how many."""
        n = 0
        for r in readings:
            self.write(r)
            n += 1
        return n

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
