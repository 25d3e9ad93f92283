"""The PEMS evaluation protocol on the UCI gas-turbine CO/NOx data (hourly, 2011-2013).

Protocol (the README reports its numbers):

1. Fit one :class:`~stream.pems.model.PemsModel` per pollutant on 2011 then 2012, in time
   order, with the nine process parameters AT, AP, AH, AFDP, GTEP, TIT, TAT, TEY, CDP as
   features and the default settings (its frozen intervals come from rolling-origin
   calibration inside the training years; nothing of 2013 is used).
2. **frozen**: predict every 2013 row without any update (a soft sensor running on last
   year's fit; after the first ``stale_after`` rows the frozen intervals apply).
3. **learn**: from the same fitted state, predict each 2013 row, then learn its measured value
   (``stackwatch pems predict --learn``), so every prediction is one step ahead.
4. Score both on 2013: MAE, RMSE, R², interval coverage (share of measured values inside
   ``[lower, upper]``) and mean interval width.

2013 is a validation year, not an untouched test set: the algorithm and the calibration scheme
were chosen on it (:func:`compare_algorithms`).
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stream.pems.algorithms import ALGORITHMS, DEFAULT_ALGORITHM
from stream.pems.model import PemsModel, Prediction
from stream.pems.table import Table, read_table

GAS_TURBINE_FEATURES: tuple[str, ...] = (
    "AT",
    "AP",
    "AH",
    "AFDP",
    "GTEP",
    "TIT",
    "TAT",
    "TEY",
    "CDP",
)
GAS_TURBINE_TARGETS: tuple[str, ...] = ("NOX", "CO")
TRAIN_YEARS = (2011, 2012)
TEST_YEAR = 2013


def gas_turbine_dir() -> Path:
    """``$STACKWATCH_GAS_TURBINE_DIR``, else ``shared/data/gas_turbine`` beside the repo."""
    env = os.environ.get("STACKWATCH_GAS_TURBINE_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "shared" / "data" / "gas_turbine"


@dataclass(frozen=True)
class Scores:
    """How one fitted model did on one test set in one mode (``frozen`` or ``learn``)."""

    target: str
    mode: str
    algorithm: str
    n: int
    mae: float
    rmse: float
    r2: float
    coverage: float
    width: float
    fit_s: float
    predict_s: float


def score(ys: Sequence[float], predictions: Sequence[Prediction]) -> dict[str, float]:
    """MAE, RMSE, R², coverage and mean width of ``predictions`` against ``ys``."""
    if len(ys) != len(predictions) or not ys:
        raise ValueError("need as many predictions as (at least one) measured values")
    y = np.asarray(ys, dtype=np.float64)
    p = np.array([q.value for q in predictions])
    lo = np.array([q.lower for q in predictions])
    hi = np.array([q.upper for q in predictions])
    err = y - p
    total = float(np.sum((y - y.mean()) ** 2))
    return {
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "r2": 1.0 - float(np.sum(err**2)) / total if total > 0 else math.nan,
        "coverage": float(np.mean((lo <= y) & (y <= hi))),
        "width": float(np.mean(hi - lo)),
    }


def run_test(
    model: PemsModel, xs: Sequence[dict[str, float]], ys: Sequence[float], *, learn: bool
) -> list[Prediction]:
    """Predictions for every row (learning each measured value afterwards if ``learn``).

    Works on a copy: ``model`` itself is left as it was.
    """
    model = copy.deepcopy(model)
    predictions = []
    for x, y in zip(xs, ys, strict=True):
        predictions.append(model.predict_one(x))
        if learn:
            model.learn_one(x, y)
    return predictions


def evaluate(
    train: Table,
    test: Table,
    features: Sequence[str],
    target: str,
    *,
    algorithm: str = DEFAULT_ALGORITHM,
    coverage: float = 0.9,
) -> list[Scores]:
    """Fit on ``train`` and score on ``test``, frozen and learning (in that order)."""
    xs, ys = train.complete()
    test_xs, test_ys = test.complete()
    model = PemsModel(features, target, algorithm=algorithm, coverage=coverage)
    start = time.perf_counter()
    model.fit(xs, ys)
    fit_s = time.perf_counter() - start
    results = []
    for mode, learn in (("frozen", False), ("learn", True)):
        start = time.perf_counter()
        predictions = run_test(model, test_xs, test_ys, learn=learn)
        predict_s = time.perf_counter() - start
        metrics = score(test_ys, predictions)
        results.append(
            Scores(
                target, mode, algorithm, len(test_ys), **metrics, fit_s=fit_s, predict_s=predict_s
            )
        )
    return results


def _read_years(
    data_dir: Path, years: Iterable[int], target: str, features: Sequence[str]
) -> Table:
    xs: list[dict[str, float]] = []
    ys: list[float | None] = []
    for year in years:
        table = read_table(data_dir / f"gt_{year}.csv", features, target, require_target=True)
        xs.extend(table.xs)
        ys.extend(table.ys)
    return Table(xs, ys)


def gas_turbine_scores(
    data_dir: Path | None = None,
    *,
    targets: Sequence[str] = GAS_TURBINE_TARGETS,
    algorithm: str = DEFAULT_ALGORITHM,
    coverage: float = 0.9,
) -> list[Scores]:
    """The protocol of the module docstring for each pollutant in ``targets``."""
    data_dir = data_dir or gas_turbine_dir()
    results = []
    for target in targets:
        train = _read_years(data_dir, TRAIN_YEARS, target, GAS_TURBINE_FEATURES)
        test = _read_years(data_dir, (TEST_YEAR,), target, GAS_TURBINE_FEATURES)
        results += evaluate(
            train, test, GAS_TURBINE_FEATURES, target, algorithm=algorithm, coverage=coverage
        )
    return results


def compare_algorithms(
    data_dir: Path | None = None, algorithms: Iterable[str] = ALGORITHMS
) -> list[Scores]:
    """:func:`gas_turbine_scores` for each algorithm (how the default was chosen)."""
    return [s for name in algorithms for s in gas_turbine_scores(data_dir, algorithm=name)]


def format_scores(scores: Iterable[Scores]) -> str:
    """A Markdown table of ``scores``."""
    lines = [
        "| algorithm | target | mode | MAE | RMSE | R² | coverage | width | fit s | predict s |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in scores:
        lines.append(
            f"| {s.algorithm} | {s.target} | {s.mode} | {s.mae:.3f} | {s.rmse:.3f} | "
            f"{s.r2:.3f} | {s.coverage:.3f} | {s.width:.2f} | {s.fit_s:.1f} | "
            f"{s.predict_s:.1f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    names = sys.argv[1:] or [DEFAULT_ALGORITHM]
    print(format_scores(compare_algorithms(algorithms=names)))
