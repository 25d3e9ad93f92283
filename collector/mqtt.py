"""The MQTT collector: the only module that talks to the broker through aiomqtt.

Reliability rules (see README, "Delivery guarantees"):

* Stable client id and a persistent session (MQTT 3.1.1 ``clean_session=False``; MQTT 5
  ``clean_start=False`` with a session expiry), so the broker keeps our QoS 1 messages while we
  are away and redelivers un-acknowledged ones when we return.
* Manual acknowledgement: paho's ``manual_ack`` is switched on (aiomqtt 2.5 does not expose it
  yet, aiomqtt#345), and the PUBACK of a message is sent only after the writer has stored its
  readings. A crash between receive and write therefore loses nothing.
* Backpressure: at most ``inflight`` un-acknowledged messages are out to us (the MQTT 5
  receive maximum, and :class:`~collector.window.ReceiveWindow` stops reading the socket at
  that many, whatever the broker does), and the hand-off queue to the writer is bounded, so
  memory stays bounded when storage is slow or down.
* Subscribe on every connect (without waiting for the SUBACK where the broker kept the
  session), a fresh client per attempt, capped exponential backoff with jitter between
  attempts.
* Bad input never stops the loop: each rejection is counted, logged once per kind and published
  to ``<deadletter_topic>/<reason>``; then the message is acknowledged.
"""

from __future__ import annotations

import asyncio
import random
import socket
import ssl
import struct
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from time import time_ns
from typing import Any

import aiomqtt
import structlog
from paho.mqtt import client as mqtt_client
from paho.mqtt.client import PUBACK
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from collector import paho_speedups  # noqa: F401 - applied on import (see the module)
from collector.decode import Decoder
from collector.rejection import RejectionCounter, deadletter_message
from collector.settings import MqttProtocol, MqttSettings
from collector.window import ReceiveWindow
from stream import metrics
from stream.envelope import Envelope
from stream.model import Reading

log = structlog.get_logger(__name__)

_PUBACK = struct.Struct("!BBH")  # fixed header, remaining length 2, packet id


class _Session:
    """One broker connection; acks of messages from an earlier connection are dropped (the
    broker redelivers those anyway, and their packet ids mean nothing on a new connection)."""

    __slots__ = ("alive", "paho", "window")

    def __init__(self, paho: Any, window: ReceiveWindow) -> None:
        self.paho = paho
        self.window = window
        self.alive = True

    def ack_many(self, acks: list[tuple[int, int]]) -> None:
        """Acknowledge QoS 1 messages with one write: their PUBACK packets (4 bytes each, the
        form paho itself sends for 3.1.1 and for MQTT 5 success) go out as one queued packet
        instead of one packet, wake-up and system call each. Other QoS go through paho."""
        if not self.alive:
            return
        pubacks = bytearray()
        count = 0
        for mid, qos in acks:
            if qos == 1:
                pubacks += _PUBACK.pack(PUBACK, 2, mid)
                count += 1
            elif qos > 1:
                self.paho.ack(mid, qos)
                count += 1
        if pubacks:
            self.paho._packet_queue(PUBACK, bytes(pubacks), 0, 0)
        if count:
            self.window.acknowledged(count)


@dataclass(frozen=True, slots=True)
class _Acks:
    """The acknowledgements of the messages of one envelope, in receive order."""

    session: _Session
    mids: list[tuple[int, int]]  # (mid, qos)

    def __call__(self) -> None:
        self.session.ack_many(self.mids)


# Messages taken from the client's queue in one go: one envelope (and one acknowledgement
# callback, one queue hand-off) per batch instead of per message. Larger than what one read of
# the socket delivers (~600 messages from 64 KiB), so the intake keeps up with the reader and
# the queue does not grow to the whole inflight window before anything is handed on.
_INTAKE_BATCH = 5000
# Readings per envelope at most (whole messages: it ends after the message that reaches it):
# 500 gateway messages of 50 readings would otherwise make one write batch of 25 000, which
# the writer can neither overlap with the next nor store in good time.
_ENVELOPE_READINGS = 5000


def _no_delay(client: aiomqtt.Client) -> None:
    """Switch Nagle's algorithm off (paho leaves it on). A refused message is answered with
    a PUBACK and a dead-letter PUBLISH back to back; with Nagle the second waits for the TCP
    acknowledgement of the first, which the broker delays by up to 40 ms: a flood of bad
    messages would throttle the collector to ~25 messages/s and starve the valid ones."""
    sock = client._client.socket()
    if isinstance(sock, socket.socket):  # an ssl.SSLSocket too
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _ReadBuffer:
    """paho's plain TCP socket, read 64 KiB at a time.

    paho reads each packet with a system call per byte of its header and one for the rest
    (three per reading); served from a buffer they cost one call per 64 KiB. ``pending()``
    (what an ``ssl.SSLSocket`` offers) tells aiomqtt's reader to keep calling paho while bytes
    are buffered, since the kernel no longer signals them. Everything else is the socket's.
    """

    __slots__ = ("_data", "_pos", "_sock")

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._data = b""
        self._pos = 0

    def recv(self, size: int) -> bytes:
        if self._pos >= len(self._data):
            data = self._sock.recv(65_536)  # BlockingIOError or b"" (closed) reach paho
            if not data:
                return data
            self._data, self._pos = data, 0
        start = self._pos
        self._pos = min(start + size, len(self._data))
        return self._data[start : self._pos]

    def pending(self) -> int:
        return len(self._data) - self._pos

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def _buffer_reads(client: aiomqtt.Client) -> None:
    """Serve paho's reads from :class:`_ReadBuffer` (plain TCP only: TLS buffers already)."""
    paho = client._client
    sock = paho._sock
    if type(sock) is socket.socket:
        paho._sock = _ReadBuffer(sock)


class ConnectionStatus:
    """The broker connection as health checks see it: ``connected``, a ``detail`` for the
    operator, and an event for each state (the metric follows)."""

    def __init__(self) -> None:
        self.connected = False
        self.detail = "not connected yet"
        self.connected_event = asyncio.Event()
        self.disconnected_event = asyncio.Event()

    def _set_connected(self, connected: bool, detail: str) -> None:
        self.connected = connected
        self.detail = detail
        metrics.MQTT_CONNECTED.set(1 if connected else 0)
        if connected:
            self.connected_event.set()
            self.disconnected_event.clear()
        else:
            self.connected_event.clear()
            self.disconnected_event.set()


class MqttCollector(ConnectionStatus):
    """Subscribes to sensor topics and hands decoded readings to ``outbox``.

    ``run()`` connects and reconnects until cancelled. ``connected`` and ``detail`` describe
    the current state for health checks.
    """

    def __init__(
        self,
        settings: MqttSettings,
        decoder: Decoder,
        outbox: asyncio.Queue[Envelope],
        *,
        rejections: RejectionCounter | None = None,
        clock: Callable[[], int] = time_ns,
    ) -> None:
        self._settings = settings
        self._decoder = decoder
        self._outbox = outbox
        self._rejections = rejections or RejectionCounter()
        self._clock = clock
        super().__init__()
        self._intake_open = True
        self._window: ReceiveWindow | None = None

    def stop_intake(self) -> None:
        """Stop handing messages on (graceful shutdown). Later messages are not acknowledged,
        so the broker redelivers them when we come back."""
        self._intake_open = False

    @property
    def rejections(self) -> RejectionCounter:
        return self._rejections

    @property
    def unacknowledged(self) -> int:
        """QoS > 0 messages of the current connection not yet acknowledged."""
        return self._window.unacknowledged if self._window is not None else 0

    def _client(self) -> aiomqtt.Client:
        s = self._settings
        v5 = s.protocol is MqttProtocol.V5
        properties = None
        if v5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = s.session_expiry_s
            properties.ReceiveMaximum = s.inflight
        tls = None
        if s.tls:
            tls = aiomqtt.TLSParameters(ca_certs=s.tls_ca_file, cert_reqs=ssl.CERT_REQUIRED)
        client = aiomqtt.Client(
            s.host,
            s.port,
            username=s.username,
            password=s.password_value(),
            identifier=s.client_id,
            protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
            clean_session=None if v5 else False,
            # MQTT 5 resumes the session only with clean_start False; 3.1.1 uses clean_session.
            clean_start=False if v5 else mqtt_client.MQTT_CLEAN_START_FIRST_ONLY,
            keepalive=s.keepalive_s,
            properties=properties,
            tls_params=tls,
            timeout=10,
        )
        # Acknowledge only after storage (aiomqtt#345 workaround; paho 2 API).
        client._client.manual_ack_set(True)
        return client

    async def run(self) -> None:
        s = self._settings
        delay = s.reconnect_min_s
        failing = False
        while True:
            client = self._client()
            # Stall: half the keep-alive, so paho still reads the broker's ping answers.
            window = ReceiveWindow(client, s.inflight, stall_s=s.keepalive_s / 2)
            subscribing: asyncio.Future[Any] | None = None
            self._window = window
            session = _Session(client._client, window)
            try:
                async with client:
                    _no_delay(client)
                    _buffer_reads(client)
                    # Subscribe on every connect (the settings may have changed). Where the
                    # broker kept our session its backlog comes first and the SUBACK behind
                    # it: a full window that only the intake below can acknowledge, so the
                    # intake must not wait for the SUBACK.
                    subscribing = asyncio.ensure_future(client.subscribe(s.subscription(), qos=1))
                    if not window.session_present:
                        await subscribing
                    self._set_connected(True, f"connected to {s.host}:{s.port}")
                    if failing:
                        log.info("mqtt reconnected", host=s.host, port=s.port)
                    else:
                        log.info(
                            "mqtt connected",
                            host=s.host,
                            port=s.port,
                            protocol=s.protocol.value,
                            subscription=s.subscription(),
                        )
                    failing = False
                    delay = s.reconnect_min_s
                    # aiomqtt's incoming queue (private): what is already there is taken in
                    # one go after each message the iterator yields.
                    pending: asyncio.Queue[aiomqtt.Message] = client._queue
                    async for message in client.messages:
                        batch = [message]
                        while len(batch) < _INTAKE_BATCH and not pending.empty():
                            batch.append(pending.get_nowait())
                        await self._handle(client, session, batch)
                        if subscribing.done():
                            subscribing.result()  # a failed subscription ends the connection
            except aiomqtt.MqttError as err:
                session.alive = False
                self._set_connected(False, f"disconnected: {err}")
                if not failing:
                    log.error(
                        "mqtt connection lost, reconnecting",
                        host=s.host,
                        port=s.port,
                        error=str(err),
                    )
                    failing = True
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))  # noqa: S311 (jitter)
                delay = min(delay * 2, s.reconnect_max_s)
            finally:
                session.alive = False
                window.close()
                if subscribing is not None and subscribing.done() and not subscribing.cancelled():
                    subscribing.exception()  # retrieved: it was reported above or is moot
                elif subscribing is not None:
                    subscribing.cancel()
                self._set_connected(False, self.detail)

    async def _handle(
        self, client: aiomqtt.Client, session: _Session, batch: list[aiomqtt.Message]
    ) -> None:
        """Decode a batch of messages in receive order; the accepted readings go to the writer
        in envelopes of about ``_ENVELOPE_READINGS`` (each acknowledged once stored), a
        refused message is dead-lettered and acknowledged once the broker has the dead letter.
        The dead letters of a batch are published together: one round trip, not one each."""
        if not self._intake_open:
            return
        metrics.MESSAGES_RECEIVED.inc(len(batch))
        received = self._clock()
        decode = self._decoder.decode
        readings: list[Reading] = []
        acks: list[tuple[int, int]] = []
        refused: list[tuple[int, int]] = []
        dead: list[Coroutine[Any, Any, None]] = []
        for message in batch:
            payload = message.payload
            if not isinstance(payload, bytes | bytearray):
                payload = b"" if payload is None else str(payload).encode()
            topic = message.topic.value
            decoded = decode(topic, bytes(payload), received)
            for rejection in decoded.rejections:
                self._rejections.record(rejection, topic)
                dl_topic, dl_payload = deadletter_message(
                    topic, bytes(payload), rejection, received, self._settings.deadletter_topic
                )
                dead.append(client.publish(dl_topic, dl_payload, qos=1))
            if decoded.readings:
                readings.extend(decoded.readings)
                acks.append((message.mid, message.qos))
                if len(readings) >= _ENVELOPE_READINGS:
                    await self._deadletter(session, dead)
                    dead = []
                    await self._put(readings, session, acks)
                    readings, acks = [], []
            else:
                refused.append((message.mid, message.qos))
        await self._deadletter(session, dead)
        session.ack_many(refused)
        if readings:
            await self._put(readings, session, acks)

    @staticmethod
    async def _deadletter(session: _Session, publishes: list[Coroutine[Any, Any, None]]) -> None:
        """Wait until the broker has these dead letters (its PUBACKs come over the socket, so
        the receive window lets reading go on meanwhile)."""
        if publishes:
            with session.window.reading():
                await asyncio.gather(*publishes)

    async def _put(
        self, readings: list[Reading], session: _Session, acks: list[tuple[int, int]]
    ) -> None:
        metrics.READINGS_ACCEPTED.inc(len(readings))
        await self._outbox.put(Envelope(readings, _Acks(session, acks)))
        metrics.QUEUE_DEPTH.set(self._outbox.qsize())
