"""One PEMS soft sensor: an online regressor for one pollutant of one stack, with intervals.

:class:`PemsModel` predicts a pollutant (``target``) from process parameters (``features``)
and gives every prediction a conformal interval at a configurable coverage (default 90 %) and
the version of the model state that produced it.

Two sets of honest residuals back the intervals (see :mod:`stream.pems.conformal`):

* **frozen** residuals, fixed at :meth:`PemsModel.fit` by rolling-origin calibration: after a
  warm-up (the first ``warmup_fraction`` of the training rows), every ``calibration_step``
  rows a snapshot of the model predicts the next ``calibration_horizon`` rows *without
  learning* while the model itself keeps learning. These residuals include the drift a model
  meets when it is not updated for up to the horizon, so a model left frozen (a soft sensor
  running on last year's fit) keeps its coverage as long as the drift stays like the drift in
  its training history. One-step-ahead residuals under-cover badly under drift, and a single
  hold-out split is a lottery: on the gas-turbine data the 2013 NOx coverage of one split
  moved between 0.72 and 0.97 depending on where the split fell, while pooling many origins
  makes it stable.
* **online** residuals, a rolling window (default 1000) of one-step-ahead residuals: each
  :meth:`PemsModel.learn_one` first records ``y - ŷ`` with ``ŷ`` predicted before learning
  ``y``. It starts with the last one-step-ahead residuals of the training run.

:meth:`PemsModel.predict_one` uses the online window while the model is fresh (fewer than
``stale_after`` predictions since its last update: a model learning from a working analyser,
or a short analyser gap) and the frozen residuals once it is stale (a long gap, or a model run
without updates). The snapshots of the first origins have seen little data, so on a short
training history (a few thousand rows for SGD) the frozen intervals are conservative.

**Model version** (:attr:`PemsModel.model_version`): ``<digest>-<updates>``. The digest is the
first 12 hex digits of a SHA-256 over the algorithm and its full River parameters, features,
target, coverage, window, calibration settings, staleness limit, seed, River version and the
fingerprint of the training rows (their values, in order); the counter is the number of
:meth:`~PemsModel.learn_one` updates since the fit. The algorithms are deterministic for a
given seed, so one fit gives one digest wherever it runs, a refit on other data or with other
settings a new one, and within one model's lineage (one model per stack and pollutant, updated
in stream order) the version names the exact state. Two copies of a fit that learnt different
rows would share a counter: keep one lineage per model.

>>> import random
>>> rng = random.Random(1)
>>> xs = [{"load": rng.uniform(0, 100)} for _ in range(400)]
>>> ys = [3.0 * x["load"] + 20.0 + rng.gauss(0, 2) for x in xs]
>>> model = PemsModel(["load"], "nox", algorithm="linear-sgd")
>>> model.fit(xs, ys)
>>> p = model.predict_one({"load": 50.0})
>>> p.lower < p.value < p.upper and abs(p.value - 170.0) < 10.0
True
>>> p.model_version == model.model_version and p.model_version.endswith("-0")
True
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import numpy as np
import numpy.typing as npt

from stream.pems.algorithms import DEFAULT_ALGORITHM, Features, OnlineRegressor, get_algorithm
from stream.pems.conformal import ResidualWindow, check_coverage, conformal_bounds, min_residuals

MIN_TRAINING_ROWS = 50
"""Fewest rows the regressor learns before its first snapshot is calibrated."""
MIN_ORIGINS = 10
"""Snapshots the calibration aims for at least, on short training sets (shorter steps)."""


class PemsModelError(ValueError):
    """A PEMS model used wrongly: not fitted, missing features, bad settings or data."""


@dataclass(frozen=True)
class Prediction:
    """A predicted pollutant value with its interval and the model version that made it.

    ``lower <= value <= upper`` always holds (an asymmetric interval is widened to contain its
    own prediction, which never lowers the coverage).
    """

    value: float
    lower: float
    upper: float
    model_version: str


def river_version() -> str:
    """The installed River version (pickled River models are tied to it)."""
    return version("river")


class PemsModel:
    """Online regression of ``target`` on ``features`` with conformal intervals.

    Parameters
    ----------
    features
        Names of the process parameters, in a fixed order (the schema of the model).
    target
        Name of the pollutant.
    algorithm
        A name from :data:`stream.pems.algorithms.ALGORITHMS`.
    coverage
        Target share of true values inside the interval, in (0, 1).
    window
        Online residuals kept for the intervals of a fresh model.
    warmup_fraction
        Share of the training rows learnt before the first calibration snapshot.
    calibration_horizon
        Rows each snapshot predicts without learning (at most half the rows after warm-up).
    calibration_step
        Rows between two snapshots (shorter on short training sets, see :data:`MIN_ORIGINS`).
    stale_after
        Predictions without an update after which the frozen residuals are used.
    seed
        Seed of randomised algorithms.
    """

    def __init__(
        self,
        features: Sequence[str],
        target: str,
        *,
        algorithm: str = DEFAULT_ALGORITHM,
        coverage: float = 0.9,
        window: int = 1000,
        warmup_fraction: float = 0.2,
        calibration_horizon: int = 2000,
        calibration_step: int = 500,
        stale_after: int = 24,
        seed: int = 0,
    ) -> None:
        if not features:
            raise PemsModelError("at least one feature is needed")
        if len(set(features)) != len(features):
            raise PemsModelError(f"duplicate features in {list(features)}")
        if target in features:
            raise PemsModelError(f"the target {target!r} cannot also be a feature")
        try:
            check_coverage(coverage)
            self._algorithm = get_algorithm(algorithm)
        except ValueError as err:
            raise PemsModelError(str(err)) from None
        if window < min_residuals(coverage):
            raise PemsModelError(
                f"window must hold at least {min_residuals(coverage)} residuals "
                f"for {coverage:.0%} intervals"
            )
        if not 0.0 <= warmup_fraction < 1.0:
            raise PemsModelError("warmup_fraction must be in [0, 1)")
        if calibration_horizon < 1 or calibration_step < 1:
            raise PemsModelError("calibration_horizon and calibration_step must be >= 1")
        if stale_after < 0:
            raise PemsModelError("stale_after must be >= 0")
        self.features: tuple[str, ...] = tuple(features)
        self.target = target
        self.algorithm = algorithm
        self.coverage = coverage
        self.window = window
        self.warmup_fraction = warmup_fraction
        self.calibration_horizon = calibration_horizon
        self.calibration_step = calibration_step
        self.stale_after = stale_after
        self.seed = seed
        self._regressor: OnlineRegressor = self._algorithm.build(seed)
        self._online = ResidualWindow(window, coverage)
        self._frozen_bounds: tuple[float, float] | None = None
        self._frozen_residuals: npt.NDArray[np.float64] = np.empty(0)
        self._digest: str | None = None
        self.training_fingerprint: str | None = None
        self.training_rows = 0
        self.updates = 0
        self._since_update = 0
        self._last: tuple[Features, float] | None = None

    # -- state --------------------------------------------------------------------------

    @property
    def fitted(self) -> bool:
        """Whether :meth:`fit` has run."""
        return self._digest is not None

    @property
    def model_version(self) -> str:
        """``<digest>-<updates>``: identifies the fit and the online updates since."""
        if self._digest is None:
            raise PemsModelError("the model is not fitted")
        return f"{self._digest}-{self.updates}"

    @property
    def frozen_residuals(self) -> npt.NDArray[np.float64]:
        """The calibration residuals of the frozen snapshot (a copy)."""
        return self._frozen_residuals.copy()

    def settings(self) -> dict[str, Any]:
        """Everything that defines the model besides its training data."""
        return {
            "algorithm": self.algorithm,
            "regressor": repr(self._algorithm.build(self.seed)),
            "features": list(self.features),
            "target": self.target,
            "coverage": self.coverage,
            "window": self.window,
            "warmup_fraction": self.warmup_fraction,
            "calibration_horizon": self.calibration_horizon,
            "calibration_step": self.calibration_step,
            "stale_after": self.stale_after,
            "seed": self.seed,
        }

    # -- training -----------------------------------------------------------------------

    def fit(self, xs: Sequence[Mapping[str, float]], ys: Sequence[float]) -> None:
        """Train on rows in time order and calibrate the intervals (see the module docstring).

        May be called once, on a fresh model.
        """
        if self.fitted:
            raise PemsModelError("the model is already fitted; build a new one to refit")
        if len(xs) != len(ys):
            raise PemsModelError(f"{len(xs)} feature rows but {len(ys)} targets")
        n = len(xs)
        _, horizon, origins = self._calibration_plan(n)
        fingerprint = hashlib.sha256()
        vectors = [self._vector(x) for x in xs]
        for vector, y in zip(vectors, ys, strict=True):
            if not math.isfinite(y):
                raise PemsModelError(f"training target {self.target} must be finite, got {y}")
            fingerprint.update(struct.pack(f"<{len(self.features) + 1}d", *vector.values(), y))
        residuals: list[float] = []
        snapshots: list[tuple[int, OnlineRegressor]] = []
        for i, (vector, y) in enumerate(zip(vectors, ys, strict=True)):
            for _, snapshot in snapshots:
                residuals.append(y - float(snapshot.predict_one(vector)))
            snapshots = [(o, s) for o, s in snapshots if i + 1 - o < horizon]
            self._update(vector, y)
            if i + 1 in origins:
                snapshots.append((i + 1, copy.deepcopy(self._regressor)))
        self._frozen_residuals = np.asarray(residuals, dtype=np.float64)
        self._frozen_bounds = conformal_bounds(self._frozen_residuals, self.coverage)
        self.training_rows = n
        self.training_fingerprint = fingerprint.hexdigest()
        identity = self.settings() | {
            "river": river_version(),
            "training": self.training_fingerprint,
        }
        self._digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[
            :12
        ]
        self.updates = 0
        self._since_update = 0

    def _calibration_plan(self, n: int) -> tuple[int, int, range]:
        """Warm-up rows, horizon and snapshot origins (row counts) for ``n`` training rows."""
        warmup = max(MIN_TRAINING_ROWS, math.ceil(n * self.warmup_fraction))
        horizon = min(self.calibration_horizon, (n - warmup) // 2)
        step = max(1, min(self.calibration_step, (n - warmup - horizon) // MIN_ORIGINS))
        origins = range(warmup, n - horizon + 1, step)
        need = min_residuals(self.coverage)
        if horizon < 1 or len(origins) * horizon < need:
            raise PemsModelError(
                f"{n} training rows are too few: {warmup} to warm up and at least {need} "
                f"calibration residuals after them are needed"
            )
        return warmup, horizon, origins

    def learn_one(self, x: Mapping[str, float], y: float) -> None:
        """Update on one measured value, after recording its one-step-ahead residual."""
        self._require_fitted()
        if not math.isfinite(y):
            raise PemsModelError(f"{self.target} must be finite to learn from, got {y}")
        self._update(self._vector(x), y)
        self.updates += 1
        self._since_update = 0

    def _update(self, vector: Features, y: float) -> None:
        if self._last is not None and self._last[0] == vector:
            y_pred = self._last[1]  # predicted by predict_one on this very state
        else:
            y_pred = float(self._regressor.predict_one(vector))
        self._online.append(y - y_pred)
        self._regressor.learn_one(vector, y)
        self._last = None

    # -- prediction ---------------------------------------------------------------------

    def predict_one(self, x: Mapping[str, float]) -> Prediction:
        """The predicted ``target`` for ``x``, its interval and the model version."""
        self._require_fitted()
        vector = self._vector(x)
        value = float(self._regressor.predict_one(vector))
        self._last = (vector, value)
        fresh = self._since_update < self.stale_after and len(self._online) > 0
        self._since_update += 1
        lo, hi = self._online.bounds() if fresh else self._frozen_bounds or (-math.inf, math.inf)
        return Prediction(
            value=value,
            lower=min(value + lo, value),
            upper=max(value + hi, value),
            model_version=self.model_version,
        )

    def _vector(self, x: Mapping[str, float]) -> Features:
        try:
            vector: Features = {f: float(x[f]) for f in self.features}
        except KeyError:
            missing = [f for f in self.features if f not in x]
            raise PemsModelError(f"missing feature(s): {', '.join(missing)}") from None
        if not all(math.isfinite(v) for v in vector.values()):
            bad = [f for f in self.features if not math.isfinite(vector[f])]
            raise PemsModelError(f"feature(s) not finite: {', '.join(bad)}")
        return vector

    def _require_fitted(self) -> None:
        if not self.fitted:
            raise PemsModelError("the model is not fitted")
