"""``stackwatch detect``: score a recorded CSV offline, causally, with the live detector.

Each input row is one time step of one stack: a time column and one column per sensor. The
rows go, in file order, through the same :class:`~stream.detect.pipeline.StackDetector` the
service runs, so the score of row *i* depends only on rows ≤ *i*, and one output row is
written per input row, in order: ``timestamp,anomaly_score,is_anomaly`` (the timestamp as
written in the input, the anomaly likelihood in [0, 1], and 1/0).

Times may be RFC 3339 / ISO 8601 (a time without offset is taken as UTC, as in plain
``timestamp,value`` files) or epoch seconds. Rows must be in time order. An empty cell (or
``nan``, ``null``, ``NA``) is a missing reading, which the dropout rule counts. No instrument
ranges are known here, so the out-of-range and rate-of-change rules are off; the sampling
interval is estimated from the first 32 intervals. The statistical scores warm up first and
flag nothing meanwhile: about 15 minutes of readings for a sensor's own forecast, 40 minutes
for the consistency between columns (at 1 Hz); the stuck and dropout rules work as soon as
they know the sensor's repeat rate and interval.

Wiring: ``app.add_typer(detect_app)`` (without a name) adds the ``detect`` command to the
``stackwatch`` CLI; on its own, ``python -m stackwatch.detect_cli --input … --output …``.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, TextIO

import typer

from stream.detect.pipeline import SensorDetector, StackDetector
from stream.model import NS_PER_S, ns_from_datetime
from stream.timeparse import NaiveTimestampError, parse_iso_ns

MISSING = frozenset({"", "nan", "null", "na", "n/a", "none"})
HEADER = ("timestamp", "anomaly_score", "is_anomaly")

detect_app = typer.Typer(add_completion=False)


class DetectInputError(ValueError):
    """The input file cannot be scored; the message names the line and the problem."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message if line is None else f"line {line}: {message}")
        self.line = line


@dataclass
class DetectSummary:
    """What :func:`score_csv` did: rows scored and anomalous rows by kind."""

    rows: int = 0
    anomalies: Counter[str] = field(default_factory=Counter)


def parse_time_ns(text: str) -> int:
    """Epoch ns from epoch seconds or an ISO-8601 time (UTC when it has no offset).

    >>> parse_time_ns("1700000000.5"), parse_time_ns("2014-04-01 00:00:00")
    (1700000000500000000, 1396310400000000000)
    """
    text = text.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            raise ValueError(f"{text!r} is not a time")
        return round(seconds * NS_PER_S)
    try:
        return parse_iso_ns(text)
    except NaiveTimestampError:
        return ns_from_datetime(datetime.fromisoformat(text).replace(tzinfo=UTC))


def parse_value(text: str) -> float:
    """A reading, or NaN for a missing one; anything else that is not a number is refused."""
    text = text.strip()
    if text.lower() in MISSING:
        return math.nan
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text!r} is not a finite number")
    return value


def _columns(
    header: Sequence[str], time_column: str, value_columns: Sequence[str] | None
) -> tuple[int, list[tuple[int, str]]]:
    if time_column not in header:
        raise DetectInputError(f"no time column {time_column!r} in the header {list(header)}", 1)
    names = list(value_columns) if value_columns else [c for c in header if c != time_column]
    if not names:
        raise DetectInputError("no value column (the header has only the time column)", 1)
    unknown = [c for c in names if c not in header]
    if unknown:
        raise DetectInputError(f"value column(s) {unknown} not in the header {list(header)}", 1)
    if len(set(names)) != len(names) or time_column in names:
        raise DetectInputError("value columns must be distinct and not the time column", 1)
    return header.index(time_column), [(header.index(c), c) for c in names]


def score_csv(
    source: TextIO,
    sink: TextIO,
    *,
    time_column: str = "timestamp",
    value_columns: Sequence[str] | None = None,
    sep: str = ",",
) -> DetectSummary:
    """Score every row of ``source`` into ``sink``.

    Raises :class:`DetectInputError` on a malformed file (after writing the rows before it).
    """
    rows: Iterator[list[str]] = csv.reader(source, delimiter=sep)
    header = next(rows, None)
    if header is None:
        raise DetectInputError("the file is empty (no header)", 1)
    time_index, columns = _columns([h.strip() for h in header], time_column, value_columns)
    detector = StackDetector([SensorDetector(name) for _, name in columns])
    writer = csv.writer(sink, delimiter=sep, lineterminator="\n")
    writer.writerow(HEADER)
    summary = DetectSummary()
    width = max(time_index, *(i for i, _ in columns)) + 1
    last_ts: int | None = None
    for line, row in enumerate(rows, start=2):
        if not row:
            continue  # a blank line is not a time step
        if len(row) < width:
            raise DetectInputError(f"{len(row)} fields, expected at least {width}", line)
        stamp = row[time_index].strip()
        try:
            ts_ns = parse_time_ns(stamp)
        except ValueError as err:
            raise DetectInputError(f"bad time {stamp!r}: {err}", line) from None
        if last_ts is not None and ts_ns < last_ts:
            raise DetectInputError(f"time {stamp!r} is earlier than the row before", line)
        last_ts = ts_ns
        values: dict[str, float] = {}
        for index, name in columns:
            try:
                values[name] = parse_value(row[index])
            except ValueError:
                raise DetectInputError(f"{name}: {row[index]!r} is not a number", line) from None
        score = detector.update(ts_ns, values)
        summary.rows += 1
        if score.is_anomaly:
            summary.anomalies[score.kind.value] += 1
        writer.writerow((stamp, format_score(score.score), 1 if score.is_anomaly else 0))
    return summary


def format_score(score: float) -> str:
    """Fixed-point, nine decimals, without trailing zeros (``1``, ``0.99999``, ``0``).

    >>> format_score(1.0), format_score(0.9999912345), format_score(0.0)
    ('1', '0.999991235', '0')
    """
    return f"{score:.9f}".rstrip("0").rstrip(".")


@detect_app.command("detect")
def detect(
    input_file: Annotated[
        Path, typer.Option("--input", "-i", help="CSV with a time column and value columns.")
    ],
    output_file: Annotated[
        Path,
        typer.Option("--output", "-o", help="Where to write timestamp,anomaly_score,is_anomaly."),
    ],
    time_column: Annotated[str, typer.Option(help="Name of the time column.")] = "timestamp",
    value_columns: Annotated[
        str | None,
        typer.Option(help="Comma-separated value columns (default: every other column)."),
    ] = None,
    sep: Annotated[str, typer.Option(help="Field separator of the input and the output.")] = ",",
) -> None:
    """Score a recorded stream offline (causal: a row's score uses only the rows up to it)."""
    if len(sep) != 1:
        raise _fail("--sep must be a single character")
    columns = [c.strip() for c in value_columns.split(",")] if value_columns else None
    try:
        with (
            input_file.open(newline="", encoding="utf-8-sig") as source,
            output_file.open("w", newline="", encoding="utf-8") as sink,
        ):
            summary = score_csv(
                source, sink, time_column=time_column, value_columns=columns, sep=sep
            )
    except DetectInputError as err:
        raise _fail(f"{input_file}: {err}") from None
    except OSError as err:
        raise _fail(str(err)) from None
    anomalies = summary.anomalies
    detail = ", ".join(f"{n} {kind}" for kind, n in anomalies.most_common())
    typer.echo(
        f"{output_file}: {summary.rows} row(s) scored, {anomalies.total()} anomalous"
        + (f" ({detail})" if detail else "")
    )


def _fail(message: str) -> typer.Exit:
    typer.secho(message, err=True, fg=typer.colors.RED)
    return typer.Exit(2)


if __name__ == "__main__":  # pragma: no cover
    detect_app()
