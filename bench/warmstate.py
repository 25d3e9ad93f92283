"""Detection models past their warm-up, for the throughput runs.

A plant runs with warm models nearly all the time, and warm models cost more per reading than
models in warm-up: the stack consistency model and the calibrated likelihoods start scoring
only after it (measured in process on the 1 000-sensor plant: ~11 µs a reading for detection
warm against ~7 µs in warm-up). A run of a few hundred steps from cold models would measure
the cheaper regime. So the throughput runs start from a checkpoint of warm models:
:func:`warm_checkpoint` runs live detection in this process over the generated plant's
readings (level plus noise, as the publishers send) for ``steps`` time steps ending one step
before ``end_ms``, and writes the checkpoint that the service (and the stage worker) restores
at start. The run's own readings then continue the same time line; a gap would be a dropout.

The generated plant's warm-up (:data:`bench.plantgen.WARMUP_S`) is shorter than the default,
so :data:`WARM_STEPS` steps warm every model; once warm, a model's cost per reading does not
depend on how long its warm-up was.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from bench.e2e_worker import NullStore
from bench.plantgen import UNITS, GeneratedPlant
from stream.detect.live import LiveDetection
from stream.model import NS_PER_MS, Reading, new_reading
from stream.plant import load_plant_config

WARM_STEPS = 660
"""Steps after which every model of the generated plant is warm: the stack consistency model
(600 updates) and the consistency likelihood (twice the 2-minute warm-up at 1 Hz: 240)."""
_BATCH = 5000


def warm_readings(plant: GeneratedPlant, end_ms: int, steps: int, step_ms: int) -> list[Reading]:
    """``steps`` time steps of every sensor, the last at ``end_ms - step_ms``."""
    rng = random.Random(1)
    start_ms = end_ms - steps * step_ms
    return [
        new_reading(
            s.plant,
            s.stack,
            s.sensor,
            (start_ms + k * step_ms) * NS_PER_MS,
            round(s.level + rng.gauss(0, s.noise), 4),
            s.sensor,
            UNITS[s.sensor],
        )
        for k in range(steps)
        for s in plant.sensors
    ]


def warm_checkpoint(
    plant: GeneratedPlant,
    config: Path,
    path: Path,
    *,
    end_ms: int,
    step_ms: int,
    steps: int = WARM_STEPS,
) -> int:
    """Write the detection checkpoint of ``plant`` (configuration file ``config``) after
    ``steps`` steps ending one step before ``end_ms``; returns the number of warm sensors."""
    live = LiveDetection(load_plant_config(config), NullStore(), state_path=path)
    readings = warm_readings(plant, end_ms, steps, step_ms)

    async def feed() -> None:
        for i in range(0, len(readings), _BATCH):
            await live.add(readings[i : i + _BATCH])

    asyncio.run(feed())
    live.save()
    return sum(live.warm(s.plant, s.stack, s.sensor) for s in plant.sensors)
