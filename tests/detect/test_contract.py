"""One contract suite over every Detector and every Scorer (River's ``yield_checks`` idea).

Each implementation is listed once in ``DETECTORS`` / ``SCORERS`` with small settings so
warm-up passes quickly; every check runs against every entry.
"""

from __future__ import annotations

import math
import pickle
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from stream.detect import Detector, Kind, Score, Scorer
from stream.detect.hst import HalfSpaceTreesDetector
from stream.detect.multivariate import StackConsistency
from stream.detect.pipeline import SensorDetector, StackDetector
from stream.detect.residual import RobustResidual
from stream.model import NS_PER_S


@dataclass(frozen=True)
class Case:
    make: Callable[[], Detector]
    features: tuple[str, ...]


DETECTORS = {
    "robust_residual": Case(lambda: RobustResidual(warmup=10), ("value",)),
    "stack_consistency": Case(
        lambda: StackConsistency(["a", "b", "c"], warmup=50, refresh=10), ("a", "b", "c")
    ),
    "river_hst": Case(
        lambda: HalfSpaceTreesDetector(
            {"a": (-10.0, 10.0), "b": (-20.0, 20.0), "c": (-10.0, 10.0)}, window_size=50, seed=3
        ),
        ("a", "b", "c"),
    ),
}


def stream(features: tuple[str, ...], n: int = 400, seed: int = 11) -> Iterator[dict[str, float]]:
    """Correlated readings: every feature follows one slow 'load' plus its own noise."""
    rng = random.Random(seed)
    load = 0.0
    gains = {"value": 1.0, "a": 1.0, "b": 2.0, "c": -1.0}
    for _ in range(n):
        load = 0.98 * load + rng.gauss(0.0, 0.3)
        yield {f: gains[f] * load + rng.gauss(0.0, 0.1) for f in features}


def scores_of(detector: Detector, items: list[dict[str, float]]) -> list[float]:
    out = []
    for x in items:
        out.append(detector.score_one(x))
        detector.learn_one(x)
    return out


@pytest.fixture(params=list(DETECTORS), ids=list(DETECTORS))
def case(request: pytest.FixtureRequest) -> Case:
    return DETECTORS[request.param]


def test_is_a_detector(case: Case) -> None:
    assert isinstance(case.make(), Detector)
    assert type(case.make()).__name__ in repr(case.make())


def test_scores_are_finite_non_negative_floats_and_zero_before_warmup(case: Case) -> None:
    detector = case.make()
    items = list(stream(case.features))
    assert detector.score_one(items[0]) == 0.0
    for x in items:
        score = detector.score_one(x)
        assert isinstance(score, float)
        assert math.isfinite(score)
        assert score >= 0.0
        assert detector.learn_one(x) is None  # type: ignore[func-returns-value]


def test_score_one_does_not_learn(case: Case) -> None:
    items = list(stream(case.features))
    plain, poked = case.make(), case.make()
    for x in items:
        assert poked.score_one(x) == poked.score_one(x)
        poked.score_one({f: 1e3 for f in case.features})
        assert plain.score_one(x) == poked.score_one(x)
        plain.learn_one(x)
        poked.learn_one(x)


def test_deterministic(case: Case) -> None:
    items = list(stream(case.features))
    assert scores_of(case.make(), items) == scores_of(case.make(), items)


def test_pickle_round_trip_mid_stream(case: Case) -> None:
    items = list(stream(case.features))
    detector = case.make()
    scores_of(detector, items[:200])
    restored = pickle.loads(pickle.dumps(detector))
    assert scores_of(restored, items[200:]) == scores_of(detector, items[200:])


def test_an_outlier_scores_higher_than_a_typical_reading(case: Case) -> None:
    items = list(stream(case.features, n=600))
    detector = case.make()
    scores_of(detector, items)
    typical = items[-1]
    # Off the correlation line and outside the usual spread of every feature.
    outlier = {f: (8.0 if i % 2 else -8.0) for i, f in enumerate(case.features)}
    assert detector.score_one(outlier) > detector.score_one(typical)


# --- Scorers: the time-aware combined detectors -------------------------------------------


def small_sensor(name: str = "value") -> SensorDetector:
    scorer: Scorer = SensorDetector(name, warmup=50, window=500)  # mypy checks the protocol
    assert isinstance(scorer, SensorDetector)
    return scorer


SCORERS: dict[str, Callable[[], SensorDetector | StackDetector]] = {
    "sensor": small_sensor,
    "stack": lambda: StackDetector(
        [small_sensor("a"), small_sensor("b"), small_sensor("c")],
        consistency=StackConsistency(["a", "b", "c"], warmup=50, refresh=10),
    ),
}


def run_scorer(scorer: SensorDetector | StackDetector, n: int = 600) -> list[Score]:
    out = []
    for i, item in enumerate(stream(("a", "b", "c"), n=n)):
        ts = i * NS_PER_S
        # one spike, so that decisions are exercised too
        x = {**item, "a": item["a"] + 50.0} if i == 500 else item
        if isinstance(scorer, SensorDetector):
            out.append(scorer.update(ts, x["a"]))
        else:
            out.append(scorer.update(ts, x))
    return out


@pytest.fixture(params=list(SCORERS), ids=list(SCORERS))
def scorer_factory(request: pytest.FixtureRequest) -> Callable[[], SensorDetector | StackDetector]:
    return SCORERS[request.param]


def test_scorer_verdicts_are_well_formed(
    scorer_factory: Callable[[], SensorDetector | StackDetector],
) -> None:
    scores = run_scorer(scorer_factory())
    for s in scores:
        assert 0.0 <= s.score <= 1.0
        assert isinstance(s.is_anomaly, bool)
        assert (s.kind is Kind.NONE) == (not s.is_anomaly)
    assert scores[500].is_anomaly, "the spike must be flagged"
    assert not any(s.is_anomaly for s in scores[:80]), "warm-up flags nothing statistical"


def test_scorer_is_deterministic_and_pickles(
    scorer_factory: Callable[[], SensorDetector | StackDetector],
) -> None:
    a = scorer_factory()
    first = run_scorer(a)
    assert run_scorer(scorer_factory()) == first
    b = pickle.loads(pickle.dumps(a))
    # Both continue identically from the restored state.
    later = 600 * NS_PER_S
    if isinstance(a, SensorDetector) and isinstance(b, SensorDetector):
        assert a.update(later, 0.3) == b.update(later, 0.3)
    elif isinstance(a, StackDetector) and isinstance(b, StackDetector):
        x = {"a": 0.3, "b": 0.6, "c": -0.3}
        assert a.update(later, x) == b.update(later, x)


def test_scorer_refuses_time_going_backwards(
    scorer_factory: Callable[[], SensorDetector | StackDetector],
) -> None:
    scorer = scorer_factory()
    run_scorer(scorer, n=5)
    with pytest.raises(ValueError, match="older"):
        if isinstance(scorer, SensorDetector):
            scorer.update(0, 1.0)
        else:
            scorer.update(0, {"a": 1.0, "b": 2.0, "c": -1.0})
