"""Compliance results as JSON: the latest per stack, and daily, monthly and yearly summaries.

Everything is read from what the live compliance engine stored (see
:mod:`api.compliance_schemas` for what is added: limits, judgement, invalid days,
availability). Each list covers the limited pollutants of the plant's stacks (file order),
optionally one stack or one pollutant. Days, months and years are plant-local.

Every query is bounded by its time range. The daily, monthly and yearly records are read as
numeric series (one query per field and pollutant, run concurrently) rather than scanned:
InfluxDB scans go in 6-hour windows, which would make a year of days thousands of queries. The
booleans of a day are therefore derived from the stored numbers exactly as the engine sets them
(see :meth:`api.compliance_schemas.DayOut.of`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Path, Query, status

from api.compliance_schemas import (
    MAX_YEAR,
    MIN_YEAR,
    ComplianceLatestOut,
    DailyComplianceOut,
    DayOut,
    LimitsOut,
    LocalDate,
    PeriodComplianceOut,
    PeriodOut,
    PollutantDaysOut,
    PollutantLatestOut,
    PollutantPeriodsOut,
    StaOut,
    availability,
)
from api.context import AppContext
from api.deps import ContextDep
from api.reports.data import Threshold, daily_limit, sta_limit
from api.schemas import ErrorOut
from stream.compliance.longterm import local_day_bounds_ns
from stream.compliance.points import DAILY, PERIOD, STA
from stream.model import NS_PER_S, datetime_from_ns
from stream.plant import EmissionLimit, PlantConfig, PlantInfo, StackConfig
from stream.storage.base import FieldValue, SeriesQuery, Store

LATEST_LOOKBACK_S = 2 * 86_400
"""How far back ``latest`` looks for the newest short-term average."""
MAX_DAYS = 366
DEFAULT_DAYS = 31
MAX_YEARS = 10

DAY_FIELDS = (
    "validated_mean",
    "measured_mean",
    "valid_hours",
    "valid_sta",
    "invalid_sta",
    "excluded_sta",
    "invalid_day_count",
)
PERIOD_FIELDS = ("validated_mean", "measured_mean", "coverage", "n_sta")
DAY_COUNT_FIELDS = ("invalid_day_count", "valid_sta", "invalid_sta")

_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {
        "model": ErrorOut,
        "description": "Unknown plant or stack, or no such limited pollutant.",
    },
    422: {"model": ErrorOut, "description": "A parameter is invalid or the range too long."},
}

router = APIRouter(prefix="/compliance", tags=["compliance"], responses=_RESPONSES)

PlantId = Annotated[str, Path(max_length=64, description="The plant id.")]
StackFilter = Annotated[str | None, Query(max_length=64, description="Only this stack.")]
PollutantFilter = Annotated[
    str | None, Query(max_length=64, description="Only this pollutant, e.g. `nox`.")
]


@dataclass(frozen=True)
class _Target:
    """One limited pollutant of one stack: a series of compliance results."""

    stack_id: str
    stack: StackConfig
    pollutant: str
    limit: EmissionLimit

    def where(self, plant: str) -> dict[str, str]:
        return {"plant": plant, "stack": self.stack_id, "pollutant": self.pollutant}


def _not_found(message: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, message)


def _unprocessable(message: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, message)


def _plant(config: PlantConfig, plant: str) -> PlantInfo:
    info = config.plants.get(plant)
    if info is None:
        raise _not_found(f"plant {plant!r} is not configured")
    return info


def _stack(info: PlantInfo, plant: str, stack: str) -> StackConfig:
    found = info.stacks.get(stack)
    if found is None:
        raise _not_found(f"stack {plant}/{stack} is not configured")
    return found


def targets(info: PlantInfo, plant: str, stack: str | None, pollutant: str | None) -> list[_Target]:
    """The limited pollutants of the plant's stacks (file order) the filters select; 404 when
    the stack is unknown or the filters select none."""
    stacks = {stack: _stack(info, plant, stack)} if stack is not None else dict(info.stacks)
    found = [
        _Target(sid, s, q.value, limit)
        for sid, s in stacks.items()
        for q, limit in s.limits.items()
        if pollutant is None or q.value == pollutant
    ]
    if not found and pollutant is not None:
        where = f"{plant}/{stack}" if stack is not None else f"plant {plant!r}"
        raise _not_found(f"pollutant {pollutant!r} has no limit in {where}")
    return found


async def numeric_fields(
    store: Store,
    measurement: str,
    names: Sequence[str],
    *,
    where: Mapping[str, str],
    span: tuple[int, int],
) -> dict[int, dict[str, FieldValue]]:
    """The numeric ``names`` of one series in ``span`` (ns, half-open), merged by time (one
    query per field, concurrently); time order."""
    results = await asyncio.gather(
        *(store.series(SeriesQuery(measurement, n, span[0], span[1], where)) for n in names)
    )
    merged: dict[int, dict[str, FieldValue]] = {}
    for name, rows in zip(names, results, strict=True):
        for r in rows:
            merged.setdefault(r.ts_ns, {})[name] = r.value
    return dict(sorted(merged.items()))


def _local_date(ts_ns: int, zone: ZoneInfo) -> date:
    return datetime_from_ns(ts_ns).astimezone(zone).date()


def _value(t: Threshold | None) -> float | None:
    return None if t is None else t.value


# ------------------------------------------------------------------------------------ latest


async def _newest_sta(
    store: Store, where: Mapping[str, str], now_ns: int
) -> tuple[int, Mapping[str, FieldValue]] | None:
    rows = await store.series(
        SeriesQuery(STA, "n_valid", now_ns - LATEST_LOOKBACK_S * NS_PER_S, now_ns, where)
    )
    if not rows:
        return None
    ts = rows[-1].ts_ns
    points = await store.scan(STA, ts, ts + 1, where)
    return (ts, points[-1].fields) if points else None


@router.get("/{plant}/{stack}/latest", summary="Latest compliance results of one stack")
async def latest(
    plant: PlantId,
    stack: Annotated[str, Path(max_length=64, description="The stack id.")],
    ctx: ContextDep,
) -> ComplianceLatestOut:
    """Per limited pollutant: the newest stored short-term average (normalised and
    validated, with its state; looked for in the last 2 days) and today's running daily
    record (plant-local day: validated mean, valid hours, invalid STA, availability)."""
    info = _plant(ctx.config, plant)
    found = targets(info, plant, stack, None)
    now = ctx.now_ns()
    zone = ZoneInfo(info.timezone)
    today = _local_date(now, zone)
    day_start = local_day_bounds_ns(today, info.timezone)[0]
    day_points, newest = await asyncio.gather(
        ctx.store.scan(DAILY, day_start, day_start + 1, {"plant": plant, "stack": stack}),
        asyncio.gather(*(_newest_sta(ctx.store, t.where(plant), now) for t in found)),
    )
    today_fields = {p.tags.get("pollutant", ""): p.fields for p in day_points}
    pollutants = []
    for t, sta in zip(found, newest, strict=True):
        period_s = t.stack.compliance.sta_period_s
        fields = today_fields.get(t.pollutant)
        pollutants.append(
            PollutantLatestOut(
                pollutant=t.pollutant,
                sta_period_s=period_s,
                limits=LimitsOut.of(t.stack, t.limit),
                short_term=(
                    None
                    if sta is None
                    else StaOut.of(sta[0], sta[1], period_s, _value(sta_limit(t.stack, t.limit)))
                ),
                today=(
                    None
                    if fields is None
                    else DayOut.of(
                        today,
                        fields,
                        stack=t.stack,
                        limit=_value(daily_limit(t.stack, t.limit)),
                        over=False,
                    )
                ),
            )
        )
    return ComplianceLatestOut(
        plant=plant,
        stack=stack,
        timezone=info.timezone,
        time=datetime_from_ns(now),
        pollutants=pollutants,
    )


# ------------------------------------------------------------------------------------- daily


@router.get("/{plant}/daily", summary="Daily compliance records of one plant")
async def daily(
    *,
    plant: PlantId,
    ctx: ContextDep,
    stack: StackFilter = None,
    pollutant: PollutantFilter = None,
    start: Annotated[
        LocalDate | None, Query(description="First day; default 30 days before `end`.")
    ] = None,
    end: Annotated[
        LocalDate | None, Query(description="Last day (included); default today.")
    ] = None,
) -> DailyComplianceOut:
    """The stored daily records (``compliance_daily``) from ``start`` to ``end``, both
    included (at most 366 days), per stack and limited pollutant: validated and measured
    means, valid hours, STA counts, the invalid-day flag and availability, judged against the
    daily limit once the day is over. Days without a stored record are not listed."""
    info = _plant(ctx.config, plant)
    found = targets(info, plant, stack, pollutant)
    now = ctx.now_ns()
    tz = info.timezone
    zone = ZoneInfo(tz)
    last = end if end is not None else _local_date(now, zone)
    first = (
        start if start is not None else max(last - timedelta(DEFAULT_DAYS - 1), date(1970, 1, 1))
    )
    if first > last:
        raise _unprocessable("start must not be after end")
    if (last - first).days + 1 > MAX_DAYS:
        raise _unprocessable(f"at most {MAX_DAYS} days; shorten the range")
    start_ns, end_ns = local_day_bounds_ns(first, tz)[0], local_day_bounds_ns(last, tz)[1]
    stored = await asyncio.gather(
        *(
            numeric_fields(
                ctx.store, DAILY, DAY_FIELDS, where=t.where(plant), span=(start_ns, end_ns)
            )
            for t in found
        )
    )
    series = []
    for t, rows in zip(found, stored, strict=True):
        limit = _value(daily_limit(t.stack, t.limit))
        days = []
        for ts, fields in rows.items():
            day = _local_date(ts, zone)
            over = local_day_bounds_ns(day, tz)[1] <= now
            days.append(DayOut.of(day, fields, stack=t.stack, limit=limit, over=over))
        series.append(
            PollutantDaysOut(
                stack=t.stack_id,
                pollutant=t.pollutant,
                limits=LimitsOut.of(t.stack, t.limit),
                days=days,
                invalid_days=sum(d.invalid_day for d in days),
                availability=availability(
                    sum(d.valid_sta for d in days), sum(d.invalid_sta for d in days)
                ),
            )
        )
    return DailyComplianceOut(
        plant=plant,
        timezone=tz,
        start=first,
        end=last,
        time=datetime_from_ns(now),
        series=series,
    )


# ------------------------------------------------------------------------------ month, year

Kind = Literal["month", "year"]


def period_of(day: date, kind: Kind) -> tuple[date, date]:
    """The calendar month or year ``[start, end)`` containing ``day``.

    >>> period_of(date(2026, 12, 17), "month")
    (datetime.date(2026, 12, 1), datetime.date(2027, 1, 1))
    >>> period_of(date(2026, 2, 10), "year")
    (datetime.date(2026, 1, 1), datetime.date(2027, 1, 1))
    """
    if kind == "year":
        return date(day.year, 1, 1), date(day.year + 1, 1, 1)
    first = day.replace(day=1)
    return first, date(first.year + first.month // 12, first.month % 12 + 1, 1)


def _periods(
    kind: Kind,
    t: _Target,
    averages: Mapping[int, Mapping[str, FieldValue]],
    days: Mapping[int, Mapping[str, FieldValue]],
    *,
    tz: str,
    now_ns: int,
) -> list[PeriodOut]:
    zone = ZoneInfo(tz)
    by_start = {period_of(_local_date(ts, zone), kind)[0]: f for ts, f in averages.items()}
    counts: dict[date, list[int]] = {}  # days, invalid days, valid STA, invalid STA
    for ts, f in days.items():
        c = counts.setdefault(period_of(_local_date(ts, zone), kind)[0], [0, 0, 0, 0])
        c[0] += 1
        for i, name in enumerate(DAY_COUNT_FIELDS, start=1):
            value = f.get(name)
            c[i] += int(value) if isinstance(value, float | int) else 0
    elv = t.limit.monthly if kind == "month" else t.limit.yearly
    min_coverage = t.stack.compliance.lta_min_coverage
    out = []
    for first in sorted(by_start.keys() | counts.keys()):
        avg = by_start.get(first, {})
        n_days, invalid_days, valid_sta, invalid_sta = counts.get(first, [0, 0, 0, 0])
        coverage = avg.get("coverage")
        valid = None if not isinstance(coverage, float | int) else coverage >= min_coverage
        mean = avg.get("validated_mean")
        mean = float(mean) if isinstance(mean, float | int) else None
        measured = avg.get("measured_mean")
        n_sta = avg.get("n_sta")
        end = period_of(first, kind)[1]
        out.append(
            PeriodOut(
                start=first,
                end=end,
                complete=local_day_bounds_ns(end, tz)[0] <= now_ns,
                validated_mean=mean,
                measured_mean=float(measured) if isinstance(measured, float | int) else None,
                coverage=float(coverage) if isinstance(coverage, float | int) else None,
                n_sta=int(n_sta) if isinstance(n_sta, float | int) else None,
                valid=valid,
                above_limit=(None if not valid or mean is None or elv is None else mean > elv),
                days=n_days,
                invalid_days=invalid_days,
                valid_sta=valid_sta,
                invalid_sta=invalid_sta,
                availability=availability(valid_sta, invalid_sta),
            )
        )
    return out


async def _period_answer(
    ctx: AppContext,
    plant: str,
    *,
    kind: Kind,
    first: date,
    end: date,
    stack: str | None,
    pollutant: str | None,
) -> PeriodComplianceOut:
    info = _plant(ctx.config, plant)
    found = targets(info, plant, stack, pollutant)
    now = ctx.now_ns()
    tz = info.timezone
    span = local_day_bounds_ns(first, tz)[0], local_day_bounds_ns(end, tz)[0]
    store = ctx.store

    async def one(t: _Target) -> list[PeriodOut]:
        where = t.where(plant)
        averages, days = await asyncio.gather(
            numeric_fields(store, PERIOD, PERIOD_FIELDS, where=where | {"period": kind}, span=span),
            numeric_fields(store, DAILY, DAY_COUNT_FIELDS, where=where, span=span),
        )
        return _periods(kind, t, averages, days, tz=tz, now_ns=now)

    results = await asyncio.gather(*(one(t) for t in found))
    return PeriodComplianceOut(
        plant=plant,
        timezone=tz,
        period=kind,
        start=first,
        end=end,
        time=datetime_from_ns(now),
        series=[
            PollutantPeriodsOut(
                stack=t.stack_id,
                pollutant=t.pollutant,
                limits=LimitsOut.of(t.stack, t.limit),
                periods=periods,
            )
            for t, periods in zip(found, results, strict=True)
        ],
    )


def _year(description: str) -> Any:
    return Query(ge=MIN_YEAR, le=MAX_YEAR, description=description)


def _this_year(ctx: AppContext, plant: str) -> int:
    info = _plant(ctx.config, plant)
    return _local_date(ctx.now_ns(), ZoneInfo(info.timezone)).year


@router.get("/{plant}/monthly", summary="Monthly compliance of one plant over one year")
async def monthly(
    *,
    plant: PlantId,
    ctx: ContextDep,
    year: Annotated[int | None, _year("Plant-local calendar year; default this one.")] = None,
    stack: StackFilter = None,
    pollutant: PollutantFilter = None,
) -> PeriodComplianceOut:
    """Per month of the year with stored data, per stack and limited pollutant: the stored
    monthly validated average so far (``compliance_period``, updated at the end of each day)
    judged against the monthly ELV, and from the stored days the invalid-day count and the
    availability."""
    y = year if year is not None else _this_year(ctx, plant)
    return await _period_answer(
        ctx,
        plant,
        kind="month",
        first=date(y, 1, 1),
        end=date(y + 1, 1, 1),
        stack=stack,
        pollutant=pollutant,
    )


@router.get("/{plant}/yearly", summary="Yearly compliance of one plant")
async def yearly(
    *,
    plant: PlantId,
    ctx: ContextDep,
    start_year: Annotated[int | None, _year("First year; default `end_year`.")] = None,
    end_year: Annotated[int | None, _year("Last year (included); default this one.")] = None,
    stack: StackFilter = None,
    pollutant: PollutantFilter = None,
) -> PeriodComplianceOut:
    """Per year from ``start_year`` to ``end_year`` (at most 10) with stored data, per stack
    and limited pollutant: the stored yearly validated average so far judged against the
    yearly ELV, the invalid days of the year (the counter of IED Annex V Part 3 pt 10, against
    ``max_invalid_days_per_year``) and the availability."""
    last = end_year if end_year is not None else _this_year(ctx, plant)
    first = start_year if start_year is not None else last
    if first > last:
        raise _unprocessable("start_year must not be after end_year")
    if last - first + 1 > MAX_YEARS:
        raise _unprocessable(f"at most {MAX_YEARS} years; shorten the range")
    return await _period_answer(
        ctx,
        plant,
        kind="year",
        first=date(first, 1, 1),
        end=date(last + 1, 1, 1),
        stack=stack,
        pollutant=pollutant,
    )
