"""The running alerts pipeline: sources → lifecycle → dispatcher → notifiers, with the audit trail.

Data flow (one place to read the order of the stages, as Alertmanager's pipeline builder)::

    signal ──► AlertBook.observe ──► AlertStore.persist ──► audit ──► Dispatcher.update
    tick   ──► AlertBook.evaluate + NoDataWatch ─┘                  Dispatcher.flush ─► Fanout
                                                                    (silences, inhibition,
                                                                     grouping, repeat, escalation)

* :meth:`AlertRuntime.signal` takes one :class:`~alerts.model.Signal` from a source; the
  derive hook :meth:`AlertRuntime.observe` takes newly stored readings (no-data watch,
  maintenance windows from sensor status) and the compliance points (limit breaches).
* :meth:`AlertRuntime.tick` runs every ``flush_interval_s``: ``for`` durations and event
  resolution, silent sensors, then the dispatcher; notifications are delivered in background
  tasks so a slow channel never holds the pipeline, and every delivery (or failure) and every
  suppressed notification is written to the audit trail.
* :meth:`AlertRuntime.acknowledge` and the silence methods are what the API calls; they are
  audited with the acting user.

State lives in SQLite (alerts, transitions, silences, notification log) and the audit log, all
in the data directory, so a restart keeps ``for`` timers, acknowledgements and what was
already notified. The clock is injected (integer ns).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import structlog
from pydantic import SecretStr

from alerts.audit import AuditKind, AuditLog
from alerts.dispatch import Dispatcher
from alerts.inhibit import Inhibitor
from alerts.lifecycle import AlertBook, dropped
from alerts.matchers import Matcher
from alerts.model import Alert, Notification, Signal, Transition
from alerts.notify.fanout import Fanout
from alerts.notifylog import NotifyLog
from alerts.settings import AlertsConfig, AlertsSettings
from alerts.silences import Silence, SilenceBook, StatusSilencer
from alerts.sources import (
    LimitBreaches,
    NoDataWatch,
    compliance_signal,
    detection_signal,
    health_signal,
)
from alerts.store import AlertStore
from stream.compliance.events import ComplianceEvent
from stream.compliance.types import OperatingMode
from stream.detect.events import DetectionEvent
from stream.model import Reading, Status
from stream.plant import PlantConfig, Quantity
from stream.storage.base import Point

log = structlog.get_logger(__name__)

SYSTEM = "system"


class AlertRuntime:
    """See the module docstring. Build with :meth:`open`; call :meth:`close` at the end."""

    def __init__(
        self,
        config: AlertsConfig,
        plant: PlantConfig,
        *,
        data_dir: Path,
        fanouts: dict[str, Fanout],
        settings: AlertsSettings | None = None,
        audit_key: SecretStr | None = None,
        clock: Callable[[], int] = time.time_ns,
        on_transition: Callable[[Transition], None] | None = None,
    ) -> None:
        settings = settings or AlertsSettings()
        self.settings = settings
        self.config = config
        self._clock = clock
        self.on_transition = on_transition
        """Called with every transition after it is stored (e.g. the live stream)."""
        data_dir.mkdir(parents=True, exist_ok=True)
        self.store = AlertStore(data_dir / "alerts.db")
        self.silences = SilenceBook(data_dir / "alerts.db")
        self.notifylog = NotifyLog(data_dir / "alerts.db")
        self.audit = AuditLog(data_dir / "audit.jsonl", key=audit_key, clock=clock)
        self._fanouts = fanouts
        self._status = StatusSilencer(self.silences, settings.status_window_max_s)
        self._statuses: dict[tuple[str, str, str], str] = {}
        self._mode_sensors = {
            (key.plant, key.stack, key.sensor)
            for key, sensor in plant.sensors()
            if sensor.quantity is Quantity.MODE
        }
        self._breaches = LimitBreaches(plant)
        self._no_data = NoDataWatch(plant, intervals=settings.no_data_intervals)
        self._health: dict[str, bool] = {}
        self._deliveries: set[asyncio.Task[None]] = set()
        self.book: AlertBook = self.store.load_book(config.rules)
        self.dispatcher = Dispatcher(
            config.router, self.silences, Inhibitor(config.inhibit_rules), self.notifylog
        )
        now = clock()
        self._apply(self.book.evaluate(now))
        for alert in self.book.alerts():
            if alert.state.active:
                self.dispatcher.update(alert)
        self.audit.record(
            AuditKind.CONFIG_LOADED, SYSTEM, "alerts", {"digest": self._config_digest()}
        )

    def _config_digest(self) -> str:
        """Identifies the alert configuration in the audit trail (no secrets: names only)."""
        described = {
            "rules": self.config.rules.model_dump(mode="json"),
            "route": self.config.route.model_dump(mode="json", by_alias=True),
            "receivers": [r.name for r in self.config.receivers.receivers],
            "inhibit": [r.model_dump(mode="json") for r in self.config.inhibit_rules],
        }
        return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:16]

    # -- sources -------------------------------------------------------------------------

    def signal(self, signal: Signal) -> None:
        """Apply one signal now (persisted and audited before it is dispatched)."""
        self._apply(self.book.observe(signal, self._clock()))

    def on_compliance_event(self, event: ComplianceEvent) -> None:
        self.signal(compliance_signal(event, self._clock()))

    def on_detection_event(self, event: DetectionEvent) -> None:
        self.signal(detection_signal(event))

    def health(self, component: str, ok: bool, detail: str) -> None:
        """Report a service component's health; only changes become signals."""
        if self._health.get(component) == ok:
            return
        self._health[component] = ok
        self.signal(health_signal(component, ok, detail, self._clock()))

    def observe(self, readings: Sequence[Reading], points: Iterable[Point] = ()) -> None:
        """Newly stored readings (and the compliance points derived from them)."""
        now = self._clock()
        signals = self._no_data.seen(readings, now) + self._breaches.signals(points)
        for r in readings:
            key = (r.plant, r.stack, r.sensor)
            status = str(r.value) if key in self._mode_sensors else r.status.value
            if self._statuses.get(key) != status:
                self._statuses[key] = status
                self._status_changed(r, status)
        transitions: list[Transition] = []
        for s in signals:
            transitions += self.book.observe(s, now)
        self._apply(transitions)

    def _status_changed(self, r: Reading, status: str) -> None:
        if (r.plant, r.stack, r.sensor) in self._mode_sensors:
            try:
                mode = OperatingMode(round(r.value))
            except ValueError:
                return
            silence = self._status.observe(r.plant, r.stack, None, mode, r.ts_ns)
        else:
            silence = self._status.observe(r.plant, r.stack, r.sensor, Status(status), r.ts_ns)
        if silence is not None:
            kind = AuditKind.SILENCE_EXPIRED if silence.expired_ns else AuditKind.SILENCE_CREATED
            self.audit.record(kind, "plant_status", silence.id, _silence_data(silence))

    def _apply(self, transitions: Sequence[Transition]) -> None:
        self.store.persist(self.book, transitions)
        for t in transitions:
            self.audit.record_transition(t)
            if not dropped(t):
                self.dispatcher.update(t.alert)
            if self.on_transition is not None:
                self.on_transition(t)

    # -- officers ------------------------------------------------------------------------

    def acknowledge(self, fingerprint: str, by: str, comment: str) -> Alert:
        """Acknowledge a firing alert (stops its repeats and escalation); audited."""
        t = self.book.acknowledge(fingerprint, by, comment, self._clock())
        self._apply([t])
        return t.alert

    def add_silence(
        self,
        matchers: Sequence[Matcher | str],
        *,
        starts_ns: int | None,
        ends_ns: int,
        created_by: str,
        comment: str = "",
    ) -> Silence:
        now = self._clock()
        silence = self.silences.add(
            matchers,
            starts_ns=now if starts_ns is None else starts_ns,
            ends_ns=ends_ns,
            created_by=created_by,
            now_ns=now,
            comment=comment,
        )
        self.audit.record(AuditKind.SILENCE_CREATED, created_by, silence.id, _silence_data(silence))
        return silence

    def expire_silence(self, silence_id: str, by: str) -> Silence:
        silence = self.silences.expire(silence_id, by, self._clock())
        self.audit.record(AuditKind.SILENCE_EXPIRED, by, silence.id, _silence_data(silence))
        return silence

    # -- the loop ------------------------------------------------------------------------

    async def tick(self) -> list[Notification]:
        """Evaluate timers and silent sensors, then dispatch; returns what was sent off."""
        now = self._clock()
        transitions = self.book.evaluate(now)
        for s in self._no_data.check(now):
            transitions += self.book.observe(s, now)
        self._apply(transitions)
        result = self.dispatcher.flush(now)
        for muted in result.suppressed:
            self.audit.record(
                AuditKind.NOTIFICATION_SUPPRESSED,
                SYSTEM,
                muted.alert_fingerprint,
                {
                    "receiver": muted.receiver,
                    "group_key": muted.group_key,
                    "reason": muted.reason,
                    "by": muted.by,
                    "notify_reason": muted.notify_reason.value,
                },
            )
        for n in result.notifications:
            task = asyncio.create_task(self._deliver(n), name=f"notify-{n.receiver}")
            self._deliveries.add(task)
            task.add_done_callback(self._deliveries.discard)
        return result.notifications

    async def _deliver(self, n: Notification) -> None:
        fanout = self._fanouts.get(n.receiver)
        data: dict[str, Any] = {
            "receiver": n.receiver,
            "reason": n.reason.value,
            "status": n.status,
            "group_key": n.group_key,
            "level": n.escalation_level,
            "firing": [a.fingerprint for a in n.firing],
            "resolved": [a.fingerprint for a in n.resolved],
        }
        if fanout is None:  # the routes were checked against the receivers at start-up
            self.audit.record(AuditKind.NOTIFICATION_FAILED, SYSTEM, n.id, data)
            return
        results = await fanout.send(n)
        data["channels"] = {
            name: {"delivered": r.delivered, "retryable": r.retryable, "error": r.error}
            for name, r in results.items()
        }
        ok = all(r.delivered for r in results.values())
        kind = AuditKind.NOTIFICATION_SENT if ok else AuditKind.NOTIFICATION_FAILED
        self.audit.record(kind, SYSTEM, n.id, data)

    async def run(
        self,
        stop: asyncio.Event,
        health: Callable[[], Iterable[tuple[str, bool, str]]] | None = None,
    ) -> None:
        """Tick every ``flush_interval_s`` until ``stop`` is set; ``health`` (component, ok,
        detail) is polled each tick for the service-health alerts."""
        while not stop.is_set():
            try:
                for component, ok, detail in health() if health else ():
                    self.health(component, ok, detail)
                await self.tick()
            except Exception as err:  # never let one bad tick end alerting
                log.exception("alert evaluation failed", error=str(err))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.flush_interval_s)

    async def wait_deliveries(self) -> None:
        """Wait for notifications being delivered (tests, shutdown)."""
        while self._deliveries:
            await asyncio.gather(*self._deliveries, return_exceptions=True)

    async def close(self, timeout_s: float = 10.0) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wait_deliveries(), timeout_s)
        for task in self._deliveries:
            task.cancel()
        self.audit.close()
        self.notifylog.close()
        self.silences.close()
        self.store.close()


def _silence_data(silence: Silence) -> dict[str, Any]:
    return {
        "matchers": [str(m) for m in silence.matchers],
        "starts_ns": silence.starts_ns,
        "ends_ns": silence.ends_ns,
        "comment": silence.comment,
        "source": silence.source,
        "expired_ns": silence.expired_ns,
    }
