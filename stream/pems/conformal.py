"""Conformal prediction intervals from signed residuals ``y - ŷ``.

A residual is only honest if it was produced before the model saw its ``y`` (a prediction on
data the model has learnt is optimistic). Given ``n`` such residuals and a target coverage
``1 - α``, the interval ``[ŷ + r_(k_lo), ŷ + r_(k_hi)]`` with the order statistics
``k_lo = ⌊(n + 1) α/2⌋`` and ``k_hi = ⌈(n + 1)(1 - α/2)⌉`` misses a new exchangeable point on
each side with probability at most ``α/2`` (split conformal, finite-sample). Signed residuals
give asymmetric intervals, which matters for skewed pollutants such as CO. The intervals are
marginal (the same offsets for every ``x``), like River's ``conf.RegressionJackknife``; the
README records why normalised (``x``-dependent) scores were rejected on the gas-turbine data.

>>> bounds = conformal_bounds([-2.0, -1.0, 0.0, 1.0, 2.0] * 8, coverage=0.8)
>>> bounds
(-2.0, 2.0)
>>> w = ResidualWindow(size=3, coverage=0.5)
>>> for r in (5.0, -1.0, 0.0, 1.0):
...     w.append(r)
>>> len(w), w.bounds()
(3, (-1.0, 1.0))
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt


def check_coverage(coverage: float) -> float:
    """``coverage`` if it is in (0, 1); ValueError otherwise."""
    if not 0.0 < coverage < 1.0:
        raise ValueError(f"coverage must be in (0, 1), got {coverage}")
    return coverage


def min_residuals(coverage: float) -> int:
    """Fewest residuals that give finite bounds at ``coverage`` (19 for 90 %)."""
    tail = (1.0 - check_coverage(coverage)) / 2.0
    return math.ceil(_exact(1.0 / tail)) - 1


def _exact(value: float) -> float:
    """``value`` without binary round-off (0.05 · 20 is 1.0, not 0.9999999999999999), so
    ranks that are whole numbers in decimal stay whole."""
    return round(value, 9)


def conformal_bounds(residuals: Iterable[float], coverage: float) -> tuple[float, float]:
    """Finite-sample lower and upper offsets for ``coverage`` from signed residuals.

    With fewer than :func:`min_residuals` residuals a side is unbounded (``±inf``): that is
    what the guarantee gives, and an infinite interval is better than a falsely narrow one.
    """
    tail = (1.0 - check_coverage(coverage)) / 2.0
    r: npt.NDArray[np.float64] = np.fromiter(residuals, dtype=np.float64)
    n = r.size
    k_lo = math.floor(_exact((n + 1) * tail))
    k_hi = math.ceil(_exact((n + 1) * (1.0 - tail)))
    if k_lo < 1 or k_hi > n:
        return (-math.inf, math.inf)
    part = np.partition(r, (k_lo - 1, k_hi - 1))
    return (float(part[k_lo - 1]), float(part[k_hi - 1]))


class ResidualWindow:
    """The last ``size`` residuals and their conformal bounds (cached until the next append).

    A rolling window rather than the whole history keeps the intervals honest under drift:
    the model's recent errors, not its average error since commissioning, set the width.
    """

    def __init__(self, size: int, coverage: float) -> None:
        if size < min_residuals(coverage):
            raise ValueError(
                f"a window of {size} residuals cannot give finite {coverage:.0%} bounds "
                f"(at least {min_residuals(coverage)} needed)"
            )
        self.size = size
        self.coverage = coverage
        self._residuals: deque[float] = deque(maxlen=size)
        self._bounds: tuple[float, float] | None = None

    def __len__(self) -> int:
        return len(self._residuals)

    def append(self, residual: float) -> None:
        """Add one residual (``y - ŷ`` with ``ŷ`` predicted before learning ``y``)."""
        self._residuals.append(residual)
        self._bounds = None

    def bounds(self) -> tuple[float, float]:
        """Lower and upper offsets over the window (``±inf`` while it is too short)."""
        if self._bounds is None:
            self._bounds = conformal_bounds(self._residuals, self.coverage)
        return self._bounds
