"""Fault injection with real processes: InfluxDB stopped under load, the spool filled to its
bound, Mosquitto restarted under load. Every test counts published against stored readings:
zero loss, and zero duplicates (one point per published timestamp, with its published value)."""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from simulators.publisher import publish_readings
from stream.model import NS_PER_MS, Reading
from tests.e2e.load import (
    T0_MS,
    assert_exactly_once,
    in_thread,
    nox_messages,
    nox_value,
    publish_in_thread,
    start_service,
)
from tests.e2e.service import ServiceProcess, influx_count, mosquitto_pub, wait_until
from tests.servers import InfluxServer, MosquittoServer, influxdb, mosquitto

DB = "emissions"
# Small write batches and quick write retries: an outage shows, and ends, within a test.
SERVICE_ENV = {"STACKWATCH_WRITE_BATCH_SIZE": "500", "STACKWATCH_WRITE_RETRY_MAX_S": "0.5"}


def health(svc: ServiceProcess) -> dict[str, Any]:
    try:
        components: dict[str, Any] = svc.get("/health").json()["components"]
    except (httpx.HTTPError, ValueError):
        return {}
    return components


def metric(svc: ServiceProcess, name: str) -> float:
    text = svc.get("/metrics").text
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


@contextmanager
def own_influx(tmp_path: Path) -> Iterator[InfluxServer]:
    """A private InfluxDB, since these tests stop it."""
    with influxdb(tmp_path / "influx") as server:
        server.create_database(DB)
        yield server


def test_influxdb_outage_under_load_spools_and_drains_everything(
    tmp_path: Path, mosquitto_server: MosquittoServer, topic_prefix: str
) -> None:
    n = 20_000
    with own_influx(tmp_path) as influx:
        svc = start_service(
            tmp_path, mosquitto_server.url, influx.url, DB, topic_prefix, **SERVICE_ENV
        )
        try:
            topic = f"{topic_prefix}/p1/s1/nox"
            publisher = publish_in_thread(mosquitto_server.port, topic, nox_messages(n))
            wait_until(lambda: influx_count(influx, DB) >= 1_000, 30, "1000 stored")
            assert influx_count(influx, DB) < n  # the outage starts mid-stream
            influx.stop()
            # The service goes on acknowledging: readings are spooled while the store is down.
            wait_until(
                lambda: metric(svc, "stackwatch_spool_spooled_points_total") >= 3_000,
                30,
                "3000 points spooled",
            )
            spool = health(svc)["spool"]
            assert not spool["ok"] and "waiting for the store" in spool["detail"]
            assert not health(svc)["writer"]["ok"]
            influx.start()
            publisher.join(60)
            assert not publisher.is_alive()
            wait_until(lambda: influx_count(influx, DB) >= n, 30, f"{n} stored")
            wait_until(lambda: health(svc).get("spool", {}).get("ok"), 10, "spool drained")
            assert metric(svc, "stackwatch_spool_drained_points_total") == metric(
                svc, "stackwatch_spool_spooled_points_total"
            )
        finally:
            svc.stop()
        assert_exactly_once(influx, DB, n, nox_value)


def test_full_spool_stops_acknowledging_and_the_broker_keeps_the_rest(
    tmp_path: Path, mosquitto_server: MosquittoServer, topic_prefix: str
) -> None:
    n = 10_000
    with own_influx(tmp_path) as influx:
        # ~100 bytes per point (readings and derived): room for about a thousand readings.
        svc = start_service(
            tmp_path,
            mosquitto_server.url,
            influx.url,
            DB,
            topic_prefix,
            **SERVICE_ENV,
            STACKWATCH_SPOOL_MAX_BYTES="200000",
        )
        try:
            influx.stop()
            topic = f"{topic_prefix}/p1/s1/nox"
            mosquitto_pub(mosquitto_server.port, topic, nox_messages(n))
            wait_until(
                lambda: health(svc).get("spool", {}).get("detail", "").startswith("FULL"),
                30,
                "spool full",
            )
            assert not health(svc)["writer"]["ok"]
            spooled = metric(svc, "stackwatch_spool_spooled_points_total")
            assert 0 < spooled < n  # the rest waits with the broker (or unacknowledged here)
            full = [e for e in svc.log_events() if str(e.get("event", "")).startswith("SPOOL FULL")]
            assert len(full) == 1  # said loudly, once
            influx.start()
            wait_until(lambda: influx_count(influx, DB) >= n, 40, f"{n} stored")
            wait_until(lambda: health(svc).get("spool", {}).get("ok"), 10, "spool drained")
            assert health(svc)["writer"]["ok"]
        finally:
            svc.stop()
        assert_exactly_once(influx, DB, n, nox_value)
        assert any("spool accepts data again" in str(e.get("event")) for e in svc.log_events())


def test_mosquitto_restart_under_load_loses_and_duplicates_nothing(
    tmp_path: Path, topic_prefix: str
) -> None:
    n_steps = 4_000  # nox and o2 at each step
    readings = [
        Reading("p1", "s1", sensor, (T0_MS + i * 10) * NS_PER_MS, float(i % 20), sensor, "u")
        for i in range(n_steps)
        for sensor in ("nox", "o2")
    ]
    n = len(readings)
    with own_influx(tmp_path) as influx:
        with mosquitto(tmp_path / "mosquitto", persistent=True) as broker:
            svc = start_service(tmp_path, broker.url, influx.url, DB, topic_prefix, **SERVICE_ENV)
            published: list[int] = []
            progress = [0]  # readings acknowledged by the broker so far
            stop = asyncio.Event()

            def publish() -> None:
                published.append(
                    asyncio.run(
                        publish_readings(
                            readings,
                            mqtt_url=broker.url,
                            origin_ns=readings[0].ts_ns,
                            topic_prefix=topic_prefix,
                            rate=math.inf,
                            stop=stop,
                            reconnect_min_s=0.1,
                            reconnect_max_s=0.5,
                            on_published=lambda k: progress.__setitem__(0, progress[0] + k),
                        )
                    )
                )

            try:
                publisher = in_thread(publish)
                wait_until(lambda: influx_count(influx, DB) >= 1_000, 30, "1000 stored")
                broker.stop()
                assert progress[0] < n  # the restart happens mid-stream
                wait_until(lambda: not health(svc).get("mqtt", {}).get("ok", True), 10, "down")
                broker.start()
                publisher.join(60)
                assert published == [n]
                wait_until(lambda: influx_count(influx, DB) >= n, 40, f"{n} stored")
                assert health(svc)["mqtt"]["ok"]
            finally:
                svc.stop()
        assert_exactly_once(influx, DB, n, lambda i: float((i // 2) % 20))
