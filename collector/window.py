"""Our own receive maximum: stop reading the socket while the window is full.

MQTT 5 says a broker must not send more than the client's receive maximum of QoS 1/2 messages
that are not yet acknowledged, and Mosquitto keeps to it while nothing is acknowledged. Once
acknowledgements flow, Mosquitto 2.0 was measured to exceed it many times over (receive
maximum 100, each message acknowledged 50 ms after it arrived: 14 700 outstanding; a bench
backlog: 158 000), and MQTT 3.1.1 has no receive maximum at all (only the broker's own
``max_inflight_messages``), so messages piled up in the collector: its memory was bounded by
the backlog, not by the window. ``ReceiveWindow`` holds any broker to the window with TCP's
own backpressure: it stops reading the socket when ``limit`` messages are unacknowledged and
reads on as acknowledgements free the window.

Two exceptions, both because the broker's answers to our own packets come over the same
socket: ``reading()`` reads on while we await one (the PUBACK of a dead letter), and when no
acknowledgement has come for ``stall_s`` (storage down, say) reading goes on until the next
one, so that paho sees the answers to its keep-alive pings and keeps a sound connection (an
MQTT 5 broker that is sent no acknowledgements sends nothing beyond the window anyway).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import aiomqtt


class ReceiveWindow:
    """Counts a connection's unacknowledged QoS > 0 messages and reads the socket only while
    fewer than ``limit`` are.

    Attached to a client before it connects, it takes the socket's reader over from aiomqtt
    as soon as the socket opens: the same reading (paho's ``loop_read`` while the read buffer
    holds bytes), except that it stops after the message that fills the window. It counts
    each message paho delivers; ``acknowledged(n)`` frees the window. ``session_present`` is
    the broker's word in its CONNACK that it kept our session (and so our subscription).
    """

    def __init__(self, client: aiomqtt.Client, limit: int, *, stall_s: float) -> None:
        self._client = client
        self._paho: Any = client._client
        self._limit = limit
        self._stall_s = stall_s
        self._loop = asyncio.get_running_loop()
        self._fd = -1
        self._paused = False
        self._stalled = False  # no acknowledgement for stall_s: read on regardless
        self._last_ack = self._loop.time()
        self._timer: asyncio.TimerHandle | None = None
        self._holds = 0  # reading() blocks in progress
        self.unacknowledged = 0
        self.session_present = False
        self._hook()

    def _hook(self) -> None:
        paho = self._paho
        deliver, opened, connected = paho.on_message, paho.on_socket_open, paho.on_connect

        def on_message(paho_client: Any, userdata: Any, message: Any) -> None:
            deliver(paho_client, userdata, message)  # aiomqtt queues it
            if message.qos:
                self._received()

        def on_socket_open(paho_client: Any, userdata: Any, sock: Any) -> None:
            # On the thread that connects. aiomqtt schedules its reader; ours replaces it
            # before the loop runs it (callbacks run in the order scheduled).
            opened(paho_client, userdata, sock)
            self._loop.call_soon_threadsafe(self._install, sock.fileno())

        def on_connect(paho_client: Any, userdata: Any, flags: Any, *args: Any) -> None:
            self.session_present = bool(flags.session_present)
            connected(paho_client, userdata, flags, *args)

        paho.on_message = on_message
        paho.on_socket_open = on_socket_open
        paho.on_connect = on_connect

    def _install(self, fd: int) -> None:
        self._fd = fd
        self._loop.remove_reader(fd)
        self._loop.add_reader(fd, self._read)

    def close(self) -> None:
        """The connection is over: no stall check is due any more."""
        self._cancel_stall_check()

    def _cancel_stall_check(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _received(self) -> None:
        self.unacknowledged += 1
        if self._must_pause():
            self._pause()

    def acknowledged(self, count: int) -> None:
        self.unacknowledged = max(0, self.unacknowledged - count)
        self._last_ack = self._loop.time()
        self._stalled = False
        if self._paused and self.unacknowledged < self._limit:
            self._resume()

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Read on while the window is full: for awaiting the broker's answer to a packet of
        ours (the PUBACK of a dead letter), which comes over the same socket."""
        self._holds += 1
        if self._paused:
            self._resume()
        try:
            yield
        finally:
            self._holds -= 1
            if self._must_pause():
                self._pause()

    def _must_pause(self) -> bool:
        return (
            self.unacknowledged >= self._limit
            and self._fd >= 0
            and not self._paused
            and not self._stalled
            and not self._holds
        )

    def _read(self) -> None:
        # aiomqtt's reader, stopping when the window is full. An exception (a broken pipe)
        # ends the connection the way aiomqtt's reader ends it.
        paho = self._paho
        try:
            while not self._paused:
                paho.loop_read()
                sock = paho._sock
                pending = getattr(sock, "pending", None)
                if pending is None or pending() <= 0:
                    break
        except Exception as exc:  # handed to aiomqtt, which raises it
            disconnected: asyncio.Future[None] = self._client._disconnected
            if not disconnected.done():
                disconnected.set_exception(exc)

    def _open(self) -> bool:
        sock = self._paho.socket()
        return sock is not None and sock.fileno() == self._fd >= 0

    def _pause(self) -> None:
        self._paused = True
        self._loop.remove_reader(self._fd)
        self._timer = self._loop.call_later(self._stall_s, self._check_stall)

    def _resume(self) -> None:
        self._paused = False
        self._cancel_stall_check()
        if self._open():
            self._loop.add_reader(self._fd, self._read)
            # Bytes already in the read buffer raise no readiness event.
            self._loop.call_soon(self._read)

    def _check_stall(self) -> None:
        self._timer = None
        if not self._paused:
            return
        waited = self._loop.time() - self._last_ack
        if waited < self._stall_s:
            self._timer = self._loop.call_later(self._stall_s - waited, self._check_stall)
            return
        self._stalled = True
        self._resume()
