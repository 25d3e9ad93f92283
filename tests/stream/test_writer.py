"""The batching writer acknowledges only stored data, retries while the store is down, and
isolates points the store refuses for good."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path

from stream.envelope import Envelope
from stream.model import NS_PER_S, Reading
from stream.storage.base import Point
from stream.storage.influx import InfluxStore
from stream.storage.settings import InfluxSettings
from stream.storage.sqlite import SqliteStore
from stream.writer import BatchWriter, DeadLetterFile, ReadAfterWrite
from tests.servers import InfluxServer, free_port, influxdb

T0 = 1_767_225_600 * NS_PER_S  # 2026-01-01


def reading(i: int, ts_ns: int | None = None) -> Reading:
    return Reading(
        "p",
        "s",
        "nox",
        ts_ns if ts_ns is not None else T0 + i * NS_PER_S,
        float(i),
        "nox",
        "mg/Nm3",
    )


class Acks:
    def __init__(self) -> None:
        self.done: list[int] = []
        self.event = asyncio.Event()
        self.expected = 0

    def ack_for(self, i: int) -> Envelope:
        def ack() -> None:
            self.done.append(i)
            if len(self.done) >= self.expected:
                self.event.set()

        return Envelope([reading(i)], ack)


async def test_batches_are_stored_then_acknowledged(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    await store.start()
    queue: asyncio.Queue[Envelope] = asyncio.Queue()
    acks = Acks()
    acks.expected = 50
    writer = BatchWriter(
        store, queue, dead_letter=DeadLetterFile(tmp_path / "dl.jsonl"), batch_size=7, linger_s=0.01
    )
    for i in range(50):
        queue.put_nowait(acks.ack_for(i))
    task = asyncio.create_task(writer.run())
    try:
        await asyncio.wait_for(acks.event.wait(), 10)
        assert sorted(acks.done) == list(range(50))
        assert await store.count("readings", "value", T0, T0 + 100 * NS_PER_S) == 50
        assert writer.stored == 50
        await asyncio.wait_for(writer.wait_idle(), 5)
    finally:
        task.cancel()
        await store.close()


async def test_store_outage_holds_acks_until_it_recovers(tmp_path: Path) -> None:
    port = free_port()
    store = InfluxStore(InfluxSettings(url=f"http://127.0.0.1:{port}", database="emissions"))
    await store.start()  # unreachable: must not fail
    queue: asyncio.Queue[Envelope] = asyncio.Queue()
    acks = Acks()
    acks.expected = 20
    writer = BatchWriter(
        store,
        queue,
        dead_letter=DeadLetterFile(tmp_path / "dl.jsonl"),
        batch_size=5,
        linger_s=0.01,
        retry_min_s=0.05,
        retry_max_s=0.2,
    )
    for i in range(20):
        queue.put_nowait(acks.ack_for(i))
    task = asyncio.create_task(writer.run())
    try:
        await asyncio.wait_for(writer.wait_for(lambda: not writer.healthy), 10)
        assert acks.done == []
        assert writer.last_error
        with influxdb(tmp_path / "influx", port=port) as server:
            server.create_database("emissions")
            await asyncio.wait_for(acks.event.wait(), 20)
            assert sorted(acks.done) == list(range(20))
            assert writer.healthy
            result = server.query('SELECT count("value") FROM readings', db="emissions")
            assert result["results"][0]["series"][0]["values"][0][1] == 20
    finally:
        task.cancel()
        await store.close()


async def test_refused_points_are_isolated_and_dead_lettered(
    tmp_path: Path, influx_server: InfluxServer, influx_db: str
) -> None:
    store = InfluxStore(InfluxSettings(url=influx_server.url, database=influx_db))
    await store.start()
    # A string "value" in 2026's shard makes every float "value" there a type conflict;
    # the 2020 shard is unaffected.
    await store.write(
        [
            Point(
                "readings",
                {"plant": "x", "stack": "x", "sensor": "x"},
                {"value": "text"},
                T0 - NS_PER_S,
            )
        ]
    )
    t2020 = 1_577_836_800 * NS_PER_S
    envelopes = [reading(1), reading(2), reading(3, t2020), reading(4, t2020 + NS_PER_S)]
    queue: asyncio.Queue[Envelope] = asyncio.Queue()
    acked = asyncio.Event()
    queue.put_nowait(Envelope(envelopes, acked.set))
    dl = tmp_path / "dl.jsonl"
    writer = BatchWriter(store, queue, dead_letter=DeadLetterFile(dl), linger_s=0.01)
    task = asyncio.create_task(writer.run())
    try:
        await asyncio.wait_for(acked.wait(), 10)
        lines = [json.loads(line) for line in dl.read_text().splitlines()]
        assert sorted(line["fields"]["value"] for line in lines) == [1.0, 2.0]
        assert all("conflict" in line["reason"] for line in lines)
        assert await store.count("readings", "value", t2020, t2020 + 10 * NS_PER_S) == 2
    finally:
        task.cancel()
        await store.close()


async def test_next_batch_is_computed_while_one_is_written_and_reads_wait_for_it(
    tmp_path: Path,
) -> None:
    """Batch 2's stages run while batch 1's write is still retrying (the store is down);
    a read through ReadAfterWrite waits for batch 1, and acknowledgements keep batch order."""
    port = free_port()
    store = InfluxStore(InfluxSettings(url=f"http://127.0.0.1:{port}", database="emissions"))
    await store.start()
    queue: asyncio.Queue[Envelope] = asyncio.Queue()
    acks = Acks()
    acks.expected = 2
    computing: list[float] = []
    second_computing = asyncio.Event()
    counted: list[int] = []
    writer: BatchWriter | None = None

    async def flushed() -> None:
        assert writer is not None
        await writer.flushed()

    reads = ReadAfterWrite(store, flushed)

    async def stage(readings: Sequence[Reading]) -> list[Point]:
        computing.extend(r.value for r in readings)
        if len(computing) == 2:
            second_computing.set()
            counted.append(await reads.count("readings", "value", T0, T0 + 10 * NS_PER_S))
        return []

    writer = BatchWriter(
        store,
        queue,
        dead_letter=DeadLetterFile(tmp_path / "dl.jsonl"),
        batch_size=1,
        linger_s=0,
        retry_min_s=0.05,
        retry_max_s=0.2,
        derive={"stage": stage},
    )
    queue.put_nowait(acks.ack_for(1))
    queue.put_nowait(acks.ack_for(2))
    task = asyncio.create_task(writer.run())
    try:
        await asyncio.wait_for(second_computing.wait(), 10)
        assert acks.done == []  # batch 1 is not stored yet: the store is down
        with influxdb(tmp_path / "influx", port=port) as server:
            server.create_database("emissions")
            await asyncio.wait_for(acks.event.wait(), 20)
        assert acks.done == [1, 2]
        assert counted == [1]  # batch 2's stage read batch 1's reading
    finally:
        task.cancel()
        await store.close()
