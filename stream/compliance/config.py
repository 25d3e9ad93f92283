"""Compliance settings of a stack and of its analysers (part of the plant configuration).

Defaults come from the regime (IED 2010/75/EU): a large combustion plant (Annex V) is evaluated
on hourly short-term averages with at most 3 invalid hours a day; waste incineration
(Annex VI) on half-hourly averages with at most 5 discarded half-hours a day. See
``shared/docs/emission-rules.md`` A1/A2; values marked [K] there are parameters here.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from stream.compliance.types import Regime

SensorId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CiSource(StrEnum):
    """How the confidence interval subtracted from a measured average is obtained."""

    ELV_FRACTION = "elv_fraction"  # IED: p × ELV, p per pollutant (Annex V Part 3, VI Part 6)
    QAL2 = "qal2"  # DE practice: the uncertainty from the QAL2 calibration (at most p × ELV)


class Calibration(_Strict):
    """QAL2 calibration function ``ŷ = a + b·x`` (EN 14181), applied to the averaged raw
    analyser value before normalisation, and the valid calibration range (EN 14181 §6.5)."""

    a: float = 0.0
    b: float = Field(1.0, gt=0)
    upper: float | None = Field(
        None, gt=0, description="Highest QAL2 value; STA above 1.1 × upper are out of range."
    )
    uncertainty: float | None = Field(
        None, ge=0, description="Uncertainty from the QAL2 (used when ci_source is qal2)."
    )
    valid_from: date | None = Field(
        None,
        description="Date of the QAL2 or the last AST: the calibration-range counter starts there.",
    )


class CheckChannel(_Strict):
    """Marks a sensor as the zero or span check result of an analyser (EN 14181 QAL3).

    Each reading of this sensor is one check: the analyser's reading of the test gas, compared
    with ``reference``. ``s_ams`` is the analyser's standard deviation from its QAL1
    certificate; it scales the CUSUM drift and precision limits.
    """

    analyser: SensorId
    point: Literal["zero", "span"]
    reference: float
    s_ams: float = Field(gt=0)


class Peripherals(_Strict):
    """Which sensors of the stack give the peripheral quantities used for normalisation.

    Left empty, each is the stack's only sensor of that quantity (if there is one).
    """

    o2: SensorId | None = None
    h2o: SensorId | None = None
    temperature: SensorId | None = None
    pressure: SensorId | None = None
    flow: SensorId | None = None
    mode: SensorId | None = Field(
        None,
        description="Plant operating mode sensor: 0 normal, 1 start-up, 2 shut-down, "
        "3 abatement failure. Without one the plant counts as in normal operation.",
    )


class StackCompliance(_Strict):
    """How the compliance engine evaluates one stack."""

    regime: Regime = Regime.LCP
    min_valid_fraction: float = Field(
        2 / 3,
        gt=0,
        le=1,
        description="Share of a short-term period that must be covered by "
        "valid data (EN 17255-1 practice, [K]).",
    )
    min_valid_hours_per_day: float = Field(
        6.0, ge=0, le=24, description="Valid STA hours a daily average needs (EN 17255-1)."
    )
    max_invalid_sta_per_day: int | None = Field(
        None,
        ge=0,
        description="More invalid STA than this invalidates the day. Default: LCP "
        "3 (hours, Annex V Part 3 pt 10), WI 5 (half-hours, Annex VI Part 8).",
    )
    max_invalid_days_per_year: int = Field(10, ge=0)
    lta_min_coverage: float = Field(
        0.10,
        gt=0,
        le=1,
        description="Monthly/yearly averages need valid STA covering this "
        "share of the period (EN 17255-1).",
    )
    daily_limit_factor: float = Field(
        1.10,
        gt=0,
        description="LCP: validated daily averages may not exceed this × ELV "
        "(Annex V Part 4: 110 %, 150 % for small coal boilers).",
    )
    o2_only_above_reference: bool = Field(
        False,
        description="Normalise to reference O2 only while measured O2 is above it "
        "(DE 13. BImSchV §19).",
    )
    ci_source: CiSource = CiSource.ELV_FRACTION
    molar_volume_l: float = Field(
        22.414,
        gt=0,
        description="Molar volume for ppm → mg/Nm3 (22.414 L at 101.325 kPa; "
        "22.4195 at 101.3 kPa).",
    )
    peripherals: Peripherals = Field(default_factory=Peripherals)

    @property
    def sta_period_s(self) -> int:
        """LCP: hourly averages; WI: half-hourly (IED Annex V Part 4 / Annex VI Part 8)."""
        return 3600 if self.regime is Regime.LCP else 1800

    @property
    def invalid_sta_per_day_limit(self) -> int:
        if self.max_invalid_sta_per_day is not None:
            return self.max_invalid_sta_per_day
        return 3 if self.regime is Regime.LCP else 5


Basis = Literal["dry", "wet"]
Conditions = Literal["standard", "actual"]
