"""What the dashboards need to know about a plant configuration, read once at build time.

Panels filter by the ``plant`` and ``stack`` template variables at query time, so one set of
dashboards serves every plant. Numbers that InfluxDB does not store come from here and are
written into the queries: emission limits (ELV lines, "% of ELV"), short-term periods (running
daily average), and expected sampling intervals (data availability). Change the plant
configuration, rebuild the dashboards (``stackwatch dashboards build``).

>>> from stream.plant import PlantConfig
>>> cfg = PlantConfig.model_validate({"plants": {"p": {"stacks": {"s": {
...     "reference_o2": 6,
...     "sensors": {"nox": {"quantity": "nox", "unit": "mg/Nm3", "valid_range": [0, 2000]},
...                 "o2": {"quantity": "o2", "unit": "%", "valid_range": [0, 25],
...                        "interval_s": 10}},
...     "limits": {"nox": {"daily": 200, "half_hour": 400}}}}}}})
>>> [stack] = stack_facts(cfg)
>>> stack.pollutants["nox"].short_term, stack.sta_per_day, stack.interval_groups
(400.0, 24, ((1.0, ('nox',)), (10.0, ('o2',))))
>>> pollutants(cfg)
['nox']
"""

from __future__ import annotations

from dataclasses import dataclass

from stream.compliance.types import Regime
from stream.plant import POLLUTANT_LABELS, POLLUTANTS, PlantConfig, Quantity, StackConfig

LABELS = POLLUTANT_LABELS


@dataclass(frozen=True)
class PollutantFacts:
    """One limited pollutant of one stack. Limits in mg/Nm³ at reference conditions."""

    pollutant: str
    sensors: tuple[str, ...]
    """The analysers giving it (for NOx without its own analyser: the NO/NO2 ones)."""
    quantities: tuple[str, ...]
    """Quantity tags of those sensors in ``readings``."""
    short_term: float | None
    """Short-term ELV as the alerts use it: half-hour, else hourly, else ten-minute."""
    daily: float | None
    daily_criterion: float | None
    """What the engine compares a finished day with: ``daily × daily_limit_factor`` (LCP)."""
    monthly: float | None
    pems: bool
    """A PEMS soft sensor predicts this pollutant's analyser."""


@dataclass(frozen=True)
class StackFacts:
    plant: str
    stack: str
    sta_period_s: int
    """Short-term averaging period: 3600 (LCP) or 1800 (WI)."""
    pollutants: dict[str, PollutantFacts]
    interval_groups: tuple[tuple[float, tuple[str, ...]], ...]
    """Measuring sensors (no QAL3 check channels) grouped by expected interval in seconds."""

    @property
    def sta_per_day(self) -> int:
        """Short-term periods of a nominal day (DST days have one hour more or less)."""
        return 86_400 // self.sta_period_s


def _pollutant(stack: StackConfig, quantity: Quantity) -> PollutantFacts:
    limit = stack.limits[quantity]
    sensors = tuple(stack.pollutant_sensors(quantity))
    quantities = tuple(dict.fromkeys(stack.sensors[s].quantity.value for s in sensors))
    lcp = stack.compliance.regime is Regime.LCP
    criterion = None
    if limit.daily is not None:
        criterion = limit.daily * (stack.compliance.daily_limit_factor if lcp else 1.0)
    return PollutantFacts(
        pollutant=quantity.value,
        sensors=sensors,
        quantities=quantities,
        short_term=limit.half_hour or limit.hourly or limit.ten_minute,
        daily=limit.daily,
        daily_criterion=criterion,
        monthly=limit.monthly,
        pems=any(stack.sensors[p.target].quantity is quantity for p in stack.pems),
    )


def _interval_groups(stack: StackConfig) -> tuple[tuple[float, tuple[str, ...]], ...]:
    groups: dict[float, list[str]] = {}
    for sid, sensor in stack.sensors.items():
        if sensor.check is None:
            groups.setdefault(sensor.interval_s, []).append(sid)
    return tuple((interval, tuple(ids)) for interval, ids in sorted(groups.items()))


def stack_facts(config: PlantConfig) -> list[StackFacts]:
    """Every stack of every plant, in file order."""
    out = []
    for plant_id, plant in config.plants.items():
        for stack_id, stack in plant.stacks.items():
            limited = [q for q in Quantity if q in stack.limits]
            out.append(
                StackFacts(
                    plant=plant_id,
                    stack=stack_id,
                    sta_period_s=stack.compliance.sta_period_s,
                    pollutants={q.value: _pollutant(stack, q) for q in limited},
                    interval_groups=_interval_groups(stack),
                )
            )
    return out


def pollutants(config: PlantConfig) -> list[str]:
    """Pollutants with a limit in at least one stack, in the order of :class:`Quantity`."""
    limited = {q for p in config.plants.values() for s in p.stacks.values() for q in s.limits}
    return [q.value for q in Quantity if q in limited and q in POLLUTANTS]


def timezone(config: PlantConfig) -> str:
    """The dashboards' time zone: the plants' zone when they share one (so "today" starts at
    the plant's midnight, as the daily averages do), else the viewer's browser zone."""
    zones = {p.timezone for p in config.plants.values()}
    return zones.pop() if len(zones) == 1 else "browser"
