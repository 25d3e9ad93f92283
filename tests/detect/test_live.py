"""Live detection on stored readings: scores with their model version, events on changes, and
checkpoints that let a restart (graceful or a crash) continue the score stream unchanged."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from simulators.plant import PlantSimulator
from stream.detect.events import EVENTS, DetectionEvent, EventType
from stream.detect.live import SCORES, LiveDetection, model_version
from stream.model import NS_PER_S, Reading, Status
from stream.plant import PlantConfig
from stream.schema import reading_to_point
from stream.storage.base import FieldValue, Point
from stream.storage.sqlite import SqliteStore

DEMO = Path(__file__).parents[2] / "simulators" / "demo_plant.yaml"
START = int(datetime(2026, 3, 2, 8, tzinfo=UTC).timestamp()) * NS_PER_S
STEPS = 600


def config(warmup_s: float = 120.0) -> PlantConfig:
    raw = yaml.safe_load(DEMO.read_text())
    stacks = raw["plants"]["demo"]["stacks"]
    del stacks["boiler1"]
    stacks["gt1"]["detection"] = {"warmup_s": warmup_s}
    stacks["gt1"].pop("pems")
    return PlantConfig.model_validate(raw)


def simulate(cfg: PlantConfig, steps: int = STEPS) -> list[Reading]:
    sim = PlantSimulator(cfg, seed=5, start_ns=START)
    return list(sim.stream(until_ns=START + steps * NS_PER_S))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    db = SqliteStore(tmp_path / "s.db")
    await db.start()
    yield db
    await db.close()


async def feed(
    store: SqliteStore, live: LiveDetection, readings: list[Reading], batch: int = 50
) -> list[Point]:
    """What the writer does: store a batch, then store what detection derives from it."""
    out: list[Point] = []
    for i in range(0, len(readings), batch):
        part = readings[i : i + batch]
        await store.write([reading_to_point(r) for r in part])
        derived = await live.add(part)
        await store.write(derived)
        out += derived
    return out


def scores(points: list[Point]) -> list[tuple[int, str, float, bool, str]]:
    """(time, sensor, score, warm, kind) of each score point, as a reader sees them: a point
    without the state fields has those of the sensor's last point that had them."""
    out = []
    for p in expand(points):
        f = p.fields
        out.append((p.ts_ns, p.tags["sensor"], float(f["score"]), bool(f["warm"]), str(f["kind"])))
    return out


def expand(points: list[Point]) -> list[Point]:
    """The score points with every field (see ``stream.detect.scorepoints``)."""
    state: dict[str, dict[str, FieldValue]] = {}
    out = []
    for p in points:
        if p.measurement != SCORES:
            continue
        sensor = p.tags["sensor"]
        if "kind" in p.fields:
            state[sensor] = {k: v for k, v in p.fields.items() if k in ("warm", "model_version")}
        else:
            assert p.fields["is_anomaly"] is False, p
        out.append(p._replace(fields={"kind": "none", "drift": False, **state[sensor], **p.fields}))
    return out


async def test_every_valid_reading_gets_a_score_with_the_model_version(
    store: SqliteStore,
) -> None:
    cfg = config()
    readings = simulate(cfg, 200)
    live = LiveDetection(cfg, store)
    points = await feed(store, live, readings)
    scored = expand(points)
    assert len(scored) == len(readings)
    version = model_version(cfg.plants["demo"].stacks["gt1"])
    assert {p.fields["model_version"] for p in scored} == {version}
    assert all(0.0 <= float(p.fields["score"]) <= 1.0 for p in scored)
    stored = await store.count(SCORES, "score", START, START + 10**15, {"sensor": "nox"})
    assert stored == 200


async def test_a_stuck_analyser_raises_a_fault_and_clears_it(store: SqliteStore) -> None:
    cfg = config()
    readings = simulate(cfg, 400)
    stuck_from, stuck_to = START + 250 * NS_PER_S, START + 320 * NS_PER_S
    readings = [
        replace(r, value=41.25) if r.sensor == "co" and stuck_from <= r.ts_ns < stuck_to else r
        for r in readings
    ]
    events: list[DetectionEvent] = []
    live = LiveDetection(cfg, store, on_event=events.append)
    points = await feed(store, live, readings)
    faults = [e for e in events if e.event is EventType.FAULT and e.sensor == "co"]
    assert [(e.active, e.kind) for e in faults] == [(True, "stuck"), (False, "stuck")]
    assert stuck_from < faults[0].ts_ns < stuck_from + 30 * NS_PER_S
    assert stuck_to <= faults[1].ts_ns <= stuck_to + 15 * NS_PER_S
    assert [p for p in points if p.measurement == EVENTS] == [e.to_point() for e in events]


async def test_maintenance_is_not_a_dropout(store: SqliteStore) -> None:
    cfg = config()
    readings = simulate(cfg, 300)
    start, end = START + 100 * NS_PER_S, START + 200 * NS_PER_S
    readings = [
        replace(r, status=Status.CALIBRATION, value=400.0)
        if r.sensor == "nox" and start <= r.ts_ns < end
        else r
        for r in readings
    ]
    events: list[DetectionEvent] = []
    live = LiveDetection(cfg, store, on_event=events.append)
    points = await feed(store, live, readings)
    assert [e for e in events if e.sensor == "nox"] == []
    nox = [s for s in scores(points) if s[1] == "nox"]
    assert len(nox) == 200  # the calibration readings are not scored


async def test_a_silent_sensor_is_a_dropout(store: SqliteStore) -> None:
    cfg = config()
    readings = [
        r
        for r in simulate(cfg, 200)
        if not (r.sensor == "o2" and r.ts_ns >= START + 100 * NS_PER_S)
    ]
    events: list[DetectionEvent] = []
    live = LiveDetection(cfg, store, on_event=events.append)
    await feed(store, live, readings)
    assert [(e.sensor, e.kind, e.active) for e in events] == [("o2", "dropout", True)]
    assert events[0].ts_ns == START + 105 * NS_PER_S  # 5.5 intervals after the last reading


@pytest.mark.parametrize("crash", [False, True], ids=["graceful", "crash"])
async def test_a_restart_continues_the_score_stream(
    tmp_path: Path, store: SqliteStore, crash: bool
) -> None:
    """Restored detectors score the rest exactly as if the service had never stopped, and
    are warm at once. After a crash, the readings stored after the last checkpoint are
    replayed from the store."""
    cfg = config()
    readings = simulate(cfg)
    cut = 400 * 6  # readings (6 sensors a step)
    reference_store = SqliteStore(tmp_path / "ref.db")
    await reference_store.start()
    reference = scores(await feed(reference_store, LiveDetection(cfg, reference_store), readings))
    await reference_store.close()

    state = tmp_path / "models" / "detection.state"
    clock = [0.0]
    first = LiveDetection(cfg, store, state_path=state, checkpoint_s=60, clock=lambda: clock[0])
    await first.start()
    if crash:
        await feed(store, first, readings[: cut - 600])
        clock[0] = 60.0  # the next batch writes a checkpoint ...
        await feed(store, first, readings[cut - 600 : cut - 300])
        await feed(store, first, readings[cut - 300 : cut])  # ... then 50 steps are lost
    else:
        await feed(store, first, readings[:cut])
        first.close()

    second = LiveDetection(cfg, store, state_path=state, checkpoint_s=60, clock=lambda: clock[0])
    await second.start()
    assert second.warm("demo", "gt1", "nox")
    # A broker redelivers the last batch: it is not scored twice.
    again = await second.add(readings[cut - 50 : cut])
    assert scores(again) == []
    assert second.late == 50
    rest = scores(await feed(store, second, readings[cut:]))
    assert rest == reference[cut:]
    assert all(warm for _, _, _, warm, _ in rest)


async def test_a_checkpoint_of_another_configuration_is_not_used(
    tmp_path: Path, store: SqliteStore
) -> None:
    state = tmp_path / "detection.state"
    cfg = config()
    first = LiveDetection(cfg, store, state_path=state)
    await feed(store, first, simulate(cfg, 300))
    first.close()
    assert first.warm("demo", "gt1", "nox")
    changed = LiveDetection(config(warmup_s=200.0), store, state_path=state)
    await changed.start()
    assert not changed.warm("demo", "gt1", "nox")


async def test_sensors_arriving_out_of_step_are_scored_as_in_step(
    tmp_path: Path, store: SqliteStore
) -> None:
    """Analysers publish on their own topics: an O2 reading may arrive after the NOx reading
    of the next second. Steps wait for their slowest sensor, so the scores are the same."""
    cfg = config()
    readings = simulate(cfg, 300)
    in_step = scores(await feed(store, LiveDetection(cfg, store), readings))
    skewed = sorted(readings, key=lambda r: r.ts_ns + (1_500_000_000 if r.sensor == "o2" else 0))
    other = SqliteStore(tmp_path / "other.db")
    await other.start()
    live = LiveDetection(cfg, other)
    out_of_step = scores(await feed(other, live, skewed, batch=7))
    await other.close()
    assert live.late == 0
    assert sorted(out_of_step) == sorted(in_step)[: len(out_of_step)]
    assert len(out_of_step) >= len(in_step) - 6 * 2  # the last steps wait for later data
