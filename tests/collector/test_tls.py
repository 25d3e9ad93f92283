"""Optional TLS between sensors, broker and collector, against a real Mosquitto.

A throw-away CA and a server certificate for 127.0.0.1 are made with the ``openssl`` CLI; the
broker gets a TLS listener next to its plain one (``tests.tls``). The collector (``mqtts://`` with
``tls_ca_file``) and the simulator's publisher (``ca_file``) trust that CA and exchange
readings; a client trusting another CA, and plain MQTT on the TLS port, are refused.
"""

from __future__ import annotations

import asyncio
import ssl
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
from tests.tls import Pki, TlsBroker

CONFIG = ONE_NOX


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


async def test_collector_receives_over_tls_from_the_publisher(
    tls_broker: TlsBroker, pki: Pki
) -> None:
    settings = _settings(tls_broker.url, pki.ca, f"tls-ok-{tls_broker.tls_port}")
    queue: asyncio.Queue[Envelope] = asyncio.Queue(100)
    collector = MqttCollector(settings, Decoder(CONFIG, settings), queue)
    task = asyncio.create_task(collector.run())
    try:
        await asyncio.wait_for(collector.connected_event.wait(), 10)
        assert collector.detail == f"connected to 127.0.0.1:{tls_broker.tls_port}"
        published = await publish_readings(
            [_reading(i) for i in range(3)],
            mqtt_url=tls_broker.url,
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
    tls_broker: TlsBroker, pki: Pki
) -> None:
    settings = _settings(tls_broker.url, pki.other_ca, f"tls-bad-{tls_broker.tls_port}")
    collector = MqttCollector(settings, Decoder(CONFIG, settings), asyncio.Queue(1))
    task = asyncio.create_task(collector.run())
    try:
        await asyncio.wait_for(collector.disconnected_event.wait(), 10)
        assert not collector.connected
        assert "certificate verify failed" in collector.detail
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_publisher_without_the_ca_is_refused(tls_broker: TlsBroker) -> None:
    # The system CAs do not include the test CA: the handshake fails, nothing is published.
    client = aiomqtt.Client(
        "127.0.0.1", tls_broker.tls_port, tls_context=ssl.create_default_context(), timeout=5
    )
    with pytest.raises(aiomqtt.MqttError, match="certificate verify failed"):
        async with client:
            pass


async def test_plain_mqtt_on_the_tls_port_is_refused(tls_broker: TlsBroker) -> None:
    # The broker reads the CONNECT packet as the start of a TLS handshake: no CONNACK ever.
    client = aiomqtt.Client("127.0.0.1", tls_broker.tls_port, timeout=1)
    with pytest.raises(aiomqtt.MqttError):
        async with client:
            await client.publish("p/s/nox", b'{"value": 1}', qos=1)
