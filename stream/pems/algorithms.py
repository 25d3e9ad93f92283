"""The online regressors a PEMS model can use, by name.

Every candidate is a River pipeline that scales its inputs itself (process parameters span
1 to 1000: pressures in mbar next to temperatures in °C), so a model is fully described by its
name and its seed. The comparison on the gas-turbine data that picked
:data:`DEFAULT_ALGORITHM` is :func:`stream.pems.evaluate.compare_algorithms`; its numbers are
in the README.

``poly2-sgd`` (the default) is a linear model on degree-2 polynomial features of the
standardised inputs, trained by plain SGD with a constant rate on a standardised target.
Emissions of a turbine are smooth, mildly non-linear functions of load and temperatures, which
the quadratic terms capture; the constant rate makes SGD forget slowly, so the model follows
drift (burner wear, analyser ageing) when it learns online. On 2013 it was the only candidate
whose 90 % intervals covered 85-95 % for NOx and CO, frozen and learning, and it had the lowest
MAE relative to the best candidate of each case, averaged over the four cases (1.10).
``poly2-rls`` (recursive least squares with forgetting) was best frozen but clearly worse when
learning, and adapts slowly after a shift; the trees and forests learn well but extrapolate
badly when frozen (their frozen NOx also depends on the seed).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Protocol

from river import (
    compose,
    feature_extraction,
    forest,
    linear_model,
    neighbors,
    optim,
    preprocessing,
    tree,
)

Features = dict[Hashable, Any]
"""River's feature dict."""


class OnlineRegressor(Protocol):
    """What a PEMS model needs of a River regressor or pipeline (River types pipelines
    loosely, so this is the contract the algorithms below are checked against)."""

    def learn_one(self, x: Features, y: float) -> None: ...

    def predict_one(self, x: Features) -> float: ...


@dataclass(frozen=True)
class Algorithm:
    """A named regressor recipe. ``build(seed)`` returns a fresh, untrained River regressor."""

    name: str
    description: str
    build: Callable[[int], OnlineRegressor]


def _scaled(regressor: Any) -> compose.Pipeline:
    return compose.Pipeline(preprocessing.StandardScaler(), regressor)


def _poly2(include_bias: bool) -> compose.Pipeline:
    poly = feature_extraction.PolynomialExtender(  # type: ignore[no-untyped-call]
        degree=2, include_bias=include_bias
    )
    return preprocessing.StandardScaler() | poly


def _linear_sgd(seed: int) -> OnlineRegressor:
    return _scaled(linear_model.LinearRegression())


def _poly2_sgd(seed: int) -> OnlineRegressor:
    # The target is standardised too: with 54 quadratic terms plain SGD at River's default
    # rate diverges; a small rate and clipped gradients keep it stable.
    inner = _poly2(include_bias=False) | linear_model.LinearRegression(
        optimizer=optim.SGD(0.001), clip_gradient=1.0
    )
    return preprocessing.TargetStandardScaler(inner)  # type: ignore[arg-type]


def _poly2_rls(seed: int) -> OnlineRegressor:
    # River's Bayesian linear regression has no intercept: the bias column provides it. With
    # smoothing its zero-mean prior decays only as 0.999**n, so an unscaled target (NOx ≈ 70)
    # would be shrunk towards 0 for thousands of rows: the target is standardised.
    inner = _poly2(include_bias=True) | linear_model.BayesianLinearRegression(smoothing=0.999)
    return preprocessing.TargetStandardScaler(inner)  # type: ignore[arg-type]


def _hoeffding_tree(seed: int) -> OnlineRegressor:
    return _scaled(tree.HoeffdingTreeRegressor())


def _hoeffding_adaptive_tree(seed: int) -> OnlineRegressor:
    return _scaled(tree.HoeffdingAdaptiveTreeRegressor(seed=seed))


def _knn(seed: int) -> OnlineRegressor:
    return _scaled(neighbors.KNNRegressor(n_neighbors=10))


def _arf(seed: int) -> OnlineRegressor:
    return _scaled(forest.ARFRegressor(n_models=5, seed=seed))


ALGORITHMS: dict[str, Algorithm] = {
    a.name: a
    for a in (
        Algorithm("linear-sgd", "StandardScaler | LinearRegression (SGD)", _linear_sgd),
        Algorithm(
            "poly2-sgd",
            "StandardScaler | PolynomialExtender(2) | LinearRegression (SGD 0.001), "
            "standardised target",
            _poly2_sgd,
        ),
        Algorithm(
            "poly2-rls",
            "StandardScaler | PolynomialExtender(2) | BayesianLinearRegression(smoothing=0.999), "
            "standardised target",
            _poly2_rls,
        ),
        Algorithm("hoeffding-tree", "StandardScaler | HoeffdingTreeRegressor", _hoeffding_tree),
        Algorithm(
            "hoeffding-adaptive-tree",
            "StandardScaler | HoeffdingAdaptiveTreeRegressor",
            _hoeffding_adaptive_tree,
        ),
        Algorithm("knn", "StandardScaler | KNNRegressor(k=10)", _knn),
        Algorithm("arf", "StandardScaler | ARFRegressor(5 trees)", _arf),
    )
}
"""Every algorithm by name."""

DEFAULT_ALGORITHM = "poly2-sgd"


def get_algorithm(name: str) -> Algorithm:
    """The algorithm called ``name``; ValueError naming the known ones otherwise."""
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise ValueError(
            f"unknown PEMS algorithm {name!r}; known: {', '.join(ALGORITHMS)}"
        ) from None
