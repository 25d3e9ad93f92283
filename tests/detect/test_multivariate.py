"""The stack consistency model, checked against batch references (River's test_stats idea)."""

from __future__ import annotations

import numpy as np
import pytest

from stream.detect.multivariate import StackConsistency

NAMES = ["nox", "so2", "o2", "flow"]


def correlated(n: int, seed: int) -> np.ndarray:
    """Four sensors driven by one load, each with its own noise."""
    rng = np.random.default_rng(seed)
    load = rng.uniform(0.4, 1.0, n)
    gains = np.array([150.0, 80.0, -8.0, 50.0])
    noise = np.array([1.5, 1.0, 0.05, 0.4])
    return np.asarray(load[:, None] * gains + rng.normal(0.0, 1.0, (n, 4)) * noise)


def learnt(data: np.ndarray, **kwargs: float) -> StackConsistency:
    model = StackConsistency(NAMES, warmup=50, refresh=1, **kwargs)
    for row in data:
        model.learn_vector(row)
    return model


def test_mean_and_covariance_equal_the_batch_ones_while_weights_are_equal() -> None:
    data = correlated(500, seed=1)
    model = learnt(data, half_life=1e9)  # the EW rate stays at 1/n over 500 updates
    for n in (2, 50, 500):
        prefix = learnt(data[:n], half_life=1e9)
        np.testing.assert_allclose(prefix.mean, data[:n].mean(axis=0), rtol=1e-10)
        np.testing.assert_allclose(prefix.cov, np.cov(data[:n].T, bias=True), rtol=1e-8)
    assert model.n == 500


def test_the_mean_forgets_with_the_half_life() -> None:
    model = StackConsistency(["a", "b"], half_life=100.0, warmup=2)
    for _ in range(10_000):
        model.learn_vector(np.array([0.0, 0.0]))
    for _ in range(100):
        model.learn_vector(np.array([1.0, 1.0]))
    np.testing.assert_allclose(model.mean, [0.5, 0.5], atol=1e-6)


def test_residuals_equal_the_leave_one_out_gaussian_regression() -> None:
    data = correlated(3000, seed=2)
    model = learnt(data, half_life=1e9, ridge=1e-12)
    x = data[-1] + np.array([0.0, 3.0, 0.0, 0.0])
    residuals = model.standardized(x)
    assert residuals is not None
    mu, cov = model.mean, model.cov
    for j in range(4):
        rest = [i for i in range(4) if i != j]
        coef = np.linalg.solve(cov[np.ix_(rest, rest)], cov[rest, j])
        expected = mu[j] + coef @ (x[rest] - mu[rest])
        variance = cov[j, j] - cov[j, rest] @ coef
        assert residuals[j] == pytest.approx((x[j] - expected) / variance**0.5, rel=1e-6)


@pytest.mark.parametrize("faulty", range(4))
@pytest.mark.parametrize("size_sd", [6.0, -10.0])
def test_the_faulty_sensor_has_the_largest_residual(faulty: int, size_sd: float) -> None:
    data = correlated(3000, seed=3)
    model = learnt(data)
    x = data[-1].copy()
    x[faulty] += size_sd / float(np.sqrt(model.precision[faulty, faulty]))
    residuals = model.standardized(x)
    assert residuals is not None
    assert int(np.argmax(np.abs(residuals))) == faulty


def test_reanchor_absorbs_a_confirmed_shift() -> None:
    data = correlated(3000, seed=4)
    model = learnt(data)
    x = data[-1].copy()
    before = model.standardized(x)
    assert before is not None
    model.reanchor(1, float(before[1]))
    after = model.standardized(x)
    assert after is not None
    assert abs(after[1]) < 1e-9


def test_nothing_is_scored_before_warmup() -> None:
    model = StackConsistency(["a", "b"], warmup=10)
    assert model.score_one({"a": 1.0, "b": 2.0}) == 0.0
    assert model.residuals({"a": 1.0, "b": 2.0}) is None


def test_needs_two_distinct_features() -> None:
    with pytest.raises(ValueError, match="two distinct"):
        StackConsistency(["a"])
    with pytest.raises(ValueError, match="two distinct"):
        StackConsistency(["a", "a"])
