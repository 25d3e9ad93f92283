"""Compliance reports as downloadable files: daily and monthly, CSV or PDF.

The report is built from the stored compliance results at request time (see
:mod:`api.reports`); the current day or month can be requested and is marked as in progress.
Rendering a PDF takes about a second of CPU, so it runs in the thread pool, not on the event
loop. Mounted behind the bearer token like every data router.
"""

from __future__ import annotations

import time
from datetime import date
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, HTTPException, Path, Query, status
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.deps import ConfigDep, ContextDep, StoreDep
from api.reports import (
    ReportError,
    ReportFormat,
    ReportKind,
    UnknownPlantError,
    load_report,
    parse_month,
)
from api.reports.csv import to_csv
from api.schemas import ErrorOut
from stream.plant import PlantConfig
from stream.storage.base import Store

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/reports", tags=["reports"])


MEDIA_TYPES = {ReportFormat.CSV: "text/csv; charset=utf-8", ReportFormat.PDF: "application/pdf"}

_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The report as an attachment: CSV (columns documented in "
        "`api.reports.csv`) or PDF (plots and compliance tables).",
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "application/pdf": {"schema": {"type": "string", "format": "binary"}},
        },
    },
    404: {"model": ErrorOut, "description": "The plant is not configured."},
    422: {
        "model": ErrorOut,
        "description": "Malformed date, month or format, or a period that has not started.",
    },
}

PlantPath = Annotated[
    str, Path(description="The plant's id in the configuration.", examples=["demo"])
]
FormatQuery = Annotated[
    ReportFormat, Query(alias="format", description="`pdf` (default) or `csv`.")
]


async def _report(
    store: Store,
    config: PlantConfig,
    *,
    now_ns: int,
    plant: str,
    kind: ReportKind,
    when: date,
    fmt: ReportFormat,
) -> Response:
    started = time.perf_counter()
    try:
        data = await load_report(store, config, plant, kind, when, now_ns=now_ns)
    except UnknownPlantError as err:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(err)) from None
    except ReportError as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from None
    if fmt is ReportFormat.PDF:
        from api.reports.pdf import to_pdf  # noqa: PLC0415 - matplotlib costs 1 s at start-up

        body = await run_in_threadpool(to_pdf, data)
    else:
        body = to_csv(data).encode()
    name = data.filename(fmt.value)
    log.info(
        "report generated",
        plant=plant,
        kind=kind,
        period=data.label,
        format=fmt.value,
        bytes=len(body),
        seconds=round(time.perf_counter() - started, 3),
    )
    return Response(
        content=body,
        media_type=MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get(
    "/{plant}/daily",
    summary="Daily compliance report of one plant",
    response_class=Response,
    responses=_RESPONSES,
)
async def daily_report(
    *,
    plant: PlantPath,
    store: StoreDep,
    config: ConfigDep,
    ctx: ContextDep,
    day: Annotated[
        date,
        Query(
            alias="date",
            description="Plant-local calendar day, `YYYY-MM-DD` (today: so far).",
            examples=["2026-02-10"],
        ),
    ],
    fmt: FormatQuery = ReportFormat.PDF,
) -> Response:
    """Every short-term average of the day per stack and pollutant, against the short-term
    limit, with the day's validated mean, invalid-day flag and availability."""
    return await _report(
        store, config, now_ns=ctx.now_ns(), plant=plant, kind="daily", when=day, fmt=fmt
    )


@router.get(
    "/{plant}/monthly",
    summary="Monthly compliance report of one plant",
    response_class=Response,
    responses=_RESPONSES,
)
async def monthly_report(
    *,
    plant: PlantPath,
    store: StoreDep,
    config: ConfigDep,
    ctx: ContextDep,
    month: Annotated[
        str,
        Query(
            pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
            description="Plant-local calendar month, `YYYY-MM` (this month: so far).",
            examples=["2026-02"],
        ),
    ],
    fmt: FormatQuery = ReportFormat.PDF,
) -> Response:
    """Every day of the month per stack and pollutant: validated daily mean against the daily
    limit, valid hours, invalid-day flag; the monthly mean, invalid days in the month and the
    year so far, and availability."""
    try:
        first = parse_month(month)
    except ValueError as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from None
    return await _report(
        store, config, now_ns=ctx.now_ns(), plant=plant, kind="monthly", when=first, fmt=fmt
    )
