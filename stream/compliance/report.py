"""Compliance reports as JSON-ready dicts and as a plain-text table."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt

from stream.compliance.calrange import WeekResult
from stream.compliance.forecast import Forecast
from stream.compliance.longterm import DailyRecord, InvalidDayEvent, PeriodAverage
from stream.compliance.qal3 import Qal3Event
from stream.compliance.regimes import CriterionResult
from stream.model import datetime_from_ns
from stream.plant import EmissionLimit


@dataclass(frozen=True)
class StaSeries:
    """Per-period values of one pollutant: start (epoch ns), normalised and validated
    concentration (NaN where not valid) and state code (0 valid, 1 invalid, 2 excluded)."""

    start_ns: npt.NDArray[np.int64]
    normalised: npt.NDArray[np.float64]
    validated: npt.NDArray[np.float64]
    state: npt.NDArray[np.int8]
    n_valid: npt.NDArray[np.int64]
    mass_kg: npt.NDArray[np.float64] | None = None  # emitted in the period (with a flow sensor)


@dataclass(frozen=True)
class PollutantReport:
    """Everything the engine found for one pollutant of one stack."""

    plant: str
    stack: str
    pollutant: str
    regime: str
    reference_o2: float | None
    limits: EmissionLimit
    confidence_interval: float | None
    sta_period_s: int
    daily_limit_factor: float
    sta_valid: int
    sta_invalid: int
    sta_excluded: int
    daily: Sequence[DailyRecord]
    monthly: Sequence[PeriodAverage]
    yearly: Sequence[PeriodAverage]
    invalid_days: int
    events: Sequence[InvalidDayEvent]
    criteria: Sequence[CriterionResult]
    mass_kg_per_day: dict[date, float] | None
    mass_kg_per_year: dict[int, float] | None
    calibration_weeks: Sequence[WeekResult]
    forecast: Forecast | None
    qal3_events: Sequence[Qal3Event] = ()
    #: The short-term averages behind the report (for storage and charts; not in the JSON).
    sta: StaSeries | None = field(default=None, compare=False, repr=False)

    @property
    def compliant(self) -> bool:
        """All criteria pass (a report with no evaluable criterion is not a pass)."""
        return bool(self.criteria) and all(c.passed for c in self.criteria)


def _num(x: float | None, digits: int = 3) -> float | None:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return None
    return round(float(x), digits)


def to_json(report: PollutantReport) -> dict[str, Any]:
    """The report as documented in the README (section "Compliance report")."""
    limits = report.limits.model_dump(exclude_none=True)
    return {
        "plant": report.plant,
        "stack": report.stack,
        "pollutant": report.pollutant,
        "unit": "mg/Nm3",
        "regime": report.regime,
        "reference_o2": report.reference_o2,
        "limits": limits,
        "confidence_interval": _num(report.confidence_interval),
        "short_term_period_s": report.sta_period_s,
        "short_term_averages": {
            "valid": report.sta_valid,
            "invalid": report.sta_invalid,
            "excluded": report.sta_excluded,
        },
        "daily": [
            {
                "date": d.date.isoformat(),
                "valid": d.valid,
                "invalid_day": d.invalid_day,
                "valid_hours": _num(d.valid_hours, 2),
                "measured_mean": _num(d.measured_mean),
                "validated_mean": _num(d.validated_mean),
                "valid_sta": d.n_valid_sta,
                "invalid_sta": d.n_invalid_sta,
                "excluded_sta": d.n_excluded_sta,
            }
            for d in report.daily
        ],
        "monthly": [_period(p) for p in report.monthly],
        "yearly": [_period(p) for p in report.yearly],
        "invalid_days": report.invalid_days,
        "events": [{"date": e.date.isoformat(), "message": e.message} for e in report.events],
        "criteria": [
            {
                "name": c.name,
                "description": c.description,
                "passed": c.passed,
                "n": c.n,
                "count": c.count,
                "allowed": _num(c.allowed, 2),
                "limit": _num(c.limit),
                "worst": _num(c.worst),
            }
            for c in report.criteria
        ],
        "compliant": report.compliant,
        "mass_kg_per_day": None
        if report.mass_kg_per_day is None
        else {d.isoformat(): _num(kg, 3) for d, kg in sorted(report.mass_kg_per_day.items())},
        "mass_kg_per_year": None
        if report.mass_kg_per_year is None
        else {str(y): _num(kg, 3) for y, kg in sorted(report.mass_kg_per_year.items())},
        "calibration_range_weeks": [
            {
                "week_start_ns": w.week_start_ns,
                "valid": w.n_valid,
                "outside": w.n_outside,
                "fraction_outside": _num(w.fraction_outside, 4),
                "increment": w.increment,
            }
            for w in report.calibration_weeks
        ],
        "qal3_events": [
            {
                "time": datetime_from_ns(e.ts_ns).isoformat(),
                "point": e.point,
                "kind": e.kind,
                "statistic": _num(e.statistic, 4),
                "limit": _num(e.limit, 4),
                "message": e.message,
            }
            for e in report.qal3_events
        ],
        "forecast": None
        if report.forecast is None
        else {
            "validated_mean_so_far": _num(report.forecast.validated_mean_so_far),
            "remaining_allowance": _num(report.forecast.remaining_allowance),
            "projected_mean": _num(report.forecast.projected_mean),
            "prealarm": report.forecast.prealarm,
            "reason": report.forecast.reason,
        },
    }


def _period(p: PeriodAverage) -> dict[str, Any]:
    return {
        "start": p.start.isoformat(),
        "end": p.end.isoformat(),
        "valid": p.valid,
        "coverage": _num(p.coverage, 4),
        "measured_mean": _num(p.measured_mean),
        "validated_mean": _num(p.validated_mean),
    }


def _fmt(x: float | None) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:.1f}"


def to_table(reports: Sequence[PollutantReport]) -> str:
    """A plain-text report an officer can read in a terminal."""
    out: list[str] = []
    for r in reports:
        verdict = "COMPLIANT" if r.compliant else "NOT COMPLIANT"
        out.append(
            f"{r.plant}/{r.stack} {r.pollutant.upper()} ({r.regime.upper()}, mg/Nm3 at "
            f"{r.reference_o2 if r.reference_o2 is not None else 'measured'} % O2): {verdict}"
        )
        out.append(
            f"  short-term averages: {r.sta_valid} valid, {r.sta_invalid} invalid, "
            f"{r.sta_excluded} excluded; invalid days: {r.invalid_days}"
        )
        out.append("  date        valid  hours  measured  validated")
        for d in r.daily:
            flag = "yes" if d.valid else ("INVALID" if d.invalid_day else "no")
            out.append(
                f"  {d.date.isoformat()}  {flag:<6} {d.valid_hours:5.1f}  "
                f"{_fmt(d.measured_mean):>8}  {_fmt(d.validated_mean):>9}"
            )
        for c in r.criteria:
            mark = "PASS" if c.passed else "FAIL"
            out.append(
                f"  [{mark}] {c.description} ({c.count} of {c.n} over, allowed {c.allowed:g})"
            )
        for e in r.events:
            out.append(f"  event {e.date.isoformat()}: {e.message}")
        for q in r.qal3_events:
            out.append(f"  QAL3 {datetime_from_ns(q.ts_ns).isoformat()}: {q.message}")
        out.append("")
    return "\n".join(out)
