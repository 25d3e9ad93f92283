"""A compliance report as CSV: stable columns, one row per day or per short-term period.

The file is UTF-8, comma-separated, ``\\n`` line ends, with ``#`` comment lines first: the
report (plant, period, generation time in UTC, software version, units) and one ``# summary``
line per stack and pollutant (``key=value`` pairs separated by ``; ``). Skip lines starting with
``#`` to read the table. Numbers are written unrounded (as stored, ``repr`` of the float) so
that the file reproduces the stored results exactly; empty means "no value". Booleans are
``true``/``false``; an empty ``exceeded``/``above_limit`` means "not judged". Columns are only
ever appended, never renamed or reordered.

Monthly report, one row per listed day (see :mod:`api.reports.data`) per stack and pollutant:

==============================  ===================================================================
``plant``, ``stack``,           ids as in the plant configuration
``pollutant``
``date``                        plant-local calendar day, ``YYYY-MM-DD``
``status``                      ``ok``, ``exceeded``, ``invalid_day``, ``not_reportable``,
                                ``incomplete``, ``no_data`` (:data:`DAY_STATUS_TEXT`)
``complete``                    the day is over
``valid``                       the daily average counts (≥ 6 valid hours, not an invalid day)
``invalid_day``                 more invalid STA than allowed (IED Annex V Part 3 pt 10 / VI Part 8)
``valid_hours``                 hours covered by valid STA
``valid_sta``, ``invalid_sta``, counts of short-term averages by state
``excluded_sta``
``measured_mean_mg_nm3``        mean of the valid normalised STA
``validated_mean_mg_nm3``       mean of the valid validated STA (measured − confidence interval)
``daily_elv_mg_nm3``            the permit's daily ELV
``daily_limit_mg_nm3``          the limit the validated mean is judged against (LCP: 110 % ELV)
``exceeded``                    validated mean above ``daily_limit_mg_nm3``
==============================  ===================================================================

Daily report, one row per stored short-term average per stack and pollutant:

==============================  ===================================================================
``plant``, ``stack``,           as above
``pollutant``
``period_start``,               local time with UTC offset, ISO 8601 (``2026-02-10T00:00:00+01:00``)
``period_end``
``state``                       ``valid``, ``invalid`` (counts for invalid days), ``excluded``
                                (plant not in normal operation)
``n_valid``                     valid readings in the period
``normalised_mg_nm3``           at reference O2, dry, standard conditions (valid STA only)
``validated_mg_nm3``            normalised − confidence interval (valid STA only)
``sta_limit_mg_nm3``            the short-term limit (LCP: 200 % of the hourly or daily ELV;
                                WI: half-hour ELV column A, else B)
``above_limit``                 validated value above ``sta_limit_mg_nm3``
``mass_kg``                     mass emitted in the period (with a flow sensor)
==============================  ===================================================================
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import date
from zoneinfo import ZoneInfo

from api.reports.data import (
    DAY_STATUS_TEXT,
    ComplianceReportData,
    DayRow,
    PollutantSection,
    StaRow,
    Threshold,
)
from stream.model import datetime_from_ns

MONTHLY_COLUMNS: tuple[str, ...] = (
    "plant",
    "stack",
    "pollutant",
    "date",
    "status",
    "complete",
    "valid",
    "invalid_day",
    "valid_hours",
    "valid_sta",
    "invalid_sta",
    "excluded_sta",
    "measured_mean_mg_nm3",
    "validated_mean_mg_nm3",
    "daily_elv_mg_nm3",
    "daily_limit_mg_nm3",
    "exceeded",
)
DAILY_COLUMNS: tuple[str, ...] = (
    "plant",
    "stack",
    "pollutant",
    "period_start",
    "period_end",
    "state",
    "n_valid",
    "normalised_mg_nm3",
    "validated_mg_nm3",
    "sta_limit_mg_nm3",
    "above_limit",
    "mass_kg",
)

Cell = str | int | float | bool | None


def cell(value: Cell) -> str:
    """One CSV cell: empty for None, ``true``/``false``, unrounded numbers.

    >>> [cell(v) for v in (None, True, 3, 0.1 + 0.2, "x")]
    ['', 'true', '3', '0.30000000000000004', 'x']
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def to_csv(data: ComplianceReportData) -> str:
    """The report as CSV text (see the module docstring for the columns)."""
    out = io.StringIO()
    for line in _header(data):
        out.write(f"# {line}\n")
    writer = csv.writer(out, lineterminator="\n")
    if data.kind == "monthly":
        writer.writerow(MONTHLY_COLUMNS)
        for section in data.sections:
            for day in section.days:
                writer.writerow([cell(v) for v in _day_cells(data.plant, section, day)])
    else:
        writer.writerow(DAILY_COLUMNS)
        for section in data.sections:
            for sta in section.sta:
                writer.writerow([cell(v) for v in _sta_cells(data, section, sta)])
    return out.getvalue()


def _limit(t: Threshold | None) -> float | None:
    return None if t is None else t.value


def _day_cells(plant: str, s: PollutantSection, d: DayRow) -> Sequence[Cell]:
    return (
        plant,
        s.stack,
        s.pollutant,
        d.date.isoformat(),
        d.status,
        d.complete,
        d.valid,
        d.invalid_day,
        d.valid_hours,
        d.valid_sta,
        d.invalid_sta,
        d.excluded_sta,
        d.measured_mean,
        d.validated_mean,
        s.limits.daily,
        _limit(s.daily_limit),
        d.exceeded,
    )


def _local(data: ComplianceReportData, ts_ns: int) -> str:
    return datetime_from_ns(ts_ns).astimezone(ZoneInfo(data.timezone)).isoformat()


def _sta_cells(data: ComplianceReportData, s: PollutantSection, r: StaRow) -> Sequence[Cell]:
    return (
        data.plant,
        s.stack,
        s.pollutant,
        _local(data, r.start_ns),
        _local(data, r.end_ns),
        r.state,
        r.n_valid,
        r.normalised,
        r.validated,
        _limit(s.sta_limit),
        r.above_limit,
        r.mass_kg,
    )


def _utc(ts_ns: int) -> str:
    return datetime_from_ns(ts_ns).isoformat().replace("+00:00", "Z")


def _pct(x: float | None) -> str:
    return "" if x is None else f"{x:.4%}"


def _header(data: ComplianceReportData) -> list[str]:
    last = data.end.toordinal() - 1
    lines = [
        f"StackWatch {data.kind} compliance report",
        f"plant: {data.plant} ({data.plant_name}); time zone {data.timezone}",
        f"period: {data.label} ({data.start.isoformat()} to {date.fromordinal(last).isoformat()}"
        f"{'' if data.complete else ', in progress'})",
        f"generated: {_utc(data.generated_ns)}",
        f"software: stackwatch {data.software_version}",
        "units: mg/Nm3 at 273.15 K, 101.3 kPa, dry gas, reference O2; "
        "validated = measured - confidence interval (IED 2010/75/EU)",
        "status: " + "; ".join(f"{k} = {v}" for k, v in DAY_STATUS_TEXT.items()),
    ]
    for s in data.sections:
        parts = {
            "stack": s.stack,
            "pollutant": s.pollutant,
            "regime": s.regime.value,
            "reference_o2": cell(s.reference_o2),
            "confidence_interval_mg_nm3": cell(s.confidence_interval),
            "daily_elv_mg_nm3": cell(s.limits.daily),
            "daily_limit_mg_nm3": cell(_limit(s.daily_limit)),
            "sta_limit_mg_nm3": cell(_limit(s.sta_limit)),
            "monthly_elv_mg_nm3": cell(s.limits.monthly),
            "days_exceeded": str(len(s.exceeded_days)),
            "sta_above_limit": str(s.sta_above_limit),
            "invalid_days": str(s.invalid_days),
            "invalid_days_year": str(s.invalid_days_year),
            "max_invalid_days_per_year": str(s.max_invalid_days_per_year),
            "valid_sta": str(s.valid_sta),
            "expected_sta": str(s.expected_sta),
            "excluded_sta": str(s.excluded_sta),
            "availability": _pct(s.availability),
        }
        if data.kind == "monthly":
            m = s.month
            parts["month_validated_mean_mg_nm3"] = cell(None if m is None else m.validated_mean)
            parts["month_valid"] = cell(None if m is None else m.valid)
            parts["month_exceeded"] = cell(None if m is None else m.exceeded)
        else:
            d = s.days[0] if s.days else None
            parts["day_status"] = "" if d is None else d.status
            parts["day_validated_mean_mg_nm3"] = cell(None if d is None else d.validated_mean)
            parts["day_exceeded"] = cell(None if d is None else d.exceeded)
        lines.append("summary: " + "; ".join(f"{k}={v}" for k, v in parts.items()))
    return lines
