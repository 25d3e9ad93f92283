"""Anomaly detection quality on labelled synthetic streams: F1, precision, recall, delay and
false alarms per fault kind (spike, level shift, drift, stuck, dropout), one stack of five
analysers at 1 Hz (see :mod:`stream.detect.evaluate` for the data and the event matching).

Parameters (``--set``): ``hours`` per fault kind (default 48, 24 with ``--quick``), ``seed``
(default 7), ``write_baseline=1`` to store this run as the committed baseline of its
configuration in ``bench/baselines/detection.json``.

The issue's target is F1 ≥ 0.8 per fault kind at ≤ 1 false alarm per sensor-day. Each F1
metric's target is the higher of 0.8 and the committed baseline minus the margin, so
``--check`` also fails on a regression; ``tests/detect/test_evaluation.py`` guards the quick
configuration in CI. Two comparisons are printed as well: the same detector without the
stack's consistency model (what the multivariate part adds), and the bare multivariate
detectors (the Gaussian consistency model versus River's Half-Space Trees), stack level,
each calibrated and filtered the same way.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from bench import BenchOptions, BenchResult, Metric, benchmark
from stream.detect.evaluate import (
    FaultKind,
    KindMetrics,
    LabelledStream,
    default_detector,
    generate_stream,
    independent_detector,
    run_detector,
    run_stack_detector,
    score_flags,
    stack_view,
)
from stream.detect.hst import HalfSpaceTreesDetector
from stream.detect.multivariate import StackConsistency

BASELINE = Path(__file__).resolve().parent / "baselines" / "detection.json"
TARGET_F1 = 0.8
MAX_FALSE_ALARMS_PER_SENSOR_DAY = 1.0
DEFAULT_MARGIN = 0.05
SEED = 7
FULL_HOURS = 48.0
QUICK_HOURS = 24.0
MULTIVARIATE_KINDS = (FaultKind.SPIKE, FaultKind.LEVEL_SHIFT, FaultKind.DRIFT)


def config_name(hours: float, seed: int) -> str:
    """Key of a configuration in the baseline file."""
    return f"hours={hours:g},seed={seed}"


def load_baseline(path: Path = BASELINE) -> dict[str, Any]:
    """The committed baseline document (``{"margin": …, "configs": {name: {kind: …}}}``)."""
    if not path.exists():
        return {"margin": DEFAULT_MARGIN, "configs": {}}
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def write_baseline(name: str, results: list[KindMetrics], path: Path = BASELINE) -> None:
    """Store ``results`` as the baseline of configuration ``name`` (other configs are kept)."""
    document = load_baseline(path)
    document.setdefault("margin", DEFAULT_MARGIN)
    document.setdefault("configs", {})[name] = {m.kind: m.summary() for m in results}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def f1_floor(kind: str, baseline: dict[str, Any], name: str) -> float:
    """The F1 a run must reach: 0.8, or the baseline minus the margin if that is higher."""
    known = baseline.get("configs", {}).get(name, {}).get(kind)
    margin = float(baseline.get("margin", DEFAULT_MARGIN))
    return max(TARGET_F1, float(known["f1"]) - margin) if known else TARGET_F1


def format_kind_table(title: str, results: list[KindMetrics]) -> str:
    """A plain-text table, one row per fault kind."""
    lines = [
        title,
        f"  {'fault':<12}{'windows':>8}{'F1':>7}{'prec':>7}{'recall':>7}"
        f"{'delay p50':>11}{'delay mean':>11}{'FA':>5}{'FA/sensor-day':>15}",
    ]
    for m in results:
        lines.append(
            f"  {m.kind:<12}{m.windows:>8}{m.f1:>7.3f}{m.precision:>7.3f}{m.recall:>7.3f}"
            f"{_seconds(m.delay_median_s):>11}{_seconds(m.delay_mean_s):>11}{m.false_alarms:>5}"
            f"{m.false_alarms_per_sensor_day:>15.3f}"
        )
    return "\n".join(lines)


def _seconds(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.0f}s"


def _pooled_false_alarm_rate(results: list[KindMetrics]) -> float:
    days = sum(m.sensor_days for m in results)
    return sum(m.false_alarms for m in results) / days if days else 0.0


@benchmark("detection", "anomaly detection F1/delay/false alarms per fault kind, 1 Hz stack")
def run(options: BenchOptions) -> BenchResult:
    hours = options.number("hours", QUICK_HOURS if options.quick else FULL_HOURS)
    seed = int(options.number("seed", SEED))
    name = config_name(hours, seed)
    streams: list[LabelledStream] = [generate_stream(kind, hours, seed) for kind in FaultKind]

    results: list[KindMetrics] = []
    elapsed = 0.0
    readings = 0
    for stream in streams:
        start = time.perf_counter()
        flags = run_detector(stream, default_detector(stream))
        elapsed += time.perf_counter() - start
        readings += stream.values.size
        results.append(score_flags(stream, flags))
    alone = [score_flags(s, run_detector(s, independent_detector(s))) for s in streams]
    bare: dict[str, list[KindMetrics]] = {"gaussian": [], "river_hst": []}
    for stream in (s for s in streams if s.kind in MULTIVARIATE_KINDS):
        limits = dict(zip(stream.names, stream.valid_ranges, strict=True))
        view = stack_view(stream)
        gaussian = run_stack_detector(stream, StackConsistency(stream.names))
        hst = run_stack_detector(stream, HalfSpaceTreesDetector(limits, seed=seed))
        bare["gaussian"].append(score_flags(view, gaussian))
        bare["river_hst"].append(score_flags(view, hst))

    print(format_kind_table(f"detection, production StackDetector ({name}):", results))
    print(format_kind_table("same, without the stack consistency model:", alone))
    for label, scored in bare.items():
        print(format_kind_table(f"bare multivariate detector {label}, stack level:", scored))

    baseline = load_baseline()
    if options.params.get("write_baseline") == "1":
        write_baseline(name, results)
    metrics: list[Metric] = []
    for m in results:
        metrics += [
            Metric(f"{m.kind}.f1", m.f1, "", f1_floor(m.kind, baseline, name)),
            Metric(f"{m.kind}.precision", m.precision, ""),
            Metric(f"{m.kind}.recall", m.recall, ""),
            Metric(f"{m.kind}.false_alarms_per_sensor_day", m.false_alarms_per_sensor_day, "1/d"),
        ]
        if not math.isnan(m.delay_median_s):  # no delay without a detection
            metrics.append(Metric(f"{m.kind}.delay_median", m.delay_median_s, "s"))
    pooled = _pooled_false_alarm_rate(results)
    metrics += [
        Metric("false_alarms_per_sensor_day", pooled, "1/d"),
        # Higher is better for the runner's targets: the share of the allowed alarm budget
        # left unused (≥ 0 means at most one false alarm per sensor-day).
        Metric("false_alarm_budget_left", 1.0 - pooled / MAX_FALSE_ALARMS_PER_SENSOR_DAY, "", 0.0),
        Metric("throughput", readings / elapsed, "sensor-readings/s"),
        Metric("cost_per_reading", elapsed / readings * 1e6, "µs"),
    ]
    params: dict[str, Any] = {
        "config": name,
        "hours_per_kind": hours,
        "seed": seed,
        "sensors": len(streams[0].names),
        "windows": sum(m.windows for m in results),
        "results": {m.kind: m.summary() for m in results},
        "without_consistency": {m.kind: m.summary() for m in alone},
        "bare_multivariate": {k: {m.kind: m.summary() for m in v} for k, v in bare.items()},
    }
    return BenchResult(metrics=metrics, params=params)
