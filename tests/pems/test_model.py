"""PemsModel on synthetic data with a known truth: accuracy, coverage, adaptation, versions."""

from __future__ import annotations

import math
import statistics

import pytest

from stream.pems.algorithms import ALGORITHMS, DEFAULT_ALGORITHM
from stream.pems.conformal import conformal_bounds
from stream.pems.evaluate import run_test, score
from stream.pems.model import PemsModel, PemsModelError
from tests.pems.synthetic import linear_stream

FEATURES = ["load", "temp"]


def fitted(
    algorithm: str = DEFAULT_ALGORITHM, n: int = 6000, seed: int = 1, **kwargs: object
) -> PemsModel:
    """A model fitted on ``n`` rows: 6000 let SGD converge before the calibration snapshots
    (on shorter histories the frozen intervals are conservative, see the model docstring)."""
    xs, ys = linear_stream(n, seed=seed)
    model = PemsModel(FEATURES, "nox", algorithm=algorithm, **kwargs)  # type: ignore[arg-type]
    model.fit(xs, ys)
    return model


@pytest.mark.parametrize("algorithm", ["poly2-sgd", "linear-sgd"])
@pytest.mark.parametrize("learn", [False, True])
def test_stationary_intervals_cover_about_the_target(algorithm: str, learn: bool) -> None:
    model = fitted(algorithm)
    xs, ys = linear_stream(3000, seed=2)
    result = score(ys, run_test(model, xs, ys, learn=learn))
    # the truth is linear with noise sd 2: a perfect model has MAE 2·√(2/π) ≈ 1.60, R² ≈ 0.86
    assert result["mae"] < 1.7
    assert result["r2"] > 0.84
    # 3000 Bernoulli(0.9) draws: sd 0.0055, so ±0.03 is more than 5 sd
    assert 0.87 <= result["coverage"] <= 0.93
    # a 90 % interval of N(0, 2) noise is 2·1.645·2 ≈ 6.6 wide
    assert 6.0 < result["width"] < 7.5


@pytest.mark.parametrize("algorithm", list(ALGORITHMS))
def test_every_algorithm_learns_and_gives_ordered_finite_intervals(algorithm: str) -> None:
    model = fitted(algorithm, n=800)
    xs, ys = linear_stream(300, seed=2)
    predictions = run_test(model, xs, ys, learn=True)
    assert all(math.isfinite(p.lower) and math.isfinite(p.upper) for p in predictions)
    assert all(p.lower <= p.value <= p.upper for p in predictions)
    assert score(ys, predictions)["mae"] < 3.0  # the target's own sd is 5.3


def test_coverage_is_configurable() -> None:
    xs, ys = linear_stream(3000, seed=2)
    wide = score(ys, run_test(fitted(coverage=0.98), xs, ys, learn=True))
    narrow = score(ys, run_test(fitted(coverage=0.5), xs, ys, learn=True))
    assert 0.96 <= wide["coverage"] <= 0.995
    assert 0.46 <= narrow["coverage"] <= 0.54
    assert narrow["width"] < wide["width"] / 2


def test_learning_follows_a_shift_that_freezes_the_frozen_model() -> None:
    model = fitted()
    # the process changes: +10 offset and a steeper slope (a burner modification, say)
    xs, ys = linear_stream(3000, seed=3, intercept=60.0, slope=0.3)
    frozen = run_test(model, xs, ys, learn=False)
    learning = run_test(model, xs, ys, learn=True)
    tail = slice(1000, None)  # after the learning model had time to adapt
    frozen_tail = score(ys[tail], frozen[tail])
    learn_tail = score(ys[tail], learning[tail])
    assert frozen_tail["mae"] > 8.0
    assert learn_tail["mae"] < 1.8
    assert frozen_tail["coverage"] < 0.2  # intervals calibrated before the shift miss it
    assert 0.85 <= learn_tail["coverage"] <= 0.95  # the online window has caught up


def test_the_caller_model_is_untouched_by_run_test_and_versions_count_updates() -> None:
    model = fitted()
    version = model.model_version
    assert version.endswith("-0")
    xs, ys = linear_stream(10, seed=4)
    run_test(model, xs, ys, learn=True)
    assert model.model_version == version
    digest = version.rsplit("-", 1)[0]
    for i, (x, y) in enumerate(zip(xs, ys, strict=True), start=1):
        assert model.predict_one(x).model_version == f"{digest}-{i - 1}"
        model.learn_one(x, y)
        assert model.updates == i
    assert model.model_version == f"{digest}-10"


def test_version_is_stable_for_the_same_fit_and_changes_with_data_or_settings() -> None:
    base = fitted().model_version
    assert fitted().model_version == base
    assert fitted(seed=5).model_version != base  # other training data
    assert fitted(coverage=0.8).model_version != base
    assert fitted(algorithm="poly2-rls").model_version != base
    assert fitted(window=500).model_version != base


def test_frozen_intervals_take_over_after_stale_after_predictions() -> None:
    model = fitted(stale_after=5)
    lo, hi = conformal_bounds(model.frozen_residuals, model.coverage)
    x, y = linear_stream(1, seed=6)[0][0], linear_stream(1, seed=6)[1][0]
    widths = []
    for _ in range(8):
        p = model.predict_one(x)
        assert p.lower <= p.value <= p.upper
        widths.append(p.upper - p.lower)
    assert widths[:5] == [widths[0]] * 5
    assert widths[5:] == [pytest.approx(max(hi, 0) - min(lo, 0))] * 3
    assert widths[0] != pytest.approx(widths[5])
    model.learn_one(x, y)  # an update makes the model fresh again
    fresh = model.predict_one(x)
    assert fresh.upper - fresh.lower == pytest.approx(widths[0], rel=0.2)


def test_frozen_residuals_come_from_snapshots_predicting_ahead() -> None:
    model = fitted(calibration_horizon=200, calibration_step=100, warmup_fraction=0.2)
    # origins every 100 rows from row 1200 up to row 5800, each predicting 200 rows
    assert model.frozen_residuals.size == len(range(1200, 5801, 100)) * 200
    assert abs(statistics.fmean(model.frozen_residuals)) < 0.2
    # the noise (sd 2) plus what the snapshots had not learnt yet
    assert 2.0 < statistics.pstdev(model.frozen_residuals) < 2.5


def test_misuse_is_refused_with_clear_errors() -> None:
    model = PemsModel(FEATURES, "nox")
    with pytest.raises(PemsModelError, match="not fitted"):
        model.predict_one({"load": 1.0, "temp": 2.0})
    with pytest.raises(PemsModelError, match="not fitted"):
        _ = model.model_version
    with pytest.raises(PemsModelError, match="too few"):
        model.fit(*linear_stream(40, seed=1))
    with pytest.raises(PemsModelError, match="3 feature rows but 2"):
        model.fit(*linear_stream(3, seed=1)[:1], [1.0, 2.0])
    model = fitted(n=500)
    with pytest.raises(PemsModelError, match=r"missing feature.*temp"):
        model.predict_one({"load": 1.0})
    with pytest.raises(PemsModelError, match="not finite: load"):
        model.predict_one({"load": math.nan, "temp": 1.0})
    with pytest.raises(PemsModelError, match="must be finite"):
        model.learn_one({"load": 1.0, "temp": 1.0}, math.inf)
    with pytest.raises(PemsModelError, match="already fitted"):
        model.fit(*linear_stream(500, seed=1))
    with pytest.raises(PemsModelError, match="unknown PEMS algorithm"):
        PemsModel(FEATURES, "nox", algorithm="magic")
    with pytest.raises(PemsModelError, match="coverage"):
        PemsModel(FEATURES, "nox", coverage=1.0)
    with pytest.raises(PemsModelError, match="window"):
        PemsModel(FEATURES, "nox", window=10)
    with pytest.raises(PemsModelError, match="target"):
        PemsModel(["nox", "load"], "nox")
    with pytest.raises(PemsModelError, match="duplicate"):
        PemsModel(["load", "load"], "nox")


def test_extra_inputs_are_ignored_and_feature_order_is_the_schema() -> None:
    model = fitted(n=500)
    x = {"temp": 500.0, "load": 60.0, "o2": 3.0}
    assert model.predict_one(x).value == model.predict_one({"load": 60.0, "temp": 500.0}).value
    assert model.features == ("load", "temp")
