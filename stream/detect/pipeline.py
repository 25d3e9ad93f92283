"""The combined detectors: one per sensor (:class:`SensorDetector`) and one per stack
(:class:`StackDetector`), with one call per time step. Live service and offline CLI use these
same objects, so what is benchmarked is what runs.

Per reading of a sensor, in this order (score first, learn after, so every verdict uses only
the past):

1. the fault rules check the reading (out of range, stuck, rate of change, dropout);
2. the forecast residual (how far from the sensor's own forecast) and, in a stack, the
   consistency residual (how far from what the other sensors imply) are each calibrated into
   a likelihood; the larger one is the statistical score;
3. the filter decides; a rule fault or a drift event overrides it with score 1.0;
4. unless the reading is anomalous (protect-by-default), every model of the sensor learns it;
5. two CUSUMs watch the residuals: on the consistency residual it is the drift detector, which
   raises "sensor drift suspected" (on the sensor's own residual when it has no stack); on the
   forecast residual it only notices that the level really moved. When the forecast sees a
   jump that stays and the stack sees the same sensor off in the same direction, the drift
   event is raised at once instead of after the CUSUM has accumulated. A drift event
   re-anchors the protected models, which otherwise would never learn the new level.

A stack's consistency model learns only from steps where all its sensors report and none is
anomalous; at each step the inconsistency is blamed on one sensor (the largest residual), and
only that sensor can be flagged by consistency or raise a drift event, so one faulty analyser
does not raise alarms on its neighbours. Two sensors failing at the same moment are seen by
their own forecasts and rules, but the stack blames only one of them.

>>> det = StackDetector(["nox", "o2"])
>>> s = det.update(0, {"nox": 120.0, "o2": 9.0})
>>> s.is_anomaly, sorted(s.sensors)
(False, ['nox', 'o2'])
>>> det.tick(30 * 10**9).kind        # interval still unknown: no dropout can be declared yet
<Kind.NONE: 'none'>
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

import numpy as np

from stream.detect.drift import Cusum
from stream.detect.filter import AnomalyFilter
from stream.detect.likelihood import TailLikelihood
from stream.detect.multivariate import StackConsistency
from stream.detect.protocol import Kind, Score
from stream.detect.residual import RobustResidual
from stream.detect.rules import FaultRules

_QUIET = Score(0.0, False)

# Enum members as module globals on the per-reading path: ``Kind.NONE`` is a lookup through
# the enum's metaclass, ~70 ns on Python 3.11.
_NONE, _DROPOUT, _RESIDUAL, _CONSISTENCY, _DRIFT = (
    Kind.NONE,
    Kind.DROPOUT,
    Kind.RESIDUAL,
    Kind.CONSISTENCY,
    Kind.DRIFT,
)
STANDARD_Q95 = 1.6
"""Floor of the calibrators' tail start: the 95th percentile of |N(0, 0.8²)|."""
STANDARD_EXCESS = 0.3
"""Floor of their mean excess over it (that of |N(0, 0.8²)|)."""


class Context(NamedTuple):
    """What the stack's consistency model says about one sensor at one step."""

    residual: float
    """Standardised leave-one-out residual of this reading (the drift detector's input)."""
    smoothed: float
    """Its EW-smoothed value (what the consistency likelihood calibrates)."""
    suspect: bool
    """Whether the stack blames this sensor for this step's inconsistency."""


class SensorDetector:
    """All detection of one sensor behind one ``update`` per reading (a :class:`Scorer`).

    Parameters
    ----------
    name
        The sensor (reported in stack scores).
    rules
        The explicit fault rules (configure ``valid_range``, ``max_rate``, ``interval_s``).
    residual
        The forecast-residual detector.
    filter
        Threshold and protection.
    warmup
        Scores the forecast-residual calibrator collects before it can flag (after the
        residual detector's own warm-up): 900 readings is 15 minutes at 1 Hz. The consistency
        calibrator collects twice as many (its scores move slowly, so a warm-up of the same
        length holds fewer independent samples).
    window
        Memory of the calibrators, in scores.
    drift
        The drift detector on consistency residuals (or on forecast residuals without a stack).
    shift
        The level-change detector on forecast residuals that re-anchors the forecast.
    """

    def __init__(
        self,
        name: str = "value",
        *,
        rules: FaultRules | None = None,
        residual: RobustResidual | None = None,
        filter: AnomalyFilter | None = None,
        warmup: int = 900,
        window: int = 7200,
        drift: Cusum | None = None,
        shift: Cusum | None = None,
    ) -> None:
        self.name = name
        self.rules = rules if rules is not None else FaultRules()
        self.residual = residual if residual is not None else RobustResidual()
        self.filter = filter if filter is not None else AnomalyFilter()
        self.warmup = warmup
        self.window = window
        self.drift = drift if drift is not None else Cusum(slack=3.0, threshold=150.0, clip=10.0)
        self.shift = shift if shift is not None else Cusum(slack=1.0, threshold=30.0)
        # Both scores are standardised residuals: their tail is at least that of |N(0, 0.8²)|.
        floors = {"min_threshold": STANDARD_Q95, "min_excess": STANDARD_EXCESS}
        self.residual_likelihood = TailLikelihood(window=window, warmup=warmup, **floors)
        self.consistency_likelihood = TailLikelihood(window=window, warmup=2 * warmup, **floors)
        self.in_stack = False
        self._last_ts: int | None = None
        self._resume = False

    @property
    def warm(self) -> bool:
        """Whether the forecast-residual score is calibrated (warm-up over): before, only the
        fault rules can flag this sensor."""
        return self.residual_likelihood.ready

    def interrupt(self, ts_ns: int) -> None:
        """The sensor is out of service at ``ts_ns`` (a reading with a maintenance,
        calibration or malfunction status): no dropout is counted for the pause, and the
        first reading after it re-anchors the forecast instead of being scored against it."""
        if self._last_ts is not None and ts_ns < self._last_ts:
            return
        self._last_ts = ts_ns
        self.rules.interrupt()
        self._resume = True

    def update(self, ts_ns: int, value: float, context: Context | None = None) -> Score:
        """Score, decide and (unless anomalous) learn one reading.

        ``context`` is the stack's consistency view of this sensor at this step (None
        without a stack, or when the stack cannot judge this step). A NaN ``value`` is a
        missing reading.
        """
        if self._last_ts is not None and ts_ns < self._last_ts:
            raise ValueError(f"{self.name}: reading at {ts_ns} ns is older than the last one")
        if math.isnan(value):  # no reading at this step
            return self.tick(ts_ns)
        self._last_ts = ts_ns
        rule = self.rules.check(ts_ns, value)
        if self._resume:
            return self._resumed(value, rule)
        residual = self.residual
        z = residual.standardized(value)
        raw = abs(z)
        score = self.residual_likelihood.likelihood(raw)
        kind = _RESIDUAL
        if context is not None:
            raw_context = abs(context.smoothed)
            if context.suspect:
                consistency = self.consistency_likelihood.likelihood(raw_context)
                if consistency > score:
                    score, kind = consistency, _CONSISTENCY
        anomalous = self.filter.classify(score)

        shift = self.shift
        shift.update(z)
        drift = False
        if context is not None:
            detector = self.drift
            detector.update(context.residual)
            blamed = context.suspect and self.consistency_likelihood.ready
            drift = blamed and detector.drift_detected
            if not drift and blamed and shift.drift_detected:
                # The forecast saw the level jump and stay; if the stack also sees this sensor
                # off by more than the slack, in the same direction, the move is confirmed
                # now rather than after the CUSUM has accumulated (and the models have learnt
                # from the readings in between).
                direction = 1 if shift.estimate > 0 else -1
                if abs(detector.pending(direction)) > detector.slack:
                    detector.confirm(direction)
                    drift = True
        elif not self.in_stack and self.residual_likelihood.ready:
            drift = shift.drift_detected
        if drift:
            score, kind, anomalous = 1.0, _DRIFT, True
        if rule is not _NONE:
            score, kind, anomalous = 1.0, rule, True
        elif not anomalous:
            kind = _NONE

        if self.filter.learns(anomalous):
            self.rules.learn()
            warm = residual.n >= residual.warmup
            residual.learn_value(value)
            if warm:
                self.residual_likelihood.learn(raw)
            if context is not None:
                self.consistency_likelihood.learn(raw_context)
        if rule is _DROPOUT or shift.drift_detected or drift:
            residual.reanchor(value)  # the forecast is stale: start from this reading
        return Score(score, anomalous, kind, drift, self.name)

    def _resumed(self, value: float, rule: Kind) -> Score:
        """The first reading back in service: only the rules judge it (see :meth:`interrupt`)."""
        self._resume = False
        self.residual.reanchor(value)
        if rule is not _NONE:
            return Score(1.0, True, rule, False, self.name)
        return Score(0.0, False, _NONE, False, self.name)

    def tick(self, now_ns: int) -> Score:
        """The verdict at ``now_ns`` without a reading: a dropout once the sensor is overdue."""
        return (
            Score(1.0, True, _DROPOUT, False, self.name)
            if self.rules.overdue(now_ns)
            else (Score(0.0, False, _NONE, False, self.name))
        )

    def __repr__(self) -> str:
        return f"SensorDetector(name={self.name!r}, rules={self.rules!r}, filter={self.filter!r})"


def _strongest(scores: Iterable[Score]) -> Score:
    best = _QUIET
    for s in scores:
        if (s.is_anomaly, s.score) > (best.is_anomaly, best.score):
            best = s
    return best


class StackDetector:
    """The detectors of all sensors of one stack plus their consistency model.

    ``update(ts_ns, values)`` takes one time step: a mapping sensor → value, where a missing
    sensor or a NaN value means "no reading". It returns the strongest sensor score, naming
    that sensor, with every sensor's own score in ``sensors``; ``drift`` is set if any sensor
    raised a drift event. A single sensor needs no consistency model; with two or more one is
    created unless ``consistency`` is given (or ``use_consistency`` is false).

    Parameters
    ----------
    sensors
        Sensor names (default detectors) or ready :class:`SensorDetector` objects.
    consistency
        The stack model; ``None`` builds the default one for two or more sensors.
    smoothing
        EW weight of the newest consistency residual (1.0 = no smoothing); smoothing trades a
        few seconds of delay for seeing slow faults through white measurement noise.
    """

    def __init__(
        self,
        sensors: Sequence[str] | Sequence[SensorDetector],
        *,
        consistency: StackConsistency | None = None,
        smoothing: float = 0.1,
        use_consistency: bool = True,
    ) -> None:
        detectors = [s if isinstance(s, SensorDetector) else SensorDetector(s) for s in sensors]
        names = [d.name for d in detectors]
        if not names or len(set(names)) != len(names):
            raise ValueError("a stack needs at least one sensor and unique sensor names")
        if not 0 < smoothing <= 1:
            raise ValueError("smoothing must be in (0, 1]")
        self.detectors = detectors
        self.names = tuple(names)
        self.smoothing = smoothing
        if consistency is None and use_consistency and len(names) > 1:
            consistency = StackConsistency(names)
        if consistency is not None and consistency.features != self.names:
            raise ValueError("the consistency model must have the stack's sensors in order")
        self.consistency = consistency
        for detector in detectors:
            detector.in_stack = consistency is not None
        self._smoothed = np.zeros(len(names))
        self._last_ts: int | None = None

    def update(self, ts_ns: int, values: Mapping[str, float]) -> Score:
        """Score one time step of the stack (see the class docstring)."""
        return self._combine(self.update_sensors(ts_ns, values))

    def update_sensors(self, ts_ns: int, values: Mapping[str, float]) -> dict[str, Score]:
        """:meth:`update` without the stack's verdict: each sensor's own score, by name (what
        live detection stores, one point per sensor)."""
        if self._last_ts is not None and ts_ns < self._last_ts:
            raise ValueError(f"time step at {ts_ns} ns is older than the last one")
        self._last_ts = ts_ns
        readings = [values.get(name, math.nan) for name in self.names]
        complete = not any(math.isnan(v) for v in readings)
        model = self.consistency
        contexts: list[Context | None] = [None] * len(readings)
        if model is not None and complete:
            vector = np.array(readings)
            residuals = model.standardized(vector)
            if residuals is not None:
                smoothed = self._smoothed
                smoothed += self.smoothing * (residuals - smoothed)
                top = int(np.argmax(np.maximum(np.abs(smoothed), np.abs(residuals))))
                contexts = [
                    Context(r, m, i == top)
                    for i, (r, m) in enumerate(
                        zip(residuals.tolist(), smoothed.tolist(), strict=True)
                    )
                ]
        scores: dict[str, Score] = {}
        calm = True
        for i, detector in enumerate(self.detectors):
            s = detector.update(ts_ns, readings[i], contexts[i])
            scores[detector.name] = s
            if s.is_anomaly:
                calm = False
            if s.drift and model is not None:
                self._reanchor(model, i)
        if model is not None and calm and complete:
            model.learn_vector(np.array(readings))
        return scores

    def _reanchor(self, model: StackConsistency, index: int) -> None:
        """Sensor ``index`` really moved: shift its mean by the CUSUM's estimate of the move,
        and drop the evidence its fault left in its neighbours' drift detectors."""
        estimate = self.detectors[index].drift.estimate
        model.reanchor(index, estimate)
        self._smoothed[index] -= estimate
        for i, detector in enumerate(self.detectors):
            if i != index:
                detector.drift.reset()

    def tick(self, now_ns: int) -> Score:
        """The stack's verdict at ``now_ns`` without readings (dropouts of silent sensors)."""
        return self._combine({d.name: d.tick(now_ns) for d in self.detectors})

    @staticmethod
    def _combine(scores: dict[str, Score]) -> Score:
        best = _strongest(scores.values())
        drift = any(s.drift for s in scores.values())
        return Score(best.score, best.is_anomaly, best.kind, drift, best.sensor, scores)

    def __repr__(self) -> str:
        return f"StackDetector(sensors={list(self.names)!r}, smoothing={self.smoothing})"
