"""Labels files: the ground truth of a simulated stream, one injected fault per row.

CSV with the header ``plant,stack,sensor,kind,start,end``: ``kind`` a
:class:`~simulators.faults.FaultKind` value, ``start`` and ``end`` RFC 3339 UTC with every
nanosecond kept, ``end`` exclusive; ``sensor`` is empty for stack-level events (start-up,
shut-down). A backtest reads it next to the recording the same run wrote. Reading checks every
row and names the line and the reason of the first bad one.

>>> import tempfile
>>> from simulators.faults import FaultEvent, FaultKind
>>> path = Path(tempfile.mkdtemp()) / "labels.csv"
>>> events = [FaultEvent("p", "b1", "nox", FaultKind.DRIFT, 1767225600_000000000,
...                      1767227400_000000000, magnitude=12.0)]
>>> write_labels(path, events)
1
>>> print(path.read_text(), end="")
plant,stack,sensor,kind,start,end
p,b1,nox,drift,2026-01-01T00:00:00Z,2026-01-01T00:30:00Z
>>> read_labels(path) == [e.label() for e in events]
True
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

from simulators.faults import FaultEvent, FaultKind, ScheduleError
from stream.timeparse import format_iso_ns, parse_iso_ns

LABEL_COLUMNS = ("plant", "stack", "sensor", "kind", "start", "end")
_KINDS = {k.value: k for k in FaultKind}


class LabelsError(ValueError):
    """A labels file that cannot be read; the message names the file, line and reason."""


def write_labels(path: Path, events: Iterable[FaultEvent]) -> int:
    """Write ``events`` (as :meth:`FaultEvent.label`) to ``path``; returns how many."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(LABEL_COLUMNS)
        for e in events:
            start, end = format_iso_ns(e.start_ns), format_iso_ns(e.end_ns)
            writer.writerow((e.plant, e.stack, e.sensor, e.kind.value, start, end))
            n += 1
    return n


def _event(row: list[str], columns: dict[str, int], line: int) -> FaultEvent:
    needed = max(columns.values()) + 1
    if len(row) < needed:
        raise LabelsError(f"line {line}: {len(row)} field(s), expected {needed}")
    plant, stack, sensor, kind_text, start_text, end_text = (
        row[columns[c]].strip() for c in LABEL_COLUMNS
    )
    if not plant or not stack:
        raise LabelsError(f"line {line}: plant and stack must not be empty")
    kind = _KINDS.get(kind_text)
    if kind is None:
        raise LabelsError(
            f"line {line}: kind {kind_text!r} is unknown (one of {', '.join(_KINDS)})"
        )
    times = []
    for name, text in (("start", start_text), ("end", end_text)):
        try:
            times.append(parse_iso_ns(text))
        except ValueError as err:
            raise LabelsError(f"line {line}: {name} {err}") from None
    try:
        return FaultEvent(plant, stack, sensor, kind, times[0], times[1])
    except ScheduleError:
        raise LabelsError(f"line {line}: end {end_text} is not after start {start_text}") from None


def read_labels(path: Path) -> list[FaultEvent]:
    """The labels of ``path`` in file order; :class:`LabelsError` on the first bad row."""
    try:
        # utf-8-sig: a file saved by a spreadsheet starts with a byte-order mark.
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as err:
        raise LabelsError(f"{path}: cannot read: {err.strerror}") from None
    events: list[FaultEvent] = []
    with handle:
        reader = csv.reader(handle)
        header = [h.strip() for h in next(reader, [])]
        missing = [c for c in LABEL_COLUMNS if c not in header]
        if missing:
            raise LabelsError(
                f"{path}: missing column(s) {', '.join(missing)}; the header must be "
                + ",".join(LABEL_COLUMNS)
            )
        columns = {c: header.index(c) for c in LABEL_COLUMNS}
        for row in reader:
            if not row:
                continue  # a blank line
            try:
                events.append(_event(row, columns, reader.line_num))
            except LabelsError as err:
                raise LabelsError(f"{path}: {err}") from None
    return events
