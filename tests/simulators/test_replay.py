"""Replay over MQTT against a real Mosquitto and, through running ``stackwatch run`` services,
into a real InfluxDB: order and exact timestamps kept at × N, a constant shift to now that puts
no reading in the future (× N: the last is now when sent; real time: the first is now), and the
round trip InfluxDB → ``record`` → replay → a fresh database giving identical stored rows."""

from __future__ import annotations

import asyncio
import io
import math
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
import pytest
import yaml
from rich.console import Console

from simulators.progress import replay_progress
from simulators.record import record_store
from simulators.recording import (
    RecordingWriter,
    Refusals,
    count_records,
    iter_recording,
)
from simulators.replay import ReplayStats, replay_over_mqtt, replay_shift_ns
from stream.model import NS_PER_S, Reading, Status
from stream.plant import PlantConfig
from stream.storage.influx import InfluxStore
from stream.storage.settings import InfluxSettings
from stream.timeparse import parse_iso_ns
from tests.e2e.service import PLANT_YAML, ServiceProcess, influx_count, service_env, wait_until
from tests.servers import InfluxServer, MosquittoServer

SPEED = 50.0
SECONDS = 20
TIMEOUT = 20.0


@dataclass
class Target:
    """A running service: where it listens (topic prefix) and where it stores (database)."""

    prefix: str
    database: str
    service: ServiceProcess


@pytest.fixture(scope="module")
def plant_config() -> PlantConfig:
    return PlantConfig.model_validate(yaml.safe_load(PLANT_YAML))


@pytest.fixture(scope="module")
def targets(
    tmp_path_factory: pytest.TempPathFactory,
    mosquitto_server: MosquittoServer,
    influx_server: InfluxServer,
) -> Iterator[tuple[Target, Target]]:
    """Two services (started together to pay the start-up once), each with its own topics
    and database: the second is the "fresh database" of the round trip."""
    made = []
    for name in ("a", "b"):
        workdir = tmp_path_factory.mktemp(f"replay-{name}")
        (workdir / "plant.yaml").write_text(PLANT_YAML)
        prefix, database = f"rp{uuid.uuid4().hex[:10]}", f"t_{uuid.uuid4().hex[:12]}"
        influx_server.create_database(database)
        env = service_env(
            workdir / "plant.yaml", mosquitto_server.url, influx_server.url, database, prefix
        )
        made.append(Target(prefix, database, ServiceProcess(workdir, env).start()))
    try:
        for target in made:
            target.service.wait_healthy()
        yield made[0], made[1]
    finally:
        for target in made:
            assert target.service.stop() == 0, target.service.logs()


def recording(t0_ns: int) -> list[Reading]:
    """20 s of two sensors at 1 Hz: sub-millisecond times, values with every digit, statuses."""
    statuses = list(Status)
    out = []
    for i in range(SECONDS):
        ts = t0_ns + i * NS_PER_S + i * 1_234_567 + 89  # never a whole millisecond
        out.append(Reading("p1", "s1", "nox", ts, 100 + i / 7, "nox", "mg/Nm3", statuses[i % 4]))
        out.append(Reading("p1", "s1", "o2", ts + 1, 6 + i / 3, "o2", "%"))
    return out


def payload_ns(payload: dict[str, Any]) -> int:
    """The time of a payload: an RFC 3339 string, or epoch ms when it is a whole millisecond."""
    ts = payload["ts"]
    return ts * 1_000_000 if isinstance(ts, int) else parse_iso_ns(ts)


def stored_rows(influx: InfluxServer, database: str, where: str = "") -> list[tuple[Any, ...]]:
    """Every stored reading with all its tags and fields, in time order."""
    result = influx.query(
        "SELECT plant, stack, sensor, quantity, unit, value, status FROM readings " + where,
        db=database,
    )
    series = result["results"][0].get("series") or [{"values": []}]
    return [tuple(row) for row in series[0]["values"]]


def expected_rows(readings: list[Reading], shift_ns: int = 0) -> list[tuple[Any, ...]]:
    return [
        (r.ts_ns + shift_ns, r.plant, r.stack, r.sensor, r.quantity, r.unit, r.value, r.status)
        for r in readings
    ]


async def subscribe_and_replay(
    mqtt_port: int,
    prefix: str,
    readings: list[Reading],
    *,
    arrivals: list[int] | None = None,
    **kwargs: Any,
) -> tuple[ReplayStats, list[tuple[str, dict[str, Any]]]]:
    """Replay ``readings`` to ``prefix`` while a subscriber collects what the broker delivers
    (and, into ``arrivals``, the wall-clock time each message arrived)."""
    received: list[tuple[str, dict[str, Any]]] = []
    async with aiomqtt.Client("127.0.0.1", mqtt_port) as sub:
        await sub.subscribe(f"{prefix}/#", qos=1)

        async def collect() -> None:
            async for message in sub.messages:
                if arrivals is not None:
                    arrivals.append(time.time_ns())
                assert isinstance(message.payload, bytes)
                received.append((message.topic.value, orjson.loads(message.payload)))
                if len(received) == len(readings):
                    return

        collecting = asyncio.create_task(asyncio.wait_for(collect(), TIMEOUT))
        # An iterator, as a recording is read: only the real-time shift may do without last_ns.
        stats = await replay_over_mqtt(iter(readings), topic_prefix=prefix, **kwargs)
        await collecting
    return stats, received


@dataclass
class Replayed:
    """The × N replay into the first service, done once for the tests that inspect it."""

    readings: list[Reading]
    stats: ReplayStats
    received: list[tuple[str, dict[str, Any]]]
    total: int


@pytest.fixture(scope="module")
def replayed(
    targets: tuple[Target, Target],
    mosquitto_server: MosquittoServer,
    influx_server: InfluxServer,
    plant_config: PlantConfig,
    tmp_path_factory: pytest.TempPathFactory,
) -> Replayed:
    a = targets[0]
    # Two hours ago, so the run does not overlap the shifted-to-now replay of another test.
    t0 = (time.time_ns() // NS_PER_S - 7200) * NS_PER_S
    path = tmp_path_factory.mktemp("rec") / "incident.csv"
    with RecordingWriter(path) as writer:
        writer.write_many(recording(t0))
    refusals = Refusals()
    readings = list(refusals.readings(iter_recording(path, plant_config)))
    assert not refusals.counts
    total = count_records(path)
    stats, received = asyncio.run(
        subscribe_and_replay(
            mosquitto_server.port,
            a.prefix,
            readings,
            mqtt_url=mosquitto_server.url,
            speed=SPEED,
            progress=False,
            total=total,
        )
    )
    wait_until(lambda: influx_count(influx_server, a.database) >= len(readings), TIMEOUT, "stored")
    return Replayed(readings, stats, received, total)


def test_replay_at_x_n_keeps_order_and_timestamps_through_the_pipeline(
    replayed: Replayed, targets: tuple[Target, Target], influx_server: InfluxServer
) -> None:
    readings, stats = replayed.readings, replayed.stats
    a = targets[0]
    assert replayed.total == stats.published == len(readings) == 2 * SECONDS
    assert (stats.first_ns, stats.last_ns, stats.shift_ns) == (
        readings[0].ts_ns,
        readings[-1].ts_ns,
        0,
    )
    # Paced: the recording spans 19 s, so at × 50 the replay cannot end before 0.38 s.
    span_s = (readings[-1].ts_ns - readings[0].ts_ns) / NS_PER_S
    assert stats.elapsed_s >= span_s / SPEED * 0.95
    # The broker delivered every message in recorded order, times exact to the nanosecond.
    assert [(topic, payload_ns(p), p["value"], p["status"]) for topic, p in replayed.received] == [
        (f"{a.prefix}/p1/s1/{r.sensor}", r.ts_ns, r.value, r.status) for r in readings
    ]
    # The pipeline stored exactly the recorded times, values and statuses.
    assert stored_rows(influx_server, a.database) == expected_rows(readings)


def test_shift_to_now_at_x_n_puts_the_last_reading_at_now_and_none_in_the_future(
    replayed: Replayed,
    targets: tuple[Target, Target],
    mosquitto_server: MosquittoServer,
    influx_server: InfluxServer,
) -> None:
    a = targets[0]
    now = time.time_ns()
    readings = replayed.readings
    first, last = readings[0].ts_ns, readings[-1].ts_ns
    arrivals: list[int] = []
    stats, received = asyncio.run(
        subscribe_and_replay(
            mosquitto_server.port,
            a.prefix,
            readings,
            arrivals=arrivals,
            mqtt_url=mosquitto_server.url,
            speed=SPEED,
            shift_to_now=True,
            last_ns=last,  # where the recording ends, as the CLI reads it from the file
            now_ns=lambda: now,
        )
    )
    # The CLI's rule: the last reading is "now" when it is sent, span / SPEED after the start.
    shift = replay_shift_ns(first, last - first, SPEED, now)
    assert stats.shift_ns == shift
    assert stats.last_ns is not None
    assert abs(stats.last_ns - now - round((last - first) / SPEED)) <= 1
    assert stats.first_ns == first + shift < now
    assert [payload_ns(p) - r.ts_ns for (_, p), r in zip(received, readings, strict=True)] == [
        shift
    ] * len(readings)
    # No reading was ahead of the wall clock when it arrived (a collector refuses those).
    assert all(payload_ns(p) <= at for (_, p), at in zip(received, arrivals, strict=True))
    since = f"WHERE time >= {first + shift}"
    wait_until(
        lambda: influx_count(influx_server, a.database, since) == len(readings),
        TIMEOUT,
        "shifted readings stored",
    )
    assert stored_rows(influx_server, a.database, since) == expected_rows(readings, shift)


async def test_shift_to_now_in_real_time_puts_the_first_reading_at_now(
    mosquitto_server: MosquittoServer, topic_prefix: str
) -> None:
    # Three instants 0.2 s apart, never on a whole millisecond; no last_ns: not needed at × 1.
    t0 = 1_767_225_600 * NS_PER_S + 123_457
    readings = [
        Reading("p", "s", "nox", t0 + i * NS_PER_S // 5, float(i), "nox", "mg/Nm3")
        for i in range(3)
    ]
    now = time.time_ns()
    arrivals: list[int] = []
    stats, received = await subscribe_and_replay(
        mosquitto_server.port,
        topic_prefix,
        readings,
        arrivals=arrivals,
        mqtt_url=mosquitto_server.url,
        speed=1.0,
        shift_to_now=True,
        now_ns=lambda: now,
    )
    assert (stats.shift_ns, stats.first_ns) == (now - t0, now)
    assert [payload_ns(p) for _, p in received] == [r.ts_ns + now - t0 for r in readings]
    assert all(payload_ns(p) <= at for (_, p), at in zip(received, arrivals, strict=True))
    assert stats.elapsed_s >= 0.4 * 0.95  # paced in real time


async def test_shift_to_now_faster_than_real_time_needs_the_end_of_an_iterator() -> None:
    readings = iter([Reading("p", "s", "nox", NS_PER_S, 1.0, "nox", "mg/Nm3")])
    with pytest.raises(ValueError, match="last_ns"):
        # Refused before connecting: the URL is never used.
        await replay_over_mqtt(readings, mqtt_url="mqtt://127.0.0.1:1", speed=4, shift_to_now=True)


def test_round_trip_influx_record_replay_gives_identical_rows(
    replayed: Replayed,
    targets: tuple[Target, Target],
    mosquitto_server: MosquittoServer,
    influx_server: InfluxServer,
    plant_config: PlantConfig,
    tmp_path: Path,
) -> None:
    a, b = targets
    readings = replayed.readings
    start, end = readings[0].ts_ns, readings[-1].ts_ns + 1
    exported = tmp_path / "export.jsonl"

    async def export_and_replay() -> ReplayStats:
        store = InfluxStore(
            InfluxSettings.model_validate(
                {"url": influx_server.url, "database": a.database, "create_database": False}
            )
        )
        await store.start()
        try:
            with RecordingWriter(exported) as writer:
                assert await record_store(writer, store, start_ns=start, end_ns=end) == len(
                    readings
                )
        finally:
            await store.close()
        refusals = Refusals()
        again = list(refusals.readings(iter_recording(exported, plant_config)))
        assert not refusals.counts
        return await replay_over_mqtt(
            again, mqtt_url=mosquitto_server.url, topic_prefix=b.prefix, speed=math.inf
        )

    stats = asyncio.run(export_and_replay())
    assert stats.published == len(readings)
    wait_until(
        lambda: influx_count(influx_server, b.database) == len(readings), TIMEOUT, "round trip"
    )
    original = stored_rows(influx_server, a.database, f"WHERE time >= {start} AND time < {end}")
    assert stored_rows(influx_server, b.database) == original == expected_rows(readings)


async def test_many_same_time_readings_keep_their_order_at_the_broker(
    mosquitto_server: MosquittoServer, topic_prefix: str
) -> None:
    # 12 sensors per instant: more than the publisher's 8 concurrent QoS 1 publishes.
    t0 = 1_767_225_600 * NS_PER_S
    readings = [
        Reading("p", "s", f"x{k:02d}", t0 + i * NS_PER_S, float(i * 100 + k), "o2", "%")
        for i in range(5)
        for k in range(12)
    ]
    advanced: list[int] = []
    stats, received = await subscribe_and_replay(
        mosquitto_server.port,
        topic_prefix,
        readings,
        mqtt_url=mosquitto_server.url,
        speed=math.inf,
        on_published=advanced.append,
    )
    assert [(t.rsplit("/", 1)[1], p["value"]) for t, p in received] == [
        (r.sensor, r.value) for r in readings
    ]
    assert [p["ts"] for _, p in received] == [r.ts_ns // 1_000_000 for r in readings]
    assert advanced == [12] * 5
    assert stats.published == 60


def test_progress_helper_counts_what_it_is_told() -> None:
    out = io.StringIO()
    with replay_progress(10, True, console=Console(file=out, width=100)) as advance:
        advance(4)
        advance(6)
    text = out.getvalue()
    assert "10/10" in text
    assert "/s" in text
