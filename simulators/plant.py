"""A seeded, physically plausible simulation of every sensor in a plant configuration.

Each stack has one :class:`StackProcess`: a few slowly varying process states (load, excess
air, combustion temperature, fuel sulphur, filter wear, ...) from which *every* quantity of the
stack is derived. The sensors of a stack therefore agree with each other the way real ones do:
at high load O2 is low, temperatures, NOx and flow are high; CO shoots up when O2 dips. Each
sensor then adds its own measurement noise, converts to its configured unit, quantises to its
resolution and clips into its ``valid_range``.

Concentrations are what an extractive analyser reports: mg/Nm3, dry gas, at the *actual* O2
(normalising to the reference O2 is the compliance engine's job); NOx is expressed as NO2.
O2 and CO2 are % vol dry, H2O % vol wet, temperature the flue gas temperature at the
measurement plane in °C, pressure absolute in hPa, flow Nm3/h, load % of nominal.

The combustion model of a stack is chosen from its reference O2 (the IED reference tells the
plant type): >= 13 % gas turbine, <= 4.5 % gas-fired boiler, otherwise solid-fuel (biomass)
boiler. Random walks are Ornstein-Uhlenbeck processes updated exactly for any time step, so a
coarse step (e.g. one minute) samples the same statistics as a fine one.

Extension points for fault injection and replay: :meth:`PlantSimulator.process` gives a stack's
process state, which may be changed between steps (e.g. ``filter_wear`` for a torn bag, or the
process-fault attributes ``mode``, ``load_scale``, ``o2_offset``, ``nox_factor`` and
``co_factor``, which leave the random walks untouched so the stack returns to exactly its
unfaulted course afterwards);
:attr:`PlantSimulator.next_due_ns` tells a wrapper when the next reading will be measured, and
readings are plain :class:`~stream.model.Reading` values that a wrapper may rewrite (status,
value) or drop on their way to the publisher. A ``mode`` sensor reports the stack's operating
mode (0 normal, 1 start-up, 2 shut-down).
"""

from __future__ import annotations

import heapq
import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from stream.model import NS_PER_S, Reading, SensorKey
from stream.plant import PlantConfig, Quantity, SensorConfig, StackConfig

# Molar mass / molar volume (22.414 l/mol at 273.15 K, 101.325 kPa): mg/Nm3 per ppm.
_MG_PER_PPM = {
    Quantity.NOX: 46.006 / 22.414,  # NOx as NO2
    Quantity.NO2: 46.006 / 22.414,
    Quantity.NO: 30.006 / 22.414,
    Quantity.SO2: 64.066 / 22.414,
    Quantity.CO: 28.010 / 22.414,
    Quantity.NH3: 17.031 / 22.414,
    Quantity.HCL: 36.461 / 22.414,
    Quantity.HF: 20.006 / 22.414,
    Quantity.N2O: 44.013 / 22.414,
    Quantity.TOC: 12.011 / 22.414,  # as carbon
}
_NO_SHARE = 0.95  # share of NO in NOx by volume in flue gas; the rest is NO2
_CONCENTRATIONS = frozenset(_MG_PER_PPM) | {Quantity.DUST, Quantity.HG}
_DAY_S = 86_400.0


@dataclass(frozen=True, slots=True)
class CombustionProfile:
    """Parameters of one plant type. ``*_low`` apply at minimum load, ``*_full`` at full load;
    concentrations marked ``_ref`` are mg/Nm3 dry at the stack's reference O2."""

    name: str
    load_min: float  # fraction of nominal
    load_base: float  # load at the night minimum of the daily curve
    load_swing: float  # added at the afternoon maximum
    load_sigma: float  # random walk (dispatch, fuel quality) around the daily curve
    o2_low: float
    o2_full: float
    o2_sigma: float  # fast excess-air fluctuation (fuel feed, draught)
    comb_temp_low: float  # furnace / firing temperature, °C
    comb_temp_full: float
    flue_temp_low: float  # at the measurement plane, °C
    flue_temp_full: float
    nox_ref_low: float  # fuel NOx plus thermal NOx at comb_temp_low
    nox_per_kelvin: float  # thermal NOx growth with combustion temperature
    co_ref_base: float
    co_low_o2_amp: float  # incomplete burn-out when air runs short
    co_o2_knee: float  # O2 (% dry) where that term equals co_low_o2_amp
    co_part_load_amp: float  # flame quenching at low load (lean-premix turbines)
    co_puffs_per_hour: float  # CO spikes from fuel-feed surges, at O2 = knee
    fuel_sulphur_pct: float
    so2_ref_per_pct_s: float  # at full load; sulphur retention in ash falls with load
    dust_ref: float  # after the filter, when new
    filter_wear_per_day: float  # relative dust increase per day of operation
    h2o_low: float  # % vol wet
    h2o_full: float
    co2_max: float  # % dry at stoichiometric combustion
    flow_full: float  # Nm3/h at full load
    minor_ref: dict[Quantity, float] = field(default_factory=dict)


SOLID_FUEL_BOILER = CombustionProfile(
    name="solid-fuel boiler", load_min=0.40, load_base=0.45, load_swing=0.45, load_sigma=0.06,
    o2_low=10.5, o2_full=5.5, o2_sigma=0.35, comb_temp_low=850.0, comb_temp_full=1000.0,
    flue_temp_low=135.0, flue_temp_full=180.0, nox_ref_low=110.0, nox_per_kelvin=0.45,
    co_ref_base=12.0, co_low_o2_amp=40.0, co_o2_knee=5.0, co_part_load_amp=5.0,
    co_puffs_per_hour=6.0, fuel_sulphur_pct=0.08, so2_ref_per_pct_s=700.0, dust_ref=3.0,
    filter_wear_per_day=0.05, h2o_low=13.0, h2o_full=17.0, co2_max=20.3, flow_full=75_000.0,
    minor_ref={Quantity.TOC: 3.0, Quantity.HCL: 8.0, Quantity.HF: 0.3, Quantity.NH3: 3.0,
               Quantity.HG: 0.002, Quantity.N2O: 5.0},
)  # fmt: skip
GAS_BOILER = CombustionProfile(
    name="gas-fired boiler", load_min=0.30, load_base=0.40, load_swing=0.50, load_sigma=0.06,
    o2_low=6.0, o2_full=2.5, o2_sigma=0.20, comb_temp_low=1100.0, comb_temp_full=1250.0,
    flue_temp_low=90.0, flue_temp_full=130.0, nox_ref_low=60.0, nox_per_kelvin=0.30,
    co_ref_base=5.0, co_low_o2_amp=30.0, co_o2_knee=2.0, co_part_load_amp=3.0,
    co_puffs_per_hour=0.5, fuel_sulphur_pct=0.0005, so2_ref_per_pct_s=3000.0, dust_ref=0.5,
    filter_wear_per_day=0.0, h2o_low=15.0, h2o_full=18.0, co2_max=11.7, flow_full=60_000.0,
    minor_ref={Quantity.TOC: 1.0, Quantity.HCL: 0.1, Quantity.HF: 0.01, Quantity.NH3: 1.0,
               Quantity.HG: 0.0001, Quantity.N2O: 1.0},
)  # fmt: skip
GAS_TURBINE = CombustionProfile(
    name="gas turbine", load_min=0.40, load_base=0.55, load_swing=0.40, load_sigma=0.05,
    o2_low=16.5, o2_full=13.5, o2_sigma=0.10, comb_temp_low=1250.0, comb_temp_full=1400.0,
    flue_temp_low=480.0, flue_temp_full=560.0, nox_ref_low=18.0, nox_per_kelvin=0.12,
    co_ref_base=3.0, co_low_o2_amp=0.0, co_o2_knee=12.0, co_part_load_amp=60.0,
    co_puffs_per_hour=0.0, fuel_sulphur_pct=0.0005, so2_ref_per_pct_s=3000.0, dust_ref=0.3,
    filter_wear_per_day=0.0, h2o_low=7.0, h2o_full=9.0, co2_max=11.7, flow_full=450_000.0,
    minor_ref={Quantity.TOC: 1.0, Quantity.HCL: 0.1, Quantity.HF: 0.01, Quantity.NH3: 1.0,
               Quantity.HG: 0.0001, Quantity.N2O: 2.0},
)  # fmt: skip


def profile_for(stack: StackConfig) -> CombustionProfile:
    """The combustion model for a stack, from its reference O2 (see the module docstring)."""
    ref = stack.reference_o2
    if ref is not None and ref >= 13.0:
        return GAS_TURBINE
    if ref is not None and ref <= 4.5:
        return GAS_BOILER
    return SOLID_FUEL_BOILER


def _ou(x: float, dt_s: float, tau_s: float, sigma: float, rng: random.Random) -> float:
    """Exact Ornstein-Uhlenbeck step around 0 with stationary standard deviation ``sigma``."""
    decay = math.exp(-dt_s / tau_s)
    return x * decay + sigma * math.sqrt(1.0 - decay * decay) * rng.gauss(0.0, 1.0)


def _day_curve(hour: float) -> float:
    """0 at 03:00 local time, 1 at 15:00, smooth in between: a typical daily demand shape."""
    return 0.5 - 0.5 * math.cos(2.0 * math.pi * (hour - 3.0) / 24.0)


class StackProcess:
    """The process state of one stack, advanced in time order by :meth:`advance`.

    The public attributes are the state a fault injector may change between steps. The
    process-fault attributes only act on the derived values, never on the random walks:
    ``mode`` (the value a ``mode`` sensor reports), ``load_scale`` (multiplies the load, below
    the plant's minimum load too: start-up and shut-down ramps), ``o2_offset`` (% O2 added:
    negative is an air shortage, and CO follows through the combustion model), ``nox_factor``
    (multiplies NOx: a failed SNCR/SCR reagent dosing) and ``co_factor`` (multiplies CO: poor
    burn-out in a cold furnace during start-up and shut-down).
    """

    def __init__(
        self,
        profile: CombustionProfile,
        reference_o2: float | None,
        tz: ZoneInfo,
        rng: random.Random,
        start_ns: int,
    ) -> None:
        self.profile = profile
        self.reference_o2 = reference_o2
        self._tz = tz
        self._rng = rng
        self.ts_ns = start_ns
        p = profile
        # Random walks start in their stationary distribution, so seeds differ from the start.
        self.load_dev = rng.gauss(0.0, p.load_sigma)
        self.o2_dev = rng.gauss(0.0, p.o2_sigma)
        self.temp_dev = rng.gauss(0.0, 10.0)  # K, combustion-temperature fluctuation
        self.sulphur_dev = rng.gauss(0.0, 0.25)  # relative, fuel batches
        self.moisture_dev = rng.gauss(0.0, 1.0)  # % vol, fuel moisture
        self.ambient_dev = rng.gauss(0.0, 8.0)  # hPa, weather
        self.co_puff = 0.0  # mg/Nm3 at reference O2, decaying
        self.filter_wear = 0.0  # relative increase of dust emission
        self.mode = 0
        self.load_scale = 1.0
        self.o2_offset = 0.0
        self.nox_factor = 1.0
        self.co_factor = 1.0
        self.values: dict[Quantity, float] = {}
        self._derive()

    def advance(self, ts_ns: int) -> None:
        """Step the random walks to ``ts_ns``; earlier or equal times leave the state as is."""
        dt = (ts_ns - self.ts_ns) / NS_PER_S
        if dt <= 0:
            return
        self.ts_ns = ts_ns
        self._advance_walks(dt)
        self._derive()

    def refresh(self) -> None:
        """Derive the values again after a process-fault attribute changed (same time)."""
        self._derive()

    def _advance_walks(self, dt: float) -> None:
        p, rng = self.profile, self._rng
        self.load_dev = _ou(self.load_dev, dt, 2 * 3600.0, p.load_sigma, rng)
        self.o2_dev = _ou(self.o2_dev, dt, 30.0, p.o2_sigma, rng)
        self.temp_dev = _ou(self.temp_dev, dt, 600.0, 10.0, rng)
        self.sulphur_dev = _ou(self.sulphur_dev, dt, 6 * 3600.0, 0.25, rng)
        self.moisture_dev = _ou(self.moisture_dev, dt, 4 * 3600.0, 1.0, rng)
        self.ambient_dev = _ou(self.ambient_dev, dt, 3 * _DAY_S, 8.0, rng)
        self.filter_wear += p.filter_wear_per_day * dt / _DAY_S
        self._step_co_puffs(dt)

    def _step_co_puffs(self, dt: float) -> None:
        """Short CO spikes (fuel surges), more frequent the lower the O2; decay within ~20 s.

        The rate follows the unfaulted O2, so process faults never change the random draws.
        """
        p, rng = self.profile, self._rng
        tau = 20.0
        self.co_puff *= math.exp(-dt / tau)
        o2 = self._o2(self._natural_load())
        rate_per_s = p.co_puffs_per_hour / 3600.0 * math.exp(min(30.0, p.co_o2_knee - o2))
        if rate_per_s > 0 and rng.random() < 1.0 - math.exp(-rate_per_s * dt):
            age = rng.random() * dt  # when within the step the surge happened
            self.co_puff += rng.expovariate(1.0 / 150.0) * math.exp(-age / tau)

    def _natural_load(self) -> float:
        p = self.profile
        local = datetime.fromtimestamp(self.ts_ns / NS_PER_S, UTC).astimezone(self._tz)
        hour = local.hour + local.minute / 60.0 + local.second / 3600.0
        load = p.load_base + p.load_swing * _day_curve(hour) + self.load_dev
        return min(1.0, max(p.load_min, load))

    def _load(self) -> float:
        load = self._natural_load()
        return load if self.load_scale == 1.0 else max(0.0, load * self.load_scale)

    def _o2(self, load: float, offset: float = 0.0) -> float:
        p = self.profile
        x = (load - p.load_min) / (1.0 - p.load_min)
        return min(20.5, max(0.5, p.o2_low + (p.o2_full - p.o2_low) * x + self.o2_dev + offset))

    def _derive(self) -> None:
        """Every quantity from the state, in canonical units (see the module docstring)."""
        p = self.profile
        load = self._load()
        x = (load - p.load_min) / (1.0 - p.load_min)  # 0 at minimum load, 1 at full load
        o2 = self._o2(load, self.o2_offset)
        comb_temp = p.comb_temp_low + (p.comb_temp_full - p.comb_temp_low) * x + self.temp_dev
        heat = (comb_temp - p.comb_temp_low) / (p.comb_temp_full - p.comb_temp_low)
        flue_temp = p.flue_temp_low + (p.flue_temp_full - p.flue_temp_low) * heat
        nox_ref = max(0.0, p.nox_ref_low + p.nox_per_kelvin * (comb_temp - p.comb_temp_low))
        nox_ref *= self.nox_factor
        co_ref = (
            p.co_ref_base
            + p.co_low_o2_amp * math.exp(min(30.0, (p.co_o2_knee - o2) / 0.5))
            + p.co_part_load_amp * math.exp(-x / 0.15)
            + self.co_puff
        ) * self.co_factor
        sulphur = p.fuel_sulphur_pct * math.exp(self.sulphur_dev)
        so2_ref = p.so2_ref_per_pct_s * sulphur * (0.5 + 0.5 * load)
        dust_ref = p.dust_ref * (0.6 + 0.4 * load) * (1.0 + self.filter_wear)
        ref: dict[Quantity, float] = {
            Quantity.NOX: nox_ref,
            Quantity.NO: nox_ref * _NO_SHARE * _MG_PER_PPM[Quantity.NO] / _MG_PER_PPM[Quantity.NOX],
            Quantity.NO2: nox_ref * (1.0 - _NO_SHARE),
            Quantity.CO: co_ref,
            Quantity.SO2: so2_ref,
            Quantity.DUST: dust_ref,
        }
        for quantity, level in p.minor_ref.items():
            ref[quantity] = level * (0.7 + 0.3 * load)
        ref[Quantity.TOC] = ref.get(Quantity.TOC, 1.0) + 0.02 * co_ref  # unburnt with the CO
        # From reference O2 to the actual (measured) O2: more excess air dilutes.
        dilution = 1.0 if self.reference_o2 is None else (21.0 - o2) / (21.0 - self.reference_o2)
        self.values = {q: v * dilution for q, v in ref.items()}
        self.values |= {
            Quantity.O2: o2,
            Quantity.CO2: p.co2_max * (21.0 - o2) / 21.0,
            Quantity.H2O: max(0.5, p.h2o_low + (p.h2o_full - p.h2o_low) * x + self.moisture_dev),
            Quantity.TEMPERATURE: flue_temp,
            Quantity.PRESSURE: 1013.25 + self.ambient_dev + 2.0 * load,  # + stack draught
            Quantity.FLOW: p.flow_full * load * (21.0 - p.o2_full) / (21.0 - o2),
            Quantity.LOAD: 100.0 * load,
            Quantity.MODE: float(self.mode),
        }


# Measurement noise in canonical units: (relative, absolute) standard deviations.
_NOISE: dict[Quantity, tuple[float, float]] = {
    Quantity.O2: (0.0, 0.05),
    Quantity.CO2: (0.0, 0.05),
    Quantity.H2O: (0.0, 0.15),
    Quantity.TEMPERATURE: (0.0, 0.5),
    Quantity.PRESSURE: (0.0, 0.2),
    Quantity.FLOW: (0.015, 0.0),
    Quantity.LOAD: (0.002, 0.1),
    Quantity.DUST: (0.03, 0.05),
    Quantity.HG: (0.03, 0.0002),
    Quantity.MODE: (0.0, 0.0),  # a status signal, exact
}
_CONCENTRATION_NOISE = (0.015, 0.2)


def _normalise_unit(unit: str) -> str:
    return unit.strip().lower().replace(" ", "").replace("³", "3").replace("µ", "u")


def _unit_converter(quantity: Quantity, unit: str) -> tuple[float, float] | None:
    """``(scale, offset)`` from the canonical unit to ``unit``; ``None`` if unknown."""
    u = _normalise_unit(unit)
    if quantity is Quantity.MODE:
        return 1.0, 0.0  # a code, whatever its unit is called
    if quantity in _CONCENTRATIONS:
        by_mass = {"mg/nm3": 1.0, "mg/m3": 1.0, "g/nm3": 1e-3, "g/m3": 1e-3,
                   "ug/nm3": 1e3, "ug/m3": 1e3}  # fmt: skip
        if u in by_mass:
            return by_mass[u], 0.0
        if u in ("ppm", "ppmv") and quantity in _MG_PER_PPM:
            return 1.0 / _MG_PER_PPM[quantity], 0.0
        return None
    table: dict[Quantity, dict[str, tuple[float, float]]] = {
        Quantity.O2: {"%": (1.0, 0.0), "%vol": (1.0, 0.0), "vol%": (1.0, 0.0)},
        Quantity.CO2: {"%": (1.0, 0.0), "%vol": (1.0, 0.0), "vol%": (1.0, 0.0)},
        Quantity.H2O: {"%": (1.0, 0.0), "%vol": (1.0, 0.0), "vol%": (1.0, 0.0)},
        Quantity.TEMPERATURE: {"°c": (1.0, 0.0), "degc": (1.0, 0.0), "c": (1.0, 0.0),
                               "k": (1.0, 273.15), "°f": (1.8, 32.0), "degf": (1.8, 32.0)},
        Quantity.PRESSURE: {"hpa": (1.0, 0.0), "mbar": (1.0, 0.0), "kpa": (0.1, 0.0),
                            "pa": (100.0, 0.0), "bar": (1e-3, 0.0)},
        Quantity.FLOW: {"nm3/h": (1.0, 0.0), "m3/h": (1.0, 0.0), "nm3/s": (1 / 3600, 0.0),
                        "m3/s": (1 / 3600, 0.0)},
        Quantity.LOAD: {"%": (1.0, 0.0)},
    }  # fmt: skip
    return table.get(quantity, {}).get(u)


def _resolution_exponent(lo: float, hi: float) -> int:
    """Decimal exponent of the reading resolution: about 10^4 steps over the sensor's range,
    like a 4-20 mA signal digitised with 14 bits (nox 0-2000 -> 0.1, flow 0-200000 -> 10)."""
    return math.floor(math.log10((hi - lo) / 10_000))


def resolution_decimals(valid_range: tuple[float, float]) -> int:
    """Decimals a sensor with this range reports (see :func:`_resolution_exponent`).

    >>> resolution_decimals((0.0, 2000.0)), resolution_decimals((0.0, 200_000.0))
    (1, -1)
    """
    return -_resolution_exponent(*valid_range)


def measurement_sigma(quantity: Quantity, unit: str, true_value: float) -> float | None:
    """Standard deviation of the simulated measurement noise at ``true_value`` (canonical
    unit), in the sensor's ``unit``; ``None`` when the unit is unknown to the simulator.

    >>> round(measurement_sigma(Quantity.NOX, "mg/Nm3", 100.0), 3)
    1.7
    """
    converter = _unit_converter(quantity, unit)
    if converter is None:
        return None
    rel, absolute = _NOISE.get(quantity, _CONCENTRATION_NOISE)
    return (rel * abs(true_value) + absolute) * abs(converter[0])


def to_unit(quantity: Quantity, unit: str, canonical: float) -> float | None:
    """A canonical-unit value in the sensor's ``unit``; ``None`` when the unit is unknown.

    >>> to_unit(Quantity.TEMPERATURE, "K", 100.0)
    373.15
    """
    converter = _unit_converter(quantity, unit)
    return None if converter is None else canonical * converter[0] + converter[1]


class _Channel:
    """One sensor: reads its stack's process value and adds what the instrument adds."""

    def __init__(
        self,
        key: SensorKey,
        config: SensorConfig,
        process: StackProcess,
        rng: random.Random,
        start_ns: int,
    ) -> None:
        self.key = key
        self.config = config
        self.process = process
        self._rng = rng
        self.interval_ns = max(1, round(config.interval_s * NS_PER_S))
        self.start_ns = start_ns
        self.step = 0  # index of the next due reading
        lo, hi = config.valid_range
        self._decimals = -_resolution_exponent(lo, hi)
        self._converter = _unit_converter(config.quantity, config.unit)
        # No physics (unknown unit): a steady level at a quarter of the range, wandering a bit.
        self._fallback_dev = rng.gauss(0.0, 0.02)

    @property
    def due_ns(self) -> int:
        return self.start_ns + self.step * self.interval_ns

    def skip_past(self, ts_ns: int) -> None:
        """Make the next due time the first one after ``ts_ns``."""
        self.step = max(self.step, (ts_ns - self.start_ns) // self.interval_ns + 1)

    def measure(self, ts_ns: int) -> Reading:
        quantity = self.config.quantity
        lo, hi = self.config.valid_range
        true = self.process.values.get(quantity)
        if true is None or self._converter is None:
            self._fallback_dev = _ou(self._fallback_dev, self.config.interval_s, 600.0, 0.02,
                                     self._rng)  # fmt: skip
            value = lo + (hi - lo) * (0.25 + self._fallback_dev + 0.005 * self._rng.gauss(0, 1))
        else:
            rel, absolute = _NOISE.get(quantity, _CONCENTRATION_NOISE)
            sigma = rel * abs(true) + absolute
            scale, offset = self._converter
            value = (true + self._rng.gauss(0.0, sigma)) * scale + offset
        value = min(hi, max(lo, round(value, self._decimals)))
        return Reading(
            plant=self.key.plant,
            stack=self.key.stack,
            sensor=self.key.sensor,
            ts_ns=ts_ns,
            value=float(value),
            quantity=quantity.value,
            unit=self.config.unit,
        )


class PlantSimulator:
    """Readings of every sensor in ``config``, each at its ``interval_s``, from ``start_ns`` on.

    Deterministic: the same configuration, seed, start time and sequence of calls give the
    same readings. ``start_ns`` defaults to now, rounded down to the second. Time only moves
    forward: :meth:`readings_at` and :meth:`stream` share one clock and one schedule.

    >>> cfg = PlantConfig.model_validate({"plants": {"p": {"stacks": {"b1": {
    ...     "reference_o2": 6, "sensors": {
    ...         "nox": {"quantity": "nox", "unit": "mg/Nm3", "valid_range": [0, 2000]},
    ...         "o2": {"quantity": "o2", "unit": "%", "valid_range": [0, 25]}}}}}}})
    >>> sim = PlantSimulator(cfg, seed=1, start_ns=1_700_000_000 * NS_PER_S)
    >>> [(r.sensor, r.ts_ns - sim.start_ns) for r in sim.stream(sim.start_ns + 2 * NS_PER_S)]
    [('nox', 0), ('o2', 0), ('nox', 1000000000), ('o2', 1000000000)]
    >>> 0 < sim.readings_at(sim.start_ns + 60 * NS_PER_S)[0].value < 2000
    True
    """

    def __init__(self, config: PlantConfig, seed: int = 0, start_ns: int | None = None) -> None:
        if start_ns is None:
            start_ns = time.time_ns() // NS_PER_S * NS_PER_S
        self.config = config
        self.seed = seed
        self.start_ns = start_ns
        self._now_ns = start_ns
        self._processes: dict[tuple[str, str], StackProcess] = {}
        self._channels: list[_Channel] = []
        for plant_id, plant in config.plants.items():
            tz = ZoneInfo(plant.timezone)
            for stack_id, stack in plant.stacks.items():
                # Seeded from strings: stable across runs (unlike hash()), independent per stack.
                stack_rng = random.Random(f"{seed}/{plant_id}/{stack_id}")  # noqa: S311
                process = StackProcess(
                    profile_for(stack), stack.reference_o2, tz, stack_rng, start_ns
                )
                self._processes[(plant_id, stack_id)] = process
                for sensor_id, sensor in stack.sensors.items():
                    rng = random.Random(f"{seed}/{plant_id}/{stack_id}/{sensor_id}")  # noqa: S311
                    key = SensorKey(plant_id, stack_id, sensor_id)
                    self._channels.append(_Channel(key, sensor, process, rng, start_ns))
        # (due time, channel index): the earliest due reading first, ties in file order.
        self._schedule = [(c.due_ns, i) for i, c in enumerate(self._channels)]
        heapq.heapify(self._schedule)

    @property
    def now_ns(self) -> int:
        """The latest time the simulation has produced readings for."""
        return self._now_ns

    @property
    def next_due_ns(self) -> int | None:
        """When the next reading of :meth:`stream` is due (``None`` without sensors): a wrapper
        sets the process state for that time before asking for the reading."""
        return self._schedule[0][0] if self._schedule else None

    def process(self, plant: str, stack: str) -> StackProcess:
        """The process state of one stack (for fault injection); ``KeyError`` if unknown."""
        return self._processes[(plant, stack)]

    def _check_forward(self, ts_ns: int) -> None:
        if ts_ns < self._now_ns:
            raise ValueError(
                f"time only moves forward: {ts_ns} is before the simulation time {self._now_ns}"
            )

    def readings_at(self, ts_ns: int) -> list[Reading]:
        """One reading stamped ``ts_ns`` for each sensor due at or before ``ts_ns``.

        Due times passed over are not filled in (handy for coarse steps through a long
        period); the sensors' next due times become the first ones after ``ts_ns``.
        """
        self._check_forward(ts_ns)
        due: list[int] = []
        while self._schedule and self._schedule[0][0] <= ts_ns:
            due.append(heapq.heappop(self._schedule)[1])
        self._now_ns = ts_ns
        readings = []
        for index in sorted(due):
            channel = self._channels[index]
            channel.process.advance(ts_ns)
            readings.append(channel.measure(ts_ns))
            channel.skip_past(ts_ns)
            heapq.heappush(self._schedule, (channel.due_ns, index))
        return readings

    def stream(self, until_ns: int | None = None) -> Iterator[Reading]:
        """Every reading at its due time, in time order, up to (excluding) ``until_ns``;
        endless if ``until_ns`` is ``None``."""
        while self._schedule:
            due_ns, index = self._schedule[0]
            if until_ns is not None and due_ns >= until_ns:
                return
            heapq.heappop(self._schedule)
            channel = self._channels[index]
            self._now_ns = due_ns
            channel.process.advance(due_ns)
            reading = channel.measure(due_ns)
            channel.step += 1
            heapq.heappush(self._schedule, (channel.due_ns, index))
            yield reading
