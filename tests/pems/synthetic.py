"""Synthetic PEMS streams with a known truth: a linear process plus Gaussian noise.

The signal-to-noise ratio is that of a real stack (R² ≈ 0.85 for a perfect model: the
process explains most, not all, of the analyser reading), which also sets how many rows an
SGD model needs to converge.
"""

from __future__ import annotations

import random


def linear_stream(
    n: int, *, seed: int, intercept: float = 50.0, slope: float = 0.2, noise: float = 2.0
) -> tuple[list[dict[str, float]], list[float]]:
    """``nox = intercept + slope (load - 60) - 0.03 (temp - 500) + N(0, noise)``."""
    rng = random.Random(seed)
    xs = [{"load": rng.uniform(20.0, 100.0), "temp": rng.uniform(400.0, 600.0)} for _ in range(n)]
    ys = [
        intercept + slope * (x["load"] - 60.0) - 0.03 * (x["temp"] - 500.0) + rng.gauss(0, noise)
        for x in xs
    ]
    return xs, ys
