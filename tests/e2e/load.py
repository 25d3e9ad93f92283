"""The set-up the end-to-end tests under load share: a ``stackwatch run`` service on the test
plant, a stream of NOx messages published from a background thread, and the exactly-once check
of what was stored (published against stored readings)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

from tests.e2e.service import PLANT_YAML, ServiceProcess, mosquitto_pub, service_env
from tests.servers import InfluxServer

T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def nox_messages(n: int) -> list[str]:
    """``n`` payloads 10 ms apart from ``T0_MS``, value ``i % 1000``."""
    return [json.dumps({"ts": T0_MS + i * 10, "value": float(i % 1000)}) for i in range(n)]


def nox_value(i: int) -> float:
    """The value of the ``i``-th of :func:`nox_messages`."""
    return float(i % 1000)


def start_service(
    workdir: Path,
    mqtt_url: str,
    influx_url: str,
    database: str,
    topic_prefix: str,
    **env: str,
) -> ServiceProcess:
    """The service on the test plant (written to ``workdir``), started and healthy; ``env``
    adds settings such as ``STACKWATCH_WRITE_BATCH_SIZE``."""
    (workdir / "plant.yaml").write_text(PLANT_YAML)
    svc = ServiceProcess(
        workdir,
        service_env(workdir / "plant.yaml", mqtt_url, influx_url, database, topic_prefix, **env),
    )
    svc.start().wait_healthy()
    return svc


def in_thread(target: Callable[[], object]) -> threading.Thread:
    """``target`` running in a daemon thread (the load goes on while the test acts)."""
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def publish_in_thread(port: int, topic: str, messages: list[str]) -> threading.Thread:
    """``messages`` published with QoS 1 by ``mosquitto_pub`` from a background thread."""
    return in_thread(lambda: mosquitto_pub(port, topic, messages))


def assert_exactly_once(
    influx: InfluxServer, database: str, n: int, value: Callable[[int], float]
) -> None:
    """``n`` points (one per published timestamp, so no duplicate) with the published values."""
    result = influx.query('SELECT count("value"), sum("value") FROM readings', db=database)
    _, count, total = result["results"][0]["series"][0]["values"][0]
    assert count == n
    assert total == sum(value(i) for i in range(n))
