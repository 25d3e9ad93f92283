"""A compliance report's data, read from the store: what the live compliance engine stored.

One report covers one plant over one plant-local calendar day (``daily``) or month
(``monthly``), with one :class:`PollutantSection` per limited pollutant of each stack (file
order). Concentrations are mg/Nm³ at 273.15 K, 101.3 kPa, dry gas and the stack's reference O2;
*validated* values are the measured ones minus the confidence interval (IED 2010/75/EU
Annex V Part 3 pt 10, Annex VI Part 8; EN 17255-1).

What the report adds to the stored results, and how:

* **Judgement against limits.** A validated daily mean is judged against the limit the
  regime applies to it (:func:`daily_limit`: LCP 110 % of the daily ELV, IED Annex V Part 4
  (b); WI the daily ELV, Annex VI Part 8 (a)); a validated short-term average against
  :func:`sta_limit` (LCP: 200 % of the hourly ELV, else of the daily ELV, Annex V Part 4 (c);
  WI: half-hour column A, else column B). A day is judged only when it is over and valid.
* **Invalid days.** Stored ``invalid_day`` flags, counted in the period and from 1 January to
  the period's end (the yearly counter of Annex V Part 3 pt 10: more than
  ``max_invalid_days_per_year`` requires action).
* **Availability.** Valid STA / expected STA, where *expected* are the STA periods of the
  period that are over (at generation time) minus those stored as *excluded* (plant not in
  normal operation, so no measurement was due). Periods without any stored result (service or
  analyser down) count as missing.
* **Events.** The stored compliance events of the period, without forecast pre-alarms (those
  are operational warnings, not outcomes to report).

Days of the period after the generation day are not listed; a listed day without a stored
record has status ``no_data``; a day not yet over has status ``incomplete``.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from importlib.metadata import PackageNotFoundError, version
from typing import Literal
from zoneinfo import ZoneInfo

from stream.compliance.engine import ci_for
from stream.compliance.events import EVENTS, EventKind
from stream.compliance.longterm import local_day_bounds_ns
from stream.compliance.points import DAILY, PERIOD, STA
from stream.compliance.types import Regime
from stream.model import NS_PER_S, datetime_from_ns
from stream.plant import EmissionLimit, PlantConfig, StackConfig
from stream.storage.base import FieldValue, LastValue, SeriesQuery, Store

ReportKind = Literal["daily", "monthly"]


class ReportFormat(StrEnum):
    """File formats a report is rendered in."""

    CSV = "csv"
    PDF = "pdf"


DayStatus = Literal["ok", "exceeded", "invalid_day", "not_reportable", "incomplete", "no_data"]

DAY_STATUS_TEXT: dict[str, str] = {
    "ok": "within the limit",
    "exceeded": "validated daily mean above the limit",
    "invalid_day": "invalid day (too many invalid short-term averages)",
    "not_reportable": "not reportable (too few valid hours)",
    "incomplete": "day not over yet",
    "no_data": "no stored result",
}
"""What each day status means (legend of the CSV and the PDF)."""


class ReportError(Exception):
    """A report cannot be produced for this request; the message says why."""


class UnknownPlantError(ReportError):
    """The plant is not in the configuration."""


class FuturePeriodError(ReportError):
    """The period has not started yet."""


def software_version() -> str:
    """The installed StackWatch version (``0+unknown`` in a bare checkout)."""
    try:
        return version("stackwatch")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0+unknown"


@dataclass(frozen=True, slots=True)
class Threshold:
    """A limit a value is judged against, with what it is (e.g. ``110 % of the daily ELV``)."""

    value: float
    label: str


@dataclass(frozen=True, slots=True)
class StaRow:
    """One stored short-term average. ``above_limit`` is None without a validated value or
    without a short-term threshold."""

    start_ns: int
    end_ns: int
    state: str  # valid, invalid, excluded
    normalised: float | None
    validated: float | None
    n_valid: int
    mass_kg: float | None
    above_limit: bool | None


@dataclass(frozen=True, slots=True)
class DayRow:
    """One local day as stored in ``compliance_daily`` (``stored`` False: nothing stored)."""

    date: date
    stored: bool
    complete: bool
    valid: bool
    invalid_day: bool
    validated_mean: float | None
    measured_mean: float | None
    valid_hours: float
    valid_sta: int
    invalid_sta: int
    excluded_sta: int
    exceeded: bool | None
    """Validated mean above the daily limit; None when not judged (no limit, day not over,
    not valid)."""

    @property
    def status(self) -> DayStatus:
        """One word for the day, in this order of precedence: ``no_data``, ``invalid_day``,
        ``incomplete``, ``not_reportable``, ``exceeded``, ``ok``."""
        if not self.stored:
            return "no_data"
        if self.invalid_day:
            return "invalid_day"
        if not self.complete:
            return "incomplete"
        if not self.valid:
            return "not_reportable"
        return "exceeded" if self.exceeded else "ok"


@dataclass(frozen=True, slots=True)
class PeriodRow:
    """The stored validated average of the month so far (``compliance_period``)."""

    start: date
    validated_mean: float | None
    measured_mean: float | None
    coverage: float
    n_sta: int
    valid: bool
    exceeded: bool | None  # above the monthly ELV; None without one or when not valid


@dataclass(frozen=True, slots=True)
class EventRow:
    ts_ns: int
    kind: str
    message: str
    value: float | None
    limit: float | None


@dataclass(frozen=True)
class PollutantSection:
    """Everything the report shows for one pollutant of one stack."""

    stack: str
    stack_name: str
    pollutant: str
    regime: Regime
    reference_o2: float | None
    sta_period_s: int
    limits: EmissionLimit
    confidence_interval: float
    daily_limit: Threshold | None
    sta_limit: Threshold | None
    max_invalid_sta_per_day: int
    max_invalid_days_per_year: int
    sta: tuple[StaRow, ...]
    days: tuple[DayRow, ...]
    month: PeriodRow | None
    invalid_days: int
    """Invalid days in the report period."""
    invalid_days_year: int
    """Invalid days from 1 January to the end of the report period."""
    expected_sta: int
    valid_sta: int
    excluded_sta: int
    events: tuple[EventRow, ...]

    @property
    def availability(self) -> float | None:
        """Valid STA / (expected STA − excluded STA); None when none was expected."""
        due = self.expected_sta - self.excluded_sta
        return self.valid_sta / due if due > 0 else None

    @property
    def exceeded_days(self) -> list[date]:
        return [d.date for d in self.days if d.exceeded]

    @property
    def sta_above_limit(self) -> int:
        return sum(1 for s in self.sta if s.above_limit)


@dataclass(frozen=True)
class ComplianceReportData:
    """One report: plant, period ``[start, end)`` (local dates), when and by what it was made."""

    plant: str
    plant_name: str
    timezone: str
    kind: ReportKind
    start: date
    end: date
    start_ns: int
    end_ns: int
    generated_ns: int
    software_version: str
    sections: tuple[PollutantSection, ...]

    @property
    def complete(self) -> bool:
        """The whole period is over (the report will not change any more, barring late data)."""
        return self.generated_ns >= self.end_ns

    @property
    def label(self) -> str:
        """``2026-02-10`` (daily) or ``2026-02`` (monthly)."""
        return self.start.isoformat() if self.kind == "daily" else self.start.strftime("%Y-%m")

    def filename(self, extension: str) -> str:
        """``stackwatch-<plant>-<kind>-<label>.<extension>``."""
        return f"stackwatch-{self.plant}-{self.kind}-{self.label}.{extension}"


def period_bounds(kind: ReportKind, day_or_month: date) -> tuple[date, date]:
    """The local dates ``[start, end)`` of the period containing ``day_or_month``.

    >>> period_bounds("monthly", date(2026, 12, 17))
    (datetime.date(2026, 12, 1), datetime.date(2027, 1, 1))
    >>> period_bounds("daily", date(2026, 2, 28))
    (datetime.date(2026, 2, 28), datetime.date(2026, 3, 1))
    """
    if kind == "daily":
        return day_or_month, day_or_month + timedelta(days=1)
    first = day_or_month.replace(day=1)
    return first, date(first.year + first.month // 12, first.month % 12 + 1, 1)


def parse_month(text: str) -> date:
    """The first day of a ``YYYY-MM`` month; ``ValueError`` otherwise.

    >>> parse_month("2026-02")
    datetime.date(2026, 2, 1)
    """
    year, sep, month = text.partition("-")
    if not (sep and len(year) == 4 and len(month) == 2 and year.isdigit() and month.isdigit()):
        raise ValueError(f"expected YYYY-MM, got {text!r}")
    return date(int(year), int(month), 1)


def daily_limit(stack: StackConfig, limit: EmissionLimit) -> Threshold | None:
    """The limit a validated daily mean is judged against (None without a daily ELV)."""
    if limit.daily is None:
        return None
    if stack.compliance.regime is Regime.LCP:
        factor = stack.compliance.daily_limit_factor
        # Rounded: 200 × 1.1 is 220.00000000000003 in binary floating point.
        value = round(limit.daily * factor, 9)
        return Threshold(value, f"{factor:.0%} of the daily ELV {limit.daily:g}")
    return Threshold(limit.daily, f"daily ELV {limit.daily:g}")


def sta_limit(stack: StackConfig, limit: EmissionLimit) -> Threshold | None:
    """The limit a validated short-term average is judged against (see the module docstring).

    >>> from stream.plant import EmissionLimit
    >>> stack = StackConfig.model_validate({"sensors": {"nox": {"quantity": "nox",
    ...     "unit": "mg/Nm3", "valid_range": [0, 1000]}}, "limits": {"nox": {"daily": 200}}})
    >>> sta_limit(stack, stack.limits[next(iter(stack.limits))])
    Threshold(value=400.0, label='200 % of the daily ELV 200 (no hourly ELV)')
    """
    if stack.compliance.regime is Regime.LCP:
        if limit.hourly is not None:
            return Threshold(2 * limit.hourly, f"200 % of the hourly ELV {limit.hourly:g}")
        if limit.daily is not None:
            return Threshold(
                2 * limit.daily, f"200 % of the daily ELV {limit.daily:g} (no hourly ELV)"
            )
        return None
    if limit.half_hour is not None:
        return Threshold(limit.half_hour, f"half-hour ELV (column A) {limit.half_hour:g}")
    if limit.half_hour_b is not None:
        return Threshold(limit.half_hour_b, f"half-hour ELV (column B) {limit.half_hour_b:g}")
    return None


async def load_report(
    store: Store,
    config: PlantConfig,
    plant: str,
    kind: ReportKind,
    day_or_month: date,
    *,
    now_ns: int | None = None,
    software: str | None = None,
) -> ComplianceReportData:
    """Read one report's data from ``store``: scans bounded by the period, plus one query
    per pollutant for the invalid days of the year before the period.

    ``day_or_month``: the day (daily) or any day of the month (monthly), in the plant's time
    zone. ``now_ns`` (default: the wall clock) is the generation time: it decides which days
    are listed and which STA periods were due. Raises :class:`UnknownPlantError` and
    :class:`FuturePeriodError`; store failures propagate as ``StoreError``.
    """
    info = config.plants.get(plant)
    if info is None:
        raise UnknownPlantError(f"plant {plant!r} is not configured")
    now = time.time_ns() if now_ns is None else now_ns
    tz = info.timezone
    if not 1970 <= day_or_month.year <= 9998:  # nanosecond timestamps; 9999 has no next month
        raise ReportError(f"{day_or_month.isoformat()} is outside the years 1970 to 9998")
    start, end = period_bounds(kind, day_or_month)
    start_ns, end_ns = local_day_bounds_ns(start, tz)[0], local_day_bounds_ns(end, tz)[0]
    if start_ns > now:
        raise FuturePeriodError(f"the {kind} period {start.isoformat()} has not started yet")
    year_start_ns = local_day_bounds_ns(date(start.year, 1, 1), tz)[0]
    where = {"plant": plant}
    sta_points = _by_series(await store.scan(STA, start_ns, end_ns, where))
    daily_points = _by_series(await store.scan(DAILY, start_ns, end_ns, where))
    month_points: dict[tuple[str, str], list[LastValue]] = {}
    if kind == "monthly":  # stored at the month's local start; the average so far
        month = await store.scan(PERIOD, start_ns, start_ns + 1, where | {"period": "month"})
        month_points = _by_series(month)
    events = await store.scan(EVENTS, start_ns, end_ns, where)
    event_points = _by_series(
        [e for e in events if e.tags.get("kind") != EventKind.FORECAST_PREALARM.value]
    )

    zone = ZoneInfo(tz)
    today = datetime_from_ns(now).astimezone(zone).date()
    n_listed = min((end - start).days, (today - start).days + 1)
    listed = [start + timedelta(days=i) for i in range(max(0, n_listed))]
    sections = []
    for stack_id, stack in info.stacks.items():
        for quantity, limit in stack.limits.items():
            key = (stack_id, quantity.value)
            earlier = 0  # invalid days of the year before the period: the yearly counter
            if year_start_ns < start_ns:
                tags = where | {"stack": stack_id, "pollutant": quantity.value}
                rows = await store.series(
                    SeriesQuery(DAILY, "invalid_day_count", year_start_ns, start_ns, tags)
                )
                earlier = int(sum(r.value for r in rows))
            sections.append(
                _section(
                    stack_id,
                    stack,
                    quantity.value,
                    limit,
                    ci=ci_for(stack, quantity, limit),
                    sta=sta_points.get(key, []),
                    daily=daily_points.get(key, []),
                    invalid_days_before=earlier,
                    month=month_points.get(key, []),
                    events=event_points.get(key, []),
                    listed=listed,
                    zone=zone,
                    window=(start_ns, end_ns, now),
                )
            )
    return ComplianceReportData(
        plant=plant,
        plant_name=info.name or plant,
        timezone=tz,
        kind=kind,
        start=start,
        end=end,
        start_ns=start_ns,
        end_ns=end_ns,
        generated_ns=now,
        software_version=software or software_version(),
        sections=tuple(sections),
    )


def _by_series(rows: list[LastValue]) -> dict[tuple[str, str], list[LastValue]]:
    """Points by (stack, pollutant), time order kept."""
    out: dict[tuple[str, str], list[LastValue]] = defaultdict(list)
    for row in rows:
        out[(row.tags.get("stack", ""), row.tags.get("pollutant", ""))].append(row)
    return out


def _float(fields: Mapping[str, FieldValue], name: str) -> float | None:
    v = fields.get(name)
    return None if v is None or isinstance(v, str) else float(v)


def _int(fields: Mapping[str, FieldValue], name: str) -> int:
    v = fields.get(name)
    return 0 if v is None or isinstance(v, str) else int(v)


def _above(value: float | None, threshold: Threshold | None) -> bool | None:
    if value is None or threshold is None:
        return None
    return value > threshold.value  # equal to the limit complies


def _section(
    stack_id: str,
    stack: StackConfig,
    pollutant: str,
    limit: EmissionLimit,
    *,
    ci: float,
    sta: list[LastValue],
    daily: list[LastValue],
    invalid_days_before: int,
    month: list[LastValue],
    events: list[LastValue],
    listed: list[date],
    zone: ZoneInfo,
    window: tuple[int, int, int],
) -> PollutantSection:
    start_ns, end_ns, now = window
    comp = stack.compliance
    period_ns = comp.sta_period_s * NS_PER_S
    short = sta_limit(stack, limit)
    day_limit = daily_limit(stack, limit)

    sta_rows = []
    for p in sta:
        validated = _float(p.fields, "validated")
        sta_rows.append(
            StaRow(
                start_ns=p.ts_ns,
                end_ns=p.ts_ns + period_ns,
                state=str(p.fields.get("state", "invalid")),
                normalised=_float(p.fields, "normalised"),
                validated=validated,
                n_valid=_int(p.fields, "n_valid"),
                mass_kg=_float(p.fields, "mass_kg"),
                above_limit=_above(validated, short),
            )
        )

    by_date = {datetime_from_ns(p.ts_ns).astimezone(zone).date(): p.fields for p in daily}
    days = tuple(_day_row(d, by_date.get(d), day_limit) for d in listed)
    year_invalid = invalid_days_before + sum(
        1 for f in by_date.values() if f.get("invalid_day") is True
    )

    # STA periods [s, s + period) of the period that are over at generation time.
    last_end = min(end_ns, now)
    first_start = -(-start_ns // period_ns) * period_ns
    expected = max(0, (last_end - first_start) // period_ns)

    month_row = None
    if month:
        f = month[-1].fields
        mean = _float(f, "validated_mean")
        valid = f.get("valid") is True
        month_row = PeriodRow(
            start=datetime_from_ns(month[-1].ts_ns).astimezone(zone).date(),
            validated_mean=mean,
            measured_mean=_float(f, "measured_mean"),
            coverage=_float(f, "coverage") or 0.0,
            n_sta=_int(f, "n_sta"),
            valid=valid,
            exceeded=(
                None if limit.monthly is None or not valid or mean is None else mean > limit.monthly
            ),
        )

    return PollutantSection(
        stack=stack_id,
        stack_name=stack.name or stack_id,
        pollutant=pollutant,
        regime=comp.regime,
        reference_o2=stack.reference_o2,
        sta_period_s=comp.sta_period_s,
        limits=limit,
        confidence_interval=ci,
        daily_limit=day_limit,
        sta_limit=short,
        max_invalid_sta_per_day=comp.invalid_sta_per_day_limit,
        max_invalid_days_per_year=comp.max_invalid_days_per_year,
        sta=tuple(sta_rows),
        days=days,
        month=month_row,
        invalid_days=sum(1 for d in days if d.invalid_day),
        invalid_days_year=year_invalid,
        expected_sta=int(expected),
        valid_sta=sum(1 for s in sta_rows if s.state == "valid" and s.validated is not None),
        excluded_sta=sum(1 for s in sta_rows if s.state == "excluded"),
        events=tuple(
            EventRow(
                ts_ns=p.ts_ns,
                kind=p.tags.get("kind", ""),
                message=str(p.fields.get("message", "")),
                value=_float(p.fields, "value"),
                limit=_float(p.fields, "limit"),
            )
            for p in events
        ),
    )


def _day_row(day: date, fields: Mapping[str, FieldValue] | None, limit: Threshold | None) -> DayRow:
    if fields is None:
        return DayRow(day, False, False, False, False, None, None, 0.0, 0, 0, 0, None)
    complete = fields.get("complete") is True
    valid = fields.get("valid") is True
    validated = _float(fields, "validated_mean")
    return DayRow(
        date=day,
        stored=True,
        complete=complete,
        valid=valid,
        invalid_day=fields.get("invalid_day") is True,
        validated_mean=validated,
        measured_mean=_float(fields, "measured_mean"),
        valid_hours=_float(fields, "valid_hours") or 0.0,
        valid_sta=_int(fields, "valid_sta"),
        invalid_sta=_int(fields, "invalid_sta"),
        excluded_sta=_int(fields, "excluded_sta"),
        exceeded=_above(validated, limit) if complete and valid else None,
    )
