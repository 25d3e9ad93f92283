"""PEMS soft sensor on the UCI gas-turbine data: accuracy, interval coverage and speed.

Runs the protocol of :mod:`stream.pems.evaluate` (fit on 2011-2012, score 2013 frozen and
with learning) for NOx and CO with the default algorithm and records, per pollutant and mode,
MAE, RMSE, R², coverage (target: the 90 % intervals cover 85-95 % of 2013; ``*_in_band`` is 1
when they do), mean interval width and throughput. ``--set compare=1`` also runs every
candidate algorithm and stores the comparison table in ``params`` (several minutes: the
adaptive random forest is slow). The data directory is :func:`gas_turbine_dir`. ``--quick``
changes nothing: the protocol is the measurement.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

from bench import BenchOptions, BenchResult, Metric, benchmark
from stream.pems.algorithms import DEFAULT_ALGORITHM
from stream.pems.evaluate import (
    TEST_YEAR,
    TRAIN_YEARS,
    Scores,
    compare_algorithms,
    format_scores,
    gas_turbine_dir,
    gas_turbine_scores,
)

COVERAGE = 0.9
BAND = (0.85, 0.95)


def _metrics(s: Scores) -> list[Metric]:
    key = f"{s.target.lower()}_{s.mode}"
    in_band = BAND[0] <= s.coverage <= BAND[1]
    return [
        Metric(f"{key}_mae", s.mae, "mg/m3"),
        Metric(f"{key}_rmse", s.rmse, "mg/m3"),
        Metric(f"{key}_r2", s.r2, "1"),
        Metric(f"{key}_coverage", s.coverage, "share", BAND[0]),
        Metric(f"{key}_in_band", 1.0 if in_band else 0.0, "bool", 1.0),
        Metric(f"{key}_width", s.width, "mg/m3"),
        Metric(f"{key}_throughput", s.n / s.predict_s, "rows/s"),
    ]


@benchmark("pems", "PEMS soft sensor (NOx, CO) on gas-turbine 2013: accuracy and coverage")
def run(options: BenchOptions) -> BenchResult:
    data_dir = gas_turbine_dir()
    scores = gas_turbine_scores(data_dir, algorithm=DEFAULT_ALGORITHM, coverage=COVERAGE)
    params: dict[str, object] = {
        "data": os.path.relpath(data_dir, Path(__file__).resolve().parents[1]),
        "train_years": list(TRAIN_YEARS),
        "test_year": TEST_YEAR,
        "algorithm": DEFAULT_ALGORITHM,
        "coverage_target": COVERAGE,
        "table": [asdict(s) for s in scores],
        "table_markdown": format_scores(scores),
    }
    if options.number("compare", 0) > 0:
        comparison = compare_algorithms(data_dir)
        params["comparison"] = [asdict(s) for s in comparison]
        params["comparison_markdown"] = format_scores(comparison)
    fit_s = sum(s.fit_s for s in scores if s.mode == "frozen")
    metrics = [m for s in scores for m in _metrics(s)]
    metrics.append(Metric("fit_time", fit_s, "s"))
    return BenchResult(metrics, params)
