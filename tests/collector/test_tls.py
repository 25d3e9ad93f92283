"""Optional TLS between sensors, broker and collector, against a real Mosquitto.

A throw-away CA and a server certificate for 127.0.0.1 are made with the ``openssl`` CLI; the
broker gets a TLS listener next to its plain one. The collector (``mqtts://`` with
``tls_ca_file``) and the simulator's publisher (``ca_file``) trust that CA and exchange
readings; a client trusting another CA, and plain MQTT on the TLS port, are refused.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import pytest

from collector.decode import Decoder
from collector.mqtt import MqttCollector
from collector.settings import MqttSettings
from simulators.publisher import publish_readings
from stream.envelope import Envelope
from stream.model import NS_PER_MS, Reading
from tests.collector.plants import ONE_NOX, T0_MS
from tests.servers import MosquittoServer, free_port, mosquitto

CONFIG = ONE_NOX


@dataclass(frozen=True)
class Pki:
    ca: Path
    other_ca: Path
    cert: Path
    key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def _make_ca(directory: Path, name: str) -> None:
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2", "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    _make_ca(d, "ca")
    _make_ca(d, "other-ca")
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1",
        cwd=d,
    )  # fmt: skip
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.ext",
        cwd=d,
    )  # fmt: skip
    return Pki(d / "ca.crt", d / "other-ca.crt", d / "server.crt", d / "server.key")


def _wait_port(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"port {port} did not open within {timeout} s")


@dataclass(frozen=True)
class TlsBroker:
    server: MosquittoServer
    tls_port: int

    @property
    def url(self) -> str:
        return f"mqtts://127.0.0.1:{self.tls_port}"


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[TlsBroker]:
    tls_port = free_port()
    listener = (
        # Started as root, Mosquitto would drop to its own user, which cannot read the keys in
        # pytest's private temp dir: it stays the user running the tests.
        f"user {pwd.getpwuid(os.getuid()).pw_name}\n"
        f"listener {tls_port} 127.0.0.1\n"
        f"cafile {pki.ca}\ncertfile {pki.cert}\nkeyfile {pki.key}\n"
        "tls_version tlsv1.2\n"
    )
    with mosquitto(tmp_path_factory.mktemp("mosquitto-tls"), listener) as server:
        _wait_port(tls_port)
        yield TlsBroker(server, tls_port)


def _settings(url: str, ca_file: Path, client_id: str) -> MqttSettings:
    return MqttSettings.model_validate(
        {
            "url": url,
            "tls_ca_file": str(ca_file),
            "client_id": client_id,
            "reconnect_min_s": 0.05,
            "reconnect_max_s": 0.2,
        }
    )


def _reading(i: int) -> Reading:
    return Reading("p", "s", "nox", (T0_MS + i * 1000) * NS_PER_MS, 10.0 + i, "nox", "mg/Nm3")


async def test_collector_receives_over_tls_from_the_publisher(broker: TlsBroker, pki: Pki) -> None:
    settings = _settings(broker.url, pki.ca, f"tls-ok-{broker.tls_port}")
    queue: asyncio.Queue[Envelope] = asyncio.Queue(100)
    collector = MqttCollector(settings, Decoder(CONFIG, settings), queue)
    task = asyncio.create_task(collector.run())
    try:
        await asyncio.wait_for(collector.connected_event.wait(), 10)
        assert collector.detail == f"connected to 127.0.0.1:{broker.tls_port}"
        published = await publish_readings(
            [_reading(i) for i in range(3)],
            mqtt_url=broker.url,
            origin_ns=T0_MS * NS_PER_MS,
            rate=float("inf"),
            ca_file=str(pki.ca),
        )
        assert published == 3
        got: list[Reading] = []
        while len(got) < 3:
            envelope = await asyncio.wait_for(queue.get(), 10)
            got.extend(envelope.readings)
            envelope.ack()
        assert [(r.ts_ns, r.value) for r in got] == [
            (_reading(i).ts_ns, _reading(i).value) for i in range(3)
        ]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_collector_refuses_a_broker_signed_by_an_untrusted_ca(
    broker: TlsBroker, pki: Pki
) -> None:
    settings = _settings(broker.url, pki.other_ca, f"tls-bad-{broker.tls_port}")
    collector = MqttCollector(settings, Decoder(CONFIG, settings), asyncio.Queue(1))
    task = asyncio.create_task(collector.run())
    try:
        await asyncio.wait_for(collector.disconnected_event.wait(), 10)
        assert not collector.connected
        assert "certificate verify failed" in collector.detail
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_publisher_without_the_ca_is_refused(broker: TlsBroker) -> None:
    # The system CAs do not include the test CA: the handshake fails, nothing is published.
    client = aiomqtt.Client(
        "127.0.0.1", broker.tls_port, tls_context=ssl.create_default_context(), timeout=5
    )
    with pytest.raises(aiomqtt.MqttError, match="certificate verify failed"):
        async with client:
            pass


async def test_plain_mqtt_on_the_tls_port_is_refused(broker: TlsBroker) -> None:
    # The broker reads the CONNECT packet as the start of a TLS handshake: no CONNACK ever.
    client = aiomqtt.Client("127.0.0.1", broker.tls_port, timeout=1)
    with pytest.raises(aiomqtt.MqttError):
        async with client:
            await client.publish("p/s/nox", b'{"value": 1}', qos=1)
