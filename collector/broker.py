"""Embedded MQTT broker (in-process amqtt 0.12) for demo mode, when STACKWATCH_MQTT_URL is unset.

**Demo mode only.** Anyone who can reach the listener may connect, publish and subscribe
without credentials; it therefore binds to 127.0.0.1 and nothing else. Production uses an
external broker (Mosquitto, EMQX) with authentication.

What it offers:

* MQTT **3.1.1 only** (amqtt rejects protocol level 5 with "unsupported protocol version"), so
  clients, the collector included, must connect with 3.1.1. No shared subscriptions.
* QoS 0 and 1 (QoS 2 works as amqtt implements it, without the guarantees below).
* Persistent sessions kept **in memory for the lifetime of the process**: a client that connects
  with ``clean_session=False`` keeps its subscriptions, gets the QoS 1 messages published while
  it was away, and gets its un-acknowledged QoS 1 messages again (PUBLISH with DUP=1 and the
  same packet id, MQTT-4.4.0-1) when it reconnects. Delivery is at least once.

What stock amqtt 0.12.1 does instead, and how this module corrects it (read in
``amqtt/broker.py``, ``amqtt/mqtt/protocol/handler.py``, ``amqtt/plugins/authentication.py``;
each point is exercised by ``tests/collector/test_broker.py``):

1. ``AnonymousAuthPlugin(allow_anonymous=True)`` marks *every* session anonymous, and amqtt
   neither queues messages for a disconnected anonymous session nor keeps it (its session
   monitor deletes it within a second). Persistent sessions would silently not exist.
   :class:`OpenAccessAuth` accepts every client without that mark.
2. An outgoing QoS 1 message waits at most **5 s** (hard-coded) for its PUBACK; on timeout, and
   when the connection closes, it is removed from ``session.inflight_out`` and never sent
   again. A client that acknowledges only after storing (our collector, paho ``manual_ack``)
   and disconnects before acking, or acks later than 5 s, would lose those messages.
   :class:`UnackedRedelivery` keeps them until their PUBACK arrives and hands them back to
   amqtt's own retry path (``_retry_deliveries``, run when a session reconnects).
3. Messages queued while a client was away are sent with the RETAIN flag set, which a
   subscriber may legitimately take for stale last-known values. They are re-sent as ordinary
   messages instead (RETAIN=0).
4. A client that reconnects while amqtt still holds its previous connection (a quick restart,
   or a half-open TCP connection after a network failure: the normal case after an outage)
   takes the session over, but the old connection's clean-up then marks the shared session
   disconnected, and amqtt queues everything for the client instead of sending it until it
   reconnects once more. :class:`_Broker` lets only the connection that owns a session
   disconnect it.

**In-flight bound: none.** amqtt sends every matching message at once, one task per message;
it does not wait for a PUBACK before sending the next and has no max-inflight setting (MQTT
3.1.1 has no receive maximum either). A subscriber that acknowledges late therefore accumulates
un-acked messages without limit, and so does this broker's bookkeeping of them; backpressure
has to come from the client. At most 65,535 messages per client can be un-acknowledged (the
packet id space); amqtt fails to send further messages to that client and drops them (logged
as errors).

Each redelivery attempt of a message that stays un-acked still makes amqtt wait its 5 s; when a
client reconnects, amqtt finishes those retries before it processes the client's SUBSCRIBE, so
the SUBACK can take up to 5 s. The resulting amqtt warnings and "task failed" errors for PUBACK
timeouts are expected here and are filtered from the logs; amqtt's other logging is kept at
WARNING.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from types import TracebackType
from typing import Any, Self

from amqtt.adapters import StreamReaderAdapter, StreamWriterAdapter
from amqtt.broker import Broker
from amqtt.mqtt.puback import PubackPacket
from amqtt.plugins.base import BaseAuthPlugin, BasePlugin
from amqtt.session import OutgoingApplicationMessage

HOST = "127.0.0.1"
AMQTT_PUBACK_TIMEOUT_S = 5.0
"""amqtt's fixed wait for a PUBACK, after which it forgets an outgoing QoS 1 message."""

_QOS_1 = 1
_MISSING = object()


class _Inflight(OrderedDict[int, Any]):
    """An amqtt ``Session.inflight_out`` that never forgets an un-acked QoS 1 message.

    amqtt pops a message from ``inflight_out`` when its PUBACK arrives, when the 5 s wait runs
    out and when the connection closes; only the first is an acknowledgement (amqtt sets
    ``puback_packet`` first). Un-acked messages popped for the other reasons move to
    ``unacked``. Their packet ids still count as in use (``__contains__``), so amqtt's
    ``next_packet_id`` never hands them to a new message while the client may still ack them.
    """

    def __init__(self, existing: OrderedDict[int, Any]) -> None:
        super().__init__(existing)
        self.unacked: OrderedDict[int, Any] = OrderedDict()

    def pop(self, key: int, default: Any = _MISSING) -> Any:
        message = super().pop(key, _MISSING)
        if message is _MISSING:
            if default is _MISSING:
                raise KeyError(key)
            return default
        if message.qos == _QOS_1 and message.puback_packet is None:
            self.unacked[key] = message
        return message

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key) or key in self.unacked

    def acknowledge(self, packet_id: int) -> None:
        """A PUBACK arrived for a message amqtt had already given up on."""
        self.unacked.pop(packet_id, None)

    def requeue(self) -> None:
        """Put un-acked messages back where amqtt's reconnect retry looks for them."""
        for packet_id, message in self.unacked.items():
            OrderedDict.__setitem__(self, packet_id, message)
        self.unacked.clear()


class OpenAccessAuth(BaseAuthPlugin):  # type: ignore[misc]
    """Accepts every client, with or without credentials, **without** amqtt's anonymous mark.

    amqtt drops the persistent session of a client marked anonymous (see the module docstring),
    so ``AnonymousAuthPlugin`` cannot be used. Demo mode only.
    """

    async def authenticate(self, *, session: Any) -> bool:
        return True


class UnackedRedelivery(BasePlugin[Any]):  # type: ignore[misc]
    """Makes amqtt redeliver un-acked and offline-queued QoS 1 messages of persistent sessions.

    * On connect of a ``clean_session=False`` client, its ``inflight_out`` becomes an
      :class:`_Inflight`, its un-acked messages are put back into it, and the messages queued
      while it was away are moved into it as ordinary (RETAIN=0) messages with fresh packet ids.
      amqtt's handler then sends all of them from ``_retry_deliveries`` before the session's
      normal traffic. This relies on amqtt firing ``broker_client_connected`` before it starts
      the handler: the event task is scheduled first and runs as the handler awaits its reader
      (amqtt 0.12.x, pinned).
    * Every PUBACK is checked against the messages amqtt gave up on.
    """

    async def on_broker_client_connected(self, *, client_id: str, client_session: Any) -> None:
        if client_session.clean_session:
            return
        inflight = client_session.inflight_out
        if not isinstance(inflight, _Inflight):
            inflight = _Inflight(inflight)
            client_session.inflight_out = inflight
        inflight.requeue()
        queue = client_session.retained_messages
        while not queue.empty():
            queued = queue.get_nowait()
            packet_id = client_session.next_packet_id
            inflight[packet_id] = OutgoingApplicationMessage(
                packet_id, queued.topic, queued.qos, queued.data, retain=False
            )

    async def on_mqtt_packet_received(self, *, packet: Any, session: Any = None) -> None:
        if session is None or not isinstance(packet, PubackPacket):
            return
        inflight = session.inflight_out
        if isinstance(inflight, _Inflight) and packet.variable_header is not None:
            inflight.acknowledge(packet.variable_header.packet_id)


_OWNER = "stackwatch.connection"


class _Broker(Broker):  # type: ignore[misc]
    """amqtt's broker with session take-over fixed.

    When a client connects with the id of a session amqtt still thinks connected (a quick
    reconnect, or a half-open TCP connection after a network failure), amqtt stops the old
    connection and reuses the session for the new one, but the old connection's clean-up then
    marks the *shared* session disconnected. From then on amqtt queues every message for the
    client instead of sending it, until it reconnects once more. Here each session remembers
    the connection (protocol handler) that owns it, and a superseded connection only stops
    its handler. No will message is published for a superseded connection.
    """

    async def _initialize_client_session(self, *args: Any) -> tuple[Any, Any]:
        handler, session = await super()._initialize_client_session(*args)
        session.attributes[_OWNER] = handler
        return handler, session

    async def _handle_disconnect(self, client_session: Any, handler: Any, waiter: Any) -> None:
        if client_session.attributes.get(_OWNER) is not handler:
            await self._stop_handler(handler)
            return
        await super()._handle_disconnect(client_session, handler, waiter)


class _ExpectedAckTimeouts(logging.Filter):
    """Drops amqtt's log records about PUBACK timeouts, which are routine with late-acking
    clients and are handled by :class:`UnackedRedelivery`."""

    _MESSAGES = ("Timeout waiting for PUBACK", "Received PUBACK for unknown pending message")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage().startswith(self._MESSAGES):
            return False
        error = record.exc_info[1] if record.exc_info else None
        return not (isinstance(error, TimeoutError) and str(error).startswith(self._MESSAGES))


_FILTER = _ExpectedAckTimeouts()
_FILTERED_LOGGERS = ("amqtt.mqtt.protocol.handler", "amqtt.broker", "asyncio")
_QUIETED_LOGGERS = ("amqtt", "transitions")


def _configure_logging() -> None:
    for name in _QUIETED_LOGGERS:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.WARNING:
            logger.setLevel(logging.WARNING)
    for name in _FILTERED_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


LISTENER = "default"


def _broker_config() -> dict[str, Any]:
    """amqtt 0.12 configuration: one "external" listener, our two plugins only.

    With an external listener amqtt opens no socket; :class:`EmbeddedBroker` owns it and hands
    each accepted connection over (``Broker.external_connected``). So a taken port is a plain
    ``OSError`` rather than an error logged by amqtt, and port 0 needs no amqtt internals.
    Listing plugins replaces amqtt's defaults (event and packet loggers, ``$SYS`` publisher),
    which are not wanted here. No ``session_expiry_interval``: sessions live as long as the
    process.
    """
    return {
        "listeners": {LISTENER: {"type": "external", "bind": f"{HOST}:0"}},
        "plugins": {
            f"{__name__}.{OpenAccessAuth.__name__}": {},
            f"{__name__}.{UnackedRedelivery.__name__}": {},
        },
    }


class EmbeddedBroker:
    """An in-process MQTT 3.1.1 broker on 127.0.0.1, for demo mode (open access, see module doc).

    ``port=0`` picks a free port; :attr:`port` and :attr:`url` give the actual one once started.
    Use as ``async with EmbeddedBroker() as broker: ...`` or call :meth:`start` / :meth:`stop`.
    """

    def __init__(self, port: int = 0) -> None:
        if not 0 <= port <= 65_535:
            raise ValueError(f"port {port} out of range")
        self._requested_port = port
        self._broker: Any = None
        self._server: asyncio.Server | None = None
        self._port: int | None = None
        self._connections: set[asyncio.StreamWriter] = set()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the embedded broker is not running")
        return self._port

    @property
    def url(self) -> str:
        return f"mqtt://{HOST}:{self.port}"

    async def start(self) -> None:
        """Start the broker and listen; ``OSError`` if the port cannot be bound (e.g. taken)."""
        if self._broker is not None:
            raise RuntimeError("the embedded broker is already running")
        _configure_logging()
        broker = _Broker(_broker_config())
        await broker.start()

        connections = self._connections

        async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            connections.add(writer)
            try:
                adapters = StreamReaderAdapter(reader), StreamWriterAdapter(writer)
                await broker.external_connected(*adapters, listener_name=LISTENER)
            finally:
                connections.discard(writer)

        try:
            server = await asyncio.start_server(
                connected, HOST, self._requested_port, reuse_address=True
            )
        except OSError:
            await broker.shutdown()
            raise
        self._broker, self._server = broker, server
        self._port = int(server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop listening and drop all clients, as a crashed broker would; sessions are lost.

        Connections are cut before amqtt shuts down: amqtt stops a connection by cancelling
        its reader task, and on Python 3.11 ``asyncio.wait_for`` swallows that cancellation
        when a packet arrives at the same moment, leaving the shutdown waiting forever for a
        busy client. At end of stream every reader finishes by itself.
        """
        broker, server = self._broker, self._server
        self._broker = self._server = self._port = None
        if server is not None:
            server.close()
        for writer in list(self._connections):
            writer.transport.abort()
        if broker is not None:
            await broker.shutdown()
        if server is not None:
            await server.wait_closed()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
