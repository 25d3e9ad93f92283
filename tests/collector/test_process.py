"""The collector in a child process, against the real session Mosquitto: readings reach the
parent in order, PUBACKs wait for the parent's writer, rejections are counted in the parent and
dead-lettered, a killed child is restarted, and the child never outlives its stdin."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import pickle
import signal
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import aiomqtt
import orjson
from prometheus_client import REGISTRY, CollectorRegistry

from collector.child import (
    INIT,
    STATUS,
    BatchDecoder,
    BatchEncoder,
    Init,
    frame,
    read_frame,
    spawn,
)
from collector.process import CollectorProcess
from collector.rejection import RejectionCounter
from collector.settings import MqttSettings
from stream.envelope import Envelope
from stream.model import Reading, Status
from tests.collector.plants import ONE_NOX, T0_MS
from tests.servers import MosquittoServer

T0_NS = T0_MS * 1_000_000


def settings(broker: MosquittoServer, prefix: str) -> MqttSettings:
    return MqttSettings.model_validate(
        {
            "url": broker.url,
            "topic_prefix": prefix,
            "deadletter_topic": f"{prefix}/deadletter",
            "client_id": f"proc-{prefix}",
            "reconnect_min_s": 0.05,
            "reconnect_max_s": 0.2,
        }
    )


@asynccontextmanager
async def running(collector: CollectorProcess) -> AsyncIterator[CollectorProcess]:
    """``collector.run()`` connected to the broker; stopped (child exited) on exit."""
    task = asyncio.create_task(collector.run())
    try:
        await asyncio.wait_for(collector.connected_event.wait(), 20)
        yield collector
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def publish(broker: MosquittoServer, topic: str, payloads: Sequence[bytes]) -> None:
    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        for payload in payloads:
            await client.publish(topic, payload, qos=1)


async def take(queue: asyncio.Queue[Envelope], readings: int) -> list[Envelope]:
    """Envelopes from ``queue`` until they hold ``readings`` readings."""
    envelopes: list[Envelope] = []

    async def fill() -> None:
        while sum(len(e.readings) for e in envelopes) < readings:
            envelopes.append(await queue.get())

    await asyncio.wait_for(fill(), 20)
    return envelopes


def nox(i: int, status: Status = Status.VALID) -> Reading:
    return Reading("p", "s", "nox", T0_NS + i * 1_000_000_000, float(i), "nox", "mg/Nm3", status)


def message(i: int) -> bytes:
    return orjson.dumps({"ts": T0_MS + i * 1000, "value": i})


def total(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def test_readings_arrive_in_order_with_their_fields(
    mosquitto_server: MosquittoServer, topic_prefix: str
) -> None:
    queue: asyncio.Queue[Envelope] = asyncio.Queue(100)
    collector = CollectorProcess(settings(mosquitto_server, topic_prefix), ONE_NOX, queue)
    received = total("stackwatch_messages_received_total")
    accepted = total("stackwatch_readings_accepted_total")
    async with running(collector):
        assert collector.connected and collector.detail.startswith("connected")
        assert collector.pid is not None and collector.pid != os.getpid()
        assert total("stackwatch_mqtt_connected") == 1
        array = orjson.dumps(
            [{"ts": T0_MS + i * 1000, "value": i, "status": "maintenance"} for i in (20, 21, 22)]
        )
        await publish(
            mosquitto_server,
            f"{topic_prefix}/p/s/nox",
            [message(i) for i in range(20)] + [array],
        )
        envelopes = await take(queue, 23)
        readings = [r for e in envelopes for r in e.readings]
        assert readings == [nox(i) for i in range(20)] + [
            nox(i, Status.MAINTENANCE) for i in (20, 21, 22)
        ]
        # Counted in the parent, before the envelopes arrived.
        assert total("stackwatch_messages_received_total") - received == 21
        assert total("stackwatch_readings_accepted_total") - accepted == 23
        for envelope in envelopes:
            envelope.ack()
    assert not collector.connected and collector.pid is None


async def test_a_large_envelope_arrives_whole(
    mosquitto_server: MosquittoServer, topic_prefix: str
) -> None:
    queue: asyncio.Queue[Envelope] = asyncio.Queue(100)
    collector = CollectorProcess(settings(mosquitto_server, topic_prefix), ONE_NOX, queue)
    n = 5000  # one ~150 kB frame, larger than the pipe and the stream reader's buffer
    payload = orjson.dumps([{"ts": T0_MS + i * 1000, "value": i % 1000} for i in range(n)])
    async with running(collector):
        await publish(mosquitto_server, f"{topic_prefix}/p/s/nox", [payload])
        (envelope,) = await take(queue, n)
        assert list(envelope.readings) == [
            dataclasses.replace(nox(i), value=float(i % 1000)) for i in range(n)
        ]
        envelope.ack()


def test_the_batch_codec_round_trips_and_interns_strings_across_batches() -> None:
    encoder, decoder = BatchEncoder(), BatchDecoder()
    first = [nox(0), nox(1, Status.CALIBRATION)]
    # New strings in a later batch (another sensor) extend the table the decoder keeps.
    second = [nox(2), Reading("p", "s2", "o2", T0_NS, 20.5, "o2", "%", Status.MALFUNCTION)]
    assert decoder.decode(encoder.encode(1, first)) == (1, first)
    seq, readings = decoder.decode(encoder.encode(2, second))
    assert (seq, readings) == (2, second)
    _, again = decoder.decode(encoder.encode(3, first))
    assert again[0].plant is readings[0].plant and again[0].unit is readings[0].unit


async def test_a_message_is_acknowledged_only_by_envelope_ack(
    mosquitto_server: MosquittoServer, topic_prefix: str
) -> None:
    s = settings(mosquitto_server, topic_prefix)
    topic = f"{topic_prefix}/p/s/nox"
    queue: asyncio.Queue[Envelope] = asyncio.Queue(100)
    async with running(CollectorProcess(s, ONE_NOX, queue)):
        await publish(mosquitto_server, topic, [message(i) for i in range(3)])
        first = await take(queue, 3)
    assert [r for e in first for r in e.readings] == [nox(i) for i in range(3)]

    # Never acknowledged: the next child (same client id, same session) gets them again.
    async with running(CollectorProcess(s, ONE_NOX, queue)):
        again = await take(queue, 3)
        assert [r for e in again for r in e.readings] == [nox(i) for i in range(3)]
        for envelope in again:
            envelope.ack()

    # Acknowledged: not redelivered; the first thing the next child hands on is new.
    async with running(CollectorProcess(s, ONE_NOX, queue)):
        await publish(mosquitto_server, topic, [message(3)])
        (envelope,) = await take(queue, 1)
        assert list(envelope.readings) == [nox(3)]
        envelope.ack()
    assert queue.empty()


async def test_rejections_are_counted_in_the_parent_and_dead_lettered(
    mosquitto_server: MosquittoServer, topic_prefix: str
) -> None:
    queue: asyncio.Queue[Envelope] = asyncio.Queue(100)
    rejections = RejectionCounter(CollectorRegistry())
    collector = CollectorProcess(
        settings(mosquitto_server, topic_prefix), ONE_NOX, queue, rejections=rejections
    )
    async with (
        running(collector),
        aiomqtt.Client("127.0.0.1", mosquitto_server.port) as watcher,
    ):
        assert collector.rejections is rejections
        await watcher.subscribe(f"{topic_prefix}/deadletter/#", qos=1)
        await publish(
            mosquitto_server,
            f"{topic_prefix}/p/s/nox",
            [b"{not json", orjson.dumps({"value": 5000}), message(1)],
        )
        (envelope,) = await take(queue, 1)
        assert list(envelope.readings) == [nox(1)]
        envelope.ack()
        counts = rejections.counts()
        assert counts["malformed_json"] == 1 and counts["out_of_range"] == 1
        assert sum(counts.values()) == 2

        letters: list[str] = []

        async def dead_letters() -> None:
            async for letter in watcher.messages:
                letters.append(letter.topic.value)
                if len(letters) == 2:
                    return

        await asyncio.wait_for(dead_letters(), 20)
        assert letters == [
            f"{topic_prefix}/deadletter/malformed_json",
            f"{topic_prefix}/deadletter/out_of_range",
        ]


async def test_a_killed_child_is_restarted_and_its_messages_redelivered(
    mosquitto_server: MosquittoServer, topic_prefix: str
) -> None:
    topic = f"{topic_prefix}/p/s/nox"
    queue: asyncio.Queue[Envelope] = asyncio.Queue(100)
    collector = CollectorProcess(settings(mosquitto_server, topic_prefix), ONE_NOX, queue)
    async with running(collector):
        await publish(mosquitto_server, topic, [message(0)])
        (stale,) = await take(queue, 1)
        pid = collector.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        await asyncio.wait_for(collector.disconnected_event.wait(), 20)
        assert "collector process exited" in collector.detail
        assert total("stackwatch_mqtt_connected") == 0
        await asyncio.wait_for(collector.connected_event.wait(), 20)
        assert collector.pid not in (None, pid)
        stale.ack()  # of the dead child: ignored, the broker redelivers the message

        (redelivered,) = await take(queue, 1)
        assert list(redelivered.readings) == [nox(0)]
        redelivered.ack()
        await publish(mosquitto_server, topic, [message(1)])
        (fresh,) = await take(queue, 1)
        assert list(fresh.readings) == [nox(1)]
        fresh.ack()


async def test_the_child_exits_when_its_stdin_closes(
    mosquitto_server: MosquittoServer, topic_prefix: str
) -> None:
    proc = await spawn()
    assert proc.stdin is not None and proc.stdout is not None
    init = Init(settings(mosquitto_server, topic_prefix), ONE_NOX)
    proc.stdin.write(frame(INIT, pickle.dumps(init)))

    async def connected() -> None:
        assert proc.stdout is not None
        while True:
            received = await read_frame(proc.stdout)
            assert received is not None, "the child exited before it connected"
            kind, payload = received
            if kind == STATUS and pickle.loads(payload)[0]:
                return

    try:
        await asyncio.wait_for(connected(), 20)
        proc.stdin.close()  # what the parent's exit does too
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
