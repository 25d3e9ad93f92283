"""The batching storage writer: acknowledges a source message only after its readings are stored.

Envelopes are taken from a bounded queue and written in batches (up to ``batch_size`` readings,
waiting at most ``linger_s`` for a batch to fill). Then every envelope of the batch is
acknowledged. While the store is unavailable the writer retries the same batch with capped
exponential backoff and acknowledges nothing, so the queue fills, the collector stops taking
messages and the broker keeps them: backpressure instead of loss.

A batch the store refuses permanently (e.g. a field type conflict) is split in halves until the
offending points are isolated; those go to a dead-letter file and are counted, the rest is
stored. Points are keyed by series and timestamp, so rewriting a half is harmless.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from time import perf_counter, time_ns

import structlog

from stream import metrics
from stream.envelope import Envelope
from stream.model import Reading, datetime_from_ns
from stream.schema import reading_to_point
from stream.storage.base import Point, Store, StoreError

log = structlog.get_logger(__name__)

Deriver = Callable[[Sequence[Reading]], Awaitable[Sequence[Point]]]
"""A stage computing points from newly stored readings (e.g. ``LiveCompliance.add``)."""


class DeadLetterFile:
    """Append-only JSON-lines file of points the store refused, with the reason."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, point: Point, reason: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "time": datetime_from_ns(point.ts_ns).isoformat(),
            "ts_ns": point.ts_ns,
            "measurement": point.measurement,
            "tags": dict(point.tags),
            "fields": dict(point.fields),
            "reason": reason,
            "dead_lettered_at": datetime_from_ns(time_ns()).isoformat(),
        }
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")


class BatchWriter:
    """Consumes :class:`Envelope` s from ``inbox`` and writes them to ``store``.

    ``run()`` loops until cancelled; on cancellation nothing un-stored is acknowledged.
    ``drain()`` writes what is queued and returns (graceful shutdown).
    """

    def __init__(
        self,
        store: Store,
        inbox: asyncio.Queue[Envelope],
        *,
        dead_letter: Callable[[Point, str], None],
        batch_size: int = 5000,
        linger_s: float = 0.1,
        retry_min_s: float = 0.2,
        retry_max_s: float = 30.0,
        derive: Mapping[str, Deriver] | None = None,
    ) -> None:
        self._store = store
        self._inbox = inbox
        self._dead_letter = dead_letter
        self._batch_size = batch_size
        self._linger_s = linger_s
        self._retry_min_s = retry_min_s
        self._retry_max_s = retry_max_s
        self._derive = dict(derive or {})
        self._derive_failing: set[str] = set()
        self._failing = False
        self.stored = 0
        self.last_error: str | None = None
        self._idle = False
        self._changed = asyncio.Event()

    def _pulse(self) -> None:
        """Wake everyone in :meth:`wait_for` (state changed)."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` holds; it is re-checked whenever the writer's state
        changes (a batch stored, a write failing or recovering, the queue running empty)."""
        while not predicate():
            await self._changed.wait()

    @property
    def queued(self) -> int:
        return self._inbox.qsize()

    @property
    def healthy(self) -> bool:
        """False while writes are failing and being retried."""
        return not self._failing

    async def run(self) -> None:
        while True:
            if self._inbox.empty():
                self._idle = True
                self._pulse()
            first = await self._inbox.get()
            self._idle = False
            batch = await self._fill([first])
            await self._commit(batch)

    async def wait_idle(self) -> None:
        """Return once everything queued so far is stored and acknowledged (``run`` must be
        running). Used at shutdown after the source stopped adding to the queue."""
        await self.wait_for(lambda: self._idle and self._inbox.empty())

    async def _fill(self, batch: list[Envelope]) -> list[Envelope]:
        n = len(batch[0].readings)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._linger_s
        while n < self._batch_size:
            if not self._inbox.empty():
                env = self._inbox.get_nowait()
            else:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    env = await asyncio.wait_for(self._inbox.get(), remaining)
                except TimeoutError:
                    break
            batch.append(env)
            n += len(env.readings)
        metrics.QUEUE_DEPTH.set(self._inbox.qsize())
        return batch

    async def _commit(self, batch: list[Envelope]) -> None:
        readings = [r for env in batch for r in env.readings]
        points = [reading_to_point(r) for r in readings]
        if points:
            await self._write(points)
            for stage, deriver in self._derive.items():
                await self._write_derived(stage, deriver, readings)
        for env in batch:
            env.ack()
        self.stored += len(points)
        metrics.READINGS_STORED.inc(len(points))
        self._pulse()

    async def _write_derived(
        self, stage: str, deriver: Deriver, readings: Sequence[Reading]
    ) -> None:
        """Results computed from the stored readings (compliance, detection, PEMS), stored
        before the ack.

        A failure here never costs readings: they are stored already; it is logged once per
        stage (and its recovery once), and the other stages go on.
        """
        try:
            derived = await deriver(readings)
        except Exception as err:  # a bug or a store error must not stop ingestion
            metrics.DERIVE_ERRORS.labels(stage=stage).inc()
            if stage not in self._derive_failing:
                log.exception(
                    "deriving results from stored readings failed", stage=stage, error=str(err)
                )
                self._derive_failing.add(stage)
            return
        if stage in self._derive_failing:
            log.info("deriving results recovered", stage=stage)
            self._derive_failing.discard(stage)
        if derived:
            await self._write(derived)

    async def _write(self, points: Sequence[Point]) -> None:
        delay = self._retry_min_s
        while True:
            started = perf_counter()
            try:
                await self._store.write(points)
            except StoreError as err:
                metrics.STORE_ERRORS.labels(retryable=str(err.retryable).lower()).inc()
                if not err.retryable:
                    await self._isolate(points, str(err))
                    return
                if not self._failing:
                    log.error(
                        "store write failed, retrying",
                        store=self._store.name,
                        error=str(err),
                        points=len(points),
                    )
                    self._failing = True
                self.last_error = str(err)
                self._pulse()
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max_s)
                continue
            metrics.WRITE_SECONDS.observe(perf_counter() - started)
            if self._failing:
                log.info("store write recovered", store=self._store.name)
                self._failing = False
                self.last_error = None
            return

    async def _isolate(self, points: Sequence[Point], reason: str) -> None:
        if len(points) == 1:
            log.warning(
                "store refused a point; dead-lettered",
                reason=reason,
                measurement=points[0].measurement,
                tags=dict(points[0].tags),
            )
            self._dead_letter(points[0], reason)
            metrics.STORE_REFUSED.inc()
            return
        mid = len(points) // 2
        await self._write(points[:mid])
        await self._write(points[mid:])
