"""``GET /sensors/health`` over ASGI, on a real SqliteStore filled by LiveDetection and LivePems.

The demo plant's gas turbine gt1 (6 sensors, 1 s) is simulated for 1300 s from START, fed in
batches of 60 readings through the store, LiveDetection and LivePems as the writer does
(``load`` is excluded from the detection; the PEMS soft sensors of NOx and CO fit on their
first 200 rows). Injected: temperature stuck 300-400 s (a fault that clears), NOx +30 mg/Nm3
from 1000 s (drift suspected), CO stuck from 1150 s to the end (a fault in progress), O2 in
maintenance for its last 5 readings. NOW is START + 1300 s. The models hook is a snapshot of
the real detection and PEMS objects after the run.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi import FastAPI

from api.context import AppContext, ModelsInfo
from api.main import create_app
from api.settings import ApiSettings
from simulators.plant import PlantSimulator
from stream.detect.events import DetectionEvent, EventType
from stream.detect.live import LiveDetection
from stream.model import NS_PER_S, Reading, Status
from stream.pems.live import PEMS, LivePems
from stream.plant import PlantConfig
from stream.schema import reading_to_point
from stream.storage.base import Store
from stream.storage.sqlite import SqliteStore

DEMO = Path(__file__).parents[2] / "simulators" / "demo_plant.yaml"
START = int(datetime(2026, 3, 2, 8, tzinfo=UTC).timestamp()) * NS_PER_S
STEPS = 1300
NOW = START + STEPS * NS_PER_S
SENSORS = ["nox", "co", "o2", "temperature", "load", "flow"]


def detection_config() -> PlantConfig:
    raw = yaml.safe_load(DEMO.read_text())
    stacks = raw["plants"]["demo"]["stacks"]
    del stacks["boiler1"]
    stacks["gt1"]["detection"] = {"warmup_s": 120, "exclude": ["load"]}
    for soft in stacks["gt1"]["pems"]:
        soft["training_rows"] = 200
    return PlantConfig.model_validate(raw)


CONFIG = detection_config()


def at(step: int) -> str:
    """RFC 3339 of START + ``step`` seconds, as the API writes it."""
    return datetime.fromtimestamp(START // NS_PER_S + step, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def readings() -> list[Reading]:
    def inject(r: Reading) -> Reading:
        step = (r.ts_ns - START) // NS_PER_S
        if r.sensor == "temperature" and 300 <= step < 400:
            return replace(r, value=500.0)
        if r.sensor == "nox" and step >= 1000:
            return replace(r, value=r.value + 30.0)
        if r.sensor == "co" and step >= 1150:
            return replace(r, value=41.25)
        if r.sensor == "o2" and step >= STEPS - 5:
            return replace(r, status=Status.MAINTENANCE)
        return r

    sim = PlantSimulator(CONFIG, seed=5, start_ns=START)
    return [inject(r) for r in sim.stream(until_ns=NOW)]


@dataclass(frozen=True)
class Detected:
    path: Path
    readings: list[Reading]
    events: list[DetectionEvent]
    models: ModelsInfo


async def populate(store: Store) -> tuple[list[Reading], list[DetectionEvent], ModelsInfo]:
    events: list[DetectionEvent] = []
    detection = LiveDetection(CONFIG, store, on_event=events.append)
    pems = LivePems(CONFIG)
    await pems.start()
    rs = readings()
    for i in range(0, len(rs), 60):
        batch = rs[i : i + 60]
        await store.write([reading_to_point(r) for r in batch])
        await store.write(await detection.add(batch) + await pems.add(batch))
        await pems.wait_fits()  # a fit is used from the next batch on: deterministic
    return rs, events, ModelsInfo.of(CONFIG, detection, pems)


@pytest.fixture(scope="module")
def detection_data(tmp_path_factory: pytest.TempPathFactory) -> Detected:
    """The store file, filled once per module (its own event loop: a sync fixture)."""
    path = tmp_path_factory.mktemp("detection") / "store.sqlite"

    async def build() -> Detected:
        store = SqliteStore(path, now_ns=lambda: NOW)
        await store.start()
        try:
            return Detected(path, *await populate(store))
        finally:
            await store.close()

    return asyncio.run(build())


@pytest.fixture(autouse=True)
def no_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Settings come from the test only: no STACKWATCH_* variables, no .env file."""
    for name in list(os.environ):
        if name.startswith("STACKWATCH_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def make_app(
    store: Store, *, now_ns: int = NOW, models: ModelsInfo | None = None, **settings: Any
) -> FastAPI:
    ctx = AppContext(
        config=CONFIG,
        store=store,
        settings=ApiSettings.model_validate(settings),
        demo=True,
        components=dict,
        now_ns=lambda: now_ns,
        models=None if models is None else lambda: models,
    )
    return create_app(ctx)


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


@pytest.fixture
async def store(detection_data: Detected) -> AsyncIterator[SqliteStore]:
    # A look-back of 3 days: the "a day later" test still finds the events.
    s = SqliteStore(detection_data.path, lookback_s=3 * 86_400, now_ns=lambda: NOW)
    await s.start()
    yield s
    await s.close()


@pytest.fixture
async def api(store: SqliteStore, detection_data: Detected) -> AsyncIterator[httpx.AsyncClient]:
    async with client(make_app(store, models=detection_data.models)) as c:
        yield c


def by_sensor(resp: httpx.Response) -> dict[str, dict[str, Any]]:
    assert resp.status_code == 200, resp.text
    return {s["sensor"]: s for s in resp.json()["sensors"]}


def assert_error(resp: httpx.Response, status: int, code: str) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    return str(body["error"]["message"])


# ------------------------------------------------------------------------------------ tests


async def test_last_seen_status_and_availability(
    api: httpx.AsyncClient, detection_data: Detected
) -> None:
    resp = await api.get("/sensors/health", params={"plant": "demo", "stack": "gt1"})
    assert resp.json()["time"] == at(STEPS)
    sensors = by_sensor(resp)
    assert list(sensors) == SENSORS  # configuration order
    last = {r.sensor: r for r in detection_data.readings}
    for sid, s in sensors.items():
        assert (s["plant"], s["stack"], s["interval_s"]) == ("demo", "gt1", 1.0)
        assert s["last_seen"] == at(STEPS - 1)
        assert s["last_value"] == last[sid].value
        assert s["last_status"] == ("maintenance" if sid == "o2" else "valid")
        # 1300 readings at 1 s: of the 3600 expected in the hour, of the 86 400 of the day.
        assert s["availability_1h"] == pytest.approx(STEPS / 3600)
        assert s["availability_24h"] == pytest.approx(STEPS / 86_400)
    assert sensors["nox"]["unit"] == "mg/Nm3" and sensors["nox"]["quantity"] == "nox"


async def test_detection_state_of_each_watched_sensor(
    api: httpx.AsyncClient, detection_data: Detected
) -> None:
    sensors = by_sensor(await api.get("/sensors/health", params={"stack": "gt1"}))
    assert sensors["load"]["detection"] is None  # excluded from the detection
    version = detection_data.models.detection[("demo", "gt1")]
    assert version.startswith("det")
    for sid in ("nox", "co", "o2", "temperature", "flow"):
        d = sensors[sid]["detection"]
        assert (d["model_version"], d["warm"]) == (version, True), sid
        assert 0.0 <= d["last_score"] <= 1.0
        assert d["last_scored"] is not None

    faults = [(e.sensor, e.kind, e.active) for e in detection_data.events if e.event == "fault"]
    assert ("temperature", "stuck", False) in faults  # cleared again
    temperature = sensors["temperature"]["detection"]
    assert (temperature["active_fault"], temperature["fault_since"]) == (None, None)

    [co_fault] = [e for e in detection_data.events if e.event == "fault" and e.sensor == "co"]
    co = sensors["co"]["detection"]
    assert co["active_fault"] == "stuck"
    assert co["fault_since"] == at((co_fault.ts_ns - START) // NS_PER_S)
    assert co["last_kind"] == "stuck" and co["last_score"] == 1.0

    drifts = {e.sensor: e.ts_ns for e in detection_data.events if e.event is EventType.DRIFT}
    assert "nox" in drifts
    nox = sensors["nox"]["detection"]
    assert nox["drift"] is True
    assert nox["last_drift"] == at((drifts["nox"] - START) // NS_PER_S)
    for sid in ("o2", "flow"):
        assert sensors[sid]["detection"]["drift"] is False
        assert sensors[sid]["detection"]["active_fault"] is None


async def test_pems_model_and_share_outside(
    api: httpx.AsyncClient, store: SqliteStore, detection_data: Detected
) -> None:
    sensors = by_sensor(await api.get("/sensors/health", params={"plant": "demo"}))
    for sid in ("nox", "co"):
        p = sensors[sid]["pems"]
        assert p["model_version"] == detection_data.models.pems[("demo", "gt1", sid)]
        assert p["model_version"] is not None
        rows = await store.scan(PEMS, NOW - 3600 * NS_PER_S, NOW, {"sensor": sid})
        checked = [r for r in rows if "outside" in r.fields]
        outside = sum(r.fields["outside"] is True for r in checked)
        assert p["checked_1h"] == len(checked) > 0
        assert p["outside_1h"] == outside
        assert p["outside_share_1h"] == pytest.approx(outside / len(checked))
        assert p["substitutes_1h"] == 0  # the analysers never went silent
    assert sensors["co"]["pems"]["outside_1h"] > 0  # stuck at 41.25 for 150 s
    for sid in ("o2", "temperature", "load", "flow"):
        assert sensors[sid]["pems"] is None


async def test_without_the_running_models_versions_and_warm_up_are_unknown(
    store: SqliteStore,
) -> None:
    async with client(make_app(store)) as c:
        sensors = by_sensor(await c.get("/sensors/health"))
    nox = sensors["nox"]
    assert (nox["detection"]["model_version"], nox["detection"]["warm"]) == (None, None)
    assert nox["detection"]["drift"] is True  # from the store
    assert nox["pems"]["model_version"] is None
    assert nox["pems"]["checked_1h"] > 0


async def test_a_day_later_drift_is_past_and_nothing_was_seen(
    store: SqliteStore, detection_data: Detected
) -> None:
    later = NOW + 25 * 3600 * NS_PER_S
    async with client(make_app(store, now_ns=later, models=detection_data.models)) as c:
        sensors = by_sensor(await c.get("/sensors/health"))
    nox, co = sensors["nox"], sensors["co"]
    assert nox["last_seen"] == at(STEPS - 1)  # within the store's 3-day look-back
    assert (nox["availability_1h"], nox["availability_24h"]) == (0.0, 0.0)
    assert nox["detection"]["drift"] is False  # older than 24 h
    assert nox["detection"]["last_drift"] is not None
    assert co["detection"]["active_fault"] == "stuck"  # never cleared
    assert nox["pems"]["checked_1h"] == 0 and nox["pems"]["outside_share_1h"] is None


async def test_an_empty_store(tmp_path: Path) -> None:
    empty = SqliteStore(tmp_path / "empty.sqlite")
    await empty.start()
    try:
        async with client(make_app(empty)) as c:
            [nox] = (await c.get("/sensors/health", params={"sensor": "nox"})).json()["sensors"]
    finally:
        await empty.close()
    assert (nox["last_seen"], nox["last_status"], nox["last_value"]) == (None, None, None)
    assert (nox["availability_1h"], nox["availability_24h"]) == (0.0, 0.0)
    d = nox["detection"]
    assert (d["last_score"], d["active_fault"], d["drift"], d["last_drift"]) == (
        None,
        None,
        False,
        None,
    )


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"sensor": "co"}, ["co"]),
        ({"plant": "demo", "stack": "gt1", "sensor": "flow"}, ["flow"]),
        ({}, SENSORS),
    ],
)
async def test_filters(api: httpx.AsyncClient, params: dict[str, str], expected: list[str]) -> None:
    assert list(by_sensor(await api.get("/sensors/health", params=params))) == expected


@pytest.mark.parametrize(
    ("params", "status", "needle"),
    [
        ({"plant": "nope"}, 404, "plant 'nope'"),
        ({"stack": "nope"}, 404, "stack 'nope'"),
        ({"plant": "demo", "sensor": "nope"}, 404, "sensor 'nope'"),
        ({"sensor": "x" * 65}, 422, "query.sensor"),
    ],
)
async def test_unknown_or_bad_filters(
    api: httpx.AsyncClient, params: dict[str, str], status: int, needle: str
) -> None:
    code = "not_found" if status == 404 else "validation_error"
    assert needle in assert_error(await api.get("/sensors/health", params=params), status, code)
