"""Forecast-residual detector: how far a reading is from the sensor's own one-step forecast.

The forecast is a robust EWMA of the level, and the residual is divided by a robust running
scale (an EW mean absolute residual), so the score reads as "standard deviations away". It
reacts within one reading to spikes and to the onset of level shifts, which is what it is
for; slow drifts are followed by the forecast and are left to the consistency model and the
drift detector.

Why robust: a residual larger than ``clip`` scales moves the level and the scale only as much
as one of ``clip`` scales would (a Huber update), so a fault the filter did not flag cannot
drag the forecast along. The per-reading cost is a few float operations (no NumPy, no
River): it runs for every sensor at every reading.

>>> det = RobustResidual()
>>> for i in range(200):
...     det.learn_one({"value": 10.0 + (0.1 if i % 2 else -0.1)})
>>> det.score_one({"value": 10.1}) < 3 < det.score_one({"value": 12.0})
True
"""

from __future__ import annotations

import math

_MEAN_ABS_TO_SD = math.sqrt(math.pi / 2)  # σ = E|r|·√(π/2) for Gaussian residuals


class RobustResidual:
    """Robust EWMA one-step forecast; score = |residual| / robust scale (a Detector).

    Parameters
    ----------
    alpha
        Weight of a new reading in the level (0 < alpha ≤ 1); higher follows faster and lets
        less of a persistent fault show.
    scale_rate
        EW rate of the residual scale; ``0.005`` remembers about the last 200 readings.
    clip
        Residuals beyond ``clip`` scales are clipped in both updates (Huber).
    warmup
        Readings to learn before scoring (the score is 0.0 until then).
    feature
        The key of the value in ``x``.
    """

    def __init__(
        self,
        alpha: float = 0.2,
        scale_rate: float = 0.005,
        clip: float = 4.0,
        warmup: int = 30,
        feature: str = "value",
    ) -> None:
        if not 0 < alpha <= 1 or not 0 < scale_rate <= 1:
            raise ValueError("alpha and scale_rate must be in (0, 1]")
        if clip <= 0 or warmup < 2:
            raise ValueError("clip must be positive and warmup at least 2")
        self.alpha = alpha
        self.scale_rate = scale_rate
        self.clip = clip
        self.warmup = warmup
        self.feature = feature
        self.level = 0.0
        self.mean_abs = 0.0
        self.n = 0

    @property
    def scale(self) -> float:
        """The residual standard deviation (robust), never zero."""
        return max(self.mean_abs * _MEAN_ABS_TO_SD, 1e-9 + 1e-6 * abs(self.level))

    def standardized(self, value: float) -> float:
        """Signed residual of ``value`` in scales (0.0 before warm-up)."""
        if self.n < self.warmup:
            return 0.0
        return (value - self.level) / self.scale

    def score_one(self, x: dict[str, float]) -> float:
        return abs(self.standardized(x[self.feature]))

    def learn_one(self, x: dict[str, float]) -> None:
        self.learn_value(x[self.feature])

    def learn_value(self, value: float) -> None:
        """``learn_one`` without the dict (the pipeline's per-reading path)."""
        n = self.n
        if n == 0:
            self.level = value
            self.n = 1
            return
        residual = value - self.level
        size = abs(residual)
        if n >= self.warmup:
            limit = self.clip * self.scale
            if size > limit:
                residual = math.copysign(limit, residual)
                size = limit
        rate = max(self.scale_rate, 1.0 / n)
        self.mean_abs += rate * (size - self.mean_abs)
        self.level += self.alpha * residual
        self.n = n + 1

    def reanchor(self, value: float) -> None:
        """Accept ``value`` as the new level (after a confirmed shift); the scale is kept."""
        self.level = value

    def __repr__(self) -> str:
        return (
            f"RobustResidual(alpha={self.alpha}, scale_rate={self.scale_rate}, "
            f"clip={self.clip}, warmup={self.warmup}, feature={self.feature!r})"
        )
