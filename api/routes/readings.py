"""Stored readings: the newest value per sensor, and time series of one sensor.

Every series query is bounded (at most :data:`MAX_RANGE_S` and ``max_points`` rows) because
InfluxDB 3 Core refuses scans over too many files and an unbounded answer could exhaust memory.
The time-series parameters and their checks (:data:`Start`, :data:`End`, :data:`EveryParam`,
:data:`FnParam`, :func:`time_range`, :func:`bounded_series`) are shared with ``/series``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import AfterValidator

from api.alert_schemas import Rfc3339, time_ns
from api.context import AppContext
from api.deps import ContextDep, StoreDep
from api.schemas import ErrorOut, Every, PointOut, ReadingOut, SeriesOut
from stream.model import NS_PER_S, Reading, datetime_from_ns, ns_from_datetime
from stream.schema import READINGS, reading_from_last
from stream.storage.base import Aggregate, SeriesQuery, SeriesRow

MAX_RANGE_S = 31 * 86_400
DEFAULT_RANGE_S = 3600

router = APIRouter(prefix="/readings", tags=["readings"])

TIME_DOC = "RFC 3339 with a UTC offset, e.g. `2024-01-01T12:00:00Z` (encode `+` as `%2B` in URLs)."


def _storable(dt: datetime) -> datetime:
    time_ns(dt)  # a time the stores can hold (signed 64-bit ns), else ValueError: 422
    return dt


StoreTime = Annotated[Rfc3339, AfterValidator(_storable)]
"""An RFC 3339 date-time with an offset, between 1970 and 2262 (what the stores hold)."""

Start = Annotated[
    StoreTime | None, Query(description=f"Inclusive start; default end - 1 h. {TIME_DOC}")
]
End = Annotated[StoreTime | None, Query(description=f"Exclusive end; default now. {TIME_DOC}")]
EveryParam = Annotated[
    Every | None, Query(description="Aggregate per window of this length; raw if absent.")
]
FnParam = Annotated[
    Aggregate, Query(description="Aggregation per window (used only with `every`).")
]


def reading_out(r: Reading) -> ReadingOut:
    return ReadingOut(
        plant=r.plant,
        stack=r.stack,
        sensor=r.sensor,
        quantity=r.quantity,
        unit=r.unit,
        time=r.time,
        value=r.value,
        status=r.status,
    )


def _unprocessable(message: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, message)


def time_range(start: datetime | None, end: datetime | None, now_ns: int) -> tuple[int, int]:
    """``[start_ns, end_ns)`` of a series request: ``end`` defaults to now, ``start`` to one
    hour before ``end``; 422 when the range is empty or longer than :data:`MAX_RANGE_S`.

    >>> from datetime import UTC
    >>> time_range(None, datetime(1970, 1, 1, 2, tzinfo=UTC), 0)
    (3600000000000, 7200000000000)
    """
    end_ns = ns_from_datetime(end) if end is not None else now_ns
    start_ns = ns_from_datetime(start) if start is not None else end_ns - DEFAULT_RANGE_S * NS_PER_S
    if start_ns >= end_ns:
        raise _unprocessable("start must be before end")
    if end_ns - start_ns > MAX_RANGE_S * NS_PER_S:
        raise _unprocessable(f"the range exceeds {MAX_RANGE_S // 86_400} days; shorten it")
    return start_ns, end_ns


async def bounded_series(
    ctx: AppContext,
    measurement: str,
    *,
    field: str,
    where: Mapping[str, str],
    span: tuple[int, int],
    every: int | None,
    fn: Aggregate,
) -> list[SeriesRow]:
    """One field of one series over ``span`` (from :func:`time_range`), raw or aggregated;
    more rows than ``STACKWATCH_API_MAX_POINTS`` is refused with 422."""
    cap = ctx.settings.max_points
    rows = await ctx.store.series(
        SeriesQuery(
            measurement,
            field,
            span[0],
            span[1],
            where=where,
            every_s=every,
            aggregate=fn,
            limit=cap + 1,
        )
    )
    if len(rows) > cap:
        raise _unprocessable(
            f"more than {cap} points in this window; use a larger 'every' or a shorter range"
        )
    return rows


@router.get(
    "/latest",
    summary="Newest stored value of every sensor",
    responses={422: {"model": ErrorOut}},
)
async def latest(
    store: StoreDep,
    plant: Annotated[str | None, Query(description="Only this plant.")] = None,
    stack: Annotated[str | None, Query(description="Only this stack.")] = None,
    sensor: Annotated[str | None, Query(description="Only this sensor id.")] = None,
) -> list[ReadingOut]:
    """What the store holds (within its look-back window), sorted by plant, stack, sensor.

    Sensors that never reported, or not recently, are absent; sensors removed from the
    configuration still appear while their data is recent.
    """
    filters = {"plant": plant, "stack": stack, "sensor": sensor}
    where = {k: v for k, v in filters.items() if v is not None}
    rows = await store.last(READINGS, where)
    return [reading_out(reading_from_last(row)) for row in rows]


@router.get(
    "/{plant}/{stack}/{sensor}",
    summary="Time series of one sensor",
    responses={404: {"model": ErrorOut}, 422: {"model": ErrorOut}},
)
async def series(
    *,
    plant: str,
    stack: str,
    sensor: str,
    ctx: ContextDep,
    start: Start = None,
    end: End = None,
    every: EveryParam = None,
    fn: FnParam = Aggregate.MEAN,
) -> SeriesOut:
    """Values in ``[start, end)`` (at most 31 days), raw or aggregated per epoch-aligned window.

    Windows without data are omitted; a window is labelled by its start. Values of every
    status are included. More rows than ``STACKWATCH_API_MAX_POINTS`` is refused with 422:
    ask for a larger ``every`` or a shorter range.
    """
    cfg = ctx.config.sensor(plant, stack, sensor)
    if cfg is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"sensor {plant}/{stack}/{sensor} is not configured"
        )
    start_ns, end_ns = time_range(start, end, ctx.now_ns())
    where = {"plant": plant, "stack": stack, "sensor": sensor}
    rows = await bounded_series(
        ctx, READINGS, field="value", where=where, span=(start_ns, end_ns), every=every, fn=fn
    )
    return SeriesOut(
        plant=plant,
        stack=stack,
        sensor=sensor,
        quantity=cfg.quantity.value,
        unit=cfg.unit,
        start=datetime_from_ns(start_ns),
        end=datetime_from_ns(end_ns),
        every=every,
        fn=fn if every is not None else None,
        points=[PointOut(time=datetime_from_ns(r.ts_ns), value=r.value) for r in rows],
    )
