"""Run ``stackwatch run`` as a real subprocess for end-to-end tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from tests.servers import free_port

PLANT_YAML = """
plants:
  p1:
    name: Test plant
    stacks:
      s1:
        reference_o2: 6
        sensors:
          nox: {quantity: nox, unit: mg/Nm3, valid_range: [0, 2000]}
          o2: {quantity: o2, unit: "%", valid_range: [0, 25]}
        limits:
          nox: {daily: 200, half_hour: 400}
"""


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``predicate`` until it returns a truthy value (condition wait, not a sleep)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.05)
    raise TimeoutError(f"{what} not reached within {timeout} s (last: {last!r})")


class ServiceProcess:
    """``python -m stackwatch.cli run`` with the given environment; logs go to a file."""

    def __init__(self, workdir: Path, env: Mapping[str, str], args: tuple[str, ...] = ()) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.env = {
            **os.environ,
            "STACKWATCH_API_PORT": str(self.port),
            "STACKWATCH_DATA_DIR": str(workdir / "data"),
            "STACKWATCH_LOG_FORMAT": "json",
            **env,
        }
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "service.log"
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServiceProcess:
        self.starts += 1
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stackwatch.cli", "run", *self.args],
            env=self.env,
            cwd=self.workdir,
            stdout=log,
            stderr=log,
        )
        log.close()
        return self

    def wait_healthy(self, timeout: float = 30) -> None:
        def healthy() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"service exited {self.proc.returncode}:\n{self.logs()}")
            try:
                return httpx.get(f"{self.url}/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, timeout, "service healthy")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_events(self) -> list[dict[str, Any]]:
        events = []
        for line in self.logs().splitlines():
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
        return events

    def get(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", params=params, timeout=10)


def influx_count(influx: Any, db: str, where: str = "") -> int:
    result = influx.query(f'SELECT count("value") FROM "readings" {where}', db=db)
    series = result["results"][0].get("series")
    return int(series[0]["values"][0][1]) if series else 0


def mosquitto_pub(port: int, topic: str, messages: list[str], qos: int = 1) -> None:
    """Publish each message with the real ``mosquitto_pub`` client (one line each, ``-l``)."""
    subprocess.run(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-q", str(qos), "-t", topic, "-l"],
        input="\n".join(messages).encode() + b"\n",
        check=True,
        timeout=120,
    )


def service_env(
    config: Path, mqtt_url: str, influx_url: str, database: str, topic_prefix: str, **extra: str
) -> dict[str, str]:
    """Environment of a service on the test servers (demo mode, its own topics and session)."""
    return {
        "STACKWATCH_MODE": "demo",
        "STACKWATCH_CONFIG": str(config),
        "STACKWATCH_MQTT_URL": mqtt_url,
        "STACKWATCH_MQTT_TOPIC_PREFIX": topic_prefix,
        "STACKWATCH_MQTT_DEADLETTER_TOPIC": f"{topic_prefix}/deadletter",
        "STACKWATCH_MQTT_CLIENT_ID": f"sw-{topic_prefix}",
        "STACKWATCH_INFLUX_URL": influx_url,
        "STACKWATCH_INFLUX_DATABASE": database,
        **extra,
    }
