"""Compliance engine throughput: the demo plant (2 stacks, 16 sensors) at 1 Hz for N days.

Parameters (``--set``): ``days`` (default 3, 1 with ``--quick``), ``csv_hours`` (default 24,
2 with ``--quick``).

The issue's target is ≥ 200 000 readings/s offline on one core. Three numbers are measured:

* ``engine``: :meth:`ComplianceEngine.evaluate` on a recording already in memory (NumPy
  arrays built directly, no CSV), best of N;
* ``csv_read``: :func:`read_replay_csv` of a replay CSV holding the first ``csv_hours`` of the
  same recording, in time order as a data logger writes it;
* ``offline``: CSV read plus evaluation of that file, what ``stackwatch compliance`` does.

The synthetic plant is deterministic (seeded) and plausible enough to exercise every branch
the engine takes on real data: O2 follows the load, concentrations are diluted by it, each
analyser has a daily maintenance block, a calibration and scattered malfunctions, so some
hours are invalid and O2 gaps invalidate pollutant hours.
"""

from __future__ import annotations

import tempfile
import zlib
from dataclasses import dataclass
from datetime import date
from importlib.resources import files
from pathlib import Path

import numpy as np
import numpy.typing as npt

from bench import BenchOptions, BenchResult, Metric, benchmark, best_of
from simulators.recording import read_replay_csv
from stream.compliance.engine import ComplianceEngine
from stream.compliance.longterm import local_day_bounds_ns
from stream.model import NS_PER_S, SensorKey
from stream.plant import PlantConfig, Quantity, SensorConfig, load_plant_config
from stream.series import SensorSeries

TARGET_READINGS_PER_S = 200_000.0
FIRST_DAY = date(2026, 1, 5)
SEED = 20260105
DEMO_PLANT = Path(str(files("simulators") / "demo_plant.yaml"))
ANALYSERS = frozenset({Quantity.NOX, Quantity.CO, Quantity.SO2, Quantity.DUST, Quantity.O2})
# Typical level as a share of the instrument range at full load, before O2 dilution.
LEVEL = {
    Quantity.NOX: 0.08,
    Quantity.CO: 0.01,
    Quantity.SO2: 0.05,
    Quantity.DUST: 0.02,
    Quantity.H2O: 0.4,
    Quantity.TEMPERATURE: 0.15,
    Quantity.FLOW: 0.5,
    Quantity.LOAD: 0.6,
}


@dataclass(frozen=True)
class Workload:
    config: PlantConfig
    series: dict[SensorKey, SensorSeries]
    start_ns: int
    end_ns: int

    @property
    def readings(self) -> int:
        return sum(len(s) for s in self.series.values())


def _smooth(
    rng: np.random.Generator, t_s: npt.NDArray[np.float64], step_s: float
) -> npt.NDArray[np.float64]:
    """A slowly wandering signal in [-1, 1]: random knots every ``step_s``, interpolated."""
    knots = np.arange(t_s[0], t_s[-1] + 2 * step_s, step_s)
    return np.interp(t_s, knots, rng.uniform(-1.0, 1.0, knots.size))


def _status(rng: np.random.Generator, n: int, interval_s: float, days: int) -> npt.NDArray[np.int8]:
    """Valid, except a daily maintenance block (30-120 min), a daily 15-min calibration and
    0.05 % scattered malfunctions."""
    status = np.where(rng.random(n) < 0.0005, 2, 0).astype(np.int8)
    per_day = int(86_400 / interval_s)
    for day in range(days):
        base = day * per_day
        start = base + int(rng.integers(0, per_day - int(7200 / interval_s)))
        status[start : start + int(rng.uniform(1800, 7200) / interval_s)] = 1
        cal = base + int(rng.integers(0, per_day - int(900 / interval_s)))
        status[cal : cal + int(900 / interval_s)] = 3
    return status


def _values(
    sensor: SensorConfig,
    load: npt.NDArray[np.float64],
    o2: npt.NDArray[np.float64],
    rng: np.random.Generator,
) -> npt.NDArray[np.float64]:
    lo, hi = sensor.valid_range
    span = hi - lo
    q = sensor.quantity
    noise = rng.standard_normal(load.size)
    if q is Quantity.O2:
        v = o2 + 0.05 * noise
    elif q is Quantity.PRESSURE:
        v = 1013.0 + 2.0 * load + 0.2 * noise
    else:
        level = lo + span * LEVEL.get(q, 0.1) * (0.6 + 0.4 * load)
        dilution = (21.0 - o2) / 15.0 if q in ANALYSERS else np.ones(load.size)
        v = level * dilution * (1.0 + 0.015 * noise)
    decimals = -int(np.floor(np.log10(span / 10_000)))  # ~14-bit resolution, like the simulator
    return np.asarray(np.clip(v, lo, hi).round(decimals), dtype=np.float64)


def build_workload(days: int, seed: int = SEED) -> Workload:
    """The demo plant at its configured intervals (1 Hz, pressure 10 s) for ``days`` local days."""
    config = load_plant_config(DEMO_PLANT)
    rng = np.random.default_rng(seed)
    [plant] = config.plants.values()
    start_ns = local_day_bounds_ns(FIRST_DAY, plant.timezone)[0]
    end_ns = start_ns + days * 86_400 * NS_PER_S  # January: no DST change
    series: dict[SensorKey, SensorSeries] = {}
    for key, sensor in config.sensors():
        stack = plant.stacks[key.stack]
        ts = np.arange(start_ns, end_ns, round(sensor.interval_s * NS_PER_S), dtype=np.int64)
        t_s = (ts - start_ns) / NS_PER_S
        # the same process (load, O2) for every sensor of a stack
        process = np.random.default_rng([seed, zlib.crc32(key.stack.encode())])
        daily = 0.25 * np.sin(2 * np.pi * t_s / 86_400)
        load = np.clip(0.6 + daily + 0.15 * _smooth(process, t_s, 600), 0.0, 1.0)
        o2 = (stack.reference_o2 or 6.0) + 4.0 * (1.0 - load) + 0.5 * _smooth(process, t_s, 60)
        analyser = sensor.quantity in ANALYSERS
        status = (
            _status(rng, ts.size, sensor.interval_s, days)
            if analyser
            else np.zeros(ts.size, np.int8)
        )
        series[key] = SensorSeries(ts, _values(sensor, load, o2, rng), status)
    return Workload(config, series, start_ns, end_ns)


_STATUS_NAMES = np.array(["valid", "maintenance", "malfunction", "calibration"])


def write_replay_csv(workload: Workload, path: Path, hours: float) -> int:
    """The first ``hours`` of the workload as a replay CSV in time order; returns the rows."""
    until = workload.start_ns + round(hours * 3600) * NS_PER_S
    parts = []
    for index, s in enumerate(workload.series.values()):
        keep = s.ts_ns < until
        parts.append((s.ts_ns[keep], np.full(keep.sum(), index), s.values[keep], s.status[keep]))
    ts = np.concatenate([p[0] for p in parts])
    sensor = np.concatenate([p[1] for p in parts])
    order = np.lexsort((sensor, ts))
    times = np.char.add(np.datetime_as_string(ts[order].astype("datetime64[ns]"), unit="s"), "Z")
    values = np.concatenate([p[2] for p in parts])[order]
    status = _STATUS_NAMES[np.concatenate([p[3] for p in parts])[order]]
    ids = [f"{k.plant},{k.stack},{k.sensor}" for k in workload.series]
    lines = [
        f"{t},{ids[i]},{v!r},{st}"
        for t, i, v, st in zip(
            times.tolist(), sensor[order].tolist(), values.tolist(), status.tolist(), strict=True
        )
    ]
    path.write_text(
        "time,plant,stack,sensor,value,status\n" + "\n".join(lines) + "\n", encoding="utf-8"
    )
    return len(lines)


@benchmark("compliance", "compliance engine and replay-CSV throughput, demo plant at 1 Hz")
def run(options: BenchOptions) -> BenchResult:
    days = int(options.number("days", 1 if options.quick else 3))
    csv_hours = options.number("csv_hours", 2.0 if options.quick else 24.0)
    if days < 1 or not 0 < csv_hours <= 24 * days:
        raise ValueError("need days >= 1 and 0 < csv_hours <= 24 × days")
    workload = build_workload(days)
    engine = ComplianceEngine(workload.config)
    n = workload.readings
    engine_s, reports = best_of(lambda: engine.evaluate(workload.series), options.repeat)
    sta_valid = sum(r.sta_valid for r in reports)
    sta_invalid = sum(r.sta_invalid for r in reports)

    with tempfile.TemporaryDirectory(prefix="stackwatch-bench-") as tmp:
        path = Path(tmp) / "recording.csv"
        rows = write_replay_csv(workload, path, csv_hours)
        size_mb = path.stat().st_size / 1e6
        read_s, recording = best_of(lambda: read_replay_csv(path, workload.config), options.repeat)
    if recording.accepted != rows or recording.rejected:
        raise RuntimeError(f"the CSV round trip lost rows: {recording.rejected}")
    small_s, _ = best_of(lambda: engine.evaluate(recording.series), options.repeat)

    return BenchResult(
        metrics=[
            Metric("engine_throughput", n / engine_s, "readings/s", TARGET_READINGS_PER_S),
            Metric("engine_time", engine_s, "s"),
            Metric("csv_read_throughput", rows / read_s, "rows/s"),
            Metric(
                "offline_throughput", rows / (read_s + small_s), "readings/s", TARGET_READINGS_PER_S
            ),
        ],
        params={
            "plant": "simulators/demo_plant.yaml",
            "days": days,
            "first_day": FIRST_DAY.isoformat(),
            "sensors": len(workload.series),
            "readings": n,
            "reports": len(reports),
            "sta_valid": sta_valid,
            "sta_invalid": sta_invalid,
            "csv_hours": csv_hours,
            "csv_rows": rows,
            "csv_mb": round(size_mb, 1),
            "csv_read_s": round(read_s, 3),
            "csv_evaluate_s": round(small_s, 4),
            "repeat": options.repeat,
        },
    )
