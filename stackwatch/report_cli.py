"""``stackwatch report``: daily and monthly compliance reports as CSV or PDF files.

Reads the store the service writes, chosen by the same settings (``STACKWATCH_INFLUX_URL`` for
InfluxDB, else ``$STACKWATCH_DATA_DIR/stackwatch.db``), and the plant configuration
(``STACKWATCH_CONFIG``, or the demo plant with ``STACKWATCH_MODE=demo``; ``--config``
overrides it). The files are the same as the API's ``/reports`` downloads.

Exit codes: 0 written; 1 the store failed; 2 bad arguments, configuration or period.

Wiring: ``app.add_typer(report_app, name="report")`` in ``stackwatch.cli``.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from api.reports import (
    ComplianceReportData,
    ReportError,
    ReportFormat,
    ReportKind,
    load_report,
    parse_month,
)
from api.reports.csv import to_csv
from stackwatch.cli_support import fail, load_plant, load_settings
from stackwatch.service import make_store
from stream.storage.base import StoreError

report_app = typer.Typer(
    help="Compliance reports (CSV or PDF) from the stored compliance results.",
    no_args_is_help=True,
    add_completion=False,
)

PlantOption = Annotated[str, typer.Option("--plant", "-p", help="Plant id.")]
FormatOption = Annotated[ReportFormat, typer.Option("--format", "-f", help="File format.")]
OutputOption = Annotated[
    Path | None,
    typer.Option(
        "--output",
        "-o",
        help="File to write (default: stackwatch-PLANT-KIND-PERIOD.FORMAT in the current "
        "directory); '-' writes to standard output.",
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Plant configuration (default: STACKWATCH_CONFIG)."),
]


@report_app.command("daily")
def daily(
    plant: PlantOption,
    day: Annotated[str, typer.Option("--date", "-d", metavar="YYYY-MM-DD", help="Local day.")],
    fmt: FormatOption = ReportFormat.PDF,
    output: OutputOption = None,
    config: ConfigOption = None,
) -> None:
    """Every short-term average of one day against the limits."""
    try:
        when = date.fromisoformat(day)
    except ValueError:
        raise fail(f"--date: expected YYYY-MM-DD, got {day!r}") from None
    _generate("daily", plant, when, fmt=fmt, output=output, config=config)


@report_app.command("monthly")
def monthly(
    plant: PlantOption,
    month: Annotated[str, typer.Option("--month", "-m", metavar="YYYY-MM", help="Local month.")],
    fmt: FormatOption = ReportFormat.PDF,
    output: OutputOption = None,
    config: ConfigOption = None,
) -> None:
    """Every day of one month against the daily limit, with the monthly totals."""
    try:
        when = parse_month(month)
    except ValueError as err:
        raise fail(f"--month: {err}") from None
    _generate("monthly", plant, when, fmt=fmt, output=output, config=config)


def _generate(
    kind: ReportKind,
    plant: str,
    when: date,
    *,
    fmt: ReportFormat,
    output: Path | None,
    config: Path | None,
) -> None:
    settings = load_settings(config)
    plant_config = load_plant(settings.service)
    if settings.influx.url is None:
        db = settings.service.data_dir / "stackwatch.db"
        if not db.is_file():  # starting the store would create an empty one
            raise fail(f"no stored data: {db} does not exist (set STACKWATCH_DATA_DIR)")

    async def load() -> ComplianceReportData:
        store = make_store(settings)
        await store.start()
        try:
            return await load_report(store, plant_config, plant, kind, when)
        finally:
            await store.close()

    try:
        data = asyncio.run(load())
    except ReportError as err:
        raise fail(str(err)) from None
    except StoreError as err:
        raise fail(f"the store failed: {err}", code=1) from None
    if fmt is ReportFormat.PDF:
        from api.reports.pdf import to_pdf  # noqa: PLC0415 - matplotlib costs 1 s at start-up

        body = to_pdf(data)
    else:
        body = to_csv(data).encode()
    if output is not None and str(output) == "-":
        sys.stdout.buffer.write(body)
        sys.stdout.buffer.flush()
        return
    path = output or Path(data.filename(fmt.value))
    try:
        path.write_bytes(body)
    except OSError as err:
        raise fail(f"cannot write {path}: {err.strerror or err}") from None
    typer.echo(f"wrote {path} ({len(body)} bytes)", err=True)
