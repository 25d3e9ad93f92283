"""Drift: a two-sided CUSUM on standardised residuals raises "sensor drift suspected".

A drifting analyser moves a little every minute; no single reading is unusual, but its
residuals against the stack's consistency model (or its own forecast) stop averaging zero.
CUSUM accumulates exactly that evidence: ``g⁺ = max(0, g⁺ + z - k)`` and
``g⁻ = max(0, g⁻ - z - k)``, and fires when either exceeds ``h``. It is the optimal test for
a shift of the mean by ``2k`` against a known in-control mean, which residuals have (zero).

River's ``drift.PageHinkley(mode="both")`` is the same test but measures deviations from the
running mean of everything seen since its last reset, so a drift that starts early is partly
absorbed into that mean; with a known target the plain CUSUM is the better fit, and it is a
handful of float operations per reading. The API is River's ``DriftDetector`` one
(``update`` then ``drift_detected``), so River's detectors can be swapped in.

Inputs are clipped to ``±clip`` in the sums: one spike is the residual detector's business,
not drift's. When it fires, ``estimate`` is the mean (unclipped) input since the change began
(since the firing sum last left zero: the classic CUSUM change-point estimate), i.e. the size
of the shift, which is what a model must be re-anchored by; then the sums restart from zero.

>>> cusum = Cusum(slack=0.5, threshold=10.0)
>>> fired = []
>>> for i in range(100):
...     cusum.update(0.0 if i < 50 else 1.5)
...     if cusum.drift_detected:
...         fired.append(i)
>>> fired, cusum.estimate
([60, 71, 82, 93], 1.5)
"""

from __future__ import annotations


class Cusum:
    """Two-sided CUSUM for a zero-mean, unit-scale input.

    Parameters
    ----------
    slack
        ``k``: mean shifts smaller than about ``2k`` are ignored.
    threshold
        ``h``: evidence needed to fire; the in-control false-alarm rate falls roughly
        exponentially with ``h``.
    clip
        Inputs are clipped to ``±clip``.
    """

    def __init__(self, slack: float = 0.5, threshold: float = 50.0, clip: float = 6.0) -> None:
        if slack < 0 or threshold <= 0 or clip <= 0:
            raise ValueError("need slack ≥ 0, threshold > 0 and clip > 0")
        self.slack = slack
        self.threshold = threshold
        self.clip = clip
        self.estimate = 0.0
        self._drift = False
        self.reset()

    def reset(self) -> None:
        """Forget the accumulated evidence (e.g. after the cause was dealt with elsewhere)."""
        self.upper = self.lower = 0.0
        self._upper_sum = self._lower_sum = 0.0
        self._upper_n = self._lower_n = 0

    @property
    def drift_detected(self) -> bool:
        """Whether the last update fired."""
        return self._drift

    def update(self, x: float) -> None:
        """Add one standardised residual."""
        clip = self.clip
        bounded = clip if x > clip else -clip if x < -clip else x
        upper = self.upper + bounded - self.slack
        lower = self.lower - bounded - self.slack
        if upper > 0.0:
            self.upper = upper
            self._upper_sum += x
            self._upper_n += 1
        else:
            self.upper = self._upper_sum = 0.0
            self._upper_n = 0
        if lower > 0.0:
            self.lower = lower
            self._lower_sum += x
            self._lower_n += 1
        else:
            self.lower = self._lower_sum = 0.0
            self._lower_n = 0
        h = self.threshold
        if self.upper > h or self.lower > h:
            up = self.upper >= self.lower
            total, n = (self._upper_sum, self._upper_n) if up else (self._lower_sum, self._lower_n)
            self.estimate = total / n
            self._drift = True
            self.reset()
        else:
            self._drift = False

    def pending(self, direction: int) -> float:
        """Mean input since the upward (``direction`` > 0) or downward sum last left zero
        (0.0 at zero): the size of a change that is accumulating but has not fired yet."""
        if direction > 0:
            return self._upper_sum / self._upper_n if self._upper_n else 0.0
        return self._lower_sum / self._lower_n if self._lower_n else 0.0

    def confirm(self, direction: int) -> None:
        """Fire now on the pending change in ``direction`` (other evidence confirmed it):
        ``estimate`` becomes :meth:`pending`, ``drift_detected`` is true, the sums restart."""
        self.estimate = self.pending(direction)
        self._drift = True
        self.reset()

    def __repr__(self) -> str:
        return f"Cusum(slack={self.slack}, threshold={self.threshold}, clip={self.clip})"
