"""The plant simulator: determinism, ranges, physical correlations, scheduling; the demo plant;
the MQTT publisher end to end against real brokers (Mosquitto and the embedded amqtt)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import statistics
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
import pytest

from collector.broker import EmbeddedBroker
from simulators.plant import PlantSimulator
from simulators.publisher import publish_simulation
from stream.model import NS_PER_MS, NS_PER_S, Reading, Status
from stream.plant import PlantConfig, Quantity, load_plant_config
from tests.servers import MosquittoServer

START_NS = 1_718_000_000 * NS_PER_S  # 2024-06-10 06:13:20 UTC
DAY_S = 86_400
STEP_S = 60
TIMEOUT = 10.0
DEMO_PATH = Path(str(files("simulators") / "demo_plant.yaml"))


@pytest.fixture(scope="module")
def demo() -> PlantConfig:
    return load_plant_config(DEMO_PATH)


@pytest.fixture(scope="module")
def demo_day(demo: PlantConfig) -> dict[tuple[str, str], list[Reading]]:
    """One simulated day of the demo plant, every sensor once a minute, by (stack, sensor)."""
    sim = PlantSimulator(demo, seed=7, start_ns=START_NS)
    series: dict[tuple[str, str], list[Reading]] = defaultdict(list)
    for k in range(DAY_S // STEP_S):
        for r in sim.readings_at(START_NS + k * STEP_S * NS_PER_S):
            series[(r.stack, r.sensor)].append(r)
    return dict(series)


def values(day: dict[tuple[str, str], list[Reading]], stack: str, sensor: str) -> list[float]:
    return [r.value for r in day[(stack, sensor)]]


def small_config(**sensors: dict[str, Any]) -> PlantConfig:
    return PlantConfig.model_validate(
        {"plants": {"p": {"stacks": {"b1": {"reference_o2": 6, "sensors": sensors}}}}}
    )


# --- the demo plant -----------------------------------------------------------------------


def test_demo_plant_is_valid_package_data(demo: PlantConfig) -> None:
    plant = demo.plants["demo"]
    assert plant.name == "Demo biomass plant"
    assert plant.timezone == "Europe/Vienna"
    boiler, gt = plant.stacks["boiler1"], plant.stacks["gt1"]
    assert (boiler.reference_o2, gt.reference_o2) == (6, 15)
    assert set(boiler.sensors) == {
        "nox", "co", "so2", "dust", "o2", "h2o", "temperature", "pressure", "flow", "load"
    }  # fmt: skip
    assert set(gt.sensors) == {"nox", "co", "o2", "temperature", "load", "flow"}
    assert boiler.limits[Quantity.NOX].daily == 200
    assert boiler.limits[Quantity.NOX].half_hour == 400
    assert boiler.limits[Quantity.DUST].daily == 20
    assert gt.limits[Quantity.NOX].daily == 50
    analysers = [s for st in (boiler, gt) for s in st.sensors.values() if s.quantity in
                 (Quantity.NOX, Quantity.CO, Quantity.SO2, Quantity.O2)]  # fmt: skip
    assert all(s.interval_s == 1 for s in analysers)


# --- determinism ----------------------------------------------------------------------------


def first_minutes(config: PlantConfig, seed: int) -> list[Reading]:
    sim = PlantSimulator(config, seed=seed, start_ns=START_NS)
    return list(sim.stream(START_NS + 120 * NS_PER_S))


def test_same_seed_gives_identical_readings(demo: PlantConfig) -> None:
    assert first_minutes(demo, 3) == first_minutes(demo, 3)


def test_different_seeds_give_different_readings(demo: PlantConfig) -> None:
    a, b = first_minutes(demo, 3), first_minutes(demo, 4)
    assert [(r.key, r.ts_ns) for r in a] == [(r.key, r.ts_ns) for r in b]
    differing = sum(x.value != y.value for x, y in zip(a, b, strict=True))
    assert differing > 0.9 * len(a)


def test_start_defaults_to_now_on_a_whole_second(demo: PlantConfig) -> None:
    before = time.time_ns()
    sim = PlantSimulator(demo)
    assert before - NS_PER_S < sim.start_ns <= time.time_ns()
    assert sim.start_ns % NS_PER_S == 0


# --- ranges and physics over a day ---------------------------------------------------------


def test_every_sensor_stays_in_its_valid_range_all_day(
    demo: PlantConfig, demo_day: dict[tuple[str, str], list[Reading]]
) -> None:
    for key, sensor in demo.sensors():
        readings = demo_day[(key.stack, key.sensor)]
        assert len(readings) == DAY_S // STEP_S
        lo, hi = sensor.valid_range
        assert all(lo <= r.value <= hi for r in readings), key
        assert all(r.status is Status.VALID for r in readings)
        assert {(r.quantity, r.unit) for r in readings} == {(sensor.quantity.value, sensor.unit)}


def test_values_vary_and_are_plausible(demo_day: dict[tuple[str, str], list[Reading]]) -> None:
    o2 = values(demo_day, "boiler1", "o2")
    load = values(demo_day, "boiler1", "load")
    assert 38 < min(load) < 60 and 85 < max(load) < 102  # day/night swing, clipped + noise
    assert 4 < min(o2) < 7 and 9 < max(o2) < 12.5
    assert 13 < statistics.mean(values(demo_day, "gt1", "o2")) < 16.5
    assert 900 < statistics.mean(values(demo_day, "boiler1", "pressure")) < 1100
    # The analysers' day averages, normalised to 6 % O2, are below the daily limits.
    nox_ref = [v * 15 / (21 - o) for v, o in zip(values(demo_day, "boiler1", "nox"), o2,
                                                strict=True)]  # fmt: skip
    assert 80 < statistics.mean(nox_ref) < 200


def test_o2_falls_as_load_rises(demo_day: dict[tuple[str, str], list[Reading]]) -> None:
    for stack in ("boiler1", "gt1"):
        r = statistics.correlation(values(demo_day, stack, "o2"), values(demo_day, stack, "load"))
        assert r < -0.5, stack


def test_nox_rises_with_temperature(demo_day: dict[tuple[str, str], list[Reading]]) -> None:
    for stack in ("boiler1", "gt1"):
        nox, temp = values(demo_day, stack, "nox"), values(demo_day, stack, "temperature")
        assert statistics.correlation(nox, temp) > 0.5, stack


def test_flow_rises_with_load(demo_day: dict[tuple[str, str], list[Reading]]) -> None:
    flow, load = values(demo_day, "boiler1", "flow"), values(demo_day, "boiler1", "load")
    assert statistics.correlation(flow, load) > 0.5


def test_co_is_higher_when_o2_is_low(demo_day: dict[tuple[str, str], list[Reading]]) -> None:
    o2, co = values(demo_day, "boiler1", "o2"), values(demo_day, "boiler1", "co")
    lowest_decile = sorted(o2)[len(o2) // 10]
    co_low_o2 = [c for c, o in zip(co, o2, strict=True) if o <= lowest_decile]
    assert statistics.mean(co_low_o2) > statistics.mean(co)
    assert max(co) > 3 * statistics.median(co)  # spikes


# --- scheduling -------------------------------------------------------------------------------


def test_stream_is_time_ordered_at_each_sensors_interval(demo: PlantConfig) -> None:
    sim = PlantSimulator(demo, seed=1, start_ns=START_NS)
    readings = list(sim.stream(START_NS + 60 * NS_PER_S))
    assert all(a.ts_ns <= b.ts_ns for a, b in itertools.pairwise(readings))
    times: dict[tuple[str, str], list[int]] = defaultdict(list)
    for r in readings:
        times[(r.stack, r.sensor)].append(r.ts_ns)
    assert times[("boiler1", "nox")] == [START_NS + k * NS_PER_S for k in range(60)]
    assert times[("boiler1", "pressure")] == [START_NS + k * 10 * NS_PER_S for k in range(6)]
    assert len(times) == sum(1 for _ in demo.sensors())
    # The stream resumes where it stopped.
    assert next(sim.stream()).ts_ns == START_NS + 60 * NS_PER_S


def test_readings_at_returns_due_sensors_and_refuses_the_past(demo: PlantConfig) -> None:
    sim = PlantSimulator(demo, seed=1, start_ns=START_NS)
    everything = sim.readings_at(START_NS)
    assert len(everything) == sum(1 for _ in demo.sensors())
    assert {r.ts_ns for r in everything} == {START_NS}
    one_second = sim.readings_at(START_NS + NS_PER_S)
    assert ("boiler1", "pressure") not in {(r.stack, r.sensor) for r in one_second}
    assert len(one_second) == len(everything) - 1
    with pytest.raises(ValueError, match="forward"):
        sim.readings_at(START_NS)


# --- sensors: units, resolution, no physics ----------------------------------------------------


def test_sensors_of_a_stack_share_its_state_in_their_own_units() -> None:
    config = small_config(
        t_c={"quantity": "temperature", "unit": "°C", "valid_range": [0, 1200]},
        t_k={"quantity": "temperature", "unit": "K", "valid_range": [200, 1500]},
        co_mg={"quantity": "co", "unit": "mg/Nm3", "valid_range": [0, 5000]},
        co_ppm={"quantity": "co", "unit": "ppm", "valid_range": [0, 4000]},
    )
    sim = PlantSimulator(config, seed=2, start_ns=START_NS)
    for k in range(100):
        by = {r.sensor: r.value for r in sim.readings_at(START_NS + k * STEP_S * NS_PER_S)}
        assert by["t_k"] - by["t_c"] == pytest.approx(273.15, abs=4)
        assert by["co_mg"] / by["co_ppm"] == pytest.approx(28.010 / 22.414, rel=0.15)


def test_values_are_quantised_to_the_sensor_resolution(
    demo_day: dict[tuple[str, str], list[Reading]],
) -> None:
    assert all(round(v, 1) == v for v in values(demo_day, "boiler1", "nox"))  # 0-2000 -> 0.1
    assert all(v % 10 == 0 for v in values(demo_day, "boiler1", "flow"))  # 0-200000 -> 10


def test_sensor_without_physics_gets_a_steady_value_in_range() -> None:
    config = small_config(
        odd={"quantity": "flow", "unit": "furlong/fortnight", "valid_range": [10, 50]},
        nox={"quantity": "nox", "unit": "mg/Nm3", "valid_range": [0, 2000]},
    )
    sim = PlantSimulator(config, seed=5, start_ns=START_NS)
    odd = [r.value for r in sim.stream(START_NS + 600 * NS_PER_S) if r.sensor == "odd"]
    assert len(odd) == 600
    assert all(10 <= v <= 50 for v in odd)
    assert statistics.pstdev(odd) > 0  # noisy, not frozen
    assert 12 < statistics.mean(odd) < 30


def test_process_state_can_be_changed_between_steps(demo: PlantConfig) -> None:
    # The hook fault injection builds on: a torn filter bag multiplies the dust emission.
    sim = PlantSimulator(demo, seed=1, start_ns=START_NS)
    before = [r.value for r in sim.stream(START_NS + 60 * NS_PER_S) if r.sensor == "dust"]
    sim.process("demo", "boiler1").filter_wear = 9.0
    after = [r.value for r in sim.stream(START_NS + 120 * NS_PER_S) if r.sensor == "dust"]
    assert statistics.mean(after) > 5 * statistics.mean(before)


# --- publisher, end to end ---------------------------------------------------------------------


async def collect(client: aiomqtt.Client, count: int) -> list[aiomqtt.Message]:
    received: list[aiomqtt.Message] = []
    async with asyncio.timeout(TIMEOUT):
        async for message in client.messages:
            received.append(message)
            if len(received) == count:
                break
    return received


@contextlib.asynccontextmanager
async def publishing(sim: PlantSimulator, **kwargs: Any) -> AsyncIterator[asyncio.Task[int]]:
    stop = asyncio.Event()
    task = asyncio.create_task(publish_simulation(sim, stop=stop, **kwargs))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, TIMEOUT)


async def test_publisher_sends_json_readings_to_sensor_topics(
    mosquitto_server: MosquittoServer, topic_prefix: str, demo: PlantConfig
) -> None:
    sim = PlantSimulator(demo, seed=9)
    count = 3 * sum(1 for _ in demo.sensors())
    async with aiomqtt.Client("127.0.0.1", mosquitto_server.port) as sub:
        await sub.subscribe(f"{topic_prefix}/#", qos=1)
        async with publishing(
            sim, mqtt_url=mosquitto_server.url, topic_prefix=topic_prefix, rate=100.0
        ) as task:
            messages = await collect(sub, count)
        assert task.result() >= count
    expected = {(k.stack, k.sensor): s for k, s in demo.sensors()}
    seen: dict[tuple[str, str], list[int]] = defaultdict(list)
    for m in messages:
        prefix, plant, stack, sensor = m.topic.value.split("/")
        assert (prefix, plant) == (topic_prefix, "demo")
        assert m.qos == 1
        payload = orjson.loads(m.payload)
        assert set(payload) == {"ts", "value", "status"}
        assert payload["status"] == "valid"
        assert isinstance(payload["ts"], int) and isinstance(payload["value"], float)
        lo, hi = expected[(stack, sensor)].valid_range
        assert lo <= payload["value"] <= hi
        seen[(stack, sensor)].append(payload["ts"])
    start_ms = sim.start_ns // NS_PER_MS
    assert seen[("boiler1", "nox")][:3] == [start_ms, start_ms + 1000, start_ms + 2000]
    assert set(seen) == set(expected)


def v311_client(port: int) -> aiomqtt.Client:
    return aiomqtt.Client("127.0.0.1", port, protocol=aiomqtt.ProtocolVersion.V311)


def payload_ts(message: aiomqtt.Message) -> int:
    ts: int = orjson.loads(message.payload)["ts"]
    return ts


async def test_publisher_survives_a_broker_restart(topic_prefix: str, demo: PlantConfig) -> None:
    first = EmbeddedBroker()
    await first.start()
    second = EmbeddedBroker(first.port)  # the same address, started once the first is gone
    sim = PlantSimulator(demo, seed=9)
    try:
        async with publishing(
            sim, mqtt_url=first.url, topic_prefix=topic_prefix, rate=20.0,
            reconnect_min_s=0.05, reconnect_max_s=0.2,
        ):  # fmt: skip
            sub = v311_client(first.port)
            await sub.__aenter__()
            await sub.subscribe(f"{topic_prefix}/#", qos=1)
            before = await collect(sub, 20)
            port = first.port
            await first.stop()
            with contextlib.suppress(aiomqtt.MqttError):
                await sub.__aexit__(None, None, None)

            await second.start()
            assert second.port == port
            async with v311_client(port) as sub:
                await sub.subscribe(f"{topic_prefix}/#", qos=1)
                after = await collect(sub, 20)
    finally:
        await first.stop()
        await second.stop()
    # Publishing went on after the restart, from where it was (no jump, no restart of time).
    assert min(map(payload_ts, after)) >= max(map(payload_ts, before))
    assert min(map(payload_ts, after)) - max(map(payload_ts, before)) < 60_000
