"""Real Mosquitto and InfluxDB 1.x processes for tests, on free loopback ports in temp dirs.

Mirrors ``shared/tools/test_servers.sh``; the Makefile installs the Debian packages.
"""

from __future__ import annotations

import json
import os
import pwd
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


def _spawn(cmd: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(cmd, stdout=log, stderr=log)


def _terminate(proc: subprocess.Popen[bytes], timeout: float) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@dataclass
class MosquittoServer:
    port: int
    dir: Path
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Graceful stop (SIGTERM): a persistent broker saves its sessions and queues."""
        _terminate(self.proc, 5)

    def start(self) -> None:
        """Start again after :meth:`stop`, same configuration and port."""
        if self.proc.poll() is not None:
            self.proc = _spawn(["mosquitto", "-c", str(self.dir / "mosquitto.conf")], self._log)
            self.wait_ready()

    @property
    def _log(self) -> Path:
        return self.dir / "mosquitto.log"

    def wait_ready(self) -> None:
        _wait(lambda: _port_open(self.port) or self.proc.poll() is not None, 10, "mosquitto")
        if self.proc.poll() is not None:
            raise RuntimeError(f"mosquitto exited: {self._log.read_text()}")


@contextmanager
def mosquitto(
    tmp: Path, extra_conf: str = "", port: int | None = None, *, persistent: bool = False
) -> Iterator[MosquittoServer]:
    """A Mosquitto 2 broker: anonymous, large queues, on a free port (or ``port``, e.g. to
    restart a broker where clients expect it). Without persistence unless ``persistent``: then
    sessions and queued messages survive :meth:`MosquittoServer.stop` and ``start``."""
    tmp.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    persistence = "persistence false\n"
    if persistent:
        # Started as root, mosquitto would switch to its own user, which cannot write in a
        # private temp dir: it stays the user running the tests.
        persistence = (
            f"persistence true\npersistence_location {tmp}/\nautosave_interval 0\n"
            f"user {pwd.getpwuid(os.getuid()).pw_name}\n"
        )
    conf = tmp / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\n"
        "allow_anonymous true\n"
        f"{persistence}"
        "max_queued_messages 1000000\n"
        "max_inflight_messages 0\n"
        "log_dest stderr\n"
        "log_type error\nlog_type warning\n" + extra_conf
    )
    (tmp / "mosquitto.log").write_bytes(b"")
    proc = _spawn(["mosquitto", "-c", str(conf)], tmp / "mosquitto.log")
    server = MosquittoServer(port, tmp, proc)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


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
        _terminate(self.proc, 10)

    def start(self) -> None:
        """Start again after :meth:`stop`: same configuration, data and port."""
        if self.proc.poll() is not None:
            cmd = ["influxd", "-config", str(self.dir / "influxdb.conf")]
            self.proc = _spawn(cmd, self.dir / "influxd.log")
            self.wait_ready()

    def wait_ready(self) -> None:
        url = self.url
        _wait(lambda: _influx_ready(url) or self.proc.poll() is not None, 30, "influxd")
        if self.proc.poll() is not None:
            log = (self.dir / "influxd.log").read_text()[-2000:]
            raise RuntimeError(f"influxd exited: {log}")


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
    (tmp / "influxd.log").write_bytes(b"")
    proc = _spawn(["influxd", "-config", str(conf)], tmp / "influxd.log")
    server = InfluxServer(http_port, tmp, proc)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
