"""Split-conformal bounds: the finite-sample guarantee and the rolling window."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream.pems.conformal import ResidualWindow, conformal_bounds, min_residuals


def test_the_guarantee_holds_at_small_sample_sizes() -> None:
    # 20 calibration residuals and one new point, exchangeable: P(inside) >= 0.9
    rng = np.random.default_rng(7)
    trials = 20_000
    inside = 0
    for _ in range(trials):
        sample = rng.standard_exponential(21)  # skewed, like CO residuals
        lo, hi = conformal_bounds(sample[:20], coverage=0.9)
        inside += lo <= sample[20] <= hi
    # n = 20: ranks 1 and 20, i.e. [min, max]; a 21st exchangeable point is inside w.p. 19/21
    assert inside / trials == pytest.approx(19 / 21, abs=0.007)


@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=300),
    st.sampled_from([0.5, 0.8, 0.9, 0.95, 0.99]),
)
def test_bounds_are_order_statistics_that_hold_the_target_share(
    residuals: list[float], coverage: float
) -> None:
    lo, hi = conformal_bounds(residuals, coverage)
    n = len(residuals)
    if n < min_residuals(coverage):
        assert (lo, hi) == (-math.inf, math.inf)
        return
    assert lo in residuals and hi in residuals and lo <= hi
    r = np.asarray(residuals)
    tail = (1 - coverage) / 2
    # at most a share tail·(n+1)/n of the residuals lies strictly outside on each side
    assert np.sum(r < lo) <= tail * (n + 1)
    assert np.sum(r > hi) <= tail * (n + 1)


def test_min_residuals() -> None:
    assert min_residuals(0.9) == 19
    assert conformal_bounds(range(18), 0.9) == (-math.inf, math.inf)
    assert conformal_bounds(range(19), 0.9) == (0.0, 18.0)
    with pytest.raises(ValueError, match="coverage"):
        min_residuals(0.0)


def test_window_forgets_old_residuals_and_refuses_too_small_sizes() -> None:
    w = ResidualWindow(size=100, coverage=0.9)
    assert w.bounds() == (-math.inf, math.inf)
    for r in range(-50, 50):
        w.append(float(r))
    assert w.bounds() == (-46.0, 45.0)
    for _ in range(100):  # the process improved: only small residuals now
        w.append(0.5)
    assert len(w) == 100
    assert w.bounds() == (0.5, 0.5)
    with pytest.raises(ValueError, match="at least 19"):
        ResidualWindow(size=18, coverage=0.9)
