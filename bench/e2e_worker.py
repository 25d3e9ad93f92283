"""One pipeline stage in its own process, fed over MQTT: ``python -m bench.e2e_worker STAGE N DIR``.

Settings come from ``STACKWATCH_*`` environment variables, exactly as for ``stackwatch run``.
Each stage adds one step of the service's chain to the one before, built from the service's
own classes (:class:`~collector.mqtt.MqttCollector`, :class:`~stream.writer.BatchWriter`,
:class:`~stream.compliance.live.LiveCompliance`, :class:`~stream.detect.live.LiveDetection`):

* ``collector``: receive + decode + validate into the bounded queue; a trivial consumer acks;
* ``detection``: + the batching writer and live detection (the store discards: :class:`NullStore`);
* ``compliance``: + live compliance (before detection, in the service's order);
* ``storage``: the same chain writing to the configured InfluxDB;
* ``service``: the whole service in this process (alerts, PEMS, API), its store wrapped by
  :class:`LatencyStore`, which notes when every reading and anomaly score was written.

A stage process of its own gives it a core, clean CPU accounting and its own peak RSS. The
first four write ``DIR/ready`` once subscribed, stop after ``N`` readings went through and
write ``DIR/result.json`` (times from :func:`time.perf_counter_ns`, CPU seconds from
:func:`time.process_time`, peak RSS). ``service`` runs until SIGTERM, then writes
``DIR/latency.npz`` (write time and ``ts`` of every reading and score; ``ts`` is the
publisher's wall clock, so the difference is the latency).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from collector.decode import Decoder
from collector.mqtt import MqttCollector
from collector.settings import MqttSettings
from stackwatch.settings import ServiceSettings
from stream.compliance.live import LiveCompliance
from stream.detect.live import SCORES, LiveDetection
from stream.envelope import Envelope
from stream.model import Reading
from stream.plant import load_plant_config
from stream.schema import READINGS
from stream.storage.base import LastValue, Point, SeriesQuery, SeriesRow, Store
from stream.storage.influx import InfluxStore
from stream.storage.settings import InfluxSettings
from stream.storage.wrapper import StoreWrapper
from stream.writer import BatchWriter, DeadLetterFile, Deriver

STAGES = ("collector", "detection", "compliance", "storage", "service")
STALL_S = 30.0
"""A stage that makes no progress for this long gives up."""


class NullStore:
    """A :class:`~stream.storage.base.Store` that keeps nothing and finds nothing: the stages
    before ``storage`` pay for building points, not for a backend."""

    @property
    def name(self) -> str:
        return "null"

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def ping(self) -> bool:
        return True

    async def write(self, points: Sequence[Point]) -> None:
        return None

    async def series(self, query: SeriesQuery) -> list[SeriesRow]:
        return []

    async def last(
        self, measurement: str, where: Mapping[str, str] | None = None
    ) -> list[LastValue]:
        return []

    async def scan(
        self, measurement: str, start_ns: int, end_ns: int, where: Mapping[str, str] | None = None
    ) -> list[LastValue]:
        return []

    async def count(
        self,
        measurement: str,
        field: str,
        start_ns: int,
        end_ns: int,
        where: Mapping[str, str] | None = None,
    ) -> int:
        return 0


class LatencyStore(StoreWrapper):
    """Wraps a store; notes the wall clock after each write of readings and anomaly scores."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.stored: tuple[list[int], list[int]] = ([], [])  # ts, written at
        self.scored: tuple[list[int], list[int]] = ([], [])

    async def write(self, points: Sequence[Point]) -> None:
        await self.inner.write(points)
        now = time.time_ns()
        for p in points:
            target = (
                self.stored
                if p.measurement == READINGS
                else self.scored
                if p.measurement == SCORES
                else None
            )
            if target is not None:
                target[0].append(p.ts_ns)
                target[1].append(now)

    def save(self, path: Path) -> None:
        np.savez(
            path,
            stored_ts=np.array(self.stored[0], np.int64),
            stored_at=np.array(self.stored[1], np.int64),
            scored_ts=np.array(self.scored[0], np.int64),
            scored_at=np.array(self.scored[1], np.int64),
        )


@dataclass
class StageResult:
    """What a stage process measured: readings from the first message received (``first``)
    until the last was acknowledged (``done``), perf_counter ns, CPU s, KiB."""

    stage: str
    readings: int = 0
    first_ns: int | None = None
    first_cpu_s: float = 0.0
    done_ns: int | None = None
    done_cpu_s: float = 0.0
    rss_peak_kib: int = 0
    detection_state_bytes: int = 0
    rejected: int = 0


class Progress:
    """Counts readings through the stage; notes the first message and the end."""

    def __init__(self, stage: str, expected: int) -> None:
        self.result = StageResult(stage)
        self.expected = expected
        self.done = asyncio.Event()

    def started(self) -> None:
        if self.result.first_ns is None:
            self.result.first_ns = time.perf_counter_ns()
            self.result.first_cpu_s = time.process_time()

    def add(self, n: int) -> None:
        r = self.result
        r.readings += n
        if r.readings >= self.expected and r.done_ns is None:
            r.done_ns, r.done_cpu_s = time.perf_counter_ns(), time.process_time()
            self.done.set()


class TimedQueue(asyncio.Queue[Envelope]):
    """The collector's outbox; notes when the first message arrived."""

    def __init__(self, maxsize: int, progress: Progress) -> None:
        super().__init__(maxsize)
        self._progress = progress

    async def put(self, item: Envelope) -> None:
        self._progress.started()
        await super().put(item)


async def _consume(queue: asyncio.Queue[Envelope], progress: Progress) -> None:
    while True:
        env = await queue.get()
        env.ack()
        progress.add(len(env.readings))


def process_tree(pid: int) -> list[int]:
    """``pid`` and its living descendants (the service's collector process)."""
    tree = [pid]
    for parent in tree:
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{parent}/task").iterdir():
                with contextlib.suppress(OSError):
                    tree += [int(c) for c in (task / "children").read_text().split()]
    return tree


def tree_total(pid: int, value: Callable[[int], float]) -> float:
    """The sum of ``value`` over ``pid`` and its descendants (a process gone meanwhile, or
    whose ``/proc`` entry cannot be read, counts 0)."""
    total = 0.0
    for p in process_tree(pid):
        with contextlib.suppress(OSError):
            total += value(p)
    return total


def status_kib(pid: int | str, field: str) -> int:
    """A memory field of ``/proc/PID/status`` (e.g. ``VmRSS``), in KiB (0 if absent)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def rss_peak_kib(pid: int | str = "self") -> int:
    """Peak resident set size (``VmHWM``) of a process, in KiB. Not ``ru_maxrss``: Linux
    carries that over from the parent across fork and exec, so a child would report its
    parent's peak if that was larger."""
    return status_kib(pid, "VmHWM")


def _stop_on_sigterm() -> asyncio.Event:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    return stop


async def _until_done(progress: Progress, stop: asyncio.Event) -> None:
    """Wait for the expected readings, SIGTERM, or :data:`STALL_S` without progress (e.g.
    readings were rejected: the result then shows fewer readings than expected)."""
    seen = -1
    while not (progress.done.is_set() or stop.is_set()) and progress.result.readings != seen:
        seen = progress.result.readings
        waits = [asyncio.create_task(progress.done.wait()), asyncio.create_task(stop.wait())]
        await asyncio.wait(waits, timeout=STALL_S, return_when=asyncio.FIRST_COMPLETED)
        for w in waits:
            w.cancel()


async def run_stage(stage: str, expected: int, workdir: Path) -> StageResult:
    """Run one of the first four stages until ``expected`` readings went through (or SIGTERM)."""
    mqtt, service = MqttSettings(), ServiceSettings()
    if service.config is None:
        raise SystemExit("STACKWATCH_CONFIG is unset")
    config = load_plant_config(service.config)
    progress = Progress(stage, expected)
    queue = TimedQueue(service.queue_size, progress)
    collector = MqttCollector(mqtt, Decoder(config, mqtt), queue)
    detection: LiveDetection | None = None
    store: Store = NullStore()
    if stage == "collector":
        consumer = _consume(queue, progress)
    else:
        if stage == "storage":
            store = InfluxStore(InfluxSettings())
        await store.start()

        async def count(readings: Sequence[Reading]) -> list[Point]:
            progress.add(len(readings))
            return []

        derive: dict[str, Deriver] = {}
        if stage in ("compliance", "storage"):
            live = LiveCompliance(config, store, lateness_s=service.compliance_lateness_s)
            derive["compliance"] = live.add
        detection = LiveDetection(config, store, state_path=workdir / "detection.state")
        await detection.start()
        derive |= {"detection": detection.add, "progress": count}
        writer = BatchWriter(
            store,
            queue,
            dead_letter=DeadLetterFile(workdir / "deadletter-store.jsonl"),
            batch_size=service.write_batch_size,
            linger_s=service.write_linger_s,
            derive=derive,
        )
        consumer = writer.run()
    tasks = [asyncio.create_task(consumer), asyncio.create_task(collector.run())]
    stop = _stop_on_sigterm()
    try:
        await asyncio.wait_for(collector.connected_event.wait(), 30)
        (workdir / "ready").touch()
        await _until_done(progress, stop)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await store.close()
    result = progress.result
    result.rss_peak_kib = rss_peak_kib()
    result.rejected = sum(collector.rejections.counts().values())
    if detection is not None:
        detection.save()
        result.detection_state_bytes = (workdir / "detection.state").stat().st_size
    return result


async def run_service(workdir: Path) -> None:
    """The whole service in this process until SIGTERM; then ``DIR/latency.npz``."""
    # Imported here: the service pulls in the API, alerts and PEMS, which the other stages
    # do not need (a second less to start them).
    from stackwatch.service import Service, Settings, make_store  # noqa: PLC0415

    settings = Settings.from_env()
    service = Service(settings)
    store = LatencyStore(make_store(settings))
    await store.start()
    stop = _stop_on_sigterm()
    task = asyncio.create_task(service._run(store, settings.mqtt))  # the store wrapped
    try:
        waits = [task, asyncio.create_task(stop.wait())]
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        service.stop()
        await task
    finally:
        await store.close()
        store.save(workdir / "latency.npz")


def _main(argv: Sequence[str]) -> int:
    if len(argv) != 3 or argv[0] not in STAGES:
        print(f"usage: python -m bench.e2e_worker {{{','.join(STAGES)}}} N DIR", file=sys.stderr)
        return 2
    stage, expected, workdir = argv[0], int(argv[1]), Path(argv[2])
    if stage == "service":
        asyncio.run(run_service(workdir))
        return 0
    result = asyncio.run(run_stage(stage, expected, workdir))
    doc: dict[str, Any] = asdict(result)
    (workdir / "result.json").write_text(json.dumps(doc))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
