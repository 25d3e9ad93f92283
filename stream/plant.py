"""Plant configuration: plants → stacks → sensors, emission limits and reference O2.

The file is YAML, validated with pydantic. Ids are mappings keys, so they are unique by
construction and appear verbatim in MQTT topics and InfluxDB tags; they are therefore limited
to lower-case letters, digits, ``_`` and ``-``.

The schema is designed to grow: the compliance engine adds per-stack regime settings, the
detection stage adds model settings, each as new optional sections with defaults.

>>> cfg = PlantConfig.model_validate({"plants": {"demo": {"stacks": {"b1": {
...     "reference_o2": 6,
...     "sensors": {"nox": {"quantity": "nox", "unit": "mg/Nm3", "valid_range": [0, 2000]},
...                 "o2": {"quantity": "o2", "unit": "%", "valid_range": [0, 25]}},
...     "limits": {"nox": {"daily": 200}}}}}}})
>>> cfg.sensor("demo", "b1", "nox").valid_range
(0.0, 2000.0)
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from stream.compliance.averaging import CI_FRACTION
from stream.compliance.config import (
    Basis,
    Calibration,
    CheckChannel,
    Conditions,
    StackCompliance,
)
from stream.model import SensorKey
from stream.plant_models import DetectionConfig, PemsConfig

Id = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]


class Quantity(StrEnum):
    """What a sensor measures. Pollutants first, then the peripheral quantities."""

    NOX = "nox"
    NO = "no"
    NO2 = "no2"
    SO2 = "so2"
    CO = "co"
    DUST = "dust"
    TOC = "toc"
    HCL = "hcl"
    HF = "hf"
    NH3 = "nh3"
    HG = "hg"
    N2O = "n2o"
    CO2 = "co2"
    O2 = "o2"
    H2O = "h2o"
    TEMPERATURE = "temperature"
    PRESSURE = "pressure"
    FLOW = "flow"
    LOAD = "load"
    MODE = "mode"


POLLUTANTS = frozenset(
    {
        Quantity.NOX,
        Quantity.NO,
        Quantity.NO2,
        Quantity.SO2,
        Quantity.CO,
        Quantity.DUST,
        Quantity.TOC,
        Quantity.HCL,
        Quantity.HF,
        Quantity.NH3,
        Quantity.HG,
        Quantity.N2O,
    }
)
POLLUTANT_LABELS: dict[str, str] = {
    "nox": "NOx",
    "no": "NO",
    "no2": "NO2",
    "so2": "SO2",
    "co": "CO",
    "dust": "Dust",
    "toc": "TOC",
    "hcl": "HCl",
    "hf": "HF",
    "nh3": "NH3",
    "hg": "Hg",
    "n2o": "N2O",
}
"""How reports and dashboards write each pollutant."""


CONCENTRATION_UNITS = frozenset({"mg/Nm3", "ppm"})
TEMPERATURE_UNITS = frozenset({"°C", "degC", "K"})
PRESSURE_UNITS = frozenset({"hPa", "mbar", "kPa", "Pa"})
FLOW_UNITS = frozenset({"Nm3/h"})  # dry, standard conditions, as the concentrations
PERIPHERAL_ROLES = ("o2", "h2o", "temperature", "pressure", "flow", "mode")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SensorConfig(_Strict):
    """One analyser channel or process sensor."""

    quantity: Quantity
    unit: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    valid_range: tuple[float, float] = Field(
        description="Physically possible values [min, max]; readings outside are rejected."
    )
    interval_s: float = Field(1.0, gt=0, description="Expected sampling interval in seconds.")
    description: str = ""
    basis: Basis = Field(
        "dry",
        description="Gas basis of a concentration or O2 analyser: wet values are "
        "converted to dry with the stack's H2O sensor.",
    )
    conditions: Conditions = Field(
        "standard",
        description="'actual': the concentration is at stack temperature and "
        "pressure and is converted to 273.15 K / 101.3 kPa with the T and p sensors.",
    )
    calibration: Calibration | None = None
    max_rate: float | None = Field(
        None,
        gt=0,
        description="Largest plausible change per second (unit/s); faster changes are "
        "flagged as a rate-of-change fault by the detection stage.",
    )
    check: CheckChannel | None = Field(
        None,
        description="This sensor reports zero/span checks of another analyser (QAL3); "
        "it is not itself a measurement of the stack.",
    )

    @field_validator("valid_range")
    @classmethod
    def _range_ordered(cls, v: tuple[float, float]) -> tuple[float, float]:
        lo, hi = v
        if not lo < hi:
            raise ValueError(f"valid_range minimum {lo} must be below maximum {hi}")
        return v


class EmissionLimit(_Strict):
    """Emission limit values (ELV) for one pollutant, by averaging period, in ``unit``.

    Concentrations are at reference conditions (273.15 K, 101.3 kPa, dry gas, reference O2).
    """

    unit: Literal["mg/Nm3"] = "mg/Nm3"
    half_hour: float | None = Field(None, gt=0, description="Half-hour ELV (WI column A).")
    half_hour_b: float | None = Field(
        None, gt=0, description="WI column B: 97 % of half-hours in the year must be below it."
    )
    ten_minute: float | None = Field(
        None, gt=0, description="WI CO: 95 % of 10-minute averages in any 24 h below it."
    )
    ci_fraction: float | None = Field(
        None,
        ge=0,
        lt=1,
        description="Confidence interval as a share of the ELV; default "
        "from the regime's table (IED Annex V Part 3 / Annex VI Part 6).",
    )
    hourly: float | None = Field(None, gt=0)
    daily: float | None = Field(None, gt=0)
    monthly: float | None = Field(None, gt=0)
    yearly: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _at_least_one(self) -> Self:
        if all(
            v is None for v in (self.half_hour, self.hourly, self.daily, self.monthly, self.yearly)
        ):
            raise ValueError("give at least one of half_hour, hourly, daily, monthly, yearly")
        return self


class StackConfig(_Strict):
    """One stack (emission point) with its sensors and permit limits."""

    name: str = ""
    reference_o2: float | None = Field(
        None, ge=0, lt=21, description="Reference O2 in % vol dry for normalisation."
    )
    sensors: dict[Id, SensorConfig] = Field(min_length=1)
    limits: dict[Quantity, EmissionLimit] = Field(default_factory=dict)
    compliance: StackCompliance = Field(default_factory=StackCompliance)
    detection: DetectionConfig = Field(default_factory=DetectionConfig)
    pems: list[PemsConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _models_name_sensors(self) -> Self:
        for sid in self.detection.exclude:
            if sid not in self.sensors:
                raise ValueError(f"detection.exclude: no sensor {sid!r}")
        targets = set()
        for i, pems in enumerate(self.pems):
            for sid in (pems.target, *pems.features):
                if sid not in self.sensors:
                    raise ValueError(f"pems.{i}: no sensor {sid!r} in this stack")
            if pems.target in targets:
                raise ValueError(f"pems.{i}: a second model for {pems.target!r}")
            targets.add(pems.target)
        return self

    @model_validator(mode="after")
    def _compliance_is_computable(self) -> Self:
        """Everything the compliance engine needs for the configured limits must exist, so a
        misconfiguration fails at start-up and not in the middle of a reporting day."""
        for quantity in self.limits:
            if quantity not in POLLUTANTS:
                raise ValueError(f"limits.{quantity.value}: limits apply to pollutants only")
            sources = self.pollutant_sensors(quantity)
            if not sources:
                raise ValueError(f"limits.{quantity.value}: no sensor of this stack measures it")
            limit = self.limits[quantity]
            table = CI_FRACTION.get(self.compliance.regime.value, {})
            if limit.ci_fraction is None and quantity.value not in table:
                raise ValueError(
                    f"limits.{quantity.value}: the {self.compliance.regime.value.upper()} "
                    "regime defines no confidence interval for it; set ci_fraction"
                )
            for sensor_id in sources:
                sensor = self.sensors[sensor_id]
                if sensor.unit == "ppm" and sensor.conditions == "actual":
                    raise ValueError(
                        f"sensors.{sensor_id}.conditions: a ppm (volume) fraction does not "
                        "depend on temperature and pressure; use 'standard'"
                    )
                unit = sensor.unit
                if unit not in CONCENTRATION_UNITS:
                    raise ValueError(
                        f"sensors.{sensor_id}.unit: {unit!r} cannot be compared with a limit; "
                        f"use one of {sorted(CONCENTRATION_UNITS)}"
                    )
        for role in PERIPHERAL_ROLES:
            chosen = getattr(self.compliance.peripherals, role)
            if chosen is None:
                continue
            named = self.sensors.get(chosen)
            if named is None:
                raise ValueError(f"compliance.peripherals.{role}: no sensor {chosen!r}")
            if named.quantity.value != role:
                raise ValueError(
                    f"compliance.peripherals.{role}: sensor {chosen!r} measures "
                    f"{named.quantity.value}, not {role}"
                )
        for sensor_id, sensor in self.sensors.items():
            if sensor.check is None:
                continue
            analyser = self.sensors.get(sensor.check.analyser)
            if analyser is None or analyser.check is not None:
                raise ValueError(
                    f"sensors.{sensor_id}.check.analyser: no analyser {sensor.check.analyser!r}"
                )
            if analyser.quantity is not sensor.quantity:
                raise ValueError(
                    f"sensors.{sensor_id}.quantity: a check of {sensor.check.analyser!r} "
                    f"measures {analyser.quantity.value}, not {sensor.quantity.value}"
                )
        if self.limits:
            self._check_peripherals_present()
        return self

    def _check_peripherals_present(self) -> None:
        limited = [s for q in self.limits for s in self.pollutant_sensors(q)]
        needs: dict[str, str] = {}
        if self.reference_o2 is not None:
            needs["o2"] = "normalisation to the reference O2"
        o2 = self.peripheral("o2")
        if any(self.sensors[s].basis == "wet" for s in limited) or (
            o2 is not None and self.sensors[o2].basis == "wet"
        ):
            needs["h2o"] = "the wet → dry conversion"
        if any(self.sensors[s].conditions == "actual" for s in limited):
            needs["temperature"] = needs["pressure"] = "conversion to standard conditions"
        for role, why in needs.items():
            if self.peripheral(role) is None:
                raise ValueError(
                    f"compliance.peripherals.{role}: {why} needs a {role} sensor; add one or "
                    f"name it (two or more {role} sensors are ambiguous)"
                )
        if self.peripheral("flow") is not None:
            needs["flow"] = "mass emissions"
        units = {
            "o2": {"%"},
            "h2o": {"%"},
            "temperature": TEMPERATURE_UNITS,
            "pressure": PRESSURE_UNITS,
            "flow": FLOW_UNITS,
        }
        for role, allowed in units.items():
            sid = self.peripheral(role)
            if sid is not None and role in needs and self.sensors[sid].unit not in allowed:
                raise ValueError(
                    f"sensors.{sid}.unit: {self.sensors[sid].unit!r} is not a {role} unit the "
                    f"engine converts; use one of {sorted(allowed)}"
                )

    def pollutant_sensors(self, quantity: Quantity) -> list[str]:
        """The sensor(s) giving a pollutant: its own analyser, or for NOx without one the NO
        (and NO2) analysers, combined as NO2 (EN 14792 / IED: NOx expressed as NO2)."""
        measuring = {sid: s for sid, s in self.sensors.items() if s.check is None}
        own = [sid for sid, s in measuring.items() if s.quantity is quantity]
        if own or quantity is not Quantity.NOX:
            return own
        return [
            sid
            for sid, s in measuring.items()
            if s.quantity in (Quantity.NO, Quantity.NO2)
            and any(t.quantity is Quantity.NO for t in measuring.values())
        ]

    def peripheral(self, role: str) -> str | None:
        """Sensor id for a peripheral role (o2, h2o, temperature, pressure, flow, mode): the
        one named under ``compliance.peripherals``, else the stack's only sensor of it."""
        chosen: str | None = getattr(self.compliance.peripherals, role)
        if chosen is not None:
            return chosen
        matches = [
            sid for sid, s in self.sensors.items() if s.quantity.value == role and s.check is None
        ]
        return matches[0] if len(matches) == 1 else None

    def check_channels(self, analyser: str) -> dict[str, CheckChannel]:
        """The zero/span check sensors of an analyser, by sensor id."""
        return {
            sid: s.check
            for sid, s in self.sensors.items()
            if s.check is not None and s.check.analyser == analyser
        }


class PlantInfo(_Strict):
    """One plant (site) with its stacks."""

    name: str = ""
    timezone: str = "UTC"
    stacks: dict[Id, StackConfig] = Field(min_length=1)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(f"unknown time zone {v!r}") from err
        return v


class PlantConfig(_Strict):
    """The whole plant configuration file."""

    plants: dict[Id, PlantInfo] = Field(min_length=1)

    def sensors(self) -> Iterator[tuple[SensorKey, SensorConfig]]:
        """Every configured sensor with its key, in file order."""
        for plant_id, plant in self.plants.items():
            for stack_id, stack in plant.stacks.items():
                for sensor_id, sensor in stack.sensors.items():
                    yield SensorKey(plant_id, stack_id, sensor_id), sensor

    def sensor(self, plant: str, stack: str, sensor: str) -> SensorConfig | None:
        """The sensor's configuration, or ``None`` when it is not configured."""
        p = self.plants.get(plant)
        s = p.stacks.get(stack) if p else None
        return s.sensors.get(sensor) if s else None


class ConfigError(Exception):
    """The plant configuration file cannot be used; the message names file, path and problem."""


_PLAIN_KEY = re.compile(r"^[\w\[\]-]+$")


def _format_validation(path: Path, err: ValidationError) -> str:
    lines = [f"{path}: {err.error_count()} problem(s) in the plant configuration"]
    for e in err.errors():
        # Quote keys that would be invisible or ambiguous in a dotted path ("", " ", "a.b").
        parts = (str(p) if _PLAIN_KEY.match(str(p)) else repr(p) for p in e["loc"])
        where = ".".join(parts) or "(top level)"
        lines.append(f"  - {where}: {e['msg']}")
    return "\n".join(lines)


def parse_plant_config(data: Any, source: Path) -> PlantConfig:
    """Validate already-loaded YAML data; ``source`` is only used in error messages."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping with a 'plants' key at the top level")
    try:
        return PlantConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_validation(source, err)) from err


def load_plant_config(path: str | Path) -> PlantConfig:
    """Read and validate a plant configuration file.

    Raises :class:`ConfigError` naming the file, the path inside it and what is wrong.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the plant configuration: {err.strerror}") from err
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text: invalid byte at position {err.start}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(f"{path}: invalid YAML{where}: {problem}") from err
    except RecursionError:
        raise ConfigError(f"{path}: invalid YAML: nested too deeply") from None
    return parse_plant_config(data, path)
