"""The robust forecast-residual detector."""

from __future__ import annotations

import random
import statistics

import pytest

from stream.detect.residual import RobustResidual


def test_scale_estimates_the_noise_sd() -> None:
    rng = random.Random(1)
    det = RobustResidual(alpha=1.0)  # forecast = last value, so residuals are N(0, 2·σ²)
    values = [rng.gauss(0, 2.0) for _ in range(20_000)]
    for v in values:
        det.learn_value(v)
    assert det.scale == pytest.approx(2.0 * 2**0.5, rel=0.1)


def test_scores_in_scales_away_from_the_forecast() -> None:
    rng = random.Random(2)
    det = RobustResidual()
    for _ in range(2000):
        det.learn_one({"value": 10.0 + rng.gauss(0, 0.5)})
    z = [det.score_one({"value": 10.0 + rng.gauss(0, 0.5)}) for _ in range(2000)]
    assert statistics.median(z) < 1.0
    assert det.score_one({"value": 10.0 + 10 * det.scale}) == pytest.approx(10.0, rel=0.15)


def test_an_unflagged_outlier_moves_the_level_by_at_most_clip_scales() -> None:
    det = RobustResidual(alpha=0.5, clip=4.0, warmup=5)
    for i in range(100):
        det.learn_value(1.0 if i % 2 else -1.0)
    level, scale = det.level, det.scale
    det.learn_value(1e6)
    assert abs(det.level - level) <= 0.5 * 4.0 * scale + 1e-9


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="alpha"):
        RobustResidual(alpha=0.0)
    with pytest.raises(ValueError, match="warmup"):
        RobustResidual(warmup=1)
