"""Calibration of raw scores into an anomaly likelihood: range, order, tail accuracy, warm-up."""

from __future__ import annotations

import itertools
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.detect.likelihood import TailLikelihood


def trained(scores: list[float], **kwargs: float) -> TailLikelihood:
    cal = TailLikelihood(**kwargs)  # type: ignore[arg-type]
    for s in scores:
        cal.learn(s)
    return cal


def test_warmup_gives_zero_and_then_calibrates() -> None:
    cal = TailLikelihood(warmup=100)
    for i in range(99):
        cal.learn(float(i % 10))
        assert cal.likelihood(1e9) == 0.0
        assert not cal.ready
    cal.learn(5.0)
    assert cal.ready
    assert cal.likelihood(1e9) == 1.0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0.0, 1e6, allow_nan=False), min_size=10, max_size=400),
    st.lists(st.floats(0.0, 1e7, allow_nan=False), min_size=2, max_size=30),
)
def test_likelihood_is_in_unit_interval_and_monotone(
    learnt: list[float], probes: list[float]
) -> None:
    cal = trained(learnt, warmup=10, window=50)
    ordered = sorted(probes)
    values = [cal.likelihood(p) for p in ordered]
    assert all(0.0 <= v <= 1.0 for v in values)
    assert all(a <= b for a, b in itertools.pairwise(values))


def test_gaussian_scores_are_calibrated_or_conservative() -> None:
    rng = random.Random(5)
    cal = trained([abs(rng.gauss(0, 1)) for _ in range(20_000)])
    fresh = [abs(rng.gauss(0, 1)) for _ in range(100_000)]
    for p, low in ((0.05, 0.035), (0.01, 0.002), (0.001, 0.00005)):
        share = sum(cal.tail_probability(s) <= p for s in fresh) / len(fresh)
        # never (much) more alarms than promised; an exponential tail is heavier than the
        # Gaussian one, so fewer is expected, but not absurdly fewer
        assert low <= share <= 1.2 * p, (p, share)


def test_an_exponential_tail_is_estimated_accurately() -> None:
    rng = random.Random(6)
    cal = trained([rng.expovariate(1.0) for _ in range(30_000)], window=20_000)
    for s in (4.0, 6.0, 8.0):
        ratio = cal.tail_probability(s) / math.exp(-s)
        assert 0.5 < ratio < 2.0, (s, ratio)


def test_it_follows_recent_scores() -> None:
    rng = random.Random(7)
    cal = trained([abs(rng.gauss(0, 1)) for _ in range(5_000)], window=1_000)
    before = cal.likelihood(4.0)
    for _ in range(10_000):  # the score scale triples (e.g. a noisier season)
        cal.learn(abs(rng.gauss(0, 3)))
    assert before > 0.999
    assert cal.likelihood(4.0) < 0.99


def test_floors_keep_a_thin_warmup_from_flagging_everything() -> None:
    thin = trained([0.01 * (i % 3) for i in range(100)], warmup=100)
    floored = trained(
        [0.01 * (i % 3) for i in range(100)], warmup=100, min_threshold=1.6, min_excess=0.3
    )
    assert thin.likelihood(1.0) > 0.99999
    assert floored.likelihood(1.0) < 0.7
    assert floored.likelihood(6.0) > 0.99999


def test_a_constant_warmup_does_not_divide_by_zero() -> None:
    cal = trained([2.0] * 50, warmup=50)
    assert cal.likelihood(2.0) < 1.0
    assert cal.likelihood(2.1) > 0.9999


def test_one_huge_score_cannot_inflate_the_tail() -> None:
    rng = random.Random(8)
    cal = trained([abs(rng.gauss(0, 1)) for _ in range(5_000)])
    excess = cal.mean_excess
    cal.learn(1e12)
    assert cal.mean_excess < 2 * excess


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="q"):
        TailLikelihood(q=0.3)
    with pytest.raises(ValueError, match="warmup"):
        TailLikelihood(warmup=2)
