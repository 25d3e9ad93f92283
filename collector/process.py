"""The MQTT collector in a child process: the service process keeps only the pipeline.

:class:`CollectorProcess` has the surface of :class:`~collector.mqtt.MqttCollector` that the
service uses, but runs the collector in ``python -m collector.child`` (see that module for the
wire format), so the MQTT protocol, decoding and validation use a second core. The delivery
guarantee is unchanged: a message's PUBACK leaves the child only after the parent's writer
called the envelope's ``ack``, so a crash of either process loses nothing (the broker
redelivers what was not acknowledged to the next child, which resumes the session under the
same client id).

A child that exits unexpectedly is restarted with capped backoff; envelopes of the dead child
still queued for the writer belong to an older *generation*, and their acknowledgements are
ignored (those messages are redelivered; storing them again is idempotent: same series and
time).
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import random
from array import array
from collections.abc import Callable
from functools import partial

import structlog

from collector.child import (
    ACK_FORMAT,
    ACKS,
    COUNTS,
    ENVELOPE,
    INIT,
    STATUS,
    STOP_INTAKE,
    BatchDecoder,
    Init,
    frame,
    read_frame,
    spawn,
)
from collector.mqtt import ConnectionStatus
from collector.rejection import Rejection, RejectionCounter, RejectReason
from collector.settings import MqttSettings
from stream import metrics
from stream.envelope import Envelope
from stream.plant import PlantConfig

log = structlog.get_logger(__name__)


class CollectorProcess(ConnectionStatus):
    """Receives MQTT in a child process and puts its envelopes on ``outbox``.

    ``run()`` starts (and restarts) the child until cancelled; cancelling it closes the
    child's stdin, which stops the child, and kills it after ``stop_timeout_s``.
    ``connected`` and ``detail`` describe the broker connection (or the dead child) for
    health checks; ``rejections`` counts what the child refused.
    """

    def __init__(
        self,
        settings: MqttSettings,
        config: PlantConfig,
        outbox: asyncio.Queue[Envelope],
        *,
        rejections: RejectionCounter | None = None,
        log_setup: Callable[[], object] | None = None,
        stop_timeout_s: float = 10.0,
    ) -> None:
        """``log_setup`` configures logging in the child like the parent's; it is pickled by
        reference (a module-level function or a ``functools.partial`` of one)."""
        self._settings = settings
        self._config = config
        self._outbox = outbox
        self._rejections = rejections or RejectionCounter()
        self._log_setup = log_setup
        self._stop_timeout_s = stop_timeout_s
        super().__init__()
        self._intake_open = True
        self._proc: asyncio.subprocess.Process | None = None
        self._generation = 0  # of the running child; acks of older ones are dropped
        self._pending_acks: list[int] = []
        self._acks_scheduled = False
        self._failing = False

    @property
    def rejections(self) -> RejectionCounter:
        return self._rejections

    @property
    def pid(self) -> int | None:
        """The process id of the running child, if any."""
        proc = self._proc
        return proc.pid if proc is not None and proc.returncode is None else None

    def stop_intake(self) -> None:
        """Stop handing messages on (graceful shutdown). Later messages are not acknowledged,
        so the broker redelivers them when we come back; acknowledgements still go out."""
        self._intake_open = False
        self._send(frame(STOP_INTAKE))

    async def run(self) -> None:
        s = self._settings
        delay = s.reconnect_min_s
        while True:
            proc = await self._start()
            try:
                code = await self._serve(proc, self._generation)
                worked = self.connected
            finally:
                await self._stop(proc)
            if worked:
                delay = s.reconnect_min_s  # it had been connected: restart promptly
            self._set_connected(False, f"collector process exited (code {code}), restarting")
            if not self._failing:
                log.error("collector process exited, restarting it", code=code, pid=proc.pid)
                self._failing = True
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))  # noqa: S311 (jitter)
            delay = min(delay * 2, s.reconnect_max_s)

    async def _start(self) -> asyncio.subprocess.Process:
        init = Init(self._settings, self._config, self._log_setup, self._intake_open)
        first = frame(INIT, pickle.dumps(init, protocol=5))  # fails before a child exists
        proc = await spawn()
        assert proc.stdin is not None
        proc.stdin.write(first)
        self._proc = proc
        log.debug("collector process started", pid=proc.pid)
        return proc

    async def _serve(self, proc: asyncio.subprocess.Process, generation: int) -> int:
        """Handle the child's frames until it exits; its exit code."""
        assert proc.stdout is not None
        stdout = proc.stdout
        decoder = BatchDecoder()
        ack = self._ack
        outbox = self._outbox
        while (received := await read_frame(stdout)) is not None:
            kind, payload = received
            if kind == ENVELOPE:
                seq, readings = decoder.decode(payload)  # always: it keeps the string table
                if self._intake_open:
                    await outbox.put(Envelope(readings, partial(ack, generation, seq)))
                    metrics.QUEUE_DEPTH.set(outbox.qsize())
            elif kind == COUNTS:
                self._count(payload)
            elif kind == STATUS:
                connected, detail = pickle.loads(payload)  # noqa: S301 - our own child
                self._set_connected(connected, detail)
        return await proc.wait()

    def _count(self, payload: bytes) -> None:
        received, accepted, rejected = pickle.loads(payload)  # noqa: S301 - our own child
        metrics.MESSAGES_RECEIVED.inc(received)
        metrics.READINGS_ACCEPTED.inc(accepted)
        for reason, detail, index, topic in rejected:
            self._rejections.record(Rejection(RejectReason(reason), detail, index), topic)

    def _set_connected(self, connected: bool, detail: str) -> None:
        if connected and self._failing:
            log.info("collector process recovered", pid=self.pid)
            self._failing = False
        super()._set_connected(connected, detail)

    def _ack(self, generation: int, seq: int) -> None:
        """An envelope's ``ack``: queued, and sent with the others of this loop iteration."""
        if generation != self._generation:
            return  # its child is gone; the broker redelivers the message
        self._pending_acks.append(seq)
        if not self._acks_scheduled:
            self._acks_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_acks)

    def _flush_acks(self) -> None:
        self._acks_scheduled = False
        if self._pending_acks:
            self._send(frame(ACKS, array(ACK_FORMAT, self._pending_acks).tobytes()))
            self._pending_acks.clear()

    def _send(self, data: bytes) -> None:
        proc = self._proc
        if proc is not None and proc.stdin is not None and not proc.stdin.is_closing():
            proc.stdin.write(data)  # a dead child's pipe drops it; nothing to do then

    async def _stop(self, proc: asyncio.subprocess.Process) -> None:
        """Close the child's stdin (after the acknowledgements due), so it disconnects and
        exits; kill it if it has not after ``stop_timeout_s``. Later acks are ignored."""
        self._flush_acks()
        self._generation += 1
        self._pending_acks.clear()
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), self._stop_timeout_s)
        except TimeoutError:
            log.warning("collector process did not stop, killing it", pid=proc.pid)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        finally:
            self._proc = None
            if self.connected:  # its last word may be unread: the connection is gone now
                self._set_connected(False, "collector process stopped")
