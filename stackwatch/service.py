"""The composition root of ``stackwatch run``: broker, collector, writer, store, API, simulator.

Start order follows the data backwards (store, writer, then the collector), as telegraf does,
and shutdown runs forwards: the collector stops taking messages, the writer stores and
acknowledges what is queued, then the store closes. Anything not acknowledged by then stays
with the broker and is redelivered on the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any

import structlog
import uvicorn

from alerts.audit import AuditSettings
from alerts.runtime import AlertRuntime
from alerts.settings import AlertsConfigError, AlertsSettings, load_alerts_config
from api.auth import validate_api_settings
from api.context import AppContext, ComponentHealth, ModelsInfo
from api.live import LiveHub
from api.main import create_app
from api.settings import ApiSettings
from collector.broker import EmbeddedBroker
from collector.decode import Decoder
from collector.mqtt import MqttCollector
from collector.process import CollectorProcess
from collector.settings import MqttProtocol, MqttSettings
from simulators.plant import PlantSimulator
from simulators.publisher import publish_simulation
from stackwatch.heap import freeze_heap
from stackwatch.logs import configure_logging
from stackwatch.pipeline import Pipeline, PipelineOptions
from stackwatch.security import production_problems
from stackwatch.settings import Mode, ServiceSettings
from stream.detect.live import LiveDetection
from stream.envelope import Envelope
from stream.model import Reading
from stream.pems.live import LivePems
from stream.plant import PlantConfig, load_plant_config
from stream.spool import SpoolError
from stream.storage.base import Point, Store
from stream.storage.influx import InfluxStore
from stream.storage.settings import InfluxSettings
from stream.storage.sqlite import SqliteStore
from stream.writer import BatchWriter

log = structlog.get_logger(__name__)

DEMO_PLANT = "demo_plant.yaml"


def pipeline_options(s: ServiceSettings) -> PipelineOptions:
    return PipelineOptions(
        data_dir=s.data_dir,
        queue_size=s.queue_size,
        write_batch_size=s.write_batch_size,
        write_linger_s=s.write_linger_s,
        write_retry_max_s=s.write_retry_max_s,
        compliance_lateness_s=s.compliance_lateness_s,
        model_checkpoint_s=s.model_checkpoint_s,
        spool_max_bytes=s.spool_max_bytes,
    )


class StartupError(Exception):
    """The service cannot start with this configuration; the message says why."""


@dataclass
class Settings:
    """All settings of one service instance."""

    service: ServiceSettings
    mqtt: MqttSettings
    influx: InfluxSettings
    api: ApiSettings
    alerts: AlertsSettings = field(default_factory=AlertsSettings)

    @classmethod
    def from_env(cls) -> Settings:
        return cls(ServiceSettings(), MqttSettings(), InfluxSettings(), ApiSettings())

    @property
    def demo(self) -> bool:
        return self.service.mode is Mode.DEMO


def plant_config_path(settings: ServiceSettings) -> Path:
    if settings.config is not None:
        return settings.config
    if settings.mode is Mode.DEMO:
        return Path(str(resources.files("simulators") / DEMO_PLANT))
    raise StartupError("STACKWATCH_CONFIG is unset: give the plant configuration file")


def check_settings(settings: Settings) -> None:
    """Refuse to start in production mode with open access or default secrets."""
    if settings.demo:
        return
    problems = production_problems(settings.mqtt, settings.influx)
    try:
        validate_api_settings(settings.api, demo=False)
    except ValueError as err:
        problems.append(str(err))
    if problems:
        raise StartupError(
            "refusing to start in production mode:\n  - "
            + "\n  - ".join(problems)
            + "\nSet the secrets, or run with STACKWATCH_MODE=demo on a trusted machine."
        )


def make_store(settings: Settings) -> Store:
    if settings.influx.url is not None:
        return InfluxStore(settings.influx)
    path = settings.service.data_dir / "stackwatch.db"
    return SqliteStore(path, lookback_s=settings.influx.lookback_s)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@contextlib.asynccontextmanager
async def _broker(settings: Settings) -> AsyncIterator[MqttSettings]:
    """The MQTT settings to use: the configured broker, or an embedded one we start."""
    if settings.mqtt.url is not None:
        yield settings.mqtt
        return
    port = settings.mqtt.embedded_port
    if port and not _port_free(port):
        log.warning("embedded broker port taken, using a free port instead", port=port)
        port = 0
    async with EmbeddedBroker(port=port) as broker:
        log.warning("embedded MQTT broker started: anonymous access, demo use only", url=broker.url)
        # amqtt speaks MQTT 3.1.1 only.
        yield settings.mqtt.model_copy(update={"url": broker.url, "protocol": MqttProtocol.V311})


class Service:
    """One running StackWatch instance."""

    def __init__(self, settings: Settings, *, simulate: bool = False, seed: int = 0) -> None:
        check_settings(settings)
        self.settings = settings
        self.simulate = simulate
        self.seed = seed
        self.config: PlantConfig = load_plant_config(plant_config_path(settings.service))
        try:
            self.alerts_config = load_alerts_config(
                settings.alerts.config,
                topic_prefix=settings.mqtt.topic_prefix,
                mqtt_username=settings.mqtt.username,
                mqtt_password=settings.mqtt.password,
            )
        except AlertsConfigError as err:
            raise StartupError(str(err)) from None
        self.alerts: AlertRuntime | None = None
        self.hub = LiveHub()
        self.api_url: str | None = None
        self.mqtt_url: str | None = None
        self.ready = asyncio.Event()
        self.detection: LiveDetection | None = None
        self.pems: LivePems | None = None
        self.drain_timeout_s = 10.0
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        s = self.settings
        store = make_store(s)
        await store.start()
        try:
            async with _broker(s) as mqtt_settings:
                await self._run(store, mqtt_settings)
        finally:
            await store.close()
            log.info("stopped")

    async def _run(self, store: Store, mqtt_settings: MqttSettings) -> None:
        s = self.settings
        self.mqtt_url = mqtt_settings.url
        alerts = AlertRuntime(
            self.alerts_config,
            self.config,
            data_dir=s.service.data_dir,
            fanouts=self.alerts_config.receivers.build(mqtt_settings.url),
            settings=s.alerts,
            audit_key=AuditSettings().key,
        )
        self.alerts = alerts
        try:
            await self._run_with_alerts(store, mqtt_settings, alerts)
        finally:
            await alerts.close()

    async def _run_with_alerts(
        self,
        store: Store,
        mqtt_settings: MqttSettings,
        alerts: AlertRuntime,
    ) -> None:
        s = self.settings
        hub = self.hub
        alerts.on_transition = hub.publish_alert

        async def publish(readings: Sequence[Reading], derived: Sequence[Point]) -> None:
            hub.publish_readings(readings)
            hub.publish_points(derived)

        try:
            pipeline = await Pipeline.open(
                self.config, store, alerts, pipeline_options(s.service), on_stored=publish
            )
        except SpoolError as err:
            raise StartupError(f"store-and-forward spool: {err}") from None
        self.detection, self.pems = pipeline.detection, pipeline.pems
        writer = pipeline.writer
        collector = self._collector(mqtt_settings, pipeline.queue)

        def components() -> Mapping[str, ComponentHealth]:
            health = {
                "mqtt": ComponentHealth(collector.connected, collector.detail),
                "writer": ComponentHealth(
                    writer.healthy,
                    f"{writer.stored} readings stored, {writer.queued} messages queued"
                    + (f"; retrying: {writer.last_error}" if writer.last_error else ""),
                ),
            }
            if writer.spool is not None:  # not ok while batches wait for the store, or full
                health["spool"] = ComponentHealth(writer.spool_ok, writer.spool_detail)
            return health

        def health() -> list[tuple[str, bool, str]]:
            return [(name, c.ok, c.detail) for name, c in components().items()]

        app = create_app(
            AppContext(
                self.config,
                store,
                s.api,
                s.demo,
                components,
                alerts=alerts,
                live=hub,
                models=lambda: ModelsInfo.of(self.config, self.detection, self.pems),
            )
        )
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=s.api.host,
                port=s.api.port,
                log_config=None,
                access_log=False,
                lifespan="off",
            )
        )
        writer_task = asyncio.create_task(writer.run(), name="writer")
        collector_task = asyncio.create_task(collector.run(), name="collector")
        server_task = asyncio.create_task(server.serve(), name="api")
        alerts_task = asyncio.create_task(alerts.run(self._stop, health), name="alerts")
        tasks: list[asyncio.Task[Any]] = [writer_task, collector_task, server_task, alerts_task]
        if self.simulate:
            sim = PlantSimulator(self.config, seed=self.seed)
            tasks.append(
                asyncio.create_task(
                    publish_simulation(
                        sim,
                        mqtt_url=str(mqtt_settings.url),
                        topic_prefix=mqtt_settings.topic_prefix,
                        stop=self._stop,
                        client_id="stackwatch-simulator",
                    ),
                    name="simulator",
                )
            )
        # Not one of ``tasks``: it ends early, and any of those ending stops the service.
        freezer = asyncio.create_task(self._freeze_after_first_batch(writer), name="heap")
        try:
            await self._started(server)
            freeze_heap("started")
            stop_task = asyncio.create_task(self._stop.wait())
            done, _ = await asyncio.wait([*tasks, stop_task], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not stop_task and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            stop_task.cancel()
        finally:
            freezer.cancel()
            await self._shutdown(tasks, collector=collector, writer=writer, server=server)
            await pipeline.close()

    @staticmethod
    async def _freeze_after_first_batch(writer: BatchWriter) -> None:
        """The first batch loads the open compliance days: freeze again once it is stored."""
        await writer.wait_for(lambda: writer.stored > 0)
        freeze_heap("first batch stored")

    def _collector(
        self, mqtt_settings: MqttSettings, queue: asyncio.Queue[Envelope]
    ) -> MqttCollector | CollectorProcess:
        """The MQTT intake: in a child process (a second core) unless configured otherwise."""
        s = self.settings.service
        if s.collector_process:
            return CollectorProcess(
                mqtt_settings,
                self.config,
                queue,
                log_setup=partial(configure_logging, s.log_level, s.log_format),
            )
        return MqttCollector(mqtt_settings, Decoder(self.config, mqtt_settings), queue)

    async def _started(self, server: uvicorn.Server) -> None:
        while not server.started:
            if server.should_exit:
                raise StartupError("the API server could not start (is the port taken?)")
            await asyncio.sleep(0.02)
        sock = server.servers[0].sockets[0].getsockname()
        self.api_url = f"http://{sock[0]}:{sock[1]}"
        if self.settings.demo:
            log.warning("demo mode: the API is open to anyone who can reach it", api=self.api_url)
        log.info(
            "stackwatch running",
            api=self.api_url,
            docs=f"{self.api_url}/docs",
            mqtt=self.mqtt_url,
            store=self.settings.influx.url or "sqlite",
            plants=list(self.config.plants),
        )
        self.ready.set()

    async def _shutdown(
        self,
        tasks: list[asyncio.Task[None]],
        *,
        collector: MqttCollector | CollectorProcess,
        writer: BatchWriter,
        server: uvicorn.Server,
    ) -> None:
        """Stop intake, let the writer store and acknowledge what is queued (while the broker
        connection is still up, so the acknowledgements reach it), then stop everything."""
        self._stop.set()
        collector.stop_intake()
        if not tasks[0].done():  # the writer
            try:
                await asyncio.wait_for(writer.wait_idle(), timeout=self.drain_timeout_s)
            except TimeoutError:
                log.warning(
                    "shutdown: queue not drained; the broker will redeliver the rest",
                    queued=writer.queued,
                )
        self.hub.close()  # open event streams end, so the API server can stop
        server.should_exit = True
        for task in tasks:
            if task.get_name() != "api":
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
