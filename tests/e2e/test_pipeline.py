"""End to end: real mosquitto_pub → real Mosquitto → ``stackwatch run`` → real InfluxDB → API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import aiomqtt
import pytest

from tests.e2e.service import (
    PLANT_YAML,
    ServiceProcess,
    influx_count,
    mosquitto_pub,
    service_env,
    wait_until,
)
from tests.servers import InfluxServer, MosquittoServer


@pytest.fixture
def service(
    tmp_path: Path,
    mosquitto_server: MosquittoServer,
    influx_server: InfluxServer,
    influx_db: str,
    topic_prefix: str,
) -> Iterator[ServiceProcess]:
    (tmp_path / "plant.yaml").write_text(PLANT_YAML)
    svc = ServiceProcess(
        tmp_path,
        service_env(
            tmp_path / "plant.yaml",
            mosquitto_server.url,
            influx_server.url,
            influx_db,
            topic_prefix,
        ),
    )
    svc.start().wait_healthy()
    yield svc
    assert svc.stop() == 0, svc.logs()


def test_readings_flow_to_influxdb_and_api(
    service: ServiceProcess,
    mosquitto_server: MosquittoServer,
    influx_server: InfluxServer,
    influx_db: str,
    topic_prefix: str,
) -> None:
    # An hour ago, on a 10-second boundary: recent enough for "latest" (bounded look-back).
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    t0 -= timedelta(seconds=t0.second % 10)
    t0_ms = int(t0.timestamp()) * 1000
    nox = [json.dumps({"ts": t0_ms + i * 1000, "value": 100.0 + i}) for i in range(10)]
    plus_one = timezone(timedelta(hours=1))
    batch = json.dumps(
        [
            {"ts": t0.isoformat().replace("+00:00", "Z"), "value": 6.5, "status": "valid"},
            {
                "ts": (t0 + timedelta(seconds=1)).astimezone(plus_one).isoformat(),
                "value": 7.25,
                "status": "calibration",
            },
        ]
    )
    mosquitto_pub(mosquitto_server.port, f"{topic_prefix}/p1/s1/nox", nox)
    mosquitto_pub(mosquitto_server.port, f"{topic_prefix}/p1/s1/o2", [batch])

    wait_until(lambda: influx_count(influx_server, influx_db) == 12, 20, "12 readings stored")
    rows = influx_server.query(
        "SELECT value, status, quantity, unit FROM readings WHERE sensor='nox'", db=influx_db
    )["results"][0]["series"][0]["values"]
    assert [r[1] for r in rows] == [100.0 + i for i in range(10)]
    assert rows[0][0] == t0_ms * 1_000_000
    assert {tuple(r[2:]) for r in rows} == {("valid", "nox", "mg/Nm3")}

    latest = service.get("/readings/latest", plant="p1").json()
    by_sensor = {r["sensor"]: r for r in latest}
    assert by_sensor["nox"]["value"] == 109.0
    assert by_sensor["o2"]["value"] == 7.25
    assert by_sensor["o2"]["status"] == "calibration"
    assert datetime.fromisoformat(by_sensor["o2"]["time"]) == t0 + timedelta(seconds=1)

    start, end = t0.isoformat(), (t0 + timedelta(seconds=10)).isoformat()
    series = service.get("/readings/p1/s1/nox", start=start, end=end).json()
    assert [p["value"] for p in series["points"]] == [100.0 + i for i in range(10)]
    agg = service.get("/readings/p1/s1/nox", start=start, end=end, every="5s", fn="mean").json()
    assert [p["value"] for p in agg["points"]] == [102.0, 107.0]


REJECTS = [
    # (topic suffix, payload, expected reason)
    ("p1/s1/unknown", '{"value": 1}', "unknown_sensor"),
    ("p1/s1/nox", "{not json", "malformed_json"),
    ("p1/s1/nox", '{"value": "12"}', "invalid_payload"),
    ("p1/s1/nox", '{"value": 1e400}', "non_finite"),
    ("p1/s1/nox", '{"value": 5000}', "out_of_range"),
    ("p1/s1/nox", '{"ts": "2026-01-01T00:00:00", "value": 1}', "naive_timestamp"),
    ("p1/s1/nox", '{"ts": 1000, "value": 1}', "absurd_timestamp"),
]


async def test_every_rejection_is_dead_lettered_and_counted(
    service: ServiceProcess,
    mosquitto_server: MosquittoServer,
    influx_server: InfluxServer,
    influx_db: str,
    topic_prefix: str,
) -> None:
    received: list[dict[str, object]] = []
    async with aiomqtt.Client("127.0.0.1", mosquitto_server.port) as client:
        await client.subscribe(f"{topic_prefix}/deadletter/#", qos=1)
        for suffix, payload, _ in REJECTS:
            await client.publish(f"{topic_prefix}/{suffix}", payload.encode(), qos=1)
        # A good reading after the bad ones proves the service kept running.
        await client.publish(f"{topic_prefix}/p1/s1/nox", b'{"value": 42}', qos=1)

        async def collect() -> None:
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                received.append({**json.loads(message.payload), "mqtt_topic": message.topic.value})
                if len(received) == len(REJECTS):
                    return

        await asyncio.wait_for(collect(), 20)

    assert [r["reason"] for r in received] == [reason for _, _, reason in REJECTS]
    for r, (suffix, payload, reason) in zip(received, REJECTS, strict=True):
        assert r["mqtt_topic"] == f"{topic_prefix}/deadletter/{reason}"
        assert r["topic"] == f"{topic_prefix}/{suffix}"
        assert r["payload"] == payload
        assert r["detail"]
    await asyncio.to_thread(
        wait_until, lambda: influx_count(influx_server, influx_db) == 1, 20, "good reading"
    )
    metrics = service.get("/metrics").text
    for _, _, reason in REJECTS:
        assert f'stackwatch_rejected_readings_total{{reason="{reason}"}} 1.0' in metrics
    assert service.proc is not None and service.proc.poll() is None
