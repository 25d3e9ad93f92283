"""The decision layer: threshold, and protection of the models from anomalous readings."""

from __future__ import annotations

import random

import pytest

from stream.detect.filter import DEFAULT_THRESHOLD, AnomalyFilter
from stream.detect.pipeline import SensorDetector
from stream.model import NS_PER_S


@pytest.mark.parametrize(
    ("score", "expected"),
    [
        (DEFAULT_THRESHOLD, True),  # the threshold itself is anomalous (score ≥ threshold)
        (1.0, True),
        (DEFAULT_THRESHOLD - 1e-9, False),
        (0.0, False),
    ],
)
def test_classify(score: float, expected: bool) -> None:
    assert AnomalyFilter().classify(score) is expected


def test_threshold_is_validated() -> None:
    with pytest.raises(ValueError, match="threshold"):
        AnomalyFilter(threshold=0.0)


def warmed(protect: bool) -> SensorDetector:
    rng = random.Random(3)
    detector = SensorDetector(filter=AnomalyFilter(protect=protect), warmup=100, window=500)
    for i in range(400):
        detector.update(i * NS_PER_S, 50.0 + rng.gauss(0, 1))
    return detector


def test_protected_models_do_not_learn_an_anomalous_reading() -> None:
    detector = warmed(protect=True)
    level, scale = detector.residual.level, detector.residual.scale
    verdict = detector.update(400 * NS_PER_S, 90.0)
    assert verdict.is_anomaly
    assert (detector.residual.level, detector.residual.scale) == (level, scale)


def test_unprotected_models_learn_it() -> None:
    detector = warmed(protect=False)
    level = detector.residual.level
    assert detector.update(400 * NS_PER_S, 90.0).is_anomaly
    assert detector.residual.level > level
