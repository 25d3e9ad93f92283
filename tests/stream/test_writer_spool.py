"""Store-and-forward in the writer, against a real InfluxDB that is down (nothing listens on its
port) and then started: batches are spooled and acknowledged during the outage, drain in order
afterwards, and a full spool falls back to holding the acknowledgements."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stream.envelope import Envelope
from stream.model import NS_PER_S, Reading
from stream.spool import Spool
from stream.storage.base import Point
from stream.storage.influx import InfluxStore
from stream.storage.settings import InfluxSettings
from stream.writer import BatchWriter, DeadLetterFile
from tests.servers import InfluxServer, free_port, influxdb

T0 = 1_767_225_600 * NS_PER_S  # 2026-01-01


def reading(i: int, value: float | None = None) -> Reading:
    return Reading(
        "p", "s", "nox", T0 + i * NS_PER_S, float(i) if value is None else value, "nox", "mg/Nm3"
    )


class Acks:
    """Acknowledged message numbers; ``reached(n)`` waits until n acks arrived."""

    def __init__(self) -> None:
        self.done: list[int] = []
        self._changed = asyncio.Event()

    def envelope(self, i: int, value: float | None = None) -> Envelope:
        def ack() -> None:
            self.done.append(i)
            self._changed.set()

        return Envelope([reading(i, value)], ack)

    async def reached(self, n: int) -> None:
        while len(self.done) < n:
            self._changed.clear()
            await self._changed.wait()


async def doubled(readings: Sequence[Reading]) -> list[Point]:
    """A deriver: one derived point per reading, so derived points travel the same way."""
    return [
        Point("derived", {"sensor": r.sensor}, {"twice": 2 * r.value}, r.ts_ns) for r in readings
    ]


def make_writer(
    tmp_path: Path, store: InfluxStore, queue: asyncio.Queue[Envelope], spool: Spool
) -> BatchWriter:
    return BatchWriter(
        store,
        queue,
        dead_letter=DeadLetterFile(tmp_path / "dl.jsonl"),
        batch_size=5,
        linger_s=0.01,
        retry_min_s=0.05,
        retry_max_s=0.2,
        derive={"double": doubled},
        spool=spool,
    )


def query(server: InfluxServer, q: str) -> list[list[Any]]:
    result = server.query(q, db="emissions")["results"][0]
    values: list[list[Any]] = result["series"][0]["values"] if "series" in result else []
    return values


async def test_outage_spools_and_acks_then_drains_in_order(tmp_path: Path) -> None:
    port = free_port()
    store = InfluxStore(InfluxSettings(url=f"http://127.0.0.1:{port}", database="emissions"))
    await store.start()  # nothing listens: every write fails retryably
    spool = Spool(tmp_path / "spool.db", max_bytes=1 << 20)
    queue: asyncio.Queue[Envelope] = asyncio.Queue()
    acks = Acks()
    writer = make_writer(tmp_path, store, queue, spool)
    for i in range(20):
        queue.put_nowait(acks.envelope(i))
    # Message 0 again with a newer value, after the others: only in-order draining leaves 100.
    queue.put_nowait(acks.envelope(0, value=100.0))
    task = asyncio.create_task(writer.run())
    try:
        await asyncio.wait_for(acks.reached(21), 10)  # acknowledged although nothing is stored
        assert sorted(acks.done) == [0, *range(20)]
        assert not writer.healthy and writer.last_error
        assert not writer.spool_ok and "waiting for the store" in writer.spool_detail
        assert writer.spooled == 2 * 21  # readings and their derived points
        with influxdb(tmp_path / "influx", port=port) as server:
            server.create_database("emissions")
            await asyncio.wait_for(writer.wait_for(lambda: spool.count == 0), 20)
            assert writer.healthy and writer.spool_ok and writer.spool_detail == "empty"
            rows = query(server, 'SELECT "value" FROM readings')
            assert len(rows) == 20  # the redelivered message overwrote, no duplicate
            assert [r[1] for r in rows] == [100.0, *map(float, range(1, 20))]
            assert len(query(server, 'SELECT "twice" FROM derived')) == 20
            # Direct writes resume once the spool is empty.
            queue.put_nowait(acks.envelope(20))
            await asyncio.wait_for(acks.reached(22), 10)
            assert spool.count == 0 and writer.spooled == 42
            assert len(query(server, 'SELECT "value" FROM readings')) == 21
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.close()
        spool.close()


async def test_full_spool_holds_acks_until_the_store_returns(tmp_path: Path) -> None:
    port = free_port()
    store = InfluxStore(InfluxSettings(url=f"http://127.0.0.1:{port}", database="emissions"))
    await store.start()
    spool = Spool(tmp_path / "spool.db", max_bytes=1500)  # about two batches
    queue: asyncio.Queue[Envelope] = asyncio.Queue()
    acks = Acks()
    writer = make_writer(tmp_path, store, queue, spool)
    for i in range(40):
        queue.put_nowait(acks.envelope(i))
    task = asyncio.create_task(writer.run())
    try:
        await asyncio.wait_for(writer.wait_for(lambda: writer.spool_detail.startswith("FULL")), 10)
        held = len(acks.done)
        assert 0 < held < 40
        assert not writer.healthy and not writer.spool_ok
        assert "exceed the bound of 1500 bytes" in writer.spool_detail
        with influxdb(tmp_path / "influx", port=port) as server:
            server.create_database("emissions")
            await asyncio.wait_for(acks.reached(40), 20)
            await asyncio.wait_for(writer.wait_for(lambda: spool.count == 0), 20)
            assert sorted(acks.done) == list(range(40))
            assert writer.healthy and writer.spool_ok
            rows = query(server, 'SELECT "value" FROM readings')
            assert [r[1] for r in rows] == [float(i) for i in range(40)]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.close()
        spool.close()


async def test_spooled_batches_drain_after_a_restart_and_bad_points_are_dead_lettered(
    tmp_path: Path,
) -> None:
    port = free_port()
    store = InfluxStore(InfluxSettings(url=f"http://127.0.0.1:{port}", database="emissions"))
    await store.start()
    spool = Spool(tmp_path / "spool.db", max_bytes=1 << 20)
    queue: asyncio.Queue[Envelope] = asyncio.Queue()
    acks = Acks()

    async def with_a_bad_point(readings: Sequence[Reading]) -> list[Point]:
        # A point no store takes (no fields): dead-lettered at once, not spooled.
        return [Point("derived", {"sensor": "x"}, {}, readings[0].ts_ns)]

    writer = BatchWriter(
        store,
        queue,
        dead_letter=DeadLetterFile(tmp_path / "dl.jsonl"),
        batch_size=100,
        linger_s=0.01,
        retry_min_s=0.05,
        retry_max_s=0.2,
        derive={"bad": with_a_bad_point},
        spool=spool,
    )
    for i in range(10):
        queue.put_nowait(acks.envelope(i))
    task = asyncio.create_task(writer.run())
    try:
        await asyncio.wait_for(acks.reached(10), 10)
        await asyncio.wait_for(writer.wait_idle(), 10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        spool.close()
    dead = [json.loads(line) for line in (tmp_path / "dl.jsonl").read_text().splitlines()]
    assert len(dead) == 1 and "no fields" in dead[0]["reason"]

    # A new process: the spool file still holds the readings and drains into the store.
    spool = Spool(tmp_path / "spool.db", max_bytes=1 << 20)
    assert spool.count >= 1  # the readings (split from the bad point in one or more batches)
    with influxdb(tmp_path / "influx", port=port) as server:
        server.create_database("emissions")
        writer = BatchWriter(
            store, asyncio.Queue(), dead_letter=DeadLetterFile(tmp_path / "dl.jsonl"), spool=spool
        )
        task = asyncio.create_task(writer.run())
        try:
            await asyncio.wait_for(writer.wait_for(lambda: spool.count == 0), 20)
            rows = query(server, 'SELECT "value" FROM readings')
            assert [r[1] for r in rows] == [float(i) for i in range(10)]
            assert writer.drained == 10
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await store.close()
            spool.close()
