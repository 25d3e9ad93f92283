"""Real Mosquitto and InfluxDB 1.x processes for tests, on free loopback ports in temp dirs.

Mirrors ``shared/tools/test_servers.sh``; the Makefile installs the Debian packages.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise TimeoutError(f"{what} did not become ready within {timeout} s")


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@dataclass
class MosquittoServer:
    port: int
    dir: Path
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@contextmanager
def mosquitto(
    tmp: Path, extra_conf: str = "", port: int | None = None
) -> Iterator[MosquittoServer]:
    """A Mosquitto 2 broker: anonymous, no persistence, large queues, on a free port (or
    ``port``, e.g. to restart a broker where clients expect it)."""
    tmp.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    conf = tmp / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\n"
        "allow_anonymous true\n"
        "persistence false\n"
        "max_queued_messages 1000000\n"
        "max_inflight_messages 0\n"
        "log_dest stderr\n"
        "log_type error\nlog_type warning\n" + extra_conf
    )
    log = (tmp / "mosquitto.log").open("wb")
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=log, stderr=log)
    server = MosquittoServer(port, tmp, proc)
    try:
        _wait(lambda: _port_open(port) or proc.poll() is not None, 10, "mosquitto")
        if proc.poll() is not None:
            raise RuntimeError(f"mosquitto exited: {(tmp / 'mosquitto.log').read_text()}")
        yield server
    finally:
        server.stop()
        log.close()


@dataclass
class InfluxServer:
    port: int
    dir: Path
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def query(self, q: str, db: str | None = None) -> dict[str, Any]:
        params = {"q": q, "epoch": "ns"} | ({"db": db} if db else {})
        req = urllib.request.Request(
            f"{self.url}/query", data=urlencode(params).encode(), method="POST"
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            result: dict[str, Any] = json.loads(resp.read())
            return result

    def create_database(self, name: str) -> None:
        self.query(f'CREATE DATABASE "{name}"')

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def _influx_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=0.5) as resp:
            return bool(resp.status == 204)
    except OSError:
        return False


@contextmanager
def influxdb(tmp: Path, port: int | None = None) -> Iterator[InfluxServer]:
    """An InfluxDB 1.x server (Debian ``influxdb``) with auth off, on free ports (or ``port``)."""
    tmp.mkdir(parents=True, exist_ok=True)
    http_port, rpc_port = port or free_port(), free_port()
    conf = tmp / "influxdb.conf"
    conf.write_text(
        f"""reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{tmp}/meta"
[data]
  dir = "{tmp}/data"
  wal-dir = "{tmp}/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:{http_port}"
  log-enabled = false
"""
    )
    log = (tmp / "influxd.log").open("wb")
    proc = subprocess.Popen(["influxd", "-config", str(conf)], stdout=log, stderr=log)
    server = InfluxServer(http_port, tmp, proc)
    url = server.url
    try:
        _wait(lambda: _influx_ready(url) or proc.poll() is not None, 30, "influxd")
        if proc.poll() is not None:
            raise RuntimeError(f"influxd exited: {(tmp / 'influxd.log').read_text()[-2000:]}")
        yield server
    finally:
        server.stop()
        log.close()
