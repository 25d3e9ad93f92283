"""The collector survives a broker restart: it reconnects with backoff, subscribes again and
stores what is published afterwards; health reports the outage and the recovery."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from collector.decode import Decoder
from collector.mqtt import MqttCollector
from collector.settings import MqttSettings
from stream.envelope import Envelope
from stream.storage.sqlite import SqliteStore
from stream.writer import BatchWriter, DeadLetterFile
from tests.collector.plants import ONE_NOX, T0_MS
from tests.servers import free_port, mosquitto

CONFIG = ONE_NOX


def publish(port: int, ts_ms: int, value: float) -> None:
    subprocess.run(
        [
            "mosquitto_pub",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-q",
            "1",
            "-t",
            "stackwatch/p/s/nox",
            "-m",
            f'{{"ts": {ts_ms}, "value": {value}}}',
        ],
        check=True,
        timeout=30,
    )


async def test_collector_reconnects_after_broker_restart(tmp_path: Path) -> None:
    port = free_port()
    settings = MqttSettings.model_validate(
        {
            "url": f"mqtt://127.0.0.1:{port}",
            "client_id": f"reconnect-{port}",
            "reconnect_min_s": 0.05,
            "reconnect_max_s": 0.2,
        }
    )
    store = SqliteStore(tmp_path / "s.db")
    await store.start()
    queue: asyncio.Queue[Envelope] = asyncio.Queue(100)
    writer = BatchWriter(store, queue, dead_letter=DeadLetterFile(tmp_path / "dl"), linger_s=0.01)
    collector = MqttCollector(settings, Decoder(CONFIG, settings), queue)
    tasks = [asyncio.create_task(writer.run()), asyncio.create_task(collector.run())]

    async def stored(n: int) -> None:
        await writer.wait_for(lambda: writer.stored >= n)

    try:
        with mosquitto(tmp_path / "m1", port=port):
            await asyncio.wait_for(collector.connected_event.wait(), 10)
            await asyncio.to_thread(publish, port, T0_MS, 1.0)
            await asyncio.wait_for(stored(1), 10)
        # The broker is gone: the collector notices and says so.
        await asyncio.wait_for(collector.disconnected_event.wait(), 10)
        assert "disconnected" in collector.detail
        with mosquitto(tmp_path / "m2", port=port):
            await asyncio.wait_for(collector.connected_event.wait(), 10)
            await asyncio.to_thread(publish, port, T0_MS + 1000, 2.0)
            await asyncio.wait_for(stored(2), 10)
        rows = await store.count("readings", "value", T0_MS * 10**6, (T0_MS + 2000) * 10**6)
        assert rows == 2
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await store.close()
