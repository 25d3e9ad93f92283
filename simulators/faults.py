"""Fault injection with ground truth: a :class:`~simulators.plant.PlantSimulator` stream with
sensor faults, process faults and status periods, and the list of what was injected.

Detectors, rules and the compliance engine are evaluated against streams whose faults are
known exactly. A schedule of :class:`FaultEvent` values (explicit, :func:`random_schedule`, or
:func:`load_schedule` from YAML) drives a :class:`FaultInjector`, which yields the faulty
readings in time order and keeps :attr:`FaultInjector.labels`, the events actually applied.

Two families of faults exist, as on a real plant:

* **Sensor faults** rewrite one sensor's readings on their way out; the process and every
  other sensor are untouched: ``spike``, ``drift``, ``stuck``, ``dropout``,
  ``calibration_offset``, ``noise_burst``, and the status periods ``maintenance`` and
  ``calibration`` (carried in the reading's ``status``; during a calibration the analyser
  shows zero gas, then span gas).
* **Process faults** change the stack's :class:`~simulators.plant.StackProcess`, so every
  sensor of the stack moves consistently: ``excursion`` (an air shortage lowers O2 and CO
  rises with it; a reagent (SNCR/SCR) failure raises NOx, NO and NO2), ``startup`` and
  ``shutdown`` (load ramps below the minimum load, O2 high, CO elevated, and a ``mode``
  sensor reporting 1 or 2). They act on derived values only, never on the random walks, so
  outside its window a faulted stream equals the unfaulted one with the same seed.

``magnitude`` means, by kind (``None``: a realistic default from the sensor's noise σ):

=====================  =================================================================
spike                  offset of the 1-3 readings, sensor unit (default 20 σ)
drift                  offset reached at the end, growing linearly from 0 (default 25 σ)
calibration_offset     constant offset, sensor unit (default 12 σ)
noise_burst            standard deviation of the added noise, sensor unit (default 10 σ)
calibration            span-gas value shown in the second half (default 80 % of the range)
excursion              air shortage: O2 drop in % vol (default 3.5); reagent failure: NOx
                       factor (default 2)
startup, shutdown      lowest load as a fraction of the normal load (default 0.1)
stuck, dropout,        unused
maintenance
=====================  =================================================================

Offsets are signed and, like every value, clipped into the sensor's ``valid_range``.

>>> from stream.plant import PlantConfig
>>> cfg = PlantConfig.model_validate({"plants": {"p": {"stacks": {"b1": {
...     "reference_o2": 6, "sensors": {
...         "nox": {"quantity": "nox", "unit": "mg/Nm3", "valid_range": [0, 2000]}}}}}}})
>>> sim = PlantSimulator(cfg, seed=1, start_ns=1_767_225_600 * NS_PER_S)
>>> event = FaultEvent("p", "b1", "nox", FaultKind.DROPOUT,
...                    sim.start_ns + 2 * NS_PER_S, sim.start_ns + 4 * NS_PER_S)
>>> injector = FaultInjector(sim, [event])
>>> [(r.ts_ns - sim.start_ns) // NS_PER_S for r in injector.stream(sim.start_ns + 6 * NS_PER_S)]
[0, 1, 4, 5]
>>> injector.labels == [event]
True
"""

from __future__ import annotations

import bisect
import math
import random
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Self

import yaml
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from simulators.plant import (
    PlantSimulator,
    StackProcess,
    measurement_sigma,
    profile_for,
    resolution_decimals,
    to_unit,
)
from stream.compliance.types import OperatingMode
from stream.model import NS_PER_S, Reading, SensorKey, Status, ns_from_datetime
from stream.plant import PlantConfig, Quantity, SensorConfig
from stream.timeparse import format_iso_ns

_HOUR_NS = 3600 * NS_PER_S
_DAY_NS = 24 * _HOUR_NS


class FaultKind(StrEnum):
    """What is injected (see the module docstring)."""

    SPIKE = "spike"
    DRIFT = "drift"
    STUCK = "stuck"
    DROPOUT = "dropout"
    CALIBRATION_OFFSET = "calibration_offset"
    NOISE_BURST = "noise_burst"
    EXCURSION = "excursion"
    MAINTENANCE = "maintenance"
    CALIBRATION = "calibration"
    STARTUP = "startup"
    SHUTDOWN = "shutdown"


PROCESS_KINDS = frozenset({FaultKind.EXCURSION, FaultKind.STARTUP, FaultKind.SHUTDOWN})
"""Kinds applied to the stack's process (every sensor of the stack follows)."""
STATUS_KINDS = frozenset({FaultKind.MAINTENANCE, FaultKind.CALIBRATION})
"""Kinds carried in the ``status`` field of the readings."""


class ExcursionCause(StrEnum):
    """The process fault behind an ``excursion``."""

    AIR_SHORTAGE = "air_shortage"  # O2 down, CO (and TOC) up
    REAGENT_FAILURE = "reagent_failure"  # SNCR/SCR dosing lost: NOx up


# The pollutants an excursion of each cause pushes up: its labels, one per sensor.
_EXCURSION_QUANTITIES = {
    ExcursionCause.AIR_SHORTAGE: frozenset({Quantity.CO, Quantity.TOC}),
    ExcursionCause.REAGENT_FAILURE: frozenset({Quantity.NOX, Quantity.NO, Quantity.NO2}),
}


class ScheduleError(ValueError):
    """A fault schedule that cannot be applied; the message says which event and why."""


@dataclass(frozen=True, slots=True)
class FaultEvent:
    """One fault over ``[start_ns, end_ns)``.

    ``sensor`` is ``""`` for the stack-level kinds ``startup`` and ``shutdown``; an
    ``excursion`` is scheduled with ``""`` (or a pollutant sensor, which picks the cause) and
    labelled once per affected pollutant sensor. ``magnitude`` is described in the module
    docstring; ``cause`` only applies to excursions.
    """

    plant: str
    stack: str
    sensor: str
    kind: FaultKind
    start_ns: int
    end_ns: int
    magnitude: float | None = None
    cause: ExcursionCause | None = None

    def __post_init__(self) -> None:
        if self.end_ns <= self.start_ns:
            raise ScheduleError(f"{self.describe()}: the end must be after the start")
        if self.magnitude is not None and not math.isfinite(self.magnitude):
            raise ScheduleError(f"{self.describe()}: magnitude {self.magnitude} is not finite")

    @property
    def key(self) -> SensorKey:
        return SensorKey(self.plant, self.stack, self.sensor)

    def label(self) -> FaultEvent:
        """The event as a labels file keeps it: where, what and when, without parameters."""
        return replace(self, magnitude=None, cause=None)

    def describe(self) -> str:
        where = "/".join(p for p in (self.plant, self.stack, self.sensor) if p)
        return f"{self.kind.value} on {where} at {format_iso_ns(self.start_ns)}"


def parse_duration_s(text: str | float) -> float:
    """Seconds from ``90``, ``90s``, ``500ms``, ``15m``/``15min``, ``2h``, ``7d`` or ``1w``.

    >>> parse_duration_s("90s"), parse_duration_s("2h"), parse_duration_s("1.5d")
    (90.0, 7200.0, 129600.0)
    >>> parse_duration_s("soon")
    Traceback (most recent call last):
    ...
    ValueError: 'soon' is not a duration (use e.g. 90s, 15m, 2h, 7d)
    """
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|min|h|d|w)?\s*", text)
        if match is None:
            raise ValueError(f"{text!r} is not a duration (use e.g. 90s, 15m, 2h, 7d)")
        unit = {
            "ms": 0.001,
            "s": 1.0,
            "m": 60.0,
            "min": 60.0,
            "h": 3600.0,
            "d": 86_400.0,
            "w": 604_800.0,
        }[match.group(2) or "s"]
        seconds = float(match.group(1)) * unit
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"duration {text!r} must be positive")
    return seconds


# --- sizes -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SensorScale:
    """What realistic fault sizes of one sensor are measured against."""

    level: float  # typical value, sensor unit
    sigma: float  # measurement noise, sensor unit (at least one resolution step)
    valid_range: tuple[float, float]
    decimals: int
    interval_ns: int

    @classmethod
    def of(cls, sensor: SensorConfig, process: StackProcess) -> SensorScale:
        lo, hi = sensor.valid_range
        decimals = resolution_decimals(sensor.valid_range)
        true = process.values.get(sensor.quantity)
        level = None if true is None else to_unit(sensor.quantity, sensor.unit, true)
        sigma = None if true is None else measurement_sigma(sensor.quantity, sensor.unit, true)
        if level is None or sigma is None:  # the simulator's fallback channel (unknown unit)
            level, sigma = lo + 0.25 * (hi - lo), 0.005 * (hi - lo)
        sigma = max(sigma, 10.0**-decimals)
        interval_ns = max(1, round(sensor.interval_s * NS_PER_S))
        return cls(min(hi, max(lo, level)), sigma, (lo, hi), decimals, interval_ns)

    def offset(self, size: float) -> float:
        """``size`` with its sign flipped if that keeps the typical level inside the range,
        then shortened to stay inside: an offset the analyser can still show."""
        lo, hi = self.valid_range
        if not lo <= self.level + size <= hi:
            size = -size
        return min(hi - self.level, max(lo - self.level, size))

    def clip(self, value: float) -> float:
        lo, hi = self.valid_range
        return float(min(hi, max(lo, round(value, self.decimals))))


_DEFAULT_SIGMAS = {
    FaultKind.SPIKE: 20.0,
    FaultKind.DRIFT: 25.0,
    FaultKind.CALIBRATION_OFFSET: 12.0,
    FaultKind.NOISE_BURST: 10.0,
}
_DEFAULT_EXCURSION = {ExcursionCause.AIR_SHORTAGE: 3.5, ExcursionCause.REAGENT_FAILURE: 2.0}
_DEFAULT_LOW_LOAD = 0.1
_SPAN_FRACTION = 0.8


def _default_magnitude(kind: FaultKind, scale: SensorScale | None) -> float | None:
    if kind in _DEFAULT_SIGMAS and scale is not None:
        size = _DEFAULT_SIGMAS[kind] * scale.sigma
        return size if kind is FaultKind.NOISE_BURST else scale.offset(size)
    if kind is FaultKind.CALIBRATION and scale is not None:
        lo, hi = scale.valid_range
        return lo + _SPAN_FRACTION * (hi - lo)
    if kind in (FaultKind.STARTUP, FaultKind.SHUTDOWN):
        return _DEFAULT_LOW_LOAD
    return None


# --- checking a schedule against the plant -----------------------------------------------


def _excursion_causes(config: PlantConfig, plant: str, stack: str) -> list[ExcursionCause]:
    """The causes whose pollutant this stack measures (air shortage needs a boiler's CO)."""
    st = config.plants[plant].stacks[stack]
    quantities = {s.quantity for s in st.sensors.values()}
    causes = [c for c, qs in _EXCURSION_QUANTITIES.items() if qs & quantities]
    if profile_for(st).co_low_o2_amp == 0.0 and ExcursionCause.AIR_SHORTAGE in causes:
        causes.remove(ExcursionCause.AIR_SHORTAGE)  # a gas turbine runs far from air shortage
    return causes


def resolve_event(config: PlantConfig, event: FaultEvent) -> FaultEvent:
    """``event`` checked against the plant (``ScheduleError`` with the reason if it cannot be
    applied), an excursion's cause filled in."""
    plant = config.plants.get(event.plant)
    if plant is None:
        raise ScheduleError(f"{event.describe()}: no plant {event.plant!r}")
    stack = plant.stacks.get(event.stack)
    if stack is None:
        raise ScheduleError(
            f"{event.describe()}: plant {event.plant!r} has no stack {event.stack!r}"
        )
    if event.sensor and event.sensor not in stack.sensors:
        raise ScheduleError(
            f"{event.describe()}: stack {event.stack!r} has no sensor {event.sensor!r}"
        )
    if event.kind in (FaultKind.STARTUP, FaultKind.SHUTDOWN):
        if event.sensor:
            raise ScheduleError(
                f"{event.describe()}: {event.kind.value} is stack-level; leave the sensor empty"
            )
        if event.magnitude is not None and not 0 < event.magnitude <= 1:
            raise ScheduleError(
                f"{event.describe()}: magnitude (the lowest load as a fraction of the "
                f"normal load) must be in (0, 1], got {event.magnitude}"
            )
        return event
    if event.kind is not FaultKind.EXCURSION:
        if not event.sensor:
            raise ScheduleError(f"{event.describe()}: {event.kind.value} needs a sensor")
        if event.cause is not None:
            raise ScheduleError(f"{event.describe()}: only an excursion has a cause")
        return event
    possible = _excursion_causes(config, event.plant, event.stack)
    cause = event.cause
    if cause is None and event.sensor:
        quantity = stack.sensors[event.sensor].quantity
        cause = next((c for c in possible if quantity in _EXCURSION_QUANTITIES[c]), None)
        if cause is None:
            raise ScheduleError(
                f"{event.describe()}: an excursion raises CO/TOC (air "
                "shortage) or NOx/NO/NO2 (reagent failure); "
                f"{event.sensor!r} measures {quantity.value}"
            )
    if cause is None and possible:
        cause = possible[0]
    if cause is None or cause not in possible:
        what = cause.value if cause is not None else "an excursion"
        raise ScheduleError(
            f"{event.describe()}: {what} is not possible on this stack "
            "(no sensor of the pollutant it raises, or a gas turbine "
            "for an air shortage)"
        )
    m = event.magnitude
    if cause is ExcursionCause.REAGENT_FAILURE and m is not None and not 0 < m <= 20:
        raise ScheduleError(f"{event.describe()}: the NOx factor must be in (0, 20], got {m}")
    if cause is ExcursionCause.AIR_SHORTAGE and m is not None and not 0 < m <= 20:
        raise ScheduleError(f"{event.describe()}: the O2 drop must be in (0, 20] %, got {m}")
    return replace(event, cause=cause)


def _check_overlaps(events: Sequence[FaultEvent]) -> None:
    """Two faults on one sensor at once, or two process faults on one stack, have no
    defined result; refuse them. (A sensor fault during a process fault is fine.)"""
    last: dict[SensorKey | tuple[str, str], FaultEvent] = {}
    for event in sorted(events, key=lambda e: e.start_ns):
        slot = (event.plant, event.stack) if event.kind in PROCESS_KINDS else event.key
        before = last.get(slot)
        if before is not None and before.end_ns > event.start_ns:
            raise ScheduleError(f"{event.describe()} overlaps {before.describe()}")
        if before is None or event.end_ns > before.end_ns:
            last[slot] = event


# --- the injector --------------------------------------------------------------------------


def _ramp(ts_ns: int, event: FaultEvent) -> float:
    """0 → 1 over the first ~2 minutes (at most a fifth) of a process fault, 1 → 0 at its end:
    a process needs time to change."""
    span = event.end_ns - event.start_ns
    edge = min(120 * NS_PER_S, span // 5) or 1
    return max(0.0, min(1.0, (ts_ns - event.start_ns) / edge, (event.end_ns - ts_ns) / edge))


@dataclass
class _SensorTrack:
    """The faults of one sensor, in start order, and what the injector remembers of it."""

    scale: SensorScale
    events: list[FaultEvent] = field(default_factory=list)
    index: int = 0  # first event not yet over
    last_value: float | None = None  # the last value sent, what a stuck analyser repeats
    frozen: float | None = None
    noise: random.Random | None = None


class FaultInjector:
    """Wraps a :class:`PlantSimulator`: :meth:`stream` yields its readings with the faults of
    ``schedule`` applied; :attr:`labels` are the events applied so far (ground truth).

    The schedule is checked against the plant first (``ScheduleError`` with the reason).
    Readings stay in time order and inside each sensor's ``valid_range``. Like the simulator,
    the injector only moves forward: :meth:`stream` may be called again to continue, and
    :meth:`add` schedules more events (e.g. one day at a time for an endless run).
    """

    def __init__(self, sim: PlantSimulator, schedule: Iterable[FaultEvent] = ()) -> None:
        self.sim = sim
        self._tracks: dict[SensorKey, _SensorTrack] = {}
        for plant_id, plant in sim.config.plants.items():
            for stack_id, stack in plant.stacks.items():
                process = sim.process(plant_id, stack_id)
                for sensor_id, sensor in stack.sensors.items():
                    key = SensorKey(plant_id, stack_id, sensor_id)
                    self._tracks[key] = _SensorTrack(SensorScale.of(sensor, process))
        self._process_events: dict[tuple[str, str], list[FaultEvent]] = {}
        self._pending: list[FaultEvent] = []  # scheduled, not yet reached, by start
        self._applied: list[FaultEvent] = []
        self._events: list[FaultEvent] = []
        self._reached_ns = sim.now_ns
        self._streamed = False
        self.add(schedule)

    def add(self, schedule: Iterable[FaultEvent]) -> None:
        """Schedule more events; each must start at or after the time already streamed."""
        events = [self._resolve(resolve_event(self.sim.config, e)) for e in schedule]
        for event in events:
            if self._streamed and event.start_ns < self._reached_ns:
                raise ScheduleError(f"{event.describe()}: the stream is already past its start")
        _check_overlaps([*self._events, *events])
        self._events.extend(events)
        for event in events:
            if event.kind in PROCESS_KINDS:
                self._process_events.setdefault((event.plant, event.stack), []).append(event)
            else:
                track = self._tracks[event.key]
                bisect.insort(track.events, event, key=lambda e: e.start_ns)
            bisect.insort(self._pending, event, key=lambda e: e.start_ns)
        for process_events in self._process_events.values():
            process_events.sort(key=lambda e: e.start_ns)

    def _resolve(self, event: FaultEvent) -> FaultEvent:
        if event.magnitude is not None:
            return event
        if event.kind is FaultKind.EXCURSION:
            assert event.cause is not None  # resolve_event filled it in
            return replace(event, magnitude=_DEFAULT_EXCURSION[event.cause])
        scale = self._tracks[event.key].scale if event.sensor else None
        return replace(event, magnitude=_default_magnitude(event.kind, scale))

    @property
    def schedule(self) -> list[FaultEvent]:
        """Every scheduled event with its magnitude resolved, in start order."""
        return sorted(self._events, key=lambda e: e.start_ns)

    @property
    def labels(self) -> list[FaultEvent]:
        """The events applied so far, in start order, each ending at most where the stream
        stopped; an excursion once per pollutant sensor it raises."""
        return [replace(e, end_ns=min(e.end_ns, self._reached_ns)) for e in self._applied]

    def stream(self, until_ns: int | None = None) -> Iterator[Reading]:
        """The faulty readings up to (excluding) ``until_ns``; endless if ``None``."""
        sim = self.sim
        readings = sim.stream(until_ns)
        last_due: int | None = None
        while True:
            due = sim.next_due_ns
            if due is None or (until_ns is not None and due >= until_ns):
                break
            self._streamed = True
            if due != last_due:  # sensors due together share one process state
                self._reach(due)
                self._set_processes(due)
                last_due = due
            reading = next(readings)
            self._reached_ns = reading.ts_ns + 1
            out = self._apply(reading)
            if out is not None:
                yield out
        if until_ns is not None:
            self._reached_ns = max(self._reached_ns, until_ns)
            self._reach(until_ns - 1)

    def _reach(self, ts_ns: int) -> None:
        """Record as applied every event that has started by ``ts_ns``."""
        while self._pending and self._pending[0].start_ns <= ts_ns:
            event = self._pending.pop(0)
            if event.kind is FaultKind.EXCURSION:
                assert event.cause is not None
                quantities = _EXCURSION_QUANTITIES[event.cause]
                stack = self.sim.config.plants[event.plant].stacks[event.stack]
                self._applied.extend(
                    replace(event, sensor=sid)
                    for sid, s in stack.sensors.items()
                    if s.quantity in quantities
                )
            else:
                self._applied.append(event)

    def _set_processes(self, ts_ns: int) -> None:
        for (plant, stack), events in self._process_events.items():
            while events and events[0].end_ns <= ts_ns:
                events.pop(0)
            active = events[0] if events and events[0].start_ns <= ts_ns else None
            process = self.sim.process(plant, stack)
            state = _process_state(active, ts_ns)
            current = (
                process.mode,
                process.load_scale,
                process.o2_offset,
                process.nox_factor,
                process.co_factor,
            )
            if state != current:
                (
                    process.mode,
                    process.load_scale,
                    process.o2_offset,
                    process.nox_factor,
                    process.co_factor,
                ) = state
                process.refresh()

    def _apply(self, r: Reading) -> Reading | None:
        track = self._tracks[r.key]
        events = track.events
        while track.index < len(events) and events[track.index].end_ns <= r.ts_ns:
            track.index += 1
            track.frozen = track.noise = None
        event = events[track.index] if track.index < len(events) else None
        if event is None or event.start_ns > r.ts_ns:
            track.last_value = r.value
            return r
        out = self._fault(r, event, track)
        if out is not None:
            track.last_value = out.value
        return out

    def _fault(self, r: Reading, event: FaultEvent, track: _SensorTrack) -> Reading | None:
        kind, scale = event.kind, track.scale
        magnitude = event.magnitude or 0.0
        value, status = r.value, r.status
        if kind is FaultKind.DROPOUT:
            return None
        if kind in (FaultKind.SPIKE, FaultKind.CALIBRATION_OFFSET):
            value += magnitude
        elif kind is FaultKind.DRIFT:
            value += magnitude * (r.ts_ns - event.start_ns) / (event.end_ns - event.start_ns)
        elif kind is FaultKind.STUCK:
            if track.frozen is None:
                track.frozen = r.value if track.last_value is None else track.last_value
            value = track.frozen
        elif kind is FaultKind.NOISE_BURST:
            if track.noise is None:  # seeded by the event: the same burst every run
                track.noise = _event_rng(self.sim.seed, event)
            value += track.noise.gauss(0.0, magnitude)
        elif kind is FaultKind.MAINTENANCE:
            status = Status.MAINTENANCE
        elif kind is FaultKind.CALIBRATION:
            status = Status.CALIBRATION
            if track.noise is None:
                track.noise = _event_rng(self.sim.seed, event)
            zero_phase = r.ts_ns < (event.start_ns + event.end_ns) // 2
            gas = scale.valid_range[0] if zero_phase else magnitude
            value = gas + track.noise.gauss(0.0, scale.sigma)
        return replace(r, value=scale.clip(value), status=status)


def _event_rng(seed: int, event: FaultEvent) -> random.Random:
    return random.Random(f"{seed}/{'/'.join(event.key)}/{event.start_ns}")  # noqa: S311


_ProcessState = tuple[int, float, float, float, float]
_NORMAL: _ProcessState = (OperatingMode.NORMAL.value, 1.0, 0.0, 1.0, 1.0)
_COLD_CO_FACTOR = 5.0  # extra CO (relative) of a cold furnace, at zero load


def _process_state(event: FaultEvent | None, ts_ns: int) -> _ProcessState:
    """``(mode, load_scale, o2_offset, nox_factor, co_factor)`` of a stack at ``ts_ns``."""
    if event is None:
        return _NORMAL
    magnitude = event.magnitude if event.magnitude is not None else _DEFAULT_LOW_LOAD
    progress = (ts_ns - event.start_ns) / (event.end_ns - event.start_ns)
    if event.kind in (FaultKind.STARTUP, FaultKind.SHUTDOWN):
        if event.kind is FaultKind.STARTUP:  # restarting: from low load back up to normal
            mode, scale = OperatingMode.STARTUP, magnitude + (1.0 - magnitude) * progress
        else:  # running down to low load
            mode, scale = OperatingMode.SHUTDOWN, 1.0 - (1.0 - magnitude) * progress
        # Start-up and shut-down run below the minimum load (O2 follows); the furnace is
        # cooler than in operation, so CO burns out worse.
        return mode.value, scale, 0.0, 1.0, 1.0 + _COLD_CO_FACTOR * (1.0 - scale)
    strength = _ramp(ts_ns, event)
    if event.cause is ExcursionCause.AIR_SHORTAGE:
        return OperatingMode.NORMAL.value, 1.0, -magnitude * strength, 1.0, 1.0
    return OperatingMode.NORMAL.value, 1.0, 0.0, 1.0 + (magnitude - 1.0) * strength, 1.0


# --- random schedules ----------------------------------------------------------------------

_DURATION_S: dict[FaultKind, tuple[float, float]] = {
    FaultKind.DRIFT: (1200, 3600),
    FaultKind.STUCK: (120, 600),
    FaultKind.DROPOUT: (30, 600),
    FaultKind.CALIBRATION_OFFSET: (600, 2400),
    FaultKind.NOISE_BURST: (120, 600),
    FaultKind.EXCURSION: (600, 2700),
    FaultKind.MAINTENANCE: (1800, 7200),
    FaultKind.CALIBRATION: (300, 900),
    FaultKind.STARTUP: (1800, 5400),
    FaultKind.SHUTDOWN: (1200, 3600),
}
# Sizes in multiples of the sensor's noise σ, as in stream.detect.evaluate.
_SIZE_SIGMAS: dict[FaultKind, tuple[float, float]] = {
    FaultKind.SPIKE: (10, 40),
    FaultKind.DRIFT: (15, 40),
    FaultKind.CALIBRATION_OFFSET: (8, 20),
    FaultKind.NOISE_BURST: (5, 15),
}
_EXCURSION_SIZES = {
    ExcursionCause.AIR_SHORTAGE: (3.0, 4.5),
    ExcursionCause.REAGENT_FAILURE: (1.5, 2.5),
}
_PLACEMENT_ATTEMPTS = 50


def _random_magnitude(
    kind: FaultKind, scale: SensorScale | None, cause: ExcursionCause | None, rng: random.Random
) -> float | None:
    if kind in _SIZE_SIGMAS and scale is not None:
        size = rng.uniform(*_SIZE_SIGMAS[kind]) * scale.sigma
        if kind is FaultKind.NOISE_BURST:
            return size
        return scale.offset(size if rng.random() < 0.5 else -size)
    if kind is FaultKind.CALIBRATION and scale is not None:
        lo, hi = scale.valid_range
        return lo + rng.uniform(0.7, 0.9) * (hi - lo)
    if kind is FaultKind.EXCURSION and cause is not None:
        return rng.uniform(*_EXCURSION_SIZES[cause])
    if kind in (FaultKind.STARTUP, FaultKind.SHUTDOWN):
        return rng.uniform(0.05, 0.2)
    return None


def random_schedule(
    config: PlantConfig,
    start_ns: int,
    end_ns: int,
    seed: int | str = 0,
    *,
    per_sensor_day: float = 1.0,
    kinds: Iterable[FaultKind] | None = None,
    warmup_s: float = 3600.0,
    gap_s: float = 600.0,
) -> list[FaultEvent]:
    """A seeded random schedule for a simulation of ``[start_ns, end_ns)``, in start order.

    Each stack gets about ``per_sensor_day`` events per sensor and simulated day (``mode``
    sensors never fault themselves), of kinds drawn evenly from ``kinds`` (default: all that
    the stack can have). None starts within ``warmup_s`` of the start (models warm up) and
    events on one sensor, or a process fault and anything else on its stack, keep ``gap_s``
    apart; an event that finds no free slot is left out, so crowded schedules get fewer.
    Sizes are drawn relative to each sensor's noise and level at the start and kept inside
    its valid range; spikes are aligned to the sensor's sampling times counted from
    ``start_ns`` (the simulator's start), so they hit 1-3 readings.

    >>> from stream.plant import PlantConfig
    >>> cfg = PlantConfig.model_validate({"plants": {"p": {"stacks": {"b1": {
    ...     "reference_o2": 6, "sensors": {
    ...         "nox": {"quantity": "nox", "unit": "mg/Nm3", "valid_range": [0, 2000]}}}}}}})
    >>> events = random_schedule(cfg, 0, 2 * 86_400 * NS_PER_S, seed=3, per_sensor_day=2)
    >>> len(events), events == random_schedule(cfg, 0, 2 * 86_400 * NS_PER_S, seed=3,
    ...                                         per_sensor_day=2)
    (4, True)
    """
    if per_sensor_day < 0 or not math.isfinite(per_sensor_day):
        raise ValueError(f"per_sensor_day must be a non-negative number, got {per_sensor_day}")
    wanted = list(FaultKind) if kinds is None else [FaultKind(k) for k in kinds]
    rng = random.Random(f"faults/{seed}")  # noqa: S311
    sim = PlantSimulator(config, seed=0, start_ns=start_ns)  # typical levels at the start
    first = start_ns + round(warmup_s * NS_PER_S)
    gap_ns = round(gap_s * NS_PER_S)
    days = max(0, end_ns - start_ns) / _DAY_NS
    schedule: list[FaultEvent] = []
    for plant_id, plant in config.plants.items():
        for stack_id, stack in plant.stacks.items():
            process = sim.process(plant_id, stack_id)
            sensors = {
                sid: SensorScale.of(s, process)
                for sid, s in stack.sensors.items()
                if s.quantity is not Quantity.MODE
            }
            causes = _excursion_causes(config, plant_id, stack_id)
            usable = [
                k
                for k in wanted
                if (k in PROCESS_KINDS or sensors) and (k is not FaultKind.EXCURSION or causes)
            ]
            expected = per_sensor_day * len(sensors) * days
            count = int(expected) + (rng.random() < expected - int(expected))
            if not usable:
                continue
            placed: list[FaultEvent] = []
            for _ in range(count):
                kind = rng.choice(usable)
                sensor = "" if kind in PROCESS_KINDS else rng.choice(sorted(sensors))
                scale = sensors.get(sensor)
                cause = rng.choice(causes) if kind is FaultKind.EXCURSION else None
                magnitude = _random_magnitude(kind, scale, cause, rng)
                event = _place(
                    kind,
                    sensor,
                    scale,
                    first_ns=first,
                    end_ns=end_ns,
                    gap_ns=gap_ns,
                    placed=placed,
                    rng=rng,
                )
                if event is not None:
                    placed.append(
                        replace(
                            event, plant=plant_id, stack=stack_id, magnitude=magnitude, cause=cause
                        )
                    )
            schedule.extend(placed)
    schedule.sort(key=lambda e: (e.start_ns, e.plant, e.stack, e.sensor))
    return schedule


def _place(
    kind: FaultKind,
    sensor: str,
    scale: SensorScale | None,
    *,
    first_ns: int,
    end_ns: int,
    gap_ns: int,
    placed: list[FaultEvent],
    rng: random.Random,
) -> FaultEvent | None:
    """A window for one event that keeps ``gap_ns`` from the others it would clash with."""
    if kind is FaultKind.SPIKE:
        assert scale is not None
        step = scale.interval_ns
        duration = rng.randint(1, 3) * step
    else:
        step = NS_PER_S if scale is None else max(NS_PER_S, scale.interval_ns)
        seconds = rng.uniform(*_DURATION_S[kind])
        duration = max(2, round(seconds * NS_PER_S / step)) * step  # whole sampling steps
    latest = end_ns - duration - gap_ns
    if latest < first_ns:
        return None
    for _ in range(_PLACEMENT_ATTEMPTS):
        start = first_ns + rng.randint(0, latest - first_ns)
        start -= (start - first_ns) % step  # on the sampling grid
        clash = any(
            (not sensor or not other.sensor or other.sensor == sensor)
            and start < other.end_ns + gap_ns
            and other.start_ns < start + duration + gap_ns
            for other in placed
        )
        if not clash:
            return FaultEvent("", "", sensor, kind, start, start + duration)
    return None


# --- YAML schedules ------------------------------------------------------------------------


class _EventSpec(BaseModel):
    """One event of a schedule file."""

    model_config = ConfigDict(extra="forbid")

    plant: str
    stack: str
    sensor: str = ""
    kind: FaultKind
    start: AwareDatetime
    end: AwareDatetime | None = None
    duration: Annotated[float | str | None, Field(description="e.g. 90, 90s, 15m, 2h")] = None
    magnitude: float | None = None
    cause: ExcursionCause | None = None

    @model_validator(mode="after")
    def _one_end(self) -> Self:
        if (self.end is None) == (self.duration is None):
            raise ValueError("give either end or duration")
        return self

    def event(self) -> FaultEvent:
        start_ns = ns_from_datetime(self.start)
        if self.end is not None:
            end_ns = ns_from_datetime(self.end)
        else:
            assert self.duration is not None
            end_ns = start_ns + round(parse_duration_s(self.duration) * NS_PER_S)
        return FaultEvent(
            self.plant,
            self.stack,
            self.sensor,
            self.kind,
            start_ns,
            end_ns,
            self.magnitude,
            self.cause,
        )


def _pydantic_reason(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"])
        message = e["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


def parse_schedule(data: Any, config: PlantConfig, *, source: str = "schedule") -> list[FaultEvent]:
    """Events from parsed YAML (a list of mappings), checked against the plant and each
    other; ``ScheduleError`` names the event (1-based) and the reason."""
    if data is None:
        return []
    if not isinstance(data, list):
        raise ScheduleError(f"{source}: expected a list of events, got {type(data).__name__}")
    events: list[FaultEvent] = []
    for number, item in enumerate(data, start=1):
        try:
            event = _EventSpec.model_validate(item).event()
            events.append(resolve_event(config, event))
        except ValidationError as err:
            raise ScheduleError(f"{source}: event {number}: {_pydantic_reason(err)}") from None
        except ValueError as err:  # ScheduleError or a bad duration
            raise ScheduleError(f"{source}: event {number}: {err}") from None
    try:
        _check_overlaps(events)
    except ScheduleError as err:
        raise ScheduleError(f"{source}: {err}") from None
    return sorted(events, key=lambda e: e.start_ns)


def load_schedule(path: Path, config: PlantConfig) -> list[FaultEvent]:
    """A schedule from a YAML file: a list of ``{plant, stack, sensor, kind, start,
    end | duration, magnitude, cause}`` (times ISO 8601 with an offset)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ScheduleError(f"{path}: cannot read: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise ScheduleError(f"{path}: not valid YAML: {err}") from None
    return parse_schedule(data, config, source=str(path))
