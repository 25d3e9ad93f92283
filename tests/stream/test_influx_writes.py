"""InfluxStore sends one write at a time, so InfluxDB never sees two writes creating a shard.

InfluxDB 1.6 answers 204 to concurrent writes that create a shard and yet, now and then, keeps
only some of them (about one round in 1 500 of 8 concurrent writes into a fresh database, so
the storage contract's concurrency test alone catches it rarely). A pass-through in front of
the real server shows how many write requests it had in hand at once.
"""

from __future__ import annotations

import asyncio

from stream.storage.base import Point
from stream.storage.influx import InfluxStore
from stream.storage.settings import InfluxSettings
from tests.probe import request_probe
from tests.servers import InfluxServer

BASE = 1_700_000_000_000_000_000
HOUR = 3600 * 10**9


async def test_concurrent_writes_reach_influxdb_one_at_a_time(
    influx_server: InfluxServer, influx_db: str
) -> None:
    batches = [
        [Point("m", {"sensor": str(b)}, {"v": float(i)}, BASE + b * 100 + i) for i in range(50)]
        for b in range(8)
    ]
    async with request_probe("127.0.0.1", influx_server.port) as probe:
        settings = InfluxSettings.model_validate({"url": probe.url, "database": influx_db})
        store = InfluxStore(settings)
        await store.start()
        try:
            before = probe.requests
            await asyncio.gather(*(store.write(batch) for batch in batches))
            assert probe.requests - before == 8
            assert probe.most_awaiting == 1
            assert await store.count("m", "v", BASE, BASE + HOUR) == 400
        finally:
            await store.close()
