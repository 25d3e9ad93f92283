"""The collector holds the broker to its receive maximum, on a real Mosquitto.

Mosquitto 2.0 sends more than our MQTT 5 receive maximum once acknowledgements flow (measured:
receive maximum 100, each message acknowledged 50 ms after it arrived → 14 700 outstanding),
and for MQTT 3.1.1 only its own ``max_inflight_messages`` counts (unlimited in the test
broker). The collector therefore stops reading the socket while ``inflight`` messages are
unacknowledged, so its memory stays bounded by the window whatever the broker does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiomqtt
import orjson
import pytest

from collector.decode import Decoder
from collector.mqtt import MqttCollector
from collector.settings import MqttProtocol, MqttSettings
from stream.envelope import Envelope
from tests.collector.plants import ONE_NOX, T0_MS
from tests.servers import MosquittoServer, mosquitto

INFLIGHT = 50
BACKLOG = 3000
ACK_DELAY_S = 0.02
KEEPALIVE_S = 5  # the least allowed: a stall is declared after half of it


def _settings(server: MosquittoServer, prefix: str, protocol: MqttProtocol) -> MqttSettings:
    return MqttSettings.model_validate(
        {
            "url": server.url,
            "client_id": f"{prefix}-collector",
            "topic_prefix": prefix,
            "deadletter_topic": f"{prefix}/deadletter",
            "inflight": INFLIGHT,
            "protocol": protocol,
            "keepalive_s": KEEPALIVE_S,
        }
    )


async def _publish_backlog(server: MosquittoServer, prefix: str, count: int) -> None:
    async with aiomqtt.Client("127.0.0.1", server.port) as sensor:
        for i in range(count):
            payload = orjson.dumps({"ts": T0_MS + i * 1000, "value": 1.0})
            await sensor.publish(f"{prefix}/p/s/nox", payload, qos=1)


def _indices(envelope: Envelope) -> list[int]:
    return [(r.ts_ns // 10**6 - T0_MS) // 1000 for r in envelope.readings]


@asynccontextmanager
async def _running(collector: MqttCollector) -> AsyncIterator[None]:
    task = asyncio.create_task(collector.run())
    try:
        await asyncio.wait_for(collector.connected_event.wait(), 10)
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.mark.parametrize("protocol", list(MqttProtocol))
async def test_a_backlog_arrives_within_the_receive_maximum_while_acks_flow(
    mosquitto_server: MosquittoServer, topic_prefix: str, protocol: MqttProtocol
) -> None:
    settings = _settings(mosquitto_server, topic_prefix, protocol)
    # Unbounded hand-off: only the collector's own bound can hold the window.
    outbox: asyncio.Queue[Envelope] = asyncio.Queue()
    collector = MqttCollector(settings, Decoder(ONE_NOX, settings), outbox)
    async with _running(collector):  # the persistent session and its subscription
        pass

    # The backlog waits at the broker while the collector is away.
    await _publish_backlog(mosquitto_server, topic_prefix, BACKLOG)

    loop = asyncio.get_running_loop()
    seen: list[int] = []
    acked = 0
    peak_held = peak_collector = 0

    def ack(envelope: Envelope) -> None:
        nonlocal acked
        envelope.ack()
        acked += len(envelope.readings)

    async with _running(collector):
        while len(seen) < BACKLOG:
            envelope = await asyncio.wait_for(outbox.get(), 10)
            seen.extend(_indices(envelope))
            # One reading per message: what we hold unacknowledged is what the broker sent
            # beyond our acknowledgements (the intake never blocks on this queue).
            peak_held = max(peak_held, len(seen) - acked)
            peak_collector = max(peak_collector, collector.unacknowledged)
            loop.call_later(ACK_DELAY_S, ack, envelope)

    assert sorted(seen) == list(range(BACKLOG))
    assert peak_held <= INFLIGHT
    assert peak_collector <= INFLIGHT
    # The window was used, not merely respected: the backlog came in full windows.
    assert peak_collector == INFLIGHT


async def test_reading_goes_on_when_acknowledgements_stall(
    mosquitto_server: MosquittoServer, topic_prefix: str
) -> None:
    """Storage down: nothing is acknowledged. After half the keep-alive the socket is read
    again regardless (else paho would miss the broker's ping answers and drop a connection
    that is fine); a 3.1.1 session on this broker then brings the whole backlog."""
    settings = _settings(mosquitto_server, topic_prefix, MqttProtocol.V311)
    outbox: asyncio.Queue[Envelope] = asyncio.Queue()
    collector = MqttCollector(settings, Decoder(ONE_NOX, settings), outbox)
    async with _running(collector):
        pass
    backlog = 3 * INFLIGHT
    await _publish_backlog(mosquitto_server, topic_prefix, backlog)

    seen: list[int] = []
    async with _running(collector):
        while len(seen) < backlog:
            seen.extend(_indices(await asyncio.wait_for(outbox.get(), 10)))
            if len(seen) == INFLIGHT:
                assert collector.unacknowledged == INFLIGHT  # the window was full first
        assert collector.connected
    assert sorted(seen) == list(range(backlog))
    assert collector.unacknowledged == backlog


async def test_a_lost_connection_is_noticed_while_the_window_is_full(tmp_path: Path) -> None:
    """With the socket not read (a full window, storage down) the collector would not see the
    broker go away; reading on after half the keep-alive lets it notice, reconnect, and get
    the rest of the kept session."""
    with mosquitto(tmp_path / "broker", persistent=True) as server:
        settings = _settings(server, "restart", MqttProtocol.V5)
        outbox: asyncio.Queue[Envelope] = asyncio.Queue()
        collector = MqttCollector(settings, Decoder(ONE_NOX, settings), outbox)
        async with _running(collector):
            pass
        backlog = 3 * INFLIGHT
        await _publish_backlog(server, "restart", backlog)

        seen: set[int] = set()
        async with _running(collector):
            while len(seen) < INFLIGHT:
                seen.update(_indices(await asyncio.wait_for(outbox.get(), 10)))
            assert collector.unacknowledged == INFLIGHT  # full: the socket is not read
            server.stop()
            await asyncio.wait_for(collector.disconnected_event.wait(), 4 * KEEPALIVE_S)
            server.start()
            await asyncio.wait_for(collector.connected_event.wait(), 30)
            while len(seen) < backlog:  # acknowledged from now on: the session drains
                envelope = await asyncio.wait_for(outbox.get(), 10)
                seen.update(_indices(envelope))
                envelope.ack()
    assert seen == set(range(backlog))
