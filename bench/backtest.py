"""Backtest of the live pipeline on the simulator's labelled faults: the demo plant (two stacks,
16 sensors, 1 Hz) with random faults of every kind, replayed through the whole pipeline
(compliance, detection, PEMS, alerts; embedded store) exactly as ``stackwatch replay
--evaluate`` does, then scored per fault kind (:mod:`stackwatch.backtest`).

Where ``bench detection`` measures the detectors on a synthetic stack built for them, this is
the end-to-end check: the simulator's process physics, process faults that move every sensor
of a stack, status periods, start-ups and shut-downs, and the live grouping of sensors.

Parameters (``--set``): ``hours`` (default 12, 3 with ``--quick``), ``seed`` (default 7),
``faults`` per sensor-day (default 2). Metrics: F1 per detectable kind and overall, false
alarms per sensor-day, and the replay rate (readings/s through the pipeline).
"""

from __future__ import annotations

import asyncio
import math
import sys
import tempfile
from importlib import resources
from pathlib import Path

from alerts.settings import load_alerts_config
from bench import BenchOptions, BenchResult, Metric, benchmark
from simulators.faults import FaultInjector, random_schedule
from simulators.plant import PlantSimulator
from stackwatch.backtest import score, to_table
from stackwatch.replay import replay_direct
from stream.model import NS_PER_S
from stream.plant import load_plant_config
from stream.storage.sqlite import SqliteStore

START_NS = 1_767_225_600 * NS_PER_S  # 2026-01-01T00:00Z


async def _replay(hours: float, seed: int, faults: float, workdir: Path) -> tuple[str, BenchResult]:
    config = load_plant_config(Path(str(resources.files("simulators") / "demo_plant.yaml")))
    end_ns = START_NS + round(hours * 3600) * NS_PER_S
    schedule = random_schedule(config, START_NS, end_ns, seed, per_sensor_day=faults)
    injector = FaultInjector(PlantSimulator(config, seed=seed, start_ns=START_NS), schedule)
    store = SqliteStore(workdir / "stackwatch.db", lookback_s=10 * 365 * 86_400)
    await store.start()
    try:
        outcome = await replay_direct(
            injector.stream(until_ns=end_ns),
            config=config,
            store=store,
            data_dir=workdir,
            alerts_config=load_alerts_config(None, topic_prefix="stackwatch"),
        )
    finally:
        await store.close()
    bt = score(injector.labels, outcome.flags, sensor_spans=outcome.sensor_span_ns)
    metrics = [
        Metric(f"f1_{k.kind}", k.f1, "") for k in bt.kinds if not k.context and not math.isnan(k.f1)
    ]
    metrics += [
        Metric("f1_all", bt.overall.f1, ""),
        Metric("recall_all", bt.overall.recall, ""),
        Metric("false_alarms_per_sensor_day", bt.false_alarms_per_sensor_day, "1/d"),
        Metric("alerts_fired", float(len(outcome.fired)), ""),
        Metric("replay_rate", outcome.rate, "readings/s"),
    ]
    params = {"hours": hours, "seed": seed, "faults_per_sensor_day": faults,
              "readings": outcome.stored, "labels": len(injector.labels)}  # fmt: skip
    return to_table(bt), BenchResult(metrics, params)


@benchmark("backtest", "pipeline backtest on the simulator's labelled faults (demo plant)")
def run(options: BenchOptions) -> BenchResult:
    hours = options.number("hours", 3.0 if options.quick else 12.0)
    seed = int(options.number("seed", 7))
    faults = options.number("faults", 2.0)
    with tempfile.TemporaryDirectory(prefix="stackwatch-backtest-") as tmp:
        table, result = asyncio.run(_replay(hours, seed, faults, Path(tmp)))
    print(table, file=sys.stderr)
    return result
