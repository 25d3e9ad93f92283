"""The warm detection checkpoint of the throughput runs: every model is warm, and readings
that continue its time line are scored at once (no dropout, nothing late)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bench.plantgen import generate_plant
from bench.warmstate import warm_checkpoint, warm_readings
from stream.detect.events import DetectionEvent
from stream.detect.live import SCORES, LiveDetection
from stream.plant import load_plant_config
from stream.storage.base import Point
from stream.storage.sqlite import SqliteStore

END_MS = 1_765_000_000_000
STEP_MS = 1000


def test_restored_models_are_warm_and_continue_the_time_line(tmp_path: Path) -> None:
    plant = generate_plant(16)
    config = tmp_path / "plant.yaml"
    config.write_text(plant.yaml)
    state = tmp_path / "detection.state"
    assert warm_checkpoint(plant, config, state, end_ms=END_MS, step_ms=STEP_MS) == 16

    events: list[DetectionEvent] = []
    store = SqliteStore(tmp_path / "store.db")  # empty, as a run's fresh database
    live = LiveDetection(load_plant_config(config), store, state_path=state, on_event=events.append)
    # The next steps: what a run from the warm start publishes.
    after = warm_readings(plant, END_MS + 3 * STEP_MS, 3, STEP_MS)
    assert min(r.ts_ns for r in after) == END_MS * 10**6

    async def restore_and_score() -> list[Point]:
        await store.start()
        try:
            await live.start()
            assert all(live.warm(s.plant, s.stack, s.sensor) for s in plant.sensors)
            return await live.add(after)
        finally:
            await store.close()

    points = asyncio.run(restore_and_score())
    scored = [p for p in points if p.measurement == SCORES]
    assert len(scored) >= 16 * 2  # the last step may wait for later data
    assert live.late == 0
    assert events == []  # no dropout across the hand-over, no fault on plain data
