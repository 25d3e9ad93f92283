"""The collector child process (``python -m collector.child``) and the wire format it speaks.

:class:`collector.process.CollectorProcess` starts this module so that the MQTT protocol,
decoding, validation and dead-lettering run on a second core. The child runs the ordinary
:class:`~collector.mqtt.MqttCollector`; only its outbox differs: each envelope becomes a frame
on stdout, and its acknowledgement waits, keyed by a sequence number, until the parent says
the readings are stored.

Frames, both ways: ``!IB`` header (payload length, frame type), then the payload.

parent → child (stdin)
    ``INIT`` (first, once): pickled :class:`Init`, never argv or environment: it holds the
    MQTT password. ``ACKS``: native ``uint64`` sequence numbers to acknowledge.
    ``STOP_INTAKE``: hand on nothing more (graceful shutdown). End of file: stop; the child
    never outlives the parent, whose exit closes the pipe.
child → parent (stdout)
    ``ENVELOPE``: one envelope's readings (:class:`BatchEncoder`). ``STATUS``: the broker
    connection changed, pickled ``(connected, detail)``. ``COUNTS``: what the parent's
    metrics and rejection counter need, pickled ``(messages received, readings accepted,
    [(reason, detail, index, topic), ...])`` since the previous ``COUNTS``; always sent
    before the next ``ENVELOPE``, so counters are current when its readings are stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from struct import Struct
from typing import Any, Final

import structlog
from prometheus_client import Counter

from collector.decode import Decoder
from collector.mqtt import MqttCollector
from collector.rejection import Rejection, RejectionCounter
from collector.settings import MqttSettings
from stream import metrics
from stream.envelope import Envelope
from stream.model import Reading, new_reading
from stream.plant import PlantConfig

log = structlog.get_logger(__name__)

HEADER: Final = Struct("!IB")
INIT: Final = 1
ACKS: Final = 2
STOP_INTAKE: Final = 3
ENVELOPE: Final = 10
STATUS: Final = 11
COUNTS: Final = 12
ACK_FORMAT: Final = "Q"  # memoryview/array code of a sequence number (native: same machine)


def frame(kind: int, payload: bytes = b"") -> bytes:
    """One frame: header and payload."""
    return HEADER.pack(len(payload), kind) + payload


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes] | None:
    """The next frame ``(type, payload)`` from a pipe; None at its end."""
    try:
        length, kind = HEADER.unpack(await reader.readexactly(HEADER.size))
        return kind, await reader.readexactly(length)
    except asyncio.IncompleteReadError:
        return None


async def spawn() -> asyncio.subprocess.Process:
    """Start a child (``python -m collector.child``) with pipes on its stdin and stdout; it
    waits for its ``INIT`` frame."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "collector.child",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )


@dataclass(frozen=True, slots=True)
class Init:
    """What the child needs to run a collector (the ``INIT`` frame)."""

    settings: MqttSettings
    config: PlantConfig
    log_setup: Callable[[], object] | None = None
    """Called first in the child to configure logging like the parent's. Pickled by reference:
    a module-level function or a ``functools.partial`` of one."""
    intake_open: bool = True


# The hand-off is on the hot path, so the readings travel as columns: one pickle (protocol 5)
# of a tuple of lists, built with a C-level map per field; strings as codes into a table that
# grows as new strings appear (the parent interns each once). Measured per reading of a
# 5000-reading batch (timeit, this 2-core machine): these columns cost ~0.5 µs to serialise in
# the child and ~1.55 µs to load and rebuild in the parent, ~1.1 µs of which was the frozen
# dataclass ``Reading.__init__`` itself (hence ``new_reading``, half of that); pickling the
# Reading objects costs ~2.8 µs and ~3.1 µs (the dataclass __setstate__ is Python). Codes
# instead of pickled strings cost the child ~0.15 µs and save the parent ~0.1 µs over
# interning loaded strings; rows of 8-tuples are about as fast as columns but leave no cheap
# place to intern.
_FIELDS: Final = ("plant", "stack", "sensor", "ts_ns", "value", "quantity", "unit", "status")
_GETTERS: Final = tuple(attrgetter(name) for name in _FIELDS)
_STRINGS: Final = (0, 1, 2, 5, 6)  # the columns sent as string codes


class BatchEncoder:
    """Child side: readings to an ``ENVELOPE`` payload ``(seq, new strings, columns)``."""

    def __init__(self) -> None:
        self._codes: dict[str, int] = {}

    def encode(self, seq: int, readings: Sequence[Reading]) -> bytes:
        columns: list[list[Any]] = [list(map(get, readings)) for get in _GETTERS]
        codes = self._codes
        new: list[str] = []
        for i in _STRINGS:
            column = columns[i]
            try:
                columns[i] = list(map(codes.__getitem__, column))
            except KeyError:  # first sight of a string: rare, so off the fast path
                for text in dict.fromkeys(column):
                    if text not in codes:
                        codes[text] = len(codes)
                        new.append(text)
                columns[i] = list(map(codes.__getitem__, column))
        return pickle.dumps((seq, new, tuple(columns)), protocol=5)


class BatchDecoder:
    """Parent side: an ``ENVELOPE`` payload to ``(seq, readings)``; one per child process
    (the string table is the encoder's)."""

    def __init__(self) -> None:
        self._strings: list[str] = []

    def decode(self, payload: bytes) -> tuple[int, list[Reading]]:
        seq, new, packed = pickle.loads(payload)  # noqa: S301 - our own child's pipe
        strings = self._strings
        strings.extend(map(sys.intern, new))
        lookup = strings.__getitem__
        columns = list(packed)
        for i in _STRINGS:
            columns[i] = map(lookup, columns[i])
        return seq, list(map(new_reading, *columns))


def _total(counter: Counter) -> float:
    """The value of an unlabelled counter (public API: no reach into its private value)."""
    for metric in counter.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                return sample.value
    return 0.0


class _Uplink:
    """The child's stdout: frames to the parent, counter deltas before every envelope."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._received = _total(metrics.MESSAGES_RECEIVED)
        self._accepted = _total(metrics.READINGS_ACCEPTED)
        self.rejected: list[tuple[str, str, int | None, str]] = []
        self._counts_scheduled = False

    def send(self, data: bytes) -> None:
        self._writer.write(data)

    async def drain(self) -> None:
        await self._writer.drain()

    def counts_frame(self) -> bytes:
        """The ``COUNTS`` frame of what changed since the last one (empty if nothing did)."""
        received, accepted = _total(metrics.MESSAGES_RECEIVED), _total(metrics.READINGS_ACCEPTED)
        delta = (int(received - self._received), int(accepted - self._accepted), self.rejected)
        if not (delta[0] or delta[1] or delta[2]):
            return b""
        self._received, self._accepted, self.rejected = received, accepted, []
        return frame(COUNTS, pickle.dumps(delta, protocol=5))

    def schedule_counts(self) -> None:
        """Send counts soon (a message that yields no envelope must still be counted)."""
        if not self._counts_scheduled:
            self._counts_scheduled = True
            asyncio.get_running_loop().call_soon(self._send_counts)

    def _send_counts(self) -> None:
        self._counts_scheduled = False
        self.send(self.counts_frame())


class _ForwardedRejections(RejectionCounter):
    """Hands every rejection to the parent, whose counter counts and logs it (its /metrics
    and log are what users see); nothing is counted or logged here."""

    def __init__(self, uplink: _Uplink) -> None:
        super().__init__()
        self._uplink = uplink

    def record(self, rejection: Rejection, topic: str) -> None:
        self._uplink.rejected.append(
            (rejection.reason.value, rejection.detail, rejection.index, topic)
        )
        self._uplink.schedule_counts()


async def _forward(
    outbox: asyncio.Queue[Envelope], uplink: _Uplink, acks: dict[int, Callable[[], None]]
) -> None:
    """Envelopes to frames; each acknowledgement waits in ``acks`` for the parent's word."""
    encoder = BatchEncoder()
    seq = 0
    while True:
        envelopes = [await outbox.get()]
        while not outbox.empty():
            envelopes.append(outbox.get_nowait())
        chunks = [uplink.counts_frame()]  # these envelopes' messages are counted already
        for envelope in envelopes:
            seq += 1
            acks[seq] = envelope.ack
            chunks.append(frame(ENVELOPE, encoder.encode(seq, envelope.readings)))
        uplink.send(b"".join(chunks))
        await uplink.drain()  # backpressure: a slow parent stops the intake here


async def _report_connection(collector: MqttCollector, uplink: _Uplink) -> None:
    """Tell the parent each change of the broker connection (its health and gauge)."""
    connected = False
    while True:
        changed = collector.disconnected_event if connected else collector.connected_event
        await changed.wait()
        connected = collector.connected
        uplink.send(frame(STATUS, pickle.dumps((connected, collector.detail), protocol=5)))


async def _commands(
    reader: asyncio.StreamReader, collector: MqttCollector, acks: dict[int, Callable[[], None]]
) -> None:
    """Apply the parent's frames until it closes the pipe (stop, or the parent is gone)."""
    pop = acks.pop
    while (received := await read_frame(reader)) is not None:
        kind, payload = received
        if kind == ACKS:
            for seq in memoryview(payload).cast(ACK_FORMAT):
                ack = pop(seq, None)
                if ack is not None:
                    ack()
        elif kind == STOP_INTAKE:
            collector.stop_intake()


async def _serve(init: Init, stdin_fd: int, stdout_fd: int) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(stdin_fd, "rb", buffering=0)
    )
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(stdout_fd, "wb", buffering=0)
    )
    uplink = _Uplink(asyncio.StreamWriter(transport, protocol, None, loop))
    outbox: asyncio.Queue[Envelope] = asyncio.Queue(maxsize=4)
    collector = MqttCollector(
        init.settings,
        Decoder(init.config, init.settings),
        outbox,
        rejections=_ForwardedRejections(uplink),
    )
    if not init.intake_open:
        collector.stop_intake()
    acks: dict[int, Callable[[], None]] = {}
    workers = [
        asyncio.create_task(collector.run(), name="collector"),
        asyncio.create_task(_forward(outbox, uplink, acks), name="forward"),
        asyncio.create_task(_report_connection(collector, uplink), name="status"),
    ]
    commands = asyncio.create_task(_commands(reader, collector, acks), name="commands")
    try:
        # Returns when the parent closes stdin; a worker failing (e.g. the parent's end of
        # stdout closed) ends the child too, and the parent restarts it.
        done, _ = await asyncio.wait([commands, *workers], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not commands:
                task.result()
    finally:
        for task in [commands, *workers]:
            task.cancel()  # the collector disconnects cleanly: queued PUBACKs go out first
        await asyncio.gather(commands, *workers, return_exceptions=True)
        transport.abort()


def _read_exactly(fd: int, n: int) -> bytes | None:
    data = bytearray()
    while len(data) < n:
        chunk = os.read(fd, n - len(data))
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def _read_init(fd: int) -> Init | None:
    header = _read_exactly(fd, HEADER.size)
    if header is None:
        return None
    length, kind = HEADER.unpack(header)
    payload = _read_exactly(fd, length)
    if kind != INIT or payload is None:
        raise SystemExit(f"collector child: expected an INIT frame, got type {kind}")
    init = pickle.loads(payload)  # noqa: S301 - written by our parent
    if not isinstance(init, Init):
        raise SystemExit("collector child: the INIT frame holds no Init")
    return init


def main() -> None:
    """Entry point: serve the parent over stdin/stdout until it closes stdin."""
    # Private copies of the pipes; fd 1 then points at stderr so that a stray print (ours or
    # a library's) cannot corrupt the frame stream, and fd 0 at /dev/null.
    # Stopped by the parent only (end of stdin), after its writer acknowledged what it
    # stored: Ctrl-C (the whole process group) or a SIGTERM to every process of the service
    # (systemd's default) must not end the child in the middle of the parent's shutdown.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    stdin_fd, stdout_fd = os.dup(0), os.dup(1)
    os.dup2(2, 1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    init = _read_init(stdin_fd)
    if init is None:
        return  # the parent went away before saying anything
    if init.log_setup is not None:
        init.log_setup()
    # A broken stdout means the parent is gone: what was not acknowledged is redelivered.
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        asyncio.run(_serve(init, stdin_fd, stdout_fd))


if __name__ == "__main__":
    # Run as the importable module, not as __main__: the INIT frame's classes (Init) are
    # unpickled from ``collector.child``, and must be the ones this code checks against.
    from collector.child import main as _main

    _main()
