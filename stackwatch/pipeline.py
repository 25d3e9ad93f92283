"""The processing chain behind the collector, shared by ``stackwatch run`` and ``stackwatch
replay``: the batching writer and, on every stored batch, compliance, detection, PEMS, then the
alerts and whatever listens to the result.

Building it in one place is what makes a replay trustworthy: a recording fed straight into a
:class:`Pipeline` goes through exactly the stages, in the same order, that live MQTT data goes
through, so a reproduced incident or a backtest means what it says about the running service.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from alerts.runtime import AlertRuntime
from stream.compliance.live import LiveCompliance
from stream.detect.live import LiveDetection
from stream.envelope import Envelope
from stream.model import Reading
from stream.pems.live import LivePems
from stream.plant import PlantConfig
from stream.spool import Spool
from stream.storage.base import Point, Store
from stream.writer import BatchWriter, DeadLetterFile, ReadAfterWrite

log = structlog.get_logger(__name__)

StoredHook = Callable[[Sequence[Reading], Sequence[Point]], Awaitable[None]]
"""Called with every stored batch and the points derived from it, after all stages ran."""


@dataclass(frozen=True, slots=True)
class PipelineOptions:
    """The service settings the pipeline needs (see :class:`~stackwatch.settings.ServiceSettings`
    for their meaning)."""

    data_dir: Path
    queue_size: int = 10_000
    write_batch_size: int = 5000
    write_linger_s: float = 0.1
    write_retry_max_s: float = 30.0
    compliance_lateness_s: float = 300.0
    model_checkpoint_s: float = 300.0
    spool_max_bytes: int = 0
    """Bound of the store-and-forward spool (``data_dir/spool.db``); 0: no spool (a failing
    store then holds the acknowledgements until it recovers)."""


class Pipeline:
    """Writer + derivers; put :class:`Envelope` s on :attr:`queue` while :meth:`run` runs.

    Build with :meth:`open` (it restores model checkpoints), finish with :meth:`close`.
    """

    def __init__(
        self,
        writer: BatchWriter,
        queue: asyncio.Queue[Envelope],
        detection: LiveDetection,
        pems: LivePems,
        spool: Spool | None = None,
    ) -> None:
        self.writer = writer
        self.queue = queue
        self.detection = detection
        self.pems = pems
        self.spool = spool

    @classmethod
    async def open(
        cls,
        config: PlantConfig,
        store: Store,
        alerts: AlertRuntime,
        options: PipelineOptions,
        *,
        on_stored: StoredHook | None = None,
        observe_alerts: bool = True,
    ) -> Pipeline:
        """Restore the models and wire the stages: compliance, detection, PEMS, then
        ``on_stored`` and the alerts (all before the source message is acknowledged).

        ``observe_alerts=False`` leaves showing the batch to the alerts to ``on_stored`` (a
        replay does it in time slices on the data's clock)."""
        o = options
        writer: BatchWriter | None = None

        async def flushed() -> None:
            if writer is not None:
                await writer.flushed()

        # The stages compute batch N+1 while batch N is being written: their reads wait for
        # it (see ReadAfterWrite).
        reads = ReadAfterWrite(store, flushed)
        live = LiveCompliance(
            config,
            reads,
            lateness_s=o.compliance_lateness_s,
            on_event=alerts.on_compliance_event,
        )
        models_dir = o.data_dir / "models"
        detection = LiveDetection(
            config,
            reads,
            state_path=models_dir / "detection.state",
            checkpoint_s=o.model_checkpoint_s,
            on_event=alerts.on_detection_event,
        )
        pems = LivePems(
            config, state_path=models_dir / "pems.state", checkpoint_s=o.model_checkpoint_s
        )
        await detection.start()
        await pems.start()

        async def publish(readings: Sequence[Reading], derived: Sequence[Point]) -> None:
            """Last stage: everything is stored; tell the alerts and the listeners."""
            if on_stored is not None:
                await on_stored(readings, derived)
            if observe_alerts:
                alerts.observe(readings, derived)

        queue: asyncio.Queue[Envelope] = asyncio.Queue(maxsize=o.queue_size)
        spool_path = o.data_dir / "spool.db"
        spool = Spool(spool_path, max_bytes=o.spool_max_bytes) if o.spool_max_bytes > 0 else None
        if spool is None and spool_path.exists():
            log.warning(
                "the spool is disabled but its file exists: batches still in it are not "
                "written to the store until the spool is enabled again",
                spool=str(spool_path),
            )
        writer = BatchWriter(
            store,
            queue,
            derive={"compliance": live.add, "detection": detection.add, "pems": pems.add},
            after_store=publish,
            dead_letter=DeadLetterFile(o.data_dir / "deadletter-store.jsonl"),
            batch_size=o.write_batch_size,
            linger_s=o.write_linger_s,
            retry_max_s=o.write_retry_max_s,
            spool=spool,
        )
        return cls(writer, queue, detection, pems, spool)

    async def run(self) -> None:
        """Store and process what arrives on :attr:`queue` until cancelled."""
        await self.writer.run()

    async def close(self) -> None:
        """Checkpoint the models and close the spool (call after the writer has stopped; what
        is still spooled drains on the next start)."""
        self.detection.close()
        await self.pems.wait_fits()
        self.pems.close()
        if self.spool is not None:
            self.spool.close()
