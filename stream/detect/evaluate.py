"""Evaluation on labelled synthetic streams: precision, recall, F1, delay and false alarms.

Until the simulator injects faults, the labelled data are generated here, seeded, for one
stack of five analysers at 1 Hz. The process is built so that a good detector has to use
the stack: a common load moves every sensor by far more than its noise (NOx ±18 %, flow
±30 %), load changes are ramps of 15-60 minutes, each analyser sees the load through its own
response lag, and each has a slow process component of its own (AR(1), τ = 5 min) plus white
measurement noise, quantised to the instrument resolution.

Faults (one kind per stream, one sensor at a time, on a random sensor, 30-90 minutes apart,
none in the first hour), sized in multiples of the sensor's measurement noise σ:

* ``spike``: 1-3 readings off by 10-40 σ;
* ``level_shift``: an offset of 8-20 σ for 10-40 minutes, then back;
* ``drift``: an offset growing linearly to 15-40 σ over 20-60 minutes, then recalibrated;
* ``stuck``: the analyser repeats its last value for 2-10 minutes;
* ``dropout``: no data for 30 s to 10 minutes.

Scoring is event based, per sensor: a fault window counts as detected when the detector flags
*that* sensor while the fault lasts, in ``[start, end)`` (the delay is from the start to the
first such flag; a flag only when a drift is recalibrated away does not count); flagged
readings closer than ``merge`` to each other form one alarm event; an event starting inside a
window of its sensor or up to ``tolerance`` after it (the return to normal is itself a
change) is a true positive, any other event, including one blamed on the wrong sensor, is a
false alarm. Precision is true events over all events, recall detected over all windows.
False alarms are counted over the whole stream, warm-up included, per sensor-day after the
warm-up hour.

>>> stream = generate_stream(FaultKind.STUCK, hours=3, seed=1)
>>> stream.values.shape, len(stream.windows) > 0
((10800, 5), True)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

import numpy as np
import numpy.typing as npt
from scipy.signal import lfilter

from stream.detect.filter import AnomalyFilter
from stream.detect.likelihood import TailLikelihood
from stream.detect.pipeline import SensorDetector, StackDetector
from stream.detect.protocol import Detector
from stream.detect.rules import FaultRules
from stream.model import NS_PER_S

Floats = npt.NDArray[np.float64]
START_NS = 1_767_225_600 * NS_PER_S  # 2026-01-01T00:00:00Z
SECONDS_PER_DAY = 86_400.0


class FaultKind(StrEnum):
    SPIKE = "spike"
    LEVEL_SHIFT = "level_shift"
    DRIFT = "drift"
    STUCK = "stuck"
    DROPOUT = "dropout"


@dataclass(frozen=True)
class SensorModel:
    """One synthetic analyser: ``base·(1 + load_gain·(load - 0.7))`` seen through a lag of
    ``lag_s``, plus an AR(1) process part (``process_sd``) and white ``noise``."""

    name: str
    base: float
    load_gain: float
    noise: float
    process_sd: float
    lag_s: float
    resolution: float
    valid_range: tuple[float, float]


DEFAULT_STACK: tuple[SensorModel, ...] = (
    SensorModel("nox", 150.0, 0.6, 1.5, 2.0, 20.0, 0.1, (0.0, 1000.0)),
    SensorModel("so2", 80.0, 0.5, 1.0, 1.5, 30.0, 0.1, (0.0, 500.0)),
    SensorModel("co", 20.0, -0.8, 0.6, 1.0, 10.0, 0.1, (0.0, 200.0)),
    SensorModel("o2", 8.0, -0.5, 0.05, 0.08, 5.0, 0.01, (0.0, 25.0)),
    SensorModel("flow", 50.0, 1.0, 0.4, 0.5, 2.0, 0.1, (0.0, 120.0)),
)


@dataclass(frozen=True)
class FaultWindow:
    """A labelled fault of one sensor over ``[start_ns, end_ns)``."""

    kind: FaultKind
    sensor: str
    start_ns: int
    end_ns: int


@dataclass(frozen=True)
class LabelledStream:
    """Readings of one stack at a fixed interval (NaN = no reading) with fault labels."""

    kind: FaultKind
    names: tuple[str, ...]
    ts_ns: npt.NDArray[np.int64]
    values: Floats
    windows: tuple[FaultWindow, ...]
    valid_ranges: tuple[tuple[float, float], ...]
    interval_s: float
    warmup_s: float

    @property
    def evaluated_sensor_days(self) -> float:
        """Sensor-days after the warm-up hour (where alarms are counted)."""
        seconds = len(self.ts_ns) * self.interval_s - self.warmup_s
        return max(seconds, 0.0) / SECONDS_PER_DAY * len(self.names)


def _ar1(rng: np.random.Generator, n: int, sd: float, tau: float) -> Floats:
    a = math.exp(-1.0 / tau)
    shocks = rng.normal(0.0, sd * math.sqrt(1.0 - a * a), n)
    out: Floats = lfilter([1.0], [1.0, -a], shocks, zi=[a * rng.normal(0.0, sd)])[0]
    return out


def _lag(x: Floats, tau: float) -> Floats:
    a = math.exp(-1.0 / max(tau, 1e-9))
    out: Floats = lfilter([1.0 - a], [1.0, -a], x, zi=[a * x[0]])[0]
    return out


def _load(rng: np.random.Generator, n: int, dt: float) -> Floats:
    """Plateaus of 20-120 min joined by ramps of 0.5-2 %/min, plus a small fast wobble."""
    load = np.empty(n)
    level = rng.uniform(0.5, 0.95)
    i = 0
    while i < n:
        hold = int(rng.uniform(20, 120) * 60 / dt)
        load[i : i + hold] = level
        i += hold
        target = rng.uniform(0.45, 1.0)
        rate = rng.uniform(0.005, 0.02) / 60.0
        steps = int(abs(target - level) / (rate * dt)) + 1
        ramp = np.linspace(level, target, steps)[: max(n - i, 0)]
        load[i : i + ramp.size] = ramp
        i += steps
        level = target
    return load + _ar1(rng, n, 0.01, 60.0 / dt)


_DURATION_S: dict[FaultKind, tuple[float, float]] = {
    FaultKind.SPIKE: (1, 3),
    FaultKind.LEVEL_SHIFT: (600, 2400),
    FaultKind.DRIFT: (1200, 3600),
    FaultKind.STUCK: (120, 600),
    FaultKind.DROPOUT: (30, 600),
}
_SIZE_SIGMA: dict[FaultKind, tuple[float, float]] = {
    FaultKind.SPIKE: (10, 40),
    FaultKind.LEVEL_SHIFT: (8, 20),
    FaultKind.DRIFT: (15, 40),
}


def generate_stream(
    kind: FaultKind,
    hours: float,
    seed: int,
    *,
    stack: Sequence[SensorModel] = DEFAULT_STACK,
    interval_s: float = 1.0,
    warmup_s: float = 3600.0,
    spacing_s: tuple[float, float] = (1800.0, 5400.0),
) -> LabelledStream:
    """A seeded labelled stream of one stack with faults of one ``kind`` (see module doc)."""
    rng = np.random.default_rng([seed, list(FaultKind).index(kind)])
    n = int(hours * 3600 / interval_s)
    load = _load(rng, n, interval_s)
    clean = np.empty((n, len(stack)))
    for j, s in enumerate(stack):
        lagged = _lag(load, s.lag_s / interval_s)
        process = _ar1(rng, n, s.process_sd, 300.0 / interval_s)
        clean[:, j] = s.base * (1 + s.load_gain * (lagged - 0.7)) + process
        clean[:, j] += rng.normal(0.0, s.noise, n)
    values = clean.copy()
    windows: list[FaultWindow] = []
    frozen: list[tuple[int, int, int]] = []
    missing: list[tuple[int, int, int]] = []
    t = warmup_s
    while True:
        t += rng.uniform(*spacing_s)
        lo, hi = _DURATION_S[kind]
        if kind is FaultKind.SPIKE:
            duration = float(rng.integers(int(lo), int(hi) + 1))
        else:
            duration = rng.uniform(lo, hi)
        start, stop = int(t / interval_s), int((t + duration) / interval_s)
        if stop + int(600 / interval_s) >= n:
            break
        j = int(rng.integers(len(stack)))
        s = stack[j]
        sign = 1.0 if rng.random() < 0.5 else -1.0
        if kind in _SIZE_SIGMA:
            size = sign * rng.uniform(*_SIZE_SIGMA[kind]) * s.noise
            if kind is FaultKind.DRIFT:
                values[start:stop, j] += np.linspace(0.0, size, stop - start)
            else:
                values[start:stop, j] += size
        elif kind is FaultKind.STUCK:
            frozen.append((start, stop, j))
        else:
            missing.append((start, stop, j))
        ts0 = START_NS + round(start * interval_s * NS_PER_S)
        ts1 = START_NS + round(stop * interval_s * NS_PER_S)
        windows.append(FaultWindow(kind, s.name, ts0, ts1))
        t += duration
    for j, s in enumerate(stack):
        lo_v, hi_v = s.valid_range
        values[:, j] = np.clip(np.round(values[:, j] / s.resolution) * s.resolution, lo_v, hi_v)
    for start, stop, j in frozen:
        values[start:stop, j] = values[start - 1, j]
    for start, stop, j in missing:
        values[start:stop, j] = np.nan
    ts = START_NS + np.round(np.arange(n) * interval_s * NS_PER_S).astype(np.int64)
    return LabelledStream(
        kind=kind,
        names=tuple(s.name for s in stack),
        ts_ns=ts,
        values=values,
        windows=tuple(windows),
        valid_ranges=tuple(s.valid_range for s in stack),
        interval_s=interval_s,
        warmup_s=warmup_s,
    )


def default_detector(stream: LabelledStream, *, use_consistency: bool = True) -> StackDetector:
    """The production :class:`StackDetector` configured as a plant config would: each
    sensor's instrument range, its sampling interval and a rate limit of 10 % of the range
    per second. ``use_consistency=False`` leaves out the stack model (sensors judged alone),
    to measure what it adds."""
    return StackDetector(
        [
            SensorDetector(
                name,
                rules=FaultRules(
                    valid_range=bounds,
                    interval_s=stream.interval_s,
                    max_rate=0.1 * (bounds[1] - bounds[0]),
                ),
            )
            for name, bounds in zip(stream.names, stream.valid_ranges, strict=True)
        ],
        use_consistency=use_consistency,
    )


def independent_detector(stream: LabelledStream) -> StackDetector:
    """:func:`default_detector` without the stack's consistency model."""
    return default_detector(stream, use_consistency=False)


def run_detector(stream: LabelledStream, detector: StackDetector) -> npt.NDArray[np.bool_]:
    """Per-sensor anomaly flags (rows × sensors) of ``detector`` fed the stream in order."""
    names = stream.names
    flags: list[list[bool]] = []
    update = detector.update
    for ts, row in zip(stream.ts_ns.tolist(), stream.values.tolist(), strict=True):
        sensors = update(ts, dict(zip(names, row, strict=True))).sensors
        flags.append([sensors[name].is_anomaly for name in names])
    return np.array(flags, dtype=bool).reshape(len(stream.ts_ns), len(names))


def run_stack_detector(
    stream: LabelledStream,
    detector: Detector,
    *,
    skip: int = 600,
    calibration: TailLikelihood | None = None,
    decision: AnomalyFilter | None = None,
) -> npt.NDArray[np.bool_]:
    """Stack-level flags (rows × 1) of a bare multivariate :class:`Detector` on complete rows,
    calibrated and filtered like the pipeline's scores (protected learning); the calibrator
    starts learning after ``skip`` rows, once the detector is warm. Incomplete rows are not
    flagged. Score the result against :func:`stack_view` of the stream."""
    names = stream.names
    cal = calibration if calibration is not None else TailLikelihood(warmup=1800)
    decide = decision if decision is not None else AnomalyFilter()
    flags: list[bool] = []
    for i, row in enumerate(stream.values.tolist()):
        if any(math.isnan(v) for v in row):
            flags.append(False)
            continue
        x = dict(zip(names, row, strict=True))
        raw = detector.score_one(x)
        anomalous = decide.classify(cal.likelihood(raw))
        flags.append(anomalous)
        if decide.learns(anomalous):
            detector.learn_one(x)
            if i >= skip:
                cal.learn(raw)
    return np.array(flags, dtype=bool).reshape(-1, 1)


def stack_view(stream: LabelledStream) -> LabelledStream:
    """The stream seen as one pseudo-sensor ``stack``: every window belongs to it, so flags of
    a stack-level detector (rows × 1) can be scored; alarms are then per stack-day."""
    windows = tuple(replace(w, sensor="stack") for w in stream.windows)
    return replace(stream, names=("stack",), windows=windows, valid_ranges=((0.0, 1.0),))


@dataclass(frozen=True)
class KindMetrics:
    """Event-based metrics of one fault kind (see the module docstring)."""

    kind: str
    windows: int
    detected: int
    alarm_events: int
    true_events: int
    false_alarms: int
    sensor_days: float
    delay_mean_s: float
    delay_median_s: float

    @property
    def recall(self) -> float:
        return self.detected / self.windows if self.windows else 1.0

    @property
    def precision(self) -> float:
        return self.true_events / self.alarm_events if self.alarm_events else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def false_alarms_per_sensor_day(self) -> float:
        return self.false_alarms / self.sensor_days if self.sensor_days else 0.0

    def summary(self) -> dict[str, float | None]:
        """The headline numbers (rounded; no delay without a detection), as stored in bench
        results and baselines."""
        delay = None if math.isnan(self.delay_median_s) else round(self.delay_median_s, 1)
        return {
            "f1": round(self.f1, 4),
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "delay_median_s": delay,
            "false_alarms_per_sensor_day": round(self.false_alarms_per_sensor_day, 4),
            "windows": self.windows,
            "false_alarms": self.false_alarms,
        }


def score_flags(
    stream: LabelledStream,
    flags: npt.NDArray[np.bool_],
    tolerance_s: float = 60.0,
    merge_s: float = 60.0,
) -> KindMetrics:
    """Match per-sensor ``flags`` against the stream's labels (event based)."""
    tolerance = round(tolerance_s * NS_PER_S)
    merge = round(merge_s * NS_PER_S)
    ts = stream.ts_ns
    detected = events = true_events = 0
    delays: list[float] = []
    for j, name in enumerate(stream.names):
        flagged = ts[flags[:, j]]
        own = [w for w in stream.windows if w.sensor == name]
        spans = [(w.start_ns, w.end_ns + tolerance) for w in own]
        for w in own:
            start = w.start_ns
            hits = flagged[(flagged >= start) & (flagged < max(w.end_ns, start + 1))]
            if hits.size:
                detected += 1
                delays.append((int(hits[0]) - start) / NS_PER_S)
        if flagged.size == 0:
            continue
        onsets = flagged[np.concatenate(([True], np.diff(flagged) > merge))]
        events += onsets.size
        for onset in onsets.tolist():
            if any(start <= onset <= stop for start, stop in spans):
                true_events += 1
    return KindMetrics(
        kind=stream.kind.value,
        windows=len(stream.windows),
        detected=detected,
        alarm_events=events,
        true_events=true_events,
        false_alarms=events - true_events,
        sensor_days=stream.evaluated_sensor_days,
        delay_mean_s=float(np.mean(delays)) if delays else math.nan,
        delay_median_s=float(np.median(delays)) if delays else math.nan,
    )


def evaluate(
    hours: float,
    seed: int,
    *,
    kinds: Sequence[FaultKind] = tuple(FaultKind),
    detector: Callable[[LabelledStream], StackDetector] = default_detector,
    spacing_s: tuple[float, float] = (1800.0, 5400.0),
) -> list[KindMetrics]:
    """Generate one stream per fault kind, run a fresh detector on each and score it."""
    results = []
    for kind in kinds:
        stream = generate_stream(kind, hours, seed, spacing_s=spacing_s)
        results.append(score_flags(stream, run_detector(stream, detector(stream))))
    return results
