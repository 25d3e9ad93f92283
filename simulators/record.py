"""Record a stream into a replayable file: live from MQTT, or a time range from the store.

From MQTT, the recorder subscribes to ``<prefix>/#`` and decodes each message with the
collector's :class:`~collector.decode.Decoder`, so a recording holds exactly what the service
would have accepted; refused messages are counted by reason (the same reasons as the
collector's dead letters) and the first few kept with their detail. Messages under the
service's dead-letter topic are the service's own output and are skipped. Readings are
written in arrival order.

From the store (InfluxDB or SQLite, through :meth:`~stream.storage.base.Store.scan`), the
stored readings of ``[start, end)`` are written in time order, status kept, optionally for
one plant or stack; the range is read in chunks so a long range does not fill memory.

Either way the file is written by :class:`~simulators.recording.RecordingWriter` (CSV or
JSON lines), which keeps every nanosecond and every bit of the values.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import aiomqtt

from collector.decode import Decoder
from collector.settings import MqttProtocol, MqttSettings
from simulators.publisher import BrokerAddress
from simulators.recording import RecordingWriter
from stream.model import NS_PER_S
from stream.plant import PlantConfig
from stream.schema import READINGS, reading_from_last
from stream.storage.base import Store

_PROTOCOLS = {MqttProtocol.V311: aiomqtt.ProtocolVersion.V311,
              MqttProtocol.V5: aiomqtt.ProtocolVersion.V5}  # fmt: skip
STORE_CHUNK_S = 3600
"""Seconds of stored data read per query when recording from the store."""


@dataclass
class RecordStats:
    """What a recording got: readings written and refusals by reason (first few detailed)."""

    written: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    first_refusals: list[str] = field(default_factory=list)
    keep: int = 10

    def refuse(self, reason: str, message: str) -> None:
        self.refused[reason] += 1
        if len(self.first_refusals) < self.keep:
            self.first_refusals.append(message)


async def record_mqtt(
    writer: RecordingWriter,
    config: PlantConfig,
    *,
    mqtt_url: str,
    settings: MqttSettings | None = None,
    count: int | None = None,
    duration_s: float | None = None,
    stop: asyncio.Event | None = None,
    subscribed: asyncio.Event | None = None,
    now_ns: Callable[[], int] = time.time_ns,
) -> RecordStats:
    """Record readings published under ``settings.topic_prefix`` until ``count`` readings are
    written, ``duration_s`` seconds have passed since subscribing, or ``stop`` is set (at
    least one should be given). ``settings`` gives the prefix and the decoder's limits
    (default: ``MqttSettings()`` from the environment); ``subscribed`` is set once the
    subscription is acknowledged. ``now_ns`` is the receive time of messages without ``ts``.

    Raises :class:`aiomqtt.MqttError` if the broker cannot be reached (no reconnection: a gap
    in a recording is better reported than hidden).
    """
    if count is not None and count < 1:
        raise ValueError(f"count must be positive, got {count}")
    if duration_s is not None and not duration_s > 0:
        raise ValueError(f"duration_s must be positive, got {duration_s}")
    settings = settings if settings is not None else MqttSettings()
    decoder = Decoder(config, settings)
    address = BrokerAddress.parse(mqtt_url)
    prefix = settings.topic_prefix
    deadletter = settings.deadletter_topic + "/"
    stats = RecordStats()
    stop = stop if stop is not None else asyncio.Event()
    client = aiomqtt.Client(
        address.host,
        address.port,
        username=address.username,
        # STACKWATCH_MQTT_PASSWORD and the CA file apply to the broker given here too.
        password=settings.password_override() or address.password,
        identifier=f"stackwatch-record-{uuid.uuid4().hex[:12]}",
        protocol=_PROTOCOLS[settings.protocol],
        tls_context=ssl.create_default_context(cafile=settings.tls_ca_file)
        if address.tls
        else None,
    )

    async def receive() -> None:
        async for message in client.messages:
            topic = message.topic.value
            if topic.startswith(deadletter):
                continue
            payload = message.payload
            data = payload if isinstance(payload, bytes) else str(payload).encode()
            decoded = decoder.decode(topic, data, now_ns())
            for rejection in decoded.rejections:
                where = "" if rejection.index is None else f"[{rejection.index}]"
                stats.refuse(rejection.reason.value, f"{topic}{where}: {rejection.detail}")
            for reading in decoded.readings:
                writer.write(reading)
                stats.written += 1
                if count is not None and stats.written >= count:
                    return

    async with client:
        await client.subscribe(f"{prefix}/#", qos=1)
        if subscribed is not None:
            subscribed.set()
        receiving = asyncio.ensure_future(receive())
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait(
                {receiving, stopping}, timeout=duration_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in (receiving, stopping):
                task.cancel()
            await asyncio.gather(receiving, stopping, return_exceptions=True)
        if receiving.done() and not receiving.cancelled():
            receiving.result()  # a receive error, if any
    return stats


async def record_store(
    writer: RecordingWriter,
    store: Store,
    *,
    start_ns: int,
    end_ns: int,
    plant: str | None = None,
    stack: str | None = None,
    chunk_s: int = STORE_CHUNK_S,
) -> int:
    """Write the stored readings of ``[start_ns, end_ns)`` (optionally of one ``plant`` and
    ``stack``) in time order; returns how many. ``store`` must be started."""
    if end_ns <= start_ns:
        raise ValueError("the end of the range must be after its start")
    where = {k: v for k, v in (("plant", plant), ("stack", stack)) if v is not None}
    written = 0
    step = chunk_s * NS_PER_S
    for lo in range(start_ns, end_ns, step):
        points = await store.scan(READINGS, lo, min(lo + step, end_ns), where)
        for point in points:  # ordered by (time, tags)
            writer.write(reading_from_last(point))
        written += len(points)
    return written
