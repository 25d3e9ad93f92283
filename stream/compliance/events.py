"""Compliance events for officers: what the live engine found that needs attention.

Events are derived from a day's report each time the day is evaluated and are keyed by
(plant, stack, pollutant, kind, time), so re-evaluating a day repeats the same events rather
than adding new ones. The alerts pipeline consumes them; they are also stored in the
``compliance_events`` measurement (tags ``plant``, ``stack``, ``pollutant``, ``kind``; fields
``message``, ``value``, ``limit``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from stream.compliance.calrange import CalibrationRangeCounter, WeekResult
from stream.compliance.longterm import DailyRecord
from stream.compliance.qal3 import Qal3Event
from stream.compliance.report import PollutantReport
from stream.compliance.types import Regime
from stream.storage.base import FieldValue, Point

EVENTS = "compliance_events"


class EventKind(StrEnum):
    DAILY_LIMIT_EXCEEDED = "daily_limit_exceeded"  # a complete, valid day over its daily limit
    FORECAST_PREALARM = "forecast_prealarm"  # today's projection exceeds the daily ELV (C9)
    INVALID_DAY = "invalid_day"  # too many invalid STA: the day does not count (C4)
    INVALID_DAYS_EXCEEDED = "invalid_days_exceeded"  # > 10 invalid days in a year (C4)
    CALIBRATION_RANGE = "calibration_range"  # a week with STA above the QAL2 range (C10)
    QAL3_DRIFT = "qal3_drift"  # zero/span CUSUM drift out of control: adjust the AMS (C8)
    QAL3_PRECISION = "qal3_precision"  # zero/span precision decreased: find the cause


@dataclass(frozen=True, slots=True)
class ComplianceEvent:
    kind: EventKind
    plant: str
    stack: str
    pollutant: str
    ts_ns: int
    message: str
    value: float | None = None
    limit: float | None = None

    def to_point(self) -> Point:
        fields: dict[str, FieldValue] = {"message": self.message}
        if self.value is not None:
            fields["value"] = self.value
        if self.limit is not None:
            fields["limit"] = self.limit
        tags = {
            "plant": self.plant,
            "stack": self.stack,
            "pollutant": self.pollutant,
            "kind": self.kind.value,
        }
        return Point(EVENTS, tags, fields, self.ts_ns)


def qal3_event(plant: str, stack: str, pollutant: str, event: Qal3Event) -> ComplianceEvent:
    kind = EventKind.QAL3_DRIFT if event.kind == "drift" else EventKind.QAL3_PRECISION
    return ComplianceEvent(
        kind,
        plant,
        stack,
        pollutant,
        event.ts_ns,
        f"{pollutant.upper()} {plant}/{stack}: {event.message}",
        value=event.statistic,
        limit=event.limit,
    )


def invalid_days_exceeded(
    report: PollutantReport, record: DailyRecord, count: int, ts_ns: int, limit: int
) -> ComplianceEvent:
    """IED Annex V Part 3 pt 10 / Annex VI Part 8: more than ``limit`` invalid days a year."""
    return ComplianceEvent(
        EventKind.INVALID_DAYS_EXCEEDED,
        report.plant,
        report.stack,
        report.pollutant,
        ts_ns,
        f"{report.pollutant.upper()} {report.plant}/{report.stack}: {count} invalid days in "
        f"{record.date.year} (more than {limit}): the measuring system's reliability must be "
        "improved",
        value=float(count),
        limit=float(limit),
    )


def calibration_range_event(
    report: PollutantReport,
    week: WeekResult,
    counter: CalibrationRangeCounter,
    message: str,
    ts_ns: int,
) -> ComplianceEvent:
    """EN 14181 §6.5 / BEP S10: a week with STA above 1.1 × the QAL2 range (C10)."""
    return ComplianceEvent(
        EventKind.CALIBRATION_RANGE,
        report.plant,
        report.stack,
        report.pollutant,
        ts_ns,
        f"{report.pollutant.upper()} {report.plant}/{report.stack}: {message} "
        f"(S10 = {counter.s10}{', new QAL2 required' if counter.new_qal2_required else ''})",
        value=week.fraction_outside,
        limit=float(counter.s10),
    )


def day_events(
    report: PollutantReport,
    record: DailyRecord,
    *,
    day_start_ns: int,
    now_ns: int,
    complete: bool,
) -> list[ComplianceEvent]:
    """The events of one evaluated day of one pollutant."""
    where = (report.plant, report.stack, report.pollutant)
    name = f"{report.pollutant.upper()} {report.plant}/{report.stack} {record.date.isoformat()}"
    events: list[ComplianceEvent] = []
    daily_elv = report.limits.daily
    if complete and record.invalid_day:
        events.append(
            ComplianceEvent(
                EventKind.INVALID_DAY,
                *where,
                day_start_ns,
                f"{name}: invalid day ({record.n_invalid_sta} invalid short-term averages); it "
                "does not enter the monthly average and counts toward the yearly limit",
                value=float(record.n_invalid_sta),
            )
        )
    if complete and daily_elv is not None and record.valid and record.validated_mean is not None:
        factor = 1.0
        if report.regime == Regime.LCP.value:
            factor = report.daily_limit_factor
        limit = daily_elv * factor
        if record.validated_mean > limit:
            events.append(
                ComplianceEvent(
                    EventKind.DAILY_LIMIT_EXCEEDED,
                    *where,
                    day_start_ns,
                    f"{name}: validated daily average {record.validated_mean:.1f} mg/Nm3 exceeds "
                    f"{limit:g} mg/Nm3",
                    value=record.validated_mean,
                    limit=limit,
                )
            )
    forecast = report.forecast
    if not complete and forecast is not None and forecast.prealarm and daily_elv is not None:
        events.append(
            ComplianceEvent(
                EventKind.FORECAST_PREALARM,
                *where,
                now_ns,
                f"{name}: daily limit at risk: {forecast.reason}",
                value=forecast.projected_mean,
                limit=daily_elv,
            )
        )
    return events
