"""The combined detectors: what each fault looks like in the verdicts, per sensor and stack."""

from __future__ import annotations

import math
import random

import numpy as np

from stream.detect.multivariate import StackConsistency
from stream.detect.pipeline import SensorDetector, StackDetector
from stream.detect.protocol import Kind, Score
from stream.detect.rules import FaultRules
from stream.model import NS_PER_S


def sensor(**rules: float | tuple[float, float]) -> SensorDetector:
    return SensorDetector(
        "nox",
        rules=FaultRules(interval_s=1.0, **rules),  # type: ignore[arg-type]
        warmup=200,
        window=1000,
    )


def noisy(n: int, seed: int = 1, level: float = 100.0) -> list[float]:
    rng = random.Random(seed)
    return [round(level + rng.gauss(0, 1.0), 2) for _ in range(n)]


def feed(detector: SensorDetector, values: list[float], start: int = 0) -> list[Score]:
    return [detector.update((start + i) * NS_PER_S, v) for i, v in enumerate(values)]


def test_a_quiet_signal_raises_nothing() -> None:
    verdicts = feed(sensor(), noisy(3000))
    assert not any(v.is_anomaly for v in verdicts)


def test_warmup_flags_no_statistical_score_but_rules_work_at_once() -> None:
    detector = sensor(valid_range=(0.0, 500.0))
    values = noisy(100)
    values[50] = 400.0  # a huge jump, but no calibration yet
    values[60] = 900.0  # outside the instrument range
    verdicts = feed(detector, values)
    assert not verdicts[50].is_anomaly
    assert verdicts[60].kind is Kind.OUT_OF_RANGE and verdicts[60].score == 1.0


def test_a_spike_is_a_residual_anomaly_of_one_reading() -> None:
    detector = sensor()
    values = noisy(2000)
    values[1500] += 25.0
    verdicts = feed(detector, values)
    assert verdicts[1500].is_anomaly and verdicts[1500].kind is Kind.RESIDUAL
    assert verdicts[1500].score >= detector.filter.threshold
    assert [i for i, v in enumerate(verdicts) if v.is_anomaly] == [1500]


def test_a_frozen_value_is_stuck() -> None:
    detector = sensor()
    values = noisy(1500)
    values[1200:1300] = [values[1199]] * 100
    verdicts = feed(detector, values)
    stuck = [i for i, v in enumerate(verdicts) if v.kind is Kind.STUCK]
    assert stuck and 1200 < stuck[0] < 1215 and stuck[-1] == 1299


def test_a_dropout_by_tick_and_on_the_returning_reading() -> None:
    detector = sensor()
    feed(detector, noisy(1000))
    assert detector.tick(1004 * NS_PER_S).kind is Kind.NONE
    late = detector.tick(1006 * NS_PER_S)
    assert late.is_anomaly and late.kind is Kind.DROPOUT and late.sensor == "nox"
    back = detector.update(1060 * NS_PER_S, 130.0)  # back after a minute, at a new level
    assert back.kind is Kind.DROPOUT
    after = feed(detector, noisy(200, seed=2, level=130.0), start=1061)
    assert not any(v.is_anomaly for v in after), "the stale forecast is re-anchored"


def test_a_nan_value_is_a_missing_reading() -> None:
    detector = sensor()
    feed(detector, noisy(1000))
    assert detector.update(1010 * NS_PER_S, math.nan).kind is Kind.DROPOUT


def test_a_lasting_level_shift_alone_is_reported_as_drift_then_accepted() -> None:
    detector = sensor()
    values = noisy(2000)
    values[1500:] = [v + 20.0 for v in values[1500:]]
    verdicts = feed(detector, values)
    assert verdicts[1500].is_anomaly
    drift = [i for i, v in enumerate(verdicts) if v.drift]
    assert drift and drift[0] < 1520
    assert not any(v.is_anomaly for v in verdicts[1530:])


# --- stacks -------------------------------------------------------------------------------

NAMES = ("nox", "so2", "o2", "flow")


def stack_data(n: int, seed: int) -> np.ndarray:
    """Four sensors following a slowly ramping load, each with its own noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    load = 0.7 + 0.25 * np.sin(2 * np.pi * t / 2400.0)
    gains = np.array([150.0, 80.0, -8.0, 50.0])
    noise = np.array([1.5, 1.0, 0.05, 0.4])
    return np.asarray(
        np.round(load[:, None] * gains + 20.0 + rng.normal(0.0, 1.0, (n, 4)) * noise, 2)
    )


def stack() -> StackDetector:
    return StackDetector(
        [SensorDetector(n, rules=FaultRules(interval_s=1.0), warmup=300) for n in NAMES],
        consistency=StackConsistency(NAMES, warmup=300),
    )


def run(detector: StackDetector, data: np.ndarray, start: int = 0) -> list[Score]:
    return [
        detector.update((start + i) * NS_PER_S, dict(zip(NAMES, row, strict=True)))
        for i, row in enumerate(data.tolist())
    ]


def test_a_drifting_analyser_is_caught_by_its_stack_and_blamed_alone() -> None:
    data = stack_data(9000, seed=1)
    drift = np.zeros(9000)
    drift[6000:] = np.linspace(0.0, 20.0, 3000)  # so2 drifts by 20 σ of its noise over 50 min
    data[:, 1] += drift
    verdicts = run(stack(), data)
    assert not any(v.is_anomaly for v in verdicts[:6000])
    flagged = [i for i, v in enumerate(verdicts) if v.is_anomaly]
    assert flagged and flagged[0] < 8000
    assert {verdicts[i].sensor for i in flagged} == {"so2"}
    assert {verdicts[i].kind for i in flagged} <= {Kind.CONSISTENCY, Kind.DRIFT}
    assert any(v.drift for v in verdicts[6000:])
    assert all(not v.sensors[n].is_anomaly for v in verdicts for n in ("nox", "o2", "flow"))


def test_without_the_stack_the_same_drift_goes_unseen() -> None:
    data = stack_data(9000, seed=1)
    data[6000:, 1] += np.linspace(0.0, 20.0, 3000)
    alone = StackDetector(
        [SensorDetector(n, rules=FaultRules(interval_s=1.0), warmup=300) for n in NAMES],
        use_consistency=False,
    )
    assert not any(v.is_anomaly for v in run(alone, data))


def test_a_silent_sensor_is_a_dropout_while_the_others_are_scored() -> None:
    data = stack_data(2000, seed=2)
    detector = stack()
    run(detector, data[:1500])
    rows = [dict(zip(NAMES, row, strict=True)) for row in data[1500:1520].tolist()]
    verdicts = []
    for i, row in enumerate(rows):
        del row["o2"]
        verdicts.append(detector.update((1500 + i) * NS_PER_S, row))
    assert verdicts[3].sensors["o2"].kind is Kind.NONE
    assert verdicts[10].kind is Kind.DROPOUT and verdicts[10].sensor == "o2"
    assert not any(verdicts[10].sensors[n].is_anomaly for n in ("nox", "so2", "flow"))
    assert detector.tick(1600 * NS_PER_S).sensors["nox"].kind is Kind.DROPOUT
