"""How compliance results are stored (measurements ``compliance_sta`` and ``compliance_daily``).

=====================  ==========================================================================
``compliance_sta``     tags ``plant``, ``stack``, ``pollutant``; fields ``normalised``,
                       ``validated`` (mg/Nm³ at reference O2; absent when not valid), ``state``
                       (valid, invalid, excluded), ``state_code`` (0, 1, 2: the same as an
                       integer), ``n_valid`` (readings), ``mass_kg``
                       (emitted in the period, with a flow sensor); time = period start
``compliance_daily``   tags ``plant``, ``stack``, ``pollutant``; fields ``validated_mean``,
                       ``measured_mean`` (absent without valid STA), ``valid``, ``invalid_day``
                       (bool), ``valid_hours``, ``valid_sta``, ``invalid_sta``,
                       ``excluded_sta``, ``invalid_day_count`` (int, 0 or 1), ``complete``
                       (bool: the day is over); time =
                       local midnight of the plant's day
``compliance_period``   tags ``plant``, ``stack``, ``pollutant``, ``period`` (month, year); fields
                       ``validated_mean``, ``measured_mean`` (absent without valid STA),
                       ``coverage`` (float), ``n_sta`` (int), ``valid`` (bool); time = local
                       start of the month or year; the average so far, updated daily
=====================  ==========================================================================

Points are keyed by series and time, so re-evaluating a day overwrites its earlier results.
"""

from __future__ import annotations

import math

from stream.compliance.longterm import DailyRecord, PeriodAverage, local_day_bounds_ns
from stream.compliance.report import PollutantReport
from stream.storage.base import FieldValue, Point

STA = "compliance_sta"
DAILY = "compliance_daily"
PERIOD = "compliance_period"
_STATE = ("valid", "invalid", "excluded")


def _tags(report: PollutantReport) -> dict[str, str]:
    return {"plant": report.plant, "stack": report.stack, "pollutant": report.pollutant}


def sta_points(report: PollutantReport, start_ns: int, end_ns: int) -> list[Point]:
    """The report's short-term averages that start in ``[start_ns, end_ns)``."""
    if report.sta is None:
        return []
    tags = _tags(report)
    s = report.sta
    points = []
    for i in range(len(s.start_ns)):
        t = int(s.start_ns[i])
        if not start_ns <= t < end_ns:
            continue
        fields: dict[str, FieldValue] = {
            "state": _STATE[int(s.state[i])],
            "state_code": int(s.state[i]),  # numeric: series queries can select by it
            "n_valid": int(s.n_valid[i]),
        }
        if s.state[i] == 0 and math.isfinite(s.normalised[i]):
            fields["normalised"] = float(s.normalised[i])
            fields["validated"] = float(s.validated[i])
        if s.mass_kg is not None and math.isfinite(s.mass_kg[i]):
            fields["mass_kg"] = float(s.mass_kg[i])
        points.append(Point(STA, tags, fields, t))
    return points


def daily_point(report: PollutantReport, record: DailyRecord, tz: str, *, complete: bool) -> Point:
    fields: dict[str, FieldValue] = {
        "valid": record.valid,
        "invalid_day": record.invalid_day,
        "valid_hours": float(record.valid_hours),
        "valid_sta": record.n_valid_sta,
        "invalid_sta": record.n_invalid_sta,
        "excluded_sta": record.n_excluded_sta,
        "invalid_day_count": int(record.invalid_day),  # summable: invalid days of a year
        "complete": complete,
    }
    if record.validated_mean is not None:
        fields["validated_mean"] = float(record.validated_mean)
    if record.measured_mean is not None:
        fields["measured_mean"] = float(record.measured_mean)
    return Point(DAILY, _tags(report), fields, local_day_bounds_ns(record.date, tz)[0])


def period_point(report: PollutantReport, period: str, average: PeriodAverage, tz: str) -> Point:
    """A monthly or yearly validated average (``period``: ``month`` or ``year``)."""
    fields: dict[str, FieldValue] = {
        "coverage": float(average.coverage),
        "n_sta": average.n_sta,
        "valid": average.valid,
    }
    if average.validated_mean is not None:
        fields["validated_mean"] = float(average.validated_mean)
    if average.measured_mean is not None:
        fields["measured_mean"] = float(average.measured_mean)
    tags = _tags(report) | {"period": period}
    return Point(PERIOD, tags, fields, local_day_bounds_ns(average.start, tz)[0])
