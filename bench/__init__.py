"""Benchmarks of StackWatch: ``python -m bench [NAME ...]`` (or ``make bench``).

A benchmark is a function registered with :func:`benchmark` in one of the modules listed in
:data:`MODULES`; it receives :class:`BenchOptions` and returns a :class:`BenchResult` of named
metrics (optionally with a target the metric should reach). ``python -m bench`` runs the
selected ones, writes one JSON document per benchmark to ``bench/results/<name>.json`` (with
the machine it ran on, so numbers from different machines are never compared blindly) and
prints a table. Adding a benchmark is one module plus one line in :data:`MODULES`.

Timings are wall-clock best-of-N (:func:`best_of`): the minimum is the least disturbed run.
Tests never assert timings; targets are reported here, not enforced there.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import platform
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

MODULES: tuple[str, ...] = (
    "bench.compliance",
    "bench.detection",
    "bench.pems",
    "bench.stages",
    "bench.backtest",
    "bench.e2e",
    "bench.soak",
)
"""Modules that register benchmarks when imported."""

RESULTS_DIR = Path(__file__).resolve().parent / "results"

T = TypeVar("T")


@dataclass(frozen=True)
class Metric:
    """One measured number. ``target``: the value should be at least this (higher is better)."""

    name: str
    value: float
    unit: str
    target: float | None = None

    @property
    def met(self) -> bool | None:
        """Whether the target is reached (None without a target)."""
        return None if self.target is None else self.value >= self.target


@dataclass(frozen=True)
class BenchResult:
    """What a benchmark measured, and the parameters it ran with."""

    metrics: list[Metric]
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BenchOptions:
    """Run-wide options: ``quick`` shrinks the workloads (a smoke run), ``repeat`` is N,
    ``params`` are ``--set KEY=VALUE`` overrides a benchmark may read (e.g. ``days=5``)."""

    quick: bool = False
    repeat: int = 3
    params: Mapping[str, str] = field(default_factory=dict)

    def number(self, key: str, default: float) -> float:
        """A numeric ``--set`` parameter, or ``default``."""
        raw = self.params.get(key)
        if raw is None:
            return default
        try:
            return float(raw)
        except ValueError:
            raise ValueError(f"--set {key}={raw}: not a number") from None


@dataclass(frozen=True)
class Benchmark:
    name: str
    description: str
    run: Callable[[BenchOptions], BenchResult]
    default: bool = True
    """Run when no name is given (``make bench``); long runs such as the soak are not."""


REGISTRY: dict[str, Benchmark] = {}


def benchmark(
    name: str, description: str, *, default: bool = True
) -> Callable[[Callable[[BenchOptions], BenchResult]], Callable[[BenchOptions], BenchResult]]:
    """Register a benchmark function under ``name`` (unique); ``default=False`` runs it only
    when named."""

    def register(
        fn: Callable[[BenchOptions], BenchResult],
    ) -> Callable[[BenchOptions], BenchResult]:
        if name in REGISTRY:
            raise ValueError(f"benchmark {name!r} is registered twice")
        REGISTRY[name] = Benchmark(name, description, fn, default)
        return fn

    return register


def load_benchmarks(modules: Iterable[str] = MODULES) -> dict[str, Benchmark]:
    """Import the benchmark modules and return the registry (name → benchmark)."""
    for module in modules:
        importlib.import_module(module)
    return dict(REGISTRY)


def _timed(fn: Callable[[], T]) -> tuple[float, T]:
    gc.collect()
    gc.disable()  # a collection in the middle of one run is noise, not the code under test
    try:
        start = time.perf_counter()
        result = fn()
        return time.perf_counter() - start, result
    finally:
        gc.enable()


def best_of(fn: Callable[[], T], repeat: int) -> tuple[float, T]:
    """Shortest wall-clock time of ``repeat`` calls and the result of the last call."""
    if repeat < 1:
        raise ValueError("repeat must be at least 1")
    best, result = _timed(fn)
    for _ in range(repeat - 1):
        elapsed, result = _timed(fn)
        best = min(best, elapsed)
    return best, result


def machine_info() -> dict[str, Any]:
    """Where the numbers come from."""
    affinity = getattr(os, "sched_getaffinity", None)
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "numpy": np.__version__,
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(affinity(0)) if affinity is not None else None,
    }


def result_document(bench: Benchmark, result: BenchResult, seconds: float) -> dict[str, Any]:
    """The JSON document written for one benchmark run."""
    return {
        "benchmark": bench.name,
        "description": bench.description,
        "run_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "duration_s": round(seconds, 3),
        "machine": machine_info(),
        "params": result.params,
        "metrics": [asdict(m) | {"met": m.met} for m in result.metrics],
    }


def write_result(document: dict[str, Any], directory: Path = RESULTS_DIR) -> Path:
    """Write ``<directory>/<benchmark>.json`` atomically (via a ``.tmp`` file)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{document['benchmark']}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def _fmt(value: float) -> str:
    if value == 0 or abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.3g}" if abs(value) < 1 else f"{value:,.2f}"


def format_table(documents: Sequence[dict[str, Any]]) -> str:
    """A plain-text table of every metric of the given result documents."""
    rows = [("benchmark", "metric", "value", "unit", "target", "met")]
    for doc in documents:
        for m in doc["metrics"]:
            target = "-" if m["target"] is None else _fmt(m["target"])
            met = "-" if m["met"] is None else ("yes" if m["met"] else "NO")
            rows.append((doc["benchmark"], m["name"], _fmt(m["value"]), m["unit"], target, met))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    right = {2, 4}
    lines = []
    for row in rows:
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
