"""Cross-sensor consistency: does each sensor agree with the other sensors of its stack?

The analysers of one stack follow the same process (load, fuel, combustion air): NOx, flow
and CO₂ rise together, O₂ falls. A drifting or offset analyser, or one frozen while the
process moves, slowly leaves that relationship while staying inside its own usual range,
which no single-series model can tell from a process change. This is classic multivariate
statistical process control: the stack's readings are modelled as Gaussian with an
exponentially weighted mean ``μ`` and covariance ``C``, and each sensor is predicted from the
others. With the precision matrix ``Q = C⁻¹`` the leave-one-out residual of every sensor
comes from one matrix-vector product: ``r = Q(x - μ) / diag(Q)`` with variance ``1/diag(Q)``,
so the standardised residual is ``Q(x - μ) / √diag(Q)``. A fault of size Δ on sensor j shows
as ``√Q_jj·Δ`` on j and only ``Q_ij·Δ/√Q_ii`` on the others, so the largest residual also
names the faulty sensor.

Why not River's ``HalfSpaceTrees`` here: its axis-aligned random splits see a reading that
is off the stack's correlation line only once it is also off the marginal ranges, it gives
one score with no sensor to blame, and its documentation warns it is poor when anomalies
come packed in time, which drifts and shifts are. It remains a valid :class:`Detector` (see
:mod:`stream.detect.hst`), and ``bench.detection`` can compare the two.

Cost: ``Q`` is refreshed every ``refresh`` updates (a k×k inverse); per reading it is one
k×k product for scoring and a rank-one update for learning.

>>> import random
>>> rng = random.Random(3)
>>> model = StackConsistency(["a", "b"], warmup=200)
>>> for _ in range(1000):
...     load = rng.uniform(0, 10)
...     model.learn_one({"a": load + rng.gauss(0, 0.1), "b": 2 * load + rng.gauss(0, 0.1)})
>>> model.score_one({"a": 5.0, "b": 10.0}) < 3
True
>>> res = model.residuals({"a": 5.0, "b": 12.0})   # b is 2 units off the line a = b / 2
>>> bool(abs(res[1]) > 5)
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float64]


class StackConsistency:
    """Gaussian leave-one-out residuals across the sensors of a stack (a Detector).

    Parameters
    ----------
    features
        The sensors, in a fixed order; every ``x`` must hold all of them.
    half_life
        Half-life of the mean and covariance, in updates: 6 h at 1 Hz by default, because the
        relationship between the sensors is a property of the plant, a short memory forgets
        it during a long load plateau, and a slow drift must not be learnt as it happens.
    refresh
        Recompute the precision matrix every this many updates.
    warmup
        Updates before scoring (the score is 0.0 until then).
    ridge
        Added to the diagonal, relative to each variance, so that a sensor that is constant
        or an exact combination of others does not make ``C`` singular.
    """

    def __init__(
        self,
        features: Sequence[str],
        half_life: float = 21600.0,
        refresh: int = 60,
        warmup: int = 600,
        ridge: float = 1e-3,
    ) -> None:
        if len(features) < 2 or len(set(features)) != len(features):
            raise ValueError("need at least two distinct features")
        if half_life <= 1 or refresh < 1 or warmup < 2 or ridge <= 0:
            raise ValueError("need half_life > 1, refresh ≥ 1, warmup ≥ 2, ridge > 0")
        self.features = tuple(features)
        self.half_life = half_life
        self.refresh = refresh
        self.warmup = warmup
        self.ridge = ridge
        k = len(self.features)
        self._rate = 1.0 - 0.5 ** (1.0 / half_life)
        self.mean: Vector = np.zeros(k)
        self.cov: Vector = np.zeros((k, k))
        self._precision: Vector = np.zeros((k, k))
        self._root_diag: Vector = np.ones(k)
        self.n = 0

    @property
    def precision(self) -> Vector:
        """The regularised precision matrix in use (refreshed every ``refresh`` updates)."""
        return self._precision

    @property
    def ready(self) -> bool:
        """Whether warm-up is over (scores are meaningful)."""
        return self.n >= self.warmup

    def vector(self, x: dict[str, float]) -> Vector:
        """``x`` as an array in feature order."""
        return np.fromiter((x[f] for f in self.features), np.float64, len(self.features))

    def standardized(self, v: Vector) -> Vector | None:
        """Signed standardised leave-one-out residual per sensor, or None before warm-up."""
        if self.n < self.warmup:
            return None
        result: Vector = (self._precision @ (v - self.mean)) / self._root_diag
        return result

    def residuals(self, x: dict[str, float]) -> Vector | None:
        """:meth:`standardized` of a feature dict."""
        return self.standardized(self.vector(x))

    def score_one(self, x: dict[str, float]) -> float:
        res = self.residuals(x)
        return 0.0 if res is None else float(np.max(np.abs(res)))

    def learn_one(self, x: dict[str, float]) -> None:
        self.learn_vector(self.vector(x))

    def learn_vector(self, v: Vector) -> None:
        """``learn_one`` of an array in feature order (the pipeline's path)."""
        self.n += 1
        rate = max(self._rate, 1.0 / self.n)
        d = v - self.mean
        self.mean += rate * d
        self.cov = (1.0 - rate) * (self.cov + rate * np.outer(d, d))
        if self.n % self.refresh == 0 or self.n == self.warmup:
            self._refresh()

    def _refresh(self) -> None:
        cov = self.cov
        variances = np.diag(cov)
        scale = float(np.max(variances)) if variances.size else 0.0
        floor = self.ridge * variances + 1e-12 * (1.0 + scale)
        precision = np.asarray(np.linalg.inv(cov + np.diag(floor)), dtype=np.float64)
        self._precision = precision
        self._root_diag = np.sqrt(np.diag(precision))

    def reanchor(self, index: int, shift: float) -> None:
        """Sensor ``index`` has really moved by ``shift`` standardised residuals (a confirmed
        level change): move its mean along, keep the covariance."""
        if self.n >= self.warmup:
            self.mean[index] += shift / float(self._root_diag[index])

    def __repr__(self) -> str:
        return (
            f"StackConsistency(features={list(self.features)!r}, half_life={self.half_life}, "
            f"refresh={self.refresh}, warmup={self.warmup}, ridge={self.ridge})"
        )
