"""SIGKILL the service while QoS 1 messages are in flight: after a restart every accepted
reading is stored exactly once (the broker redelivers what was never acknowledged)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from tests.e2e.service import (
    PLANT_YAML,
    ServiceProcess,
    influx_count,
    mosquitto_pub,
    service_env,
    wait_until,
)
from tests.servers import InfluxServer, MosquittoServer

T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
N = 30_000


def test_sigkill_under_load_loses_nothing_and_duplicates_nothing(
    tmp_path: Path,
    mosquitto_server: MosquittoServer,
    influx_server: InfluxServer,
    influx_db: str,
    topic_prefix: str,
) -> None:
    (tmp_path / "plant.yaml").write_text(PLANT_YAML)
    svc = ServiceProcess(
        tmp_path,
        service_env(
            tmp_path / "plant.yaml",
            mosquitto_server.url,
            influx_server.url,
            influx_db,
            topic_prefix,
            # Small batches keep many messages in flight (received, not yet acknowledged).
            STACKWATCH_WRITE_BATCH_SIZE="100",
        ),
    )
    svc.start().wait_healthy()
    messages = [json.dumps({"ts": T0_MS + i * 10, "value": float(i % 1000)}) for i in range(N)]
    publisher = threading.Thread(
        target=mosquitto_pub, args=(mosquitto_server.port, f"{topic_prefix}/p1/s1/nox", messages)
    )
    publisher.start()
    try:
        wait_until(lambda: influx_count(influx_server, influx_db) >= 2_000, 60, "2000 stored")
        svc.kill()
        stored_at_kill = influx_count(influx_server, influx_db)
        publisher.join(120)
        assert not publisher.is_alive()
        # The kill happened mid-stream: there is something left to recover.
        assert stored_at_kill < N

        svc.start().wait_healthy()
        wait_until(lambda: influx_count(influx_server, influx_db) >= N, 90, f"{N} stored")
    finally:
        svc.stop()

    # Exactly once: one point per (series, timestamp), with the published value.
    result = influx_server.query('SELECT count("value"), sum("value") FROM readings', db=influx_db)[
        "results"
    ][0]["series"][0]["values"][0]
    assert result[1] == N
    assert result[2] == sum(float(i % 1000) for i in range(N))
    tags = influx_server.query("SHOW SERIES FROM readings", db=influx_db)["results"][0]
    assert len(tags["series"][0]["values"]) == 1
