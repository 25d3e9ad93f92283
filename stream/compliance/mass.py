"""Mass emissions (loads): how many kilograms left the stack per hour, day and year.

EN 17255-1 (rules A1 row "Mass emissions" [V]; feature (b) #17; MCERTS C1): the mass flow is
``concentration × volume flow`` with **both at the same reference conditions**, using the
**unvalidated** concentration (the confidence interval is a compliance allowance, not a
correction of the emitted mass), and it is **set to 0 when the concentration or flow STA is
negative** (zero drift below zero does not make a stack absorb pollutant).

"Same reference conditions" matters for O2: a flow stated dry at 273.15 K / 101.3 kPa must be
multiplied by a concentration that is dry and at standard T/p but **not** normalised to the
reference O2 (normalisation changes the concentration but not the mass that left the stack).

>>> round(mass_flow_kg_h(200.0, 150_000.0), 3)  # 200 mg/Nm³ × 150 000 Nm³/h
30.0
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import overload

import numpy as np

from stream.compliance.calrange import (
    EPOCH_DATE,
    NS_PER_DAY,
    NS_PER_HOUR,
    IntArray,
    utc_offsets_ns,
)
from stream.compliance.conversions import ArrayLike, FloatArray

MG_PER_KG = 1e6
S_PER_HOUR = 3_600


@overload
def mass_flow_kg_h(conc_mg_nm3: float, flow_nm3_h: float) -> float: ...
@overload
def mass_flow_kg_h(conc_mg_nm3: FloatArray, flow_nm3_h: ArrayLike) -> FloatArray: ...
@overload
def mass_flow_kg_h(conc_mg_nm3: ArrayLike, flow_nm3_h: FloatArray) -> FloatArray: ...
def mass_flow_kg_h(conc_mg_nm3: ArrayLike, flow_nm3_h: ArrayLike) -> ArrayLike:
    """Mass flow in kg/h: ``conc [mg/Nm³] × flow [Nm³/h] / 1e6`` (EN 17255-1; rules A1).

    Pass the **unvalidated** concentration (no confidence interval subtracted) at the same
    reference conditions as the flow. Negative concentration or flow count as 0; NaN (no
    value) stays NaN, even when the other operand is negative, so missing data is never
    silently turned into a zero load.

    >>> mass_flow_kg_h(-3.0, 150_000.0)
    0.0
    >>> mass_flow_kg_h(np.array([100.0, np.nan]), np.array([-1.0, 1e5])).tolist()
    [0.0, nan]
    """
    conc = np.maximum(np.asarray(conc_mg_nm3, dtype=np.float64), 0.0)
    flow = np.maximum(np.asarray(flow_nm3_h, dtype=np.float64), 0.0)
    out: FloatArray = conc * flow / MG_PER_KG
    return float(out) if out.ndim == 0 else out


def mass_kg(
    sta_start_ns: IntArray,
    conc_mg_nm3: FloatArray,
    flow_nm3_h: FloatArray,
    period_s: int,
) -> FloatArray:
    """Kilograms emitted in each short-term period: ``mass flow × period`` (EN 17255-1).

    ``conc_mg_nm3`` is the unvalidated concentration STA and ``flow_nm3_h`` the flow STA of
    the same period, at the same reference conditions; ``period_s`` is the STA length
    (1800 for half-hours). NaN in either input gives NaN for that period.

    >>> ts = np.array([0, 1_800_000_000_000], dtype=np.int64)
    >>> mass_kg(ts, np.array([200.0, -5.0]), np.array([150_000.0, 150_000.0]), 1_800).tolist()
    [15.0, 0.0]
    """
    ts = np.asarray(sta_start_ns, dtype=np.int64)
    conc = np.asarray(conc_mg_nm3, dtype=np.float64)
    flow = np.asarray(flow_nm3_h, dtype=np.float64)
    if not ts.ndim == conc.ndim == flow.ndim == 1 or not ts.size == conc.size == flow.size:
        raise ValueError("sta_start_ns, conc_mg_nm3 and flow_nm3_h must be equal-length 1-D arrays")
    if period_s <= 0:
        raise ValueError(f"period_s must be positive, got {period_s}")
    return mass_flow_kg_h(conc, flow) * (period_s / S_PER_HOUR)


@dataclass(frozen=True, slots=True)
class MassTotals:
    """Emitted mass summed per local clock hour, local date and local calendar year.

    Attributes
    ----------
    hourly_kg
        Key: epoch ns of the start of the local clock hour the STA starts in (for whole-hour
        UTC offsets that is the UTC hour start; the repeated hour of a DST change gets its
        own key).
    daily_kg
        Key: local calendar date (a DST day is 23 or 25 h long).
    yearly_kg
        Key: local calendar year.
    total_kg
        Sum over all periods with a value.
    n_periods, n_missing
        Periods given, and periods skipped because their mass was NaN.
    missing_daily
        Skipped periods per local date (only dates that have some).

    A key appears only if at least one period in it has a value.
    """

    hourly_kg: dict[int, float] = field(default_factory=dict)
    daily_kg: dict[date, float] = field(default_factory=dict)
    yearly_kg: dict[int, float] = field(default_factory=dict)
    total_kg: float = 0.0
    n_periods: int = 0
    n_missing: int = 0
    missing_daily: dict[date, int] = field(default_factory=dict)


def _group_sum(keys: IntArray, weights: FloatArray) -> tuple[list[int], list[float]]:
    unique, inverse = np.unique(keys, return_inverse=True)
    sums = np.bincount(inverse, weights=weights, minlength=unique.size)
    return [int(k) for k in unique.tolist()], [float(s) for s in sums.tolist()]


def mass_totals(sta_start_ns: IntArray, kg: FloatArray, tz: str) -> MassTotals:
    """Hourly, daily and yearly loads from per-STA masses (EN 17255-1 mass emissions).

    Each period is attributed to the local hour, date and year its start instant falls in,
    in the IANA zone ``tz`` (DST-aware). NaN periods are skipped and counted.

    >>> hour = 3_600 * 10**9
    >>> ts = np.array([0, hour // 2, hour, 30 * hour], dtype=np.int64)
    >>> totals = mass_totals(ts, np.array([1.0, 2.0, np.nan, 4.0]), "UTC")
    >>> totals.hourly_kg == {0: 3.0, 30 * hour: 4.0}
    True
    >>> totals.daily_kg
    {datetime.date(1970, 1, 1): 3.0, datetime.date(1970, 1, 2): 4.0}
    >>> totals.yearly_kg, totals.total_kg, totals.n_missing
    ({1970: 7.0}, 7.0, 1)
    """
    ts = np.asarray(sta_start_ns, dtype=np.int64)
    mass = np.asarray(kg, dtype=np.float64)
    if not ts.ndim == mass.ndim == 1 or ts.size != mass.size:
        raise ValueError("sta_start_ns and kg must be equal-length 1-D arrays")
    if ts.size == 0:
        return MassTotals()
    wall = ts + utc_offsets_ns(ts, tz)
    day_index = wall // NS_PER_DAY
    has_value = ~np.isnan(mass)

    def as_date(day: int) -> date:
        return EPOCH_DATE + timedelta(days=day)

    hour_start = ts - np.mod(wall, NS_PER_HOUR)
    hours, hour_sums = _group_sum(hour_start[has_value], mass[has_value])
    days, day_sums = _group_sum(day_index[has_value], mass[has_value])
    dates = [as_date(d) for d in days]
    years, year_sums = _group_sum(
        np.array([d.year for d in dates], dtype=np.int64), np.array(day_sums)
    )
    missing_days, missing_counts = np.unique(day_index[~has_value], return_counts=True)
    return MassTotals(
        hourly_kg=dict(zip(hours, hour_sums, strict=True)),
        daily_kg=dict(zip(dates, day_sums, strict=True)),
        yearly_kg=dict(zip(years, year_sums, strict=True)),
        total_kg=float(mass[has_value].sum()),
        n_periods=int(ts.size),
        n_missing=int((~has_value).sum()),
        missing_daily={
            as_date(int(d)): int(n)
            for d, n in zip(missing_days.tolist(), missing_counts.tolist(), strict=True)
        },
    )
