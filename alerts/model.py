"""The alert data model shared by every stage of the alerts pipeline (a leaf module).

Sources (compliance events, detection, no-data watchdog, service health) report
:class:`Signal` s: "this condition holds / no longer holds for these labels, at this time".
The lifecycle stage turns signals into :class:`Alert` s identified by a stable
:func:`fingerprint` of their rule and labels, and records every change as a
:class:`Transition`. The dispatcher groups alerts per route into :class:`Notification` s,
which notifiers deliver.

>>> fp = fingerprint("limit_breach", {"plant": "demo", "stack": "boiler1", "pollutant": "nox"})
>>> fp == fingerprint("limit_breach", {"pollutant": "nox", "stack": "boiler1", "plant": "demo"})
True
>>> len(fp)
16
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

Labels = Mapping[str, str]
"""Identifying labels: ``plant``, ``stack`` and, where they apply, ``sensor`` and ``pollutant``."""

_NO_LABELS: Labels = MappingProxyType({})


class Severity(StrEnum):
    """How urgent an alert is (ordered: ``info`` < ``warning`` < ``critical``)."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class State(StrEnum):
    """Where an alert is in its lifecycle.

    ``pending``: the condition holds but not yet for the rule's ``for`` duration (nothing is
    notified). ``firing``: it held long enough. ``acknowledged``: an officer took it (by whom
    and why are recorded); it stays acknowledged until it resolves. ``resolved``: the
    condition cleared (past the recovery threshold, if the rule has one). A pending alert
    whose condition clears is dropped without ever having fired (state ``resolved`` with
    ``fired_ns`` None, never notified).
    """

    PENDING = "pending"
    FIRING = "firing"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"

    @property
    def active(self) -> bool:
        """Firing or acknowledged: the alert is notified about and shown as open."""
        return self in (State.FIRING, State.ACKNOWLEDGED)


def fingerprint(rule: str, labels: Labels) -> str:
    """Stable identity of an alert: 16 hex digits of SHA-256 over the rule and sorted labels.

    The same condition on the same plant/stack/sensor/pollutant always maps to the same alert,
    across restarts and processes, which is what de-duplication keys on.
    """
    canonical = json.dumps([rule, sorted(labels.items())], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Signal:
    """One observation of a condition by a source.

    ``active`` says whether the condition holds at ``ts_ns``. For a level condition (a value
    against a threshold) the source sends ``value``/``threshold`` and the lifecycle applies
    the rule's hysteresis; for a one-off event (a drift event, an invalid day) the source sends
    ``active=True`` once and the rule's ``resolve_after`` ends it. ``rule`` names the alert
    rule (see :class:`RuleName`); ``summary`` is the human-readable line for notifications.
    """

    rule: str
    labels: Labels
    active: bool
    ts_ns: int
    summary: str = ""
    value: float | None = None
    threshold: float | None = None
    severity: Severity | None = None
    """Overrides the rule's default severity when set."""

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.rule, self.labels)


class RuleName(StrEnum):
    """The alert rules StackWatch raises (the ``rule`` of signals and alerts)."""

    LIMIT_BREACH = "limit_breach"  # a validated short-term average above its ELV
    DAILY_LIMIT = "daily_limit_exceeded"  # a complete valid day above the daily ELV
    FORECAST = "forecast_prealarm"  # today's projection exceeds the daily ELV
    INVALID_DAY = "invalid_day"
    INVALID_DAYS_EXCEEDED = "invalid_days_exceeded"
    CALIBRATION_RANGE = "calibration_range"
    QAL3_DRIFT = "qal3_drift"
    QAL3_PRECISION = "qal3_precision"
    ANOMALY = "anomaly"  # the detectors flag a reading as unusual
    SENSOR_FAULT = "sensor_fault"  # a fault rule: out of range, stuck, rate of change, dropout
    SENSOR_DRIFT = "sensor_drift"  # "sensor drift suspected"
    NO_DATA = "no_data"  # a sensor silent for longer than its grace period
    SERVICE_HEALTH = "service_health"  # broker or store unreachable


@dataclass(frozen=True, slots=True)
class Alert:
    """The current state of one alert (an immutable snapshot; changes make a new one)."""

    fingerprint: str
    rule: str
    labels: Labels
    severity: Severity
    state: State
    summary: str
    started_ns: int
    """When the condition was first seen (pending since)."""
    updated_ns: int
    """Time of the last state change or value update."""
    value: float | None = None
    threshold: float | None = None
    fired_ns: int | None = None
    acknowledged_ns: int | None = None
    acknowledged_by: str | None = None
    ack_comment: str | None = None
    resolved_ns: int | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    """One change of an alert's state, as recorded in the audit trail and the history.

    ``previous`` is None for a new alert. ``actor`` is who caused it: ``system`` for
    evaluation, a user name for an acknowledgement.
    """

    alert: Alert
    previous: State | None
    ts_ns: int
    actor: str = "system"
    comment: str | None = None


class NotifyReason(StrEnum):
    """Why a notification is sent (the dispatcher's explicit dedup decision)."""

    FIRST = "first"  # first notification of the group
    NEW_ALERTS = "new_alerts"  # alerts were added to a group already notified
    RESOLVED = "resolved"  # alerts resolved: sent promptly, not a group interval later
    REPEAT = "repeat"  # repeat interval elapsed with alerts still firing
    ESCALATION = "escalation"  # not acknowledged in time: the next contact level


@dataclass(frozen=True, slots=True)
class Notification:
    """One message for one receiver about one group of alerts.

    ``group_key`` identifies the group (route plus grouping label values);
    ``group_labels`` are those label values. ``firing`` and ``resolved`` are the group's alerts
    in those states at the time of sending (acknowledged alerts count as firing).
    ``escalation_level`` is 0 for the route's first contacts, 1 for the next level, ...
    ``id`` is unique per notification (idempotency key for receivers).
    """

    id: str
    receiver: str
    group_key: str
    group_labels: Labels
    reason: NotifyReason
    ts_ns: int
    firing: tuple[Alert, ...] = ()
    resolved: tuple[Alert, ...] = ()
    escalation_level: int = 0
    extra: Mapping[str, str] = field(default_factory=lambda: _NO_LABELS)

    @property
    def status(self) -> str:
        """``firing`` while any alert of the group fires, else ``resolved``."""
        return "firing" if self.firing else "resolved"

    @property
    def title(self) -> str:
        """A one-line subject, e.g. ``[FIRING:2] limit_breach demo/boiler1``."""
        where = "/".join(v for k, v in self.group_labels.items() if k in ("plant", "stack"))
        rules = sorted({a.rule for a in (*self.firing, *self.resolved)})
        count = len(self.firing) if self.firing else len(self.resolved)
        return f"[{self.status.upper()}:{count}] {', '.join(rules)} {where}".rstrip()
