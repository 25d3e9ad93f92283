"""SIGKILL the service while QoS 1 messages are in flight: after a restart every accepted
reading is stored exactly once (the broker redelivers what was never acknowledged)."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.load import (
    assert_exactly_once,
    nox_messages,
    nox_value,
    publish_in_thread,
    start_service,
)
from tests.e2e.service import influx_count, wait_until
from tests.servers import InfluxServer, MosquittoServer

N = 30_000


def test_sigkill_under_load_loses_nothing_and_duplicates_nothing(
    tmp_path: Path,
    mosquitto_server: MosquittoServer,
    influx_server: InfluxServer,
    influx_db: str,
    topic_prefix: str,
) -> None:
    svc = start_service(
        tmp_path,
        mosquitto_server.url,
        influx_server.url,
        influx_db,
        topic_prefix,
        # Small batches keep many messages in flight (received, not yet acknowledged).
        STACKWATCH_WRITE_BATCH_SIZE="100",
    )
    publisher = publish_in_thread(
        mosquitto_server.port, f"{topic_prefix}/p1/s1/nox", nox_messages(N)
    )
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
    assert_exactly_once(influx_server, influx_db, N, nox_value)
    tags = influx_server.query("SHOW SERIES FROM readings", db=influx_db)["results"][0]
    assert len(tags["series"][0]["values"]) == 1
