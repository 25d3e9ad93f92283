"""Feed a recording straight into the :class:`~stackwatch.pipeline.Pipeline`, on the data's time.

A developer reproducing an incident wants the pipeline of ``stackwatch run`` without the wait:
the readings go to the writer's queue in chunks (the queue is short, so memory stays bounded
whatever the length of the recording), every stage runs, and the alerts live on a
:class:`ReplayClock` that follows the stored data instead of the wall clock, so ``for``
durations, group waits, repeat intervals and "no data" behave as they would have at the time.
Nothing leaves the machine: every receiver is replaced by one that only keeps the
notifications, and the outcome lists what would have been sent.

The result keeps what a backtest needs: per sensor the times flagged anomalous (an
``anomaly_scores`` point with ``is_anomaly``, or an active ``detection_events`` point), the
detection and compliance events, and the alerts that fired.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from alerts.model import Alert, Notification, State, Transition
from alerts.notify.fanout import Fanout
from alerts.runtime import AlertRuntime
from alerts.settings import AlertsConfig, AlertsSettings
from stackwatch.pipeline import Pipeline, PipelineOptions
from stream.envelope import Envelope
from stream.model import NS_PER_S, Reading, SensorKey
from stream.plant import PlantConfig
from stream.storage.base import Point, Store

CHUNK = 1000
"""Readings per envelope: one writer batch spans about a minute of a 1 Hz plant."""


class ReplayClock:
    """The alerts' clock during a replay: the time of the newest stored reading.

    >>> clock = ReplayClock(5)
    >>> clock.advance(3), clock.advance(9), clock()
    (5, 9, 9)
    """

    def __init__(self, start_ns: int = 0) -> None:
        self.now_ns = start_ns

    def advance(self, ts_ns: int) -> int:
        """Move forward to ``ts_ns`` (never back); returns the new time."""
        self.now_ns = max(self.now_ns, ts_ns)
        return self.now_ns

    def __call__(self) -> int:
        return self.now_ns


class KeepNotifications:
    """A receiver channel that sends nothing and remembers every notification."""

    name = "replay"

    def __init__(self) -> None:
        self.sent: list[Notification] = []

    async def send(self, n: Notification) -> None:
        self.sent.append(n)


@dataclass
class ReplayOutcome:
    """What a direct replay did and saw."""

    fed: int = 0
    stored: int = 0
    first_ns: int | None = None
    last_ns: int | None = None
    elapsed_s: float = 0.0
    flags: dict[SensorKey, list[int]] = field(default_factory=lambda: defaultdict(list))
    """Per sensor, the times the detection flagged it (anomaly or an active event)."""
    detection_events: list[Point] = field(default_factory=list)
    compliance_events: list[Point] = field(default_factory=list)
    fired: list[Alert] = field(default_factory=list)
    """Every alert that went to ``firing``, as it was at that moment."""
    resolved: dict[str, int] = field(default_factory=dict)
    """Fingerprint -> time resolved, for the alerts in :attr:`fired`."""
    notifications: list[Notification] = field(default_factory=list)
    sensor_span_ns: dict[SensorKey, tuple[int, int]] = field(default_factory=dict)
    """Per sensor, the first and last time of its stored readings."""

    @property
    def rate(self) -> float:
        """Readings stored per second of wall time."""
        return self.stored / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def _take(self, readings: Sequence[Reading], derived: Sequence[Point]) -> None:
        spans = self.sensor_span_ns
        for r in readings:
            key = r.key
            span = spans.get(key)
            if span is None:
                spans[key] = (r.ts_ns, r.ts_ns)
            elif r.ts_ns > span[1] or r.ts_ns < span[0]:
                spans[key] = (min(span[0], r.ts_ns), max(span[1], r.ts_ns))
        self.stored += len(readings)
        for p in derived:
            m = p.measurement
            if m == "anomaly_scores":
                if p.fields.get("is_anomaly") is True:
                    self.flags[_key(p)].append(p.ts_ns)
            elif m == "detection_events":
                self.detection_events.append(p)
                if p.fields.get("active") is True:
                    self.flags[_key(p)].append(p.ts_ns)
            elif m == "compliance_events":
                self.compliance_events.append(p)

    def _transition(self, t: Transition) -> None:
        if t.alert.state is State.FIRING and t.previous in (None, State.PENDING):
            self.fired.append(t.alert)
        elif t.alert.state is State.RESOLVED and t.alert.fired_ns is not None:
            self.resolved[t.alert.fingerprint] = t.ts_ns


class _Ticker:
    """Shows stored batches to the alerts the way the service would have, on the data's
    time: in slices of one evaluation interval, each observed at its own time and followed
    by an evaluation (timers, silent sensors, dispatch), so "for" durations and "no data"
    are timed to the interval, not to the size of a write batch. A gap in the data is
    evaluated interval by interval, up to :attr:`MAX_GAP_TICKS`; then the clock jumps."""

    MAX_GAP_TICKS = 3600

    def __init__(self, alerts: AlertRuntime, clock: ReplayClock, step_ns: int) -> None:
        self._alerts = alerts
        self._clock = clock
        self._step = step_ns
        self._next: int | None = None

    async def observe(self, batch: Sequence[Reading], derived: Sequence[Point]) -> None:
        points = sorted(derived, key=lambda p: p.ts_ns)
        taken = 0  # points shown so far
        part: list[Reading] = []

        def show(until_ns: int | None) -> None:
            nonlocal taken, part
            end = taken
            while end < len(points) and (until_ns is None or points[end].ts_ns < until_ns):
                end += 1
            if part:
                self._clock.advance(part[-1].ts_ns)
            if part or end > taken:
                self._alerts.observe(part, points[taken:end])
            taken, part = end, []

        for r in batch:
            if self._next is None:
                self._next = r.ts_ns - r.ts_ns % self._step + self._step
            gap = 0
            while r.ts_ns >= self._next:
                show(self._next)
                if gap == self.MAX_GAP_TICKS:
                    self._next = r.ts_ns - r.ts_ns % self._step  # skip the rest of a long gap
                self._clock.advance(self._next)
                await self._alerts.tick()
                self._next += self._step
                gap += 1
            part.append(r)
        show(None)


def _key(p: Point) -> SensorKey:
    tags = p.tags
    return SensorKey(tags.get("plant", ""), tags.get("stack", ""), tags.get("sensor", ""))


def _chunks(readings: Iterable[Reading], size: int) -> Iterable[list[Reading]]:
    chunk: list[Reading] = []
    for r in readings:
        chunk.append(r)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _paced_chunks(readings: Iterable[Reading], size: int) -> Iterable[list[Reading]]:
    """Chunks of at most ``size`` readings that never span more than one second of data."""
    chunk: list[Reading] = []
    for r in readings:
        if chunk and (len(chunk) >= size or r.ts_ns - chunk[0].ts_ns >= NS_PER_S):
            yield chunk
            chunk = []
        chunk.append(r)
    if chunk:
        yield chunk


async def replay_direct(
    readings: Iterable[Reading],
    *,
    config: PlantConfig,
    store: Store,
    data_dir: Path,
    alerts_config: AlertsConfig,
    alerts_settings: AlertsSettings | None = None,
    progress: Callable[[int], None] | None = None,
    speed: float = math.inf,
    chunk: int = CHUNK,
) -> ReplayOutcome:
    """Run ``readings`` (time-ordered) through a fresh pipeline on ``store``; models, alert
    state and checkpoints live in ``data_dir``. ``progress`` is called with each chunk's size
    once it is queued. ``speed``: 1 feeds the readings at the pace of their timestamps, N
    times faster, ``math.inf`` as fast as the pipeline takes them (chunks are then cut at
    whole seconds of data so paced readings are not held back)."""
    paced = math.isfinite(speed)
    if paced and speed <= 0:
        raise ValueError(f"speed must be positive, got {speed}")
    outcome = ReplayOutcome()
    clock = ReplayClock()
    keep = KeepNotifications()
    fanouts = {r.name: Fanout([keep]) for r in alerts_config.receivers.receivers}
    alerts = AlertRuntime(
        alerts_config,
        config,
        data_dir=data_dir,
        fanouts=fanouts,
        settings=alerts_settings,
        clock=clock,
        on_transition=outcome._transition,
    )

    step_ns = round((alerts_settings or AlertsSettings()).flush_interval_s * NS_PER_S)
    ticks = _Ticker(alerts, clock, step_ns)

    async def on_stored(batch: Sequence[Reading], derived: Sequence[Point]) -> None:
        outcome._take(batch, derived)
        await ticks.observe(batch, derived)

    options = PipelineOptions(data_dir=data_dir, queue_size=4, write_batch_size=chunk)
    started = time.perf_counter()
    try:
        pipeline = await Pipeline.open(
            config, store, alerts, options, on_stored=on_stored, observe_alerts=False
        )
        writer = asyncio.create_task(pipeline.run(), name="replay-writer")
        try:
            wall0 = time.monotonic()
            parts = _paced_chunks(readings, chunk) if paced else _chunks(readings, chunk)
            for part in parts:
                if outcome.first_ns is None:
                    outcome.first_ns = part[0].ts_ns
                    clock.advance(part[0].ts_ns)
                if paced:
                    due = wall0 + (part[0].ts_ns - outcome.first_ns) / NS_PER_S / speed
                    await asyncio.sleep(max(0.0, due - time.monotonic()))
                outcome.last_ns = part[-1].ts_ns
                await _unless_writer_died(pipeline.queue.put(Envelope(part)), writer)
                outcome.fed += len(part)
                if progress is not None:
                    progress(len(part))
            await _unless_writer_died(pipeline.writer.wait_idle(), writer)
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            await pipeline.close()
        await alerts.tick()  # what the last batch started
        await alerts.wait_deliveries()
    finally:
        await alerts.close()
    outcome.elapsed_s = time.perf_counter() - started
    outcome.notifications = keep.sent
    return outcome


async def _unless_writer_died(step: Awaitable[None], writer: asyncio.Task[None]) -> None:
    """Await ``step`` (queueing a chunk, waiting for the writer to go idle) unless the writer
    task ends first: then its error is raised instead of waiting for ever."""
    task = asyncio.ensure_future(step)
    done, _ = await asyncio.wait({task, writer}, return_when=asyncio.FIRST_COMPLETED)
    if task not in done:
        task.cancel()
        writer.result()  # raises the writer's error
        raise RuntimeError("the pipeline's writer stopped")
