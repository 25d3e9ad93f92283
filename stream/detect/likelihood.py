"""Calibration: a raw detector score → an anomaly likelihood in [0, 1] from recent scores.

Raw scores are not comparable (a residual in scales, a consistency residual, a tree mass),
and even a z-score is not Gaussian on real plant data (heavy tails from process upsets), so a
fixed threshold on raw scores gives very different false-alarm rates per sensor. As NAB's
anomaly likelihood does, each raw score stream is calibrated by its own recent history:
``likelihood = 1 - P(score ≥ s)``, estimated from recent scores.

At 1 Hz one false alarm per sensor-day is a tail probability near 1e-5, far beyond any
empirical window, so the tail is modelled (peaks over threshold): above a running quantile
``t`` (level ``q``) the excesses are taken as exponential with a running mean ``m``, so
``P(S > s) = (1 - q)·exp(-(s - t)/m)``; below ``t`` a linear body keeps the map monotone.
The exponential tail is heavier than a Gaussian one, so for Gaussian noise it errs on the
side of fewer alarms. Both ``t`` (a stochastic-approximation quantile) and ``m`` are O(1)
updates with a memory of about ``window`` scores.

Warm-up: the first ``warmup`` scores are only collected (likelihood 0.0, nothing can be
flagged); they initialise ``t`` and ``m`` from their empirical quantile.

>>> import random
>>> rng = random.Random(1)
>>> cal = TailLikelihood(warmup=500)
>>> cal.likelihood(3.0)
0.0
>>> for _ in range(5000):
...     cal.learn(abs(rng.gauss(0, 1)))
>>> round(cal.likelihood(0.5), 2), cal.likelihood(8.0) > 0.99999
(0.25, True)
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence


class TailLikelihood:
    """Running calibration of one raw score stream (scores ≥ 0, higher = more anomalous).

    Parameters
    ----------
    q
        Quantile where the modelled tail begins (0.5 < q < 1).
    window
        Memory of the running estimates, in scores.
    warmup
        Scores to collect before any likelihood above 0.
    max_excess
        An excess is learnt as at most this many mean excesses, so one huge unflagged score
        cannot inflate the tail for hours.
    min_threshold, min_excess
        Floors of ``t`` and ``m`` in the tail model: a prior on how spread the scores are at
        least. Scores that are standardised residuals have a known spread, while a short or
        strongly autocorrelated warm-up can make the estimated tail far too thin (900 readings
        of a signal that moves over minutes are only a few independent samples).
    """

    def __init__(
        self,
        q: float = 0.95,
        window: int = 7200,
        warmup: int = 600,
        max_excess: float = 20.0,
        *,
        min_threshold: float = 0.0,
        min_excess: float = 0.0,
    ) -> None:
        if not 0.5 < q < 1:
            raise ValueError("q must be in (0.5, 1)")
        if window < 10 or warmup < 10 or max_excess <= 1:
            raise ValueError("window and warmup must be ≥ 10 and max_excess > 1")
        if min_threshold < 0 or min_excess < 0:
            raise ValueError("the floors must be ≥ 0")
        self.q = q
        self.window = window
        self.warmup = warmup
        self.max_excess = max_excess
        self.min_threshold = min_threshold
        self.min_excess = min_excess
        self.threshold = 0.0  # t: the running q-quantile
        self.mean_excess = 0.0  # m: mean of (s - t) over s > t
        self.n = 0
        # Warm-up scores as packed doubles: 8 bytes each instead of a float object and a list
        # slot (~32), which is most of a sensor's memory until it is warm.
        self._first: array[float] | None = array("d")

    @property
    def ready(self) -> bool:
        """Whether warm-up is over."""
        return self._first is None

    def tail_probability(self, score: float) -> float:
        """Estimated P(S ≥ score) under recent scores (1.0 during warm-up)."""
        if self._first is not None:
            return 1.0
        t = max(self.threshold, self.min_threshold)
        if score > t:
            m = max(self.mean_excess, self.min_excess)
            return (1.0 - self.q) * math.exp(-(score - t) / m)
        if t <= 0.0 or score <= 0.0:
            return 1.0
        return 1.0 - self.q * score / t

    def likelihood(self, score: float) -> float:
        """``1 - P(S ≥ score)`` in [0, 1]; 0.0 during warm-up."""
        return 1.0 - self.tail_probability(score)

    def learn(self, score: float) -> None:
        """Add one raw score to the recent history."""
        self.n += 1
        first = self._first
        if first is not None:
            first.append(score)
            if len(first) >= self.warmup:
                self._initialise(first)
            return
        t, m, q = self.threshold, self.mean_excess, self.q
        rate = 1.0 / self.window
        if score > t:
            excess = min(score - t, self.max_excess * m)
            self.mean_excess = m + rate / (1.0 - q) * (excess - m)
            self.threshold = t + rate * m * q / (1.0 - q)
        else:
            self.threshold = t - rate * m

    def _initialise(self, scores: Sequence[float]) -> None:
        ordered = sorted(scores)
        t = ordered[min(int(self.q * len(ordered)), len(ordered) - 1)]
        excesses = [s - t for s in ordered if s > t]
        spread = ordered[-1] - ordered[0]
        m = sum(excesses) / len(excesses) if excesses else 0.0
        # A constant warm-up (a flat, noise-free signal) has no tail: keep a tiny positive one
        # so any later departure is very unlikely rather than a division by zero.
        self.threshold = t
        self.mean_excess = max(m, 1e-3 * spread, 1e-9 * (1.0 + abs(t)))
        self._first = None

    def __repr__(self) -> str:
        return (
            f"TailLikelihood(q={self.q}, window={self.window}, warmup={self.warmup}, "
            f"max_excess={self.max_excess}, min_threshold={self.min_threshold}, "
            f"min_excess={self.min_excess})"
        )
