"""Response models of the compliance endpoints, and how stored compliance points become them.

The values are what the live compliance engine stored (``compliance_sta``,
``compliance_daily``, ``compliance_period``; see :mod:`stream.compliance.points`). Added here,
as in the reports (:mod:`api.reports.data`): the limits of the configuration, the judgement of
a validated average against the limit that applies to it, and two derived figures:

* **availability** of a day: valid STA / (valid STA + invalid STA), i.e. of the short-term
  periods that were due (excluded ones, plant not in normal operation, were not), the share
  that gave a valid average; of a month or year: the same over the sums of its days;
* **invalid days** of a month or year: the sum of the days' ``invalid_day_count``.

Concentrations are mg/Nm³ at reference conditions (273.15 K, 101.3 kPa, dry, reference O2).

>>> availability(21, 3)
0.875
>>> availability(0, 0) is None
True
>>> parse_local_date("2026-02-10")
datetime.date(2026, 2, 10)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from api.reports.data import Threshold, daily_limit, sta_limit
from stream.model import NS_PER_S, datetime_from_ns
from stream.plant import EmissionLimit, StackConfig
from stream.storage.base import FieldValue

MIN_YEAR = 1970
MAX_YEAR = 2261
"""Local dates the stores can hold (signed 64-bit ns reach 2262-04-11)."""

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)


def parse_local_date(value: object) -> object:
    """Only the ``YYYY-MM-DD`` text form, within :data:`MIN_YEAR` to :data:`MAX_YEAR`
    (pydantic alone would also take Unix timestamps)."""
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or _DATE.fullmatch(value) is None:
        raise ValueError("expected a date YYYY-MM-DD such as 2026-02-10")
    day = date.fromisoformat(value)
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        raise ValueError(f"must be in the years {MIN_YEAR} to {MAX_YEAR}")
    return day


LocalDate = Annotated[
    date,
    BeforeValidator(parse_local_date),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date",
            "pattern": r"^\d{4}-\d{2}-\d{2}$",
            "description": f"A plant-local calendar day, YYYY-MM-DD ({MIN_YEAR} to {MAX_YEAR}).",
            "examples": ["2026-02-10"],
        }
    ),
]
"""A plant-local calendar day given as ``YYYY-MM-DD``."""

StaState = Literal["valid", "invalid", "excluded"]
_Date = date  # ``DayOut.date`` shadows the type inside the class body


def availability(valid_sta: int, invalid_sta: int) -> float | None:
    """Valid STA / (valid + invalid STA); None when none was due."""
    due = valid_sta + invalid_sta
    return valid_sta / due if due > 0 else None


def _float(fields: Mapping[str, FieldValue], name: str) -> float | None:
    v = fields.get(name)
    return None if v is None or isinstance(v, str) else float(v)


def _int(fields: Mapping[str, FieldValue], name: str) -> int:
    v = fields.get(name)
    return 0 if v is None or isinstance(v, str) else int(v)


def _above(value: float | None, limit: float | None) -> bool | None:
    if value is None or limit is None:
        return None
    return value > limit  # equal to the limit complies


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


def _examples(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(frozen=True, json_schema_extra={"examples": list(examples)})


# ------------------------------------------------------------------------------------ limits


class ThresholdOut(_Out):
    """A limit a stored average is judged against, and what it is."""

    value: float
    label: str = Field(description="E.g. `110 % of the daily ELV 200`.")

    @classmethod
    def of(cls, t: Threshold | None) -> ThresholdOut | None:
        return None if t is None else cls(value=t.value, label=t.label)


_LIMITS_EXAMPLE: dict[str, Any] = {
    "unit": "mg/Nm3",
    "half_hour": 400.0,
    "hourly": None,
    "daily": 200.0,
    "monthly": None,
    "yearly": None,
    "sta_limit": {"value": 400.0, "label": "200 % of the daily ELV 200 (no hourly ELV)"},
    "daily_limit": {"value": 220.0, "label": "110 % of the daily ELV 200"},
    "max_invalid_sta_per_day": 3,
    "max_invalid_days_per_year": 10,
    "min_valid_hours_per_day": 6.0,
    "lta_min_coverage": 0.1,
}


class LimitsOut(_Out):
    """The permit limits of one pollutant (null: none) and the configured validity rules."""

    model_config = _examples(_LIMITS_EXAMPLE)

    unit: str
    half_hour: float | None
    hourly: float | None
    daily: float | None
    monthly: float | None
    yearly: float | None
    sta_limit: ThresholdOut | None = Field(
        description="What a validated short-term average is judged against."
    )
    daily_limit: ThresholdOut | None = Field(
        description="What a validated daily mean is judged against."
    )
    max_invalid_sta_per_day: int = Field(description="More invalid STA make an invalid day.")
    max_invalid_days_per_year: int = Field(description="More invalid days require action.")
    min_valid_hours_per_day: float = Field(description="Valid hours a daily mean needs.")
    lta_min_coverage: float = Field(description="Coverage a monthly/yearly mean needs (0-1).")

    @classmethod
    def of(cls, stack: StackConfig, limit: EmissionLimit) -> LimitsOut:
        comp = stack.compliance
        return cls(
            unit=limit.unit,
            half_hour=limit.half_hour,
            hourly=limit.hourly,
            daily=limit.daily,
            monthly=limit.monthly,
            yearly=limit.yearly,
            sta_limit=ThresholdOut.of(sta_limit(stack, limit)),
            daily_limit=ThresholdOut.of(daily_limit(stack, limit)),
            max_invalid_sta_per_day=comp.invalid_sta_per_day_limit,
            max_invalid_days_per_year=comp.max_invalid_days_per_year,
            min_valid_hours_per_day=comp.min_valid_hours_per_day,
            lta_min_coverage=comp.lta_min_coverage,
        )


# ---------------------------------------------------------------------------- short-term


_STA_EXAMPLE: dict[str, Any] = {
    "start": "2026-02-10T10:00:00Z",
    "end": "2026-02-10T11:00:00Z",
    "state": "valid",
    "normalised": 182.4,
    "validated": 146.0,
    "n_valid": 3600,
    "mass_kg": 7.9,
    "above_limit": False,
}


class StaOut(_Out):
    """One stored short-term average (hour for LCP, half-hour for WI)."""

    model_config = _examples(_STA_EXAMPLE)

    start: datetime
    end: datetime
    state: StaState = Field(
        description="`excluded`: the plant was not in normal operation, nothing was due."
    )
    normalised: float | None = Field(description="At reference O2; null unless valid.")
    validated: float | None = Field(description="Normalised minus the confidence interval.")
    n_valid: int = Field(description="Valid readings in the period.")
    mass_kg: float | None = Field(description="Emitted mass (with a flow sensor).")
    above_limit: bool | None = Field(
        description="Validated value above the short-term limit; null when not judged."
    )

    @classmethod
    def of(
        cls, ts_ns: int, fields: Mapping[str, FieldValue], period_s: int, limit: float | None
    ) -> StaOut:
        state = str(fields.get("state", "invalid"))
        # A period re-evaluated to invalid or excluded keeps its earlier numbers in the store
        # (points merge): only a valid one has a value.
        valid = state == "valid"
        validated = _float(fields, "validated") if valid else None
        return cls(
            start=datetime_from_ns(ts_ns),
            end=datetime_from_ns(ts_ns + period_s * NS_PER_S),
            state="valid" if state == "valid" else "excluded" if state == "excluded" else "invalid",
            normalised=_float(fields, "normalised") if valid else None,
            validated=validated,
            n_valid=_int(fields, "n_valid"),
            mass_kg=_float(fields, "mass_kg"),
            above_limit=_above(validated, limit),
        )


# ------------------------------------------------------------------------------------ days


_DAY_EXAMPLE: dict[str, Any] = {
    "date": "2026-02-10",
    "complete": True,
    "valid": True,
    "invalid_day": False,
    "validated_mean": 151.2,
    "measured_mean": 187.6,
    "valid_hours": 22.0,
    "valid_sta": 22,
    "invalid_sta": 2,
    "excluded_sta": 0,
    "availability": 0.9167,
    "above_limit": False,
}


class DayOut(_Out):
    """The record of one plant-local day (``compliance_daily``)."""

    model_config = _examples(_DAY_EXAMPLE)

    date: date
    complete: bool = Field(description="The day is over; the record is final.")
    valid: bool = Field(
        description="The daily mean counts: not an invalid day, and enough valid hours."
    )
    invalid_day: bool = Field(description="More invalid STA than the day allows.")
    validated_mean: float | None
    measured_mean: float | None
    valid_hours: float
    valid_sta: int
    invalid_sta: int
    excluded_sta: int
    availability: float | None = Field(
        description="valid_sta / (valid_sta + invalid_sta); null when none was due."
    )
    above_limit: bool | None = Field(
        description="Validated mean above the daily limit; null unless complete and valid."
    )

    @classmethod
    def of(
        cls,
        day: _Date,
        fields: Mapping[str, FieldValue],
        *,
        stack: StackConfig,
        limit: float | None,
        over: bool,
    ) -> DayOut:
        """From stored fields. Fields read through numeric series lack the booleans; they are
        then derived as the engine sets them: ``invalid_day`` from ``invalid_day_count``,
        ``valid`` from it and the valid hours, ``complete`` from ``over`` (the day ended)."""
        valid_hours = _float(fields, "valid_hours") or 0.0
        invalid_day = (
            fields["invalid_day"] is True
            if "invalid_day" in fields
            else _int(fields, "invalid_day_count") > 0
        )
        valid = (
            fields["valid"] is True
            if "valid" in fields
            else not invalid_day and valid_hours >= stack.compliance.min_valid_hours_per_day
        )
        complete = fields["complete"] is True if "complete" in fields else over
        validated = _float(fields, "validated_mean")
        valid_sta, invalid_sta = _int(fields, "valid_sta"), _int(fields, "invalid_sta")
        return cls(
            date=day,
            complete=complete,
            valid=valid,
            invalid_day=invalid_day,
            validated_mean=validated,
            measured_mean=_float(fields, "measured_mean"),
            valid_hours=valid_hours,
            valid_sta=valid_sta,
            invalid_sta=invalid_sta,
            excluded_sta=_int(fields, "excluded_sta"),
            availability=availability(valid_sta, invalid_sta),
            above_limit=_above(validated, limit) if complete and valid else None,
        )


# -------------------------------------------------------------------------------- latest


_LATEST_EXAMPLE: dict[str, Any] = {
    "pollutant": "nox",
    "sta_period_s": 3600,
    "limits": _LIMITS_EXAMPLE,
    "short_term": _STA_EXAMPLE,
    "today": {**_DAY_EXAMPLE, "complete": False, "above_limit": None},
}


class PollutantLatestOut(_Out):
    """The newest short-term average of one pollutant and today's running daily record."""

    model_config = _examples(_LATEST_EXAMPLE)

    pollutant: str
    sta_period_s: int = Field(description="Length of a short-term average in seconds.")
    limits: LimitsOut
    short_term: StaOut | None = Field(
        description="The newest stored short-term average of the last 2 days (null: none)."
    )
    today: DayOut | None = Field(
        description="Today's record so far (plant-local day; null: nothing evaluated yet)."
    )


class ComplianceLatestOut(_Out):
    """The latest compliance results of one stack, one entry per limited pollutant."""

    model_config = _examples(
        {
            "plant": "demo",
            "stack": "boiler1",
            "timezone": "Europe/Vienna",
            "time": "2026-02-10T11:05:00Z",
            "pollutants": [_LATEST_EXAMPLE],
        }
    )

    plant: str
    stack: str
    timezone: str
    time: datetime = Field(description="When the answer was computed.")
    pollutants: list[PollutantLatestOut]


# ------------------------------------------------------------------------------- daily list


class PollutantDaysOut(_Out):
    """The stored daily records of one pollutant of one stack in the requested days."""

    stack: str
    pollutant: str
    limits: LimitsOut
    days: list[DayOut] = Field(description="Days with a stored record, in date order.")
    invalid_days: int = Field(description="Invalid days among them.")
    availability: float | None = Field(
        description="Valid STA / (valid + invalid STA) over these days."
    )


class DailyComplianceOut(_Out):
    """Daily compliance records of one plant from ``start`` to ``end`` (both included)."""

    model_config = _examples(
        {
            "plant": "demo",
            "timezone": "Europe/Vienna",
            "start": "2026-02-10",
            "end": "2026-02-10",
            "time": "2026-02-11T08:00:00Z",
            "series": [
                {
                    "stack": "boiler1",
                    "pollutant": "nox",
                    "limits": _LIMITS_EXAMPLE,
                    "days": [_DAY_EXAMPLE],
                    "invalid_days": 0,
                    "availability": 0.9167,
                }
            ],
        }
    )

    plant: str
    timezone: str
    start: date
    end: date = Field(description="The last day listed (inclusive).")
    time: datetime = Field(description="When the answer was computed.")
    series: list[PollutantDaysOut]


# ---------------------------------------------------------------------------- months, years

_PERIOD_EXAMPLE: dict[str, Any] = {
    "start": "2026-02-01",
    "end": "2026-03-01",
    "complete": False,
    "validated_mean": 149.8,
    "measured_mean": 186.1,
    "coverage": 0.31,
    "n_sta": 212,
    "valid": True,
    "above_limit": None,
    "days": 10,
    "invalid_days": 1,
    "valid_sta": 212,
    "invalid_sta": 9,
    "availability": 0.9593,
}


class PeriodOut(_Out):
    """One calendar month or year: the stored validated average so far
    (``compliance_period``), and the invalid days and availability of its stored days."""

    model_config = _examples(_PERIOD_EXAMPLE)

    start: date
    end: date = Field(description="The first day after the period.")
    complete: bool = Field(description="The period is over.")
    validated_mean: float | None = Field(description="Null: no valid STA, or no average yet.")
    measured_mean: float | None
    coverage: float | None = Field(description="Share of the period covered by valid STA.")
    n_sta: int | None = Field(description="STA in the average (null: no average stored yet).")
    valid: bool | None = Field(description="Coverage reaches the minimum (null: no average).")
    above_limit: bool | None = Field(
        description="Valid validated mean above the monthly (yearly) ELV; null when not judged."
    )
    days: int = Field(description="Days with a stored daily record.")
    invalid_days: int = Field(description="Sum of the days' invalid_day_count.")
    valid_sta: int
    invalid_sta: int
    availability: float | None = Field(
        description="valid_sta / (valid_sta + invalid_sta) over the stored days."
    )


class PollutantPeriodsOut(_Out):
    stack: str
    pollutant: str
    limits: LimitsOut
    periods: list[PeriodOut] = Field(description="Periods with stored data, in time order.")


class PeriodComplianceOut(_Out):
    """Monthly or yearly compliance of one plant over ``[start, end)``."""

    model_config = _examples(
        {
            "plant": "demo",
            "timezone": "Europe/Vienna",
            "period": "month",
            "start": "2026-01-01",
            "end": "2027-01-01",
            "time": "2026-02-11T08:00:00Z",
            "series": [
                {
                    "stack": "boiler1",
                    "pollutant": "nox",
                    "limits": _LIMITS_EXAMPLE,
                    "periods": [_PERIOD_EXAMPLE],
                }
            ],
        }
    )

    plant: str
    timezone: str
    period: Literal["month", "year"]
    start: date
    end: date = Field(description="The first day after the requested range.")
    time: datetime = Field(description="When the answer was computed.")
    series: list[PollutantPeriodsOut]
