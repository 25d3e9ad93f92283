"""Long-term averages (day, month, year) from validated STA, and the invalid-day rules.

EN 17255-1 (rules A1 "LTA validity"): long-term averages are computed from the *validated*
short-term averages; a daily average is reported only with ≥ 6 h of valid STA, any other
long-term average needs valid STA covering ≥ 10 % of the period (e.g. 72 h of a 30-day month).
IED (rules A2 "Invalid days"): a day with more than 3 hourly STA invalid through AMS
malfunction or maintenance is invalidated (Annex V Part 3 pt 10, LCP); WI allows at most 5
discarded half-hours a day (Annex VI Part 8); DE variants (> 6 half-hours) are the same rule with
another threshold. More than 10 invalid days in a calendar year require the operator to improve
the reliability of the AMS. Checks C3 and C4.

Calendar days, months and years are those of the plant's IANA time zone: a local day is 23 h or
25 h long on DST change days. An STA belongs to the local day (month, year) in which it starts.

Which STA count: an STA is *usable* when its state is VALID and its measured and validated
values are finite. A VALID STA whose normalised value could not be computed (e.g. the O2
analyser failed, so no O2 correction) counts as *invalid*, like any STA without a usable value
while the plant operated.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import pairwise
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from stream.compliance.averaging import Float64Array, Int64Array, StaBatch, exact_fraction
from stream.model import NS_PER_S, datetime_from_ns, ns_from_datetime

_Calendar = Literal["day", "month", "year"]


@dataclass(frozen=True)
class DailyRecord:
    """One plant-local calendar day of STA (EN 17255-1 daily LTA; IED invalid-day rules).

    ``valid`` says whether the daily average counts (is reportable and enters compliance);
    ``measured_mean``/``validated_mean`` are given whenever the day has usable STA, so an
    operator sees them even on a day that does not count.
    """

    date: date
    valid: bool
    valid_hours: float
    measured_mean: float | None
    validated_mean: float | None
    n_valid_sta: int
    n_invalid_sta: int
    n_excluded_sta: int
    invalid_day: bool


@dataclass(frozen=True)
class PeriodAverage:
    """A validated long-term average over a local calendar month or year (EN 17255-1).

    ``end`` is exclusive. ``coverage`` is the share of the period covered by the STA that
    entered (``n_sta × period_s / period length``); ``valid`` when it reaches the minimum.
    """

    start: date
    end: date
    validated_mean: float | None
    measured_mean: float | None
    n_sta: int
    coverage: float
    valid: bool


@dataclass(frozen=True)
class InvalidDayEvent:
    """The yearly invalid-day counter went past its limit (IED Annex V Part 3 pt 10; C4)."""

    date: date
    year: int
    count: int
    message: str


def local_day_bounds_ns(day: date, tz: str) -> tuple[int, int]:
    """Epoch-ns bounds ``[start, end)`` of a local calendar day (23/24/25 h with DST).

    >>> s, e = local_day_bounds_ns(date(2026, 3, 29), "Europe/Vienna")
    >>> (e - s) // (3600 * NS_PER_S)
    23
    """
    zone = ZoneInfo(tz)
    return _local_midnight_ns(day, zone), _local_midnight_ns(day + timedelta(days=1), zone)


def daily_records(
    sta: StaBatch,
    measured: npt.ArrayLike,
    validated: npt.ArrayLike,
    *,
    tz: str,
    max_invalid_sta_per_day: int,
    min_valid_hours: float = 6.0,
) -> list[DailyRecord]:
    """One :class:`DailyRecord` per local day that has any STA, in date order (C3, C4).

    Parameters
    ----------
    sta
        The short-term averages (starts must be unique).
    measured, validated
        Normalised STA values and validated ones (measured − CI), aligned with ``sta``; NaN
        where not available.
    max_invalid_sta_per_day
        A day is an *invalid day* when more STA than this are invalid: 3 hours for LCP
        (IED Annex V Part 3 pt 10), 5 half-hours for WI (Annex VI Part 8), 6 half-hours in
        the DE 13./44. BImSchV variants.
    min_valid_hours
        Valid STA hours a daily average needs to be reported (EN 17255-1: 6 h).

    ``valid`` = not an invalid day and ``valid_hours ≥ min_valid_hours``. Means are over the
    usable STA of the day (see the module docstring); excluded STA (plant not in normal
    operation) and invalid STA never enter them.

    Examples
    --------
    C3: 24 hours, 3 in maintenance, 20 at 280 and 1 at 330 mg/Nm³, CI 50.

    >>> from stream.compliance.averaging import validated as subtract_ci
    >>> start = local_day_bounds_ns(date(2026, 6, 1), "Europe/Vienna")[0]
    >>> values = np.array([np.nan] * 3 + [280.0] * 20 + [330.0])
    >>> sta = StaBatch.from_counts(
    ...     start_ns=start + np.arange(24) * 3600 * NS_PER_S, mean=values,
    ...     state=[1] * 3 + [0] * 21, period_s=3600)
    >>> [r] = daily_records(sta, values, subtract_ci(values, 50.0), tz="Europe/Vienna",
    ...                     max_invalid_sta_per_day=3)
    >>> r.valid, round(r.measured_mean, 2), round(r.validated_mean, 2), r.n_invalid_sta
    (True, 282.38, 232.38, 3)
    """
    if max_invalid_sta_per_day < 0:
        raise ValueError("max_invalid_sta_per_day must be >= 0")
    meas, vald = _aligned_values(sta, measured, validated)
    if len(sta) == 0:
        return []
    zone = ZoneInfo(tz)
    usable = sta.valid_mask & np.isfinite(meas) & np.isfinite(vald)
    invalid = sta.invalid_mask | (sta.valid_mask & ~usable)
    days, idx = _calendar_index(sta.start_ns, zone, "day")
    n_days = len(days)

    def count(mask: npt.NDArray[np.bool_]) -> Int64Array:
        return np.bincount(idx[mask], minlength=n_days).astype(np.int64)

    present = np.bincount(idx, minlength=n_days) > 0
    n_valid, n_invalid, n_excluded = count(usable), count(invalid), count(sta.excluded_mask)
    sum_meas = np.bincount(idx[usable], weights=meas[usable], minlength=n_days)
    sum_vald = np.bincount(idx[usable], weights=vald[usable], minlength=n_days)

    records = []
    for d in np.flatnonzero(present).tolist():
        nv = int(n_valid[d])
        valid_hours = nv * sta.period_s / 3600
        invalid_day = int(n_invalid[d]) > max_invalid_sta_per_day
        records.append(
            DailyRecord(
                date=days[d],
                valid=not invalid_day and valid_hours >= min_valid_hours,
                valid_hours=valid_hours,
                measured_mean=float(sum_meas[d] / nv) if nv else None,
                validated_mean=float(sum_vald[d] / nv) if nv else None,
                n_valid_sta=nv,
                n_invalid_sta=int(n_invalid[d]),
                n_excluded_sta=int(n_excluded[d]),
                invalid_day=invalid_day,
            )
        )
    return records


def monthly_averages(
    sta: StaBatch,
    measured: npt.ArrayLike,
    validated: npt.ArrayLike,
    records: Sequence[DailyRecord],
    *,
    tz: str,
    min_coverage: float = 0.10,
    require_reportable_day: bool = False,
) -> list[PeriodAverage]:
    """Validated averages per local calendar month (EN 17255-1 LTA; IED Annex V Part 4 (a); C4).

    The mean is over the usable STA of the month (not a mean of daily means). STA of an
    *invalid day* never enter (C4). By default the STA of a day that is not reportable only
    because it has < 6 valid hours (e.g. a peak-load plant running 4 h) do enter: the 6 h rule
    governs reporting the daily average, and dropping those hours would leave such a plant
    without monthly averages. ``require_reportable_day=True`` admits only days with
    ``valid=True``. ``valid`` when ``n_sta × period_s ≥ min_coverage × month length``
    (EN 17255-1: 10 %, e.g. 72 h of a 30-day month, 74.3 h of a 743-h DST March).

    ``records`` are those of :func:`daily_records` for the same STA (a day with STA but no
    record is a ``ValueError``). One result per month that has any STA, in order.
    """
    return _period_averages(
        "month",
        sta=sta,
        measured=measured,
        validated=validated,
        records=records,
        tz=tz,
        min_coverage=min_coverage,
        require_reportable_day=require_reportable_day,
    )


def yearly_averages(
    sta: StaBatch,
    measured: npt.ArrayLike,
    validated: npt.ArrayLike,
    records: Sequence[DailyRecord],
    *,
    tz: str,
    min_coverage: float = 0.10,
    require_reportable_day: bool = False,
) -> list[PeriodAverage]:
    """Validated averages per local calendar year; same rules as :func:`monthly_averages`."""
    return _period_averages(
        "year",
        sta=sta,
        measured=measured,
        validated=validated,
        records=records,
        tz=tz,
        min_coverage=min_coverage,
        require_reportable_day=require_reportable_day,
    )


def invalid_day_events(
    records: Sequence[DailyRecord], *, max_per_year: int = 10, repeat: bool = True
) -> list[InvalidDayEvent]:
    """Yearly invalid-day counter (IED Annex V Part 3 pt 10, Annex VI Part 8; C4).

    An event when the count of invalid days in a calendar year first exceeds ``max_per_year``
    (the 11th: "reliability improvement required") and, with ``repeat``, one for every further
    invalid day of that year. The counter restarts on 1 January.

    >>> days = [DailyRecord(date(2026, 1, d), False, 0.0, None, None, 0, 24, 0, True)
    ...         for d in range(1, 13)]
    >>> [(e.date.day, e.count) for e in invalid_day_events(days)]
    [(11, 11), (12, 12)]
    """
    if max_per_year < 0:
        raise ValueError("max_per_year must be >= 0")
    ordered = sorted(records, key=lambda r: r.date)
    if any(a.date == b.date for a, b in pairwise(ordered)):
        raise ValueError("records contain the same date twice")
    counts: dict[int, int] = defaultdict(int)
    events = []
    for rec in ordered:
        if not rec.invalid_day:
            continue
        year = rec.date.year
        counts[year] += 1
        n = counts[year]
        if n == max_per_year + 1:
            message = (
                f"reliability improvement required: {n} invalid days in {year}, more than "
                f"the {max_per_year} allowed (IED 2010/75/EU Annex V Part 3 pt 10, Annex VI Part 8)"
            )
        elif n > max_per_year + 1 and repeat:
            message = f"invalid day {n} of {year} (limit of {max_per_year} already exceeded)"
        else:
            continue
        events.append(InvalidDayEvent(date=rec.date, year=year, count=n, message=message))
    return events


def _period_averages(
    kind: _Calendar,
    *,
    sta: StaBatch,
    measured: npt.ArrayLike,
    validated: npt.ArrayLike,
    records: Sequence[DailyRecord],
    tz: str,
    min_coverage: float,
    require_reportable_day: bool,
) -> list[PeriodAverage]:
    if not 0 <= min_coverage <= 1:
        raise ValueError(f"min_coverage must be in [0, 1], got {min_coverage}")
    meas, vald = _aligned_values(sta, measured, validated)
    if len(sta) == 0:
        return []
    zone = ZoneInfo(tz)
    by_date = {r.date: r for r in records}
    days, day_idx = _calendar_index(sta.start_ns, zone, "day")
    day_ok = np.zeros(len(days), dtype=np.bool_)
    for d in np.unique(day_idx).tolist():
        rec = by_date.get(days[d])
        if rec is None:
            raise ValueError(f"no DailyRecord for {days[d]}, which has STA")
        day_ok[d] = rec.valid if require_reportable_day else not rec.invalid_day

    usable = sta.valid_mask & np.isfinite(meas) & np.isfinite(vald) & day_ok[day_idx]
    periods, idx = _calendar_index(sta.start_ns, zone, kind)
    n_periods = len(periods)
    present = np.bincount(idx, minlength=n_periods) > 0
    n_sta = np.bincount(idx[usable], minlength=n_periods)
    sum_meas = np.bincount(idx[usable], weights=meas[usable], minlength=n_periods)
    sum_vald = np.bincount(idx[usable], weights=vald[usable], minlength=n_periods)
    need = exact_fraction(min_coverage)

    results = []
    for p in np.flatnonzero(present).tolist():
        start, end = periods[p], _next_boundary(periods[p], kind)
        length_s = (_local_midnight_ns(end, zone) - _local_midnight_ns(start, zone)) // NS_PER_S
        n = int(n_sta[p])
        covered_s = n * sta.period_s
        results.append(
            PeriodAverage(
                start=start,
                end=end,
                validated_mean=float(sum_vald[p] / n) if n else None,
                measured_mean=float(sum_meas[p] / n) if n else None,
                n_sta=n,
                coverage=covered_s / length_s,
                valid=n > 0 and covered_s >= need * length_s,
            )
        )
    return results


def _aligned_values(
    sta: StaBatch, measured: npt.ArrayLike, validated: npt.ArrayLike
) -> tuple[Float64Array, Float64Array]:
    meas = np.asarray(measured, dtype=np.float64)
    vald = np.asarray(validated, dtype=np.float64)
    if meas.shape != (len(sta),) or vald.shape != (len(sta),):
        raise ValueError("measured and validated must be aligned with the STA batch")
    if np.unique(sta.start_ns).size != len(sta):
        raise ValueError("the STA batch has duplicate period starts")
    return meas, vald


def _local_midnight_ns(day: date, zone: ZoneInfo) -> int:
    # fold=0: a midnight skipped by DST maps to the transition instant, a repeated one to its
    # first occurrence, so consecutive days tile the time line without gaps or overlaps.
    return ns_from_datetime(datetime.combine(day, time(0), tzinfo=zone))


def _next_boundary(d: date, kind: _Calendar) -> date:
    if kind == "day":
        return d + timedelta(days=1)
    if kind == "month":
        return date(d.year + d.month // 12, d.month % 12 + 1, 1)
    return date(d.year + 1, 1, 1)


def _calendar_index(
    start_ns: Int64Array, zone: ZoneInfo, kind: _Calendar
) -> tuple[list[date], npt.NDArray[np.intp]]:
    """Local calendar periods spanning ``start_ns`` and the period index of each instant."""
    first = datetime_from_ns(int(start_ns.min())).astimezone(zone).date()
    last = datetime_from_ns(int(start_ns.max())).astimezone(zone).date()
    if kind == "month":
        first = first.replace(day=1)
    elif kind == "year":
        first = first.replace(month=1, day=1)
    periods = [first]
    while (nxt := _next_boundary(periods[-1], kind)) <= last:
        periods.append(nxt)
    bounds = np.array([_local_midnight_ns(p, zone) for p in periods], dtype=np.int64)
    return periods, np.searchsorted(bounds, start_ns, side="right") - 1
