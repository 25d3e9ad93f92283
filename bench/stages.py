"""Per-reading cost of the live stages, next to the raw parse cost measured in the same run.

The demo plant's simulator (both stacks, 16 sensors, 1 Hz) produces the readings; each stage
runs in memory exactly as the service calls it, without I/O:

* ``parse``: the collector's :class:`~collector.decode.Decoder` on the MQTT payload of each
  reading (JSON → validated reading), the baseline every other number is a multiple of;
* ``detection``: :meth:`LiveDetection.add <stream.detect.live.LiveDetection.add>` on batches
  (rules, forecast residual, stack consistency, calibration, events, score points);
* ``pems``: :meth:`LivePems.add <stream.pems.live.LivePems.add>` with the demo's two soft
  sensors of ``gt1`` fitted beforehand (predict with interval + learn, per reading of the
  whole plant, so comparable with the others).

Each stage is timed best-of-N over fresh copies of its state; metrics are µs per reading and
the ratio to the parse cost. ``--set minutes=N`` sets the simulated span (default 60, quick 10).
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from bench import BenchOptions, BenchResult, Metric, benchmark, best_of
from collector.decode import Decoder
from collector.settings import MqttSettings
from simulators.plant import PlantSimulator
from stream.detect.live import LiveDetection
from stream.model import NS_PER_MS, NS_PER_S, Reading
from stream.pems.live import LivePems
from stream.plant import PlantConfig, load_plant_config
from stream.storage.sqlite import SqliteStore

BATCH = 1000
START_NS = int(datetime(2026, 3, 2, 6, tzinfo=UTC).timestamp()) * NS_PER_S


def _payloads(readings: Sequence[Reading], prefix: str) -> list[tuple[str, bytes]]:
    return [
        (
            f"{prefix}/{r.plant}/{r.stack}/{r.sensor}",
            json.dumps({"ts": r.ts_ns // NS_PER_MS, "value": r.value}).encode(),
        )
        for r in readings
    ]


def _in_batches(stage: LiveDetection | LivePems, readings: Sequence[Reading]) -> int:
    async def go() -> int:
        points = 0
        for i in range(0, len(readings), BATCH):
            points += len(await stage.add(readings[i : i + BATCH]))
        return points

    return asyncio.run(go())


def _fitted_pems(config: PlantConfig, readings: Sequence[Reading]) -> LivePems:
    async def fit() -> LivePems:
        pems = LivePems(config)
        for i in range(0, len(readings), BATCH):
            await pems.add(readings[i : i + BATCH])
        await pems.wait_fits()
        return pems

    return asyncio.run(fit())


@benchmark("stages", "per-reading cost of detection and PEMS vs the raw MQTT parse cost")
def run(options: BenchOptions) -> BenchResult:
    minutes = options.number("minutes", 10 if options.quick else 60)
    config = load_plant_config(str(resources.files("simulators") / "demo_plant.yaml"))
    training_s = 900  # the demo soft sensors fit on their first 900 rows
    sim = PlantSimulator(config, seed=1, start_ns=START_NS)
    everything = list(sim.stream(until_ns=START_NS + round((training_s + minutes * 60) * NS_PER_S)))
    split = START_NS + training_s * NS_PER_S
    warm = [r for r in everything if r.ts_ns < split]
    readings = [r for r in everything if r.ts_ns >= split]
    n = len(readings)

    settings = MqttSettings()
    decoder = Decoder(config, settings)
    messages = _payloads(readings, settings.topic_prefix)
    received = readings[-1].ts_ns  # no reading is "from the future"
    parse_s, parsed = best_of(
        lambda: sum(len(decoder.decode(t, p, received).readings) for t, p in messages),
        options.repeat,
    )
    if parsed != n:
        raise RuntimeError(f"the decoder accepted {parsed} of {n} simulated readings")

    # The detectors' warm-up is part of what they cost: start fresh on every run. A store is
    # only read on restore, which this benchmark does not do.
    store = SqliteStore(Path(":memory:"))  # never started: only a restore reads it
    detection_s, det_points = best_of(
        lambda: _in_batches(LiveDetection(config, store), readings), options.repeat
    )
    fitted = _fitted_pems(config, warm)
    pems_s, pems_points = best_of(
        lambda: _in_batches(copy.deepcopy(fitted), readings), options.repeat
    )

    parse_us = parse_s / n * 1e6
    detection_us = detection_s / n * 1e6
    pems_us = pems_s / n * 1e6
    print(
        f"stages on {n:,} readings ({minutes:g} min of the demo plant, 16 sensors at 1 Hz):\n"
        f"  parse      {parse_us:8.2f} µs/reading  (1.0x)\n"
        f"  detection  {detection_us:8.2f} µs/reading  ({detection_us / parse_us:.1f}x parse)\n"
        f"  pems       {pems_us:8.2f} µs/reading  ({pems_us / parse_us:.1f}x parse)"
    )
    metrics = [
        Metric("parse_cost", parse_us, "µs/reading"),
        Metric("detection_cost", detection_us, "µs/reading"),
        Metric("pems_cost", pems_us, "µs/reading"),
        Metric("detection_vs_parse", detection_us / parse_us, "x"),
        Metric("pems_vs_parse", pems_us / parse_us, "x"),
        Metric("detection_throughput", n / detection_s, "readings/s"),
    ]
    params = {
        "readings": n,
        "minutes": minutes,
        "batch": BATCH,
        "detection_points": det_points,
        "pems_points": pems_points,
    }
    return BenchResult(metrics, params)
