"""Two-sided CUSUM drift detection on standardised residuals."""

from __future__ import annotations

import random

import pytest

from stream.detect.drift import Cusum


def first_fire(cusum: Cusum, values: list[float]) -> int | None:
    for i, v in enumerate(values):
        cusum.update(v)
        if cusum.drift_detected:
            return i
    return None


@pytest.mark.parametrize("shift", [2.0, -2.0, 5.0, -5.0])
def test_detects_shifts_both_ways_and_estimates_their_size(shift: float) -> None:
    rng = random.Random(1)
    values = [rng.gauss(0, 1) for _ in range(500)] + [shift + rng.gauss(0, 1) for _ in range(500)]
    cusum = Cusum(slack=1.0, threshold=40.0)
    fired = first_fire(cusum, values)
    assert fired is not None and fired >= 500
    assert fired - 500 < 40.0 / (abs(shift) - 1.0) * 2
    assert cusum.estimate == pytest.approx(shift, abs=0.6)


def test_quiet_on_in_control_noise() -> None:
    rng = random.Random(2)
    cusum = Cusum(slack=3.0, threshold=150.0)
    assert first_fire(cusum, [rng.gauss(0, 1) for _ in range(200_000)]) is None


def test_a_single_spike_is_clipped_and_does_not_fire() -> None:
    cusum = Cusum(slack=0.5, threshold=20.0, clip=6.0)
    assert first_fire(cusum, [0.0] * 10 + [1e6] + [0.0] * 10) is None


def test_restarts_after_firing() -> None:
    cusum = Cusum(slack=0.0, threshold=3.0)
    assert first_fire(cusum, [1.0] * 4) == 3
    assert (cusum.upper, cusum.lower) == (0.0, 0.0)
    cusum.update(0.0)
    assert not cusum.drift_detected


def test_confirm_fires_on_the_pending_change() -> None:
    cusum = Cusum(slack=1.0, threshold=100.0)
    for v in (4.0, 5.0, 6.0):
        cusum.update(v)
    assert not cusum.drift_detected
    assert cusum.pending(1) == pytest.approx(5.0)
    assert cusum.pending(-1) == 0.0
    cusum.confirm(1)
    assert cusum.drift_detected and cusum.estimate == pytest.approx(5.0)
    assert cusum.pending(1) == 0.0
