"""Hostile traffic is bounded: oversized payloads and floods of bogus topics, on a real broker.

Each refused message is counted by reason, republished to the dead-letter topic and
acknowledged at once; none reaches the writer. The collector keeps no per-topic state (the
metric has one series per reason, whatever the topics), and a small receive maximum proves
the acknowledgements: were refused messages left unacknowledged, the flood would exhaust the
broker's in-flight window and the valid readings published after it would never arrive.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import orjson
from prometheus_client import CollectorRegistry

from collector.decode import Decoder
from collector.mqtt import MqttCollector
from collector.rejection import DEADLETTER_PAYLOAD_LIMIT, RejectionCounter, RejectReason
from collector.settings import MqttSettings
from stream import metrics
from stream.envelope import Envelope
from stream.storage.sqlite import SqliteStore
from stream.writer import BatchWriter, DeadLetterFile
from tests.collector.plants import ONE_NOX, T0_MS
from tests.servers import MosquittoServer

CONFIG = ONE_NOX
MAX_PAYLOAD = 4096
INFLIGHT = 20
FLOOD = 600
VALID = 6


@dataclass
class Rig:
    collector: MqttCollector
    writer: BatchWriter
    store: SqliteStore
    rejections: RejectionCounter
    registry: CollectorRegistry
    deadletters: list[aiomqtt.Message]
    deadletter_arrived: asyncio.Event
    prefix: str


@asynccontextmanager
async def rig(server: MosquittoServer, prefix: str, tmp_path: Path) -> AsyncIterator[Rig]:
    settings = MqttSettings.model_validate(
        {
            "url": server.url,
            "client_id": f"{prefix}-collector",
            "topic_prefix": prefix,
            "deadletter_topic": f"{prefix}/deadletter",
            "max_payload_bytes": MAX_PAYLOAD,
            "inflight": INFLIGHT,
        }
    )
    store = SqliteStore(tmp_path / "s.db")
    await store.start()
    queue: asyncio.Queue[Envelope] = asyncio.Queue(10)
    writer = BatchWriter(store, queue, dead_letter=DeadLetterFile(tmp_path / "dl"), linger_s=0.01)
    registry = CollectorRegistry()
    rejections = RejectionCounter(registry)
    collector = MqttCollector(settings, Decoder(CONFIG, settings), queue, rejections=rejections)
    received: list[aiomqtt.Message] = []
    arrived = asyncio.Event()

    async def watch_deadletters(client: aiomqtt.Client) -> None:
        async for message in client.messages:
            received.append(message)
            arrived.set()

    async with aiomqtt.Client("127.0.0.1", server.port, identifier=f"{prefix}-dl") as watcher:
        await watcher.subscribe(f"{prefix}/deadletter/#", qos=1)
        tasks = [
            asyncio.create_task(writer.run()),
            asyncio.create_task(collector.run()),
            asyncio.create_task(watch_deadletters(watcher)),
        ]
        try:
            await asyncio.wait_for(collector.connected_event.wait(), 10)
            yield Rig(collector, writer, store, rejections, registry, received, arrived, prefix)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await store.close()


async def _until(rig: Rig, predicate: Callable[[], bool]) -> None:
    while not predicate():
        rig.deadletter_arrived.clear()
        await rig.deadletter_arrived.wait()


def _reading(i: int) -> bytes:
    return orjson.dumps({"ts": T0_MS + i * 1000, "value": 10.0 + i})


def _rejected_total(registry: CollectorRegistry) -> dict[str, float]:
    return {
        sample.labels["reason"]: sample.value
        for metric in registry.collect()
        for sample in metric.samples
        if sample.name == "stackwatch_rejected_readings_total"
    }


async def test_oversized_payload_is_refused_dead_lettered_and_the_stream_goes_on(
    mosquitto_server: MosquittoServer, topic_prefix: str, tmp_path: Path
) -> None:
    huge = b'{"value": 1, "pad": "' + b"x" * 100_000 + b'"}'
    topic = f"{topic_prefix}/p/s/nox"
    async with rig(mosquitto_server, topic_prefix, tmp_path) as r:
        async with aiomqtt.Client("127.0.0.1", mosquitto_server.port) as sensor:
            await sensor.publish(topic, _reading(0), qos=1)
            await sensor.publish(topic, huge, qos=1)
            await sensor.publish(topic, _reading(1), qos=1)
        await asyncio.wait_for(r.writer.wait_for(lambda: r.writer.stored >= 2), 10)
        await asyncio.wait_for(_until(r, lambda: len(r.deadletters) >= 1), 10)

        assert await r.store.count("readings", "value", 0, (T0_MS + 10_000) * 10**6) == 2
        assert r.rejections.counts()["payload_too_large"] == 1
        assert _rejected_total(r.registry)["payload_too_large"] == 1
        [dead] = r.deadletters
        assert dead.topic.value == f"{topic_prefix}/deadletter/payload_too_large"
        body = orjson.loads(dead.payload)
        assert body["topic"] == topic
        assert body["detail"] == (
            f"payload of {len(huge)} bytes exceeds max_payload_bytes ({MAX_PAYLOAD})"
        )
        # The dead letter itself is bounded: the original is cut at the documented limit.
        assert body["truncated"] is True
        assert len(body["payload"].encode()) == DEADLETTER_PAYLOAD_LIMIT


async def test_flood_of_bogus_topics_is_refused_counted_and_bounded(
    mosquitto_server: MosquittoServer, topic_prefix: str, tmp_path: Path
) -> None:
    received_before = metrics.MESSAGES_RECEIVED._value.get()
    async with rig(mosquitto_server, topic_prefix, tmp_path) as r:
        async with aiomqtt.Client("127.0.0.1", mosquitto_server.port) as sensor:
            for i in range(VALID):
                await sensor.publish(f"{topic_prefix}/p/s/nox", _reading(i), qos=1)
                for j in range(FLOOD // VALID):
                    n = i * (FLOOD // VALID) + j
                    # Every topic is new: unknown sensors, and empty levels the filter matches.
                    bogus = f"{topic_prefix}/p/s/x{n}" if n % 2 else f"{topic_prefix}/p{n}//x"
                    await sensor.publish(bogus, b'{"value": 1}', qos=1)
        # Bounded in time too: with Nagle's algorithm on, each refusal cost ~40 ms (24 s here).
        await asyncio.wait_for(r.writer.wait_for(lambda: r.writer.stored >= VALID), 10)
        await asyncio.wait_for(_until(r, lambda: len(r.deadletters) >= FLOOD), 10)

        assert await r.store.count("readings", "value", 0, (T0_MS + 60_000) * 10**6) == VALID
        counts = r.rejections.counts()
        assert counts["unknown_sensor"] == counts["bad_topic"] == FLOOD // 2
        assert sum(counts.values()) == FLOOD
        # One series per reason, however many distinct topics were refused.
        assert _rejected_total(r.registry) == {
            reason.value: counts[reason.value] for reason in RejectReason
        }
        reasons = {m.topic.value.rsplit("/", 1)[1] for m in r.deadletters}
        assert reasons == {"unknown_sensor", "bad_topic"}
        assert len(r.deadletters) == FLOOD
        # Refused messages never reach the writer's queue.
        assert r.writer.queued == 0
    assert metrics.MESSAGES_RECEIVED._value.get() - received_before == FLOOD + VALID
