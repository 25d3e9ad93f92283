"""The batching storage writer: acknowledges a source message only after its readings are stored.

Envelopes are taken from a bounded queue and written in batches (up to ``batch_size`` readings,
waiting at most ``linger_s`` for a batch to fill). The deriving stages (compliance, detection,
PEMS) compute from the batch in memory; the readings and everything derived from them go to
the store in one write; then ``after_store`` (the alerts) is told, and every envelope of the
batch is acknowledged.

The store write of one batch overlaps the computing of the next (measured: a third of a
batch's time was spent waiting for InfluxDB's answer, with the process idle). Writes stay one
at a time and in batch order, and a stage that reads the store sees every batch computed before
its own: give it the store wrapped in :class:`ReadAfterWrite`.

While the store is unavailable the writer retries the same batch with capped exponential
backoff and acknowledges nothing, so the queue fills, the collector stops taking messages and
the broker keeps them: backpressure instead of loss.

A batch the store refuses permanently (e.g. a field type conflict) is split in halves until the
offending points are isolated; those go to a dead-letter file and are counted, the rest is
stored. Points are keyed by series and timestamp, so rewriting a half is harmless.

With a :class:`~stream.spool.Spool` (store-and-forward) an outage costs no backpressure: when a
write fails retryably, or older batches are still spooled (order), the batch's points (readings,
then each stage's derived points) are appended to the on-disk spool and the envelopes are
acknowledged after that commit. A drain task writes the spooled batches to the store oldest
first, deleting each only after the store accepted it; once the spool is empty, writes go
straight to the store again. Only when the spool is full (its bound or the disk) does the writer
fall back to holding acknowledgements and retrying, so the broker keeps the messages.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter, time_ns
from typing import TypeVar

import structlog

from stream import metrics
from stream.envelope import Envelope
from stream.model import Reading, datetime_from_ns
from stream.schema import reading_to_point
from stream.spool import Spool, SpoolError
from stream.storage.base import LastValue, Point, SeriesQuery, SeriesRow, Store, StoreError
from stream.storage.lineprotocol import check_point
from stream.storage.wrapper import StoreWrapper

log = structlog.get_logger(__name__)

Deriver = Callable[[Sequence[Reading]], Awaitable[Sequence[Point]]]
"""A stage computing points from newly stored readings (e.g. ``LiveCompliance.add``)."""
_T = TypeVar("_T")
AfterStore = Callable[[Sequence[Reading], Sequence[Point]], Awaitable[None]]
"""Told of each stored batch: its readings and the points the stages derived from them."""


@dataclass(slots=True)
class _Computed:
    """A batch whose points are ready to be written."""

    batch: list[Envelope]
    readings: list[Reading]
    points: list[Point]  # the readings' points, then the derived ones
    derived: list[Point]


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

    ``run()`` loops until cancelled; on cancellation nothing un-stored (or un-spooled) is
    acknowledged. ``wait_idle()`` returns once what is queued is stored or spooled and
    acknowledged (graceful shutdown). With ``spool``, ``run()`` also drains it to the store;
    the writer does not close the spool.
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
        after_store: AfterStore | None = None,
        spool: Spool | None = None,
    ) -> None:
        self._store = store
        self._inbox = inbox
        self._dead_letter = dead_letter
        self._batch_size = batch_size
        self._linger_s = linger_s
        self._retry_min_s = retry_min_s
        self._retry_max_s = retry_max_s
        self._derive = dict(derive or {})
        self._after_store = after_store  # told of each batch once it is durable (alerts)
        self._derive_failing: set[str] = set()
        self._failing = False
        self.stored = 0
        self.last_error: str | None = None
        self._idle = False
        self._changed = asyncio.Event()
        self._spool = spool
        self._spool_full: str | None = None  # why the last append was refused, while it is
        self._spooled_work = asyncio.Event()  # set after an append: the drain has work
        self.spooled = 0  # points appended to the spool
        self.drained = 0  # spooled points written to the store
        self._writing: asyncio.Task[None] | None = None  # the batch being written
        if spool is not None:
            # Functions, not values: the age grows between appends (one spool per process).
            metrics.SPOOL_BYTES.set_function(lambda: spool.size_bytes)
            metrics.SPOOL_BATCHES.set_function(lambda: spool.count)
            metrics.SPOOL_OLDEST_AGE.set_function(spool.oldest_age_s)
            metrics.SPOOL_FULL.set_function(lambda: self._spool_full is not None)

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
        """False while store writes are failing and being retried, or the spool is full."""
        return not self._failing and self._spool_full is None

    @property
    def spool(self) -> Spool | None:
        return self._spool

    @property
    def spool_ok(self) -> bool:
        """True while nothing waits in the spool (or there is no spool)."""
        return self._spool is None or (self._spool.count == 0 and self._spool_full is None)

    @property
    def spool_detail(self) -> str:
        """The spool's state for the health output, e.g. ``3 batches (1.2 MiB of 1024 MiB)
        waiting for the store, oldest 40 s``."""
        spool = self._spool
        if spool is None:
            return "no spool"
        bound = f"{spool.size_bytes / 2**20:.1f} MiB of {spool.max_bytes / 2**20:.0f} MiB"
        state = (
            "empty"
            if spool.count == 0
            else f"{spool.count} batches ({bound}) waiting for the store, "
            f"oldest {spool.oldest_age_s():.0f} s"
        )
        if self._spool_full is not None:
            return (
                "FULL, not acknowledging (the broker keeps the messages): "
                f"{self._spool_full}; {state}"
            )
        return state

    async def run(self) -> None:
        drain = None if self._spool is None else asyncio.create_task(self._drain(self._spool))
        try:
            while True:
                if self._inbox.empty():
                    await self.flushed()  # a lone batch is written now, not with the next
                    if self._inbox.empty():
                        self._idle = True
                        self._pulse()
                first = await self._inbox.get()
                self._idle = False
                batch = await self._fill([first])
                computed = await self._compute(batch)
                await self.flushed()  # one write at a time, in batch order
                self._writing = asyncio.create_task(self._finish(computed), name="store write")
                await asyncio.sleep(0)  # let the write start: encode and send the request
        finally:
            # Cancelled: what is being written is not acknowledged (the broker redelivers).
            for task in (drain, self._writing):
                if task is not None:
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)

    async def flushed(self) -> None:
        """Return once the batch being written (if any) is stored and acknowledged."""
        writing = self._writing
        if writing is not None:
            # Shielded: a reader giving up must not cancel the write.
            await asyncio.shield(writing)

    async def wait_idle(self) -> None:
        """Return once everything queued so far is stored (or spooled) and acknowledged
        (``run`` must be running). Used at shutdown after the source stopped adding to the
        queue."""
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

    async def _compute(self, batch: list[Envelope]) -> _Computed:
        readings = [r for env in batch for r in env.readings]
        points = [reading_to_point(r) for r in readings]
        derived: list[Point] = []
        if points:
            # The stages compute from the readings in memory; their results go to the store
            # in the same write as the readings (one round trip per batch, not one per stage).
            for stage, deriver in self._derive.items():
                await asyncio.sleep(0)  # between stages, the write in flight may progress
                derived += await self._guarded(stage, deriver(readings), ())
        return _Computed(batch, readings, [*points, *derived], derived)

    async def _finish(self, computed: _Computed) -> None:
        """Store a computed batch, tell ``after_store``, then acknowledge its envelopes."""
        n = len(computed.readings)
        if n:
            await self._put(computed.points)
            if self._after_store is not None:
                await self._guarded(
                    "after_store", self._after_store(computed.readings, computed.derived), None
                )
        for env in computed.batch:
            env.ack()
        self.stored += n
        metrics.READINGS_STORED.inc(n)
        self._pulse()

    async def _guarded(self, stage: str, call: Awaitable[_T], failed: _T) -> _T:
        """The result of a stage (compliance, detection, PEMS: points stored with the
        readings before the ack; ``after_store``: the alerts), ``failed`` if it raises.

        A failure here never costs readings: they are stored all the same; it is logged once
        per stage (and its recovery once), and the other stages go on.
        """
        try:
            result = await call
        except Exception as err:  # a bug or a store error must not stop ingestion
            metrics.DERIVE_ERRORS.labels(stage=stage).inc()
            if stage not in self._derive_failing:
                log.exception(
                    "deriving results from stored readings failed", stage=stage, error=str(err)
                )
                self._derive_failing.add(stage)
            return failed
        if stage in self._derive_failing:
            log.info("deriving results recovered", stage=stage)
            self._derive_failing.discard(stage)
        return result

    async def _put(self, points: Sequence[Point]) -> None:
        """Make ``points`` durable: in the store, or (store failing, or older batches spooled)
        in the spool. Without a spool, or while the spool is full, retry until it works."""
        spool = self._spool
        if spool is None:
            await self._write(points)
            return
        storable: list[Point] | None = None
        delay = self._retry_min_s
        while True:
            if spool.count == 0 and await self._try_write(points, isolate=self._put):
                self._spool_recovered()
                return
            if storable is None:
                storable = self._storable(points)
            if not storable:
                return
            try:
                await asyncio.to_thread(spool.append, storable)
            except SpoolError as err:
                self._spool_refused(str(err))
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max_s)
                continue
            self._spool_recovered()
            self.spooled += len(storable)
            metrics.SPOOLED_POINTS.inc(len(storable))
            self._spooled_work.set()
            self._pulse()
            return

    def _storable(self, points: Sequence[Point]) -> list[Point]:
        """The points a store can take; the others are dead-lettered now, as the store would
        refuse them for good (both stores refuse exactly what ``check_point`` refuses)."""
        ok: list[Point] = []
        for p in points:
            try:
                check_point(p)
            except ValueError as err:
                self._refused(p, f"refused by line protocol: {err}")
                continue
            ok.append(p)
        return ok

    def _spool_refused(self, reason: str) -> None:
        if self._spool_full is None:
            log.error(
                "SPOOL FULL: not acknowledging messages any more; the broker keeps them until "
                "the store takes the spooled data or space is freed",
                reason=reason,
                spool=str(self._spool.path) if self._spool else None,
            )
        self._spool_full = reason
        self._pulse()

    def _spool_recovered(self) -> None:
        if self._spool_full is not None:
            log.warning("spool accepts data again; acknowledging resumes")
            self._spool_full = None
            self._pulse()

    async def _drain(self, spool: Spool) -> None:
        """Write spooled batches to the store, oldest first; delete each once stored."""
        delay = self._retry_min_s
        while True:
            if spool.count == 0:
                self._spooled_work.clear()
                await self._spooled_work.wait()
                continue
            batch = await asyncio.to_thread(spool.peek)
            if batch is None:
                continue
            # A point refused for good is isolated in place (direct, retried writes), so the
            # rest of the spool stays behind it: order is kept.
            if not await self._try_write(batch.points, isolate=self._write):
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max_s)
                continue
            delay = self._retry_min_s
            await asyncio.to_thread(spool.delete, batch.id)
            self.drained += len(batch.points)
            metrics.DRAINED_POINTS.inc(len(batch.points))
            if spool.count == 0:
                log.info("spool drained", store=self._store.name)
            self._pulse()

    async def _try_write(
        self,
        points: Sequence[Point],
        *,
        isolate: Callable[[Sequence[Point]], Awaitable[None]],
    ) -> bool:
        """One store write: True when the points are stored (or, refused for good, isolated
        with ``isolate`` writing the halves); False on a retryable failure."""
        started = perf_counter()
        try:
            await self._store.write(points)
        except StoreError as err:
            metrics.STORE_ERRORS.labels(retryable=str(err.retryable).lower()).inc()
            if not err.retryable:
                await self._isolate(points, str(err), isolate)
                return True
            self._store_failing(err, len(points))
            return False
        metrics.WRITE_SECONDS.observe(perf_counter() - started)
        self._store_recovered()
        return True

    def _store_failing(self, err: StoreError, points: int) -> None:
        if not self._failing:
            log.error(
                "store write failed, retrying",
                store=self._store.name,
                error=str(err),
                points=points,
                spooling=self._spool is not None,
            )
            self._failing = True
        self.last_error = str(err)
        self._pulse()

    def _store_recovered(self) -> None:
        if self._failing:
            log.info("store write recovered", store=self._store.name)
            self._failing = False
            self.last_error = None
            self._pulse()

    async def _write(self, points: Sequence[Point]) -> None:
        """Write to the store, retrying with capped backoff until it is stored or isolated."""
        delay = self._retry_min_s
        while not await self._try_write(points, isolate=self._write):
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._retry_max_s)

    async def _isolate(
        self,
        points: Sequence[Point],
        reason: str,
        write: Callable[[Sequence[Point]], Awaitable[None]],
    ) -> None:
        """Split a refused batch in halves (each written with ``write``) down to the single
        points the store refuses; those are dead-lettered."""
        if len(points) == 1:
            self._refused(points[0], reason)
            return
        mid = len(points) // 2
        await write(points[:mid])
        await write(points[mid:])

    def _refused(self, point: Point, reason: str) -> None:
        log.warning(
            "store refused a point; dead-lettered",
            reason=reason,
            measurement=point.measurement,
            tags=dict(point.tags),
        )
        self._dead_letter(point, reason)
        metrics.STORE_REFUSED.inc()


class ReadAfterWrite(StoreWrapper):
    """The store as the deriving stages must see it: each read first awaits ``flushed``
    (:meth:`BatchWriter.flushed`: the batch being written), so a stage computing batch N+1
    reads batch N's points (e.g. live compliance reloading a reopened hour, or the month's
    stored short-term averages). Writes and the lifecycle go straight to the store."""

    def __init__(self, store: Store, flushed: Callable[[], Awaitable[None]]) -> None:
        super().__init__(store)
        self._flushed = flushed

    async def series(self, query: SeriesQuery) -> list[SeriesRow]:
        await self._flushed()
        return await super().series(query)

    async def last(
        self, measurement: str, where: Mapping[str, str] | None = None
    ) -> list[LastValue]:
        await self._flushed()
        return await super().last(measurement, where)

    async def scan(
        self, measurement: str, start_ns: int, end_ns: int, where: Mapping[str, str] | None = None
    ) -> list[LastValue]:
        await self._flushed()
        return await super().scan(measurement, start_ns, end_ns, where)

    async def count(
        self,
        measurement: str,
        field: str,
        start_ns: int,
        end_ns: int,
        where: Mapping[str, str] | None = None,
    ) -> int:
        await self._flushed()
        return await super().count(measurement, field, start_ns, end_ns, where)
