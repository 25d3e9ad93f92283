"""The alert lifecycle: signals in, alert state changes (:class:`~alerts.model.Transition`) out.

:class:`AlertBook` holds one :class:`~alerts.model.Alert` per fingerprint (rule + labels, so
repeating a signal never duplicates an alert). It is pure and deterministic: no I/O, and the
clock is the ``now_ns`` argument of every call (integer ns since the epoch, UTC). Lifecycle
times are those of observation (``now_ns``), not the signals' ``ts_ns``: a compliance event
carries the start of the day it is about, and a replayed signal would otherwise fire or
resolve at once.

Rules (per :class:`~alerts.rules.RuleConfig`):

* **Condition.** A level signal (``value`` and ``threshold`` set, rule with a
  ``recovery_ratio``) holds iff ``value > threshold``, clears iff
  ``value <= threshold × recovery_ratio``; in between (or NaN) it keeps the current state, so
  a value oscillating around the limit never flaps. Any other signal holds iff ``active``.
* **Start.** A condition that holds on a new or resolved fingerprint starts an episode: state
  ``pending`` (``started_ns`` = now), or ``firing`` at once if ``for_s`` is 0.
* **Fire.** A pending alert fires once it has held for ``for_s`` (in :meth:`AlertBook.evaluate`
  or on the next signal).
* **Resolve.** The condition clearing resolves a firing or acknowledged alert and drops a
  pending one (state ``resolved`` with ``fired_ns`` None, see :func:`dropped`). An alert of a
  rule with ``resolve_after_s`` resolves by itself that long after its last occurrence
  (``last_seen_ns``). An alert of a rule disabled (or removed) since resolves on evaluate.
* **Acknowledge.** Only a firing alert can be acknowledged (by whom, with a comment); it stays
  acknowledged until it resolves. A new episode starts unacknowledged.
* **Updates.** A signal that keeps a condition holding updates value, threshold, summary and
  ``updated_ns`` without a transition. Severity is the signal's or the rule's; within an episode
  it only rises (no flapping notifications), and a rise while firing or acknowledged returns a
  transition with ``previous == state`` so the dispatcher can re-notify (an escalation).

For the signal's alert, ``observe(signal, t)`` behaves as ``evaluate(t)`` followed by the
signal, so the outcome does not depend on how often ``evaluate`` runs. The book's full state is its
:class:`AlertRecord` s (the snapshot plus the last occurrence time), so a store can rebuild it
after a restart with ``pending`` since-times and event expiry intact (unlike Prometheus #422).

>>> from alerts.model import Signal, State
>>> book = AlertBook()
>>> sig = Signal("no_data", {"plant": "demo", "stack": "boiler1"}, active=True, ts_ns=0)
>>> [(t.previous, t.alert.state.value) for t in book.observe(sig, now_ns=0)]
[(None, 'pending')]
>>> [t.alert.state.value for t in book.evaluate(now_ns=60 * 10**9)]
['firing']
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass
from types import MappingProxyType

from alerts.model import Alert, Severity, Signal, State, Transition
from alerts.rules import RuleConfig, RulesConfig
from stream.model import NS_PER_S


class AlertError(Exception):
    """A refused lifecycle operation (a caller error: never worth retrying)."""

    retryable = False


class UnknownAlertError(AlertError, LookupError):
    """No alert has this fingerprint."""


class InvalidTransitionError(AlertError, ValueError):
    """The alert is not in a state that allows the operation."""


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """The persisted state of one fingerprint: its snapshot and its last occurrence.

    ``alert.started_ns`` is the pending since-time (the ``for`` clock); ``last_seen_ns`` is
    when the condition was last observed holding (the ``resolve_after`` clock).
    """

    alert: Alert
    last_seen_ns: int | None


def dropped(transition: Transition) -> bool:
    """True for a pending alert whose condition cleared before it fired (never notified)."""
    return (
        transition.alert.state is State.RESOLVED
        and transition.previous is State.PENDING
        and transition.alert.fired_ns is None
    )


def recovery_threshold(threshold: float, recovery_ratio: float) -> float:
    """The value at or below which a level condition clears (``threshold × ratio``).

    For a negative threshold the band lies below it too (``threshold × (2 − ratio)``).
    """
    return threshold * recovery_ratio if threshold >= 0 else threshold * (2 - recovery_ratio)


def _holds(signal: Signal, config: RuleConfig, holding: bool) -> bool:
    """Whether the signal's condition holds, given whether it held so far (hysteresis)."""
    ratio = config.recovery_ratio
    if ratio is None or signal.value is None or signal.threshold is None:
        return signal.active
    if signal.value > signal.threshold:
        return True
    if signal.value <= recovery_threshold(signal.threshold, ratio):
        return False
    return holding  # in the band (or NaN): keep the state


def _ns(seconds: float) -> int:
    return round(seconds * NS_PER_S)


def _max_severity(a: Severity, b: Severity) -> Severity:
    return b if b.rank > a.rank else a


class AlertBook:
    """The current alerts by fingerprint, and the lifecycle rules that change them.

    Not thread-safe; use it from one task. Every method that changes state returns the
    transitions it made (oldest first), for the store's history and the dispatcher.
    ``observe`` raises ValueError for a signal of a rule that does not exist.
    """

    def __init__(
        self, rules: RulesConfig | None = None, records: Iterable[AlertRecord] = ()
    ) -> None:
        self._rules = rules if rules is not None else RulesConfig()
        self._records: dict[str, AlertRecord] = {r.alert.fingerprint: r for r in records}
        self._dirty: set[str] = set()

    @property
    def rules(self) -> RulesConfig:
        return self._rules

    # -- queries ---------------------------------------------------------------------------

    def get(self, fingerprint: str) -> Alert | None:
        record = self._records.get(fingerprint)
        return record.alert if record is not None else None

    def alerts(self) -> list[Alert]:
        """Every alert, resolved ones included (ordered by fingerprint)."""
        return [self._records[fp].alert for fp in sorted(self._records)]

    def active(self) -> list[Alert]:
        """Firing and acknowledged alerts (ordered by fingerprint)."""
        return [a for a in self.alerts() if a.state.active]

    def __len__(self) -> int:
        return len(self._records)

    # -- persistence -----------------------------------------------------------------------

    def records(self) -> list[AlertRecord]:
        """The full state, to persist or to rebuild a book with ``AlertBook(rules, records)``."""
        return [self._records[fp] for fp in sorted(self._records)]

    def dirty(self) -> list[AlertRecord]:
        """Records changed since they were last passed to :meth:`mark_clean` (latest versions)."""
        return [self._records[fp] for fp in sorted(self._dirty)]

    def mark_clean(self, records: Iterable[AlertRecord]) -> None:
        """Forget the changes in ``records`` once stored; a record changed since stays dirty."""
        for record in records:
            fp = record.alert.fingerprint
            if self._records.get(fp) is record:
                self._dirty.discard(fp)

    # -- lifecycle -------------------------------------------------------------------------

    def observe(self, signal: Signal, now_ns: int) -> list[Transition]:
        """Apply one signal at ``now_ns`` (after the :meth:`evaluate` of ``now_ns``)."""
        config = self._rules.rule(signal.rule)
        fp = signal.fingerprint
        record = self._records.get(fp)
        if not config.enabled:  # nothing new; an alert left open resolves (as on evaluate)
            if record is None or record.alert.state is State.RESOLVED:
                return []
            return self._due(record, config, now_ns)
        out: list[Transition] = []
        if record is not None:
            out += self._due(record, config, now_ns)
            record = self._records[fp]
        holding = record is not None and record.alert.state is not State.RESOLVED
        if _holds(signal, config, holding):
            if record is None or not holding:
                out.append(self._start(signal, config, record, now_ns))
            else:
                out += self._update(record, signal, config, now_ns)
        elif record is not None and holding:
            out.append(self._resolve(record, now_ns, signal=signal))
        return out

    def evaluate(self, now_ns: int) -> list[Transition]:
        """Fire pending alerts whose ``for`` elapsed; resolve expired events and alerts of
        disabled or removed rules."""
        out: list[Transition] = []
        for fp in sorted(self._records):
            record = self._records[fp]
            if record.alert.state is not State.RESOLVED:
                out += self._due(record, self._rules.get(record.alert.rule), now_ns)
        return out

    def acknowledge(self, fingerprint: str, by: str, comment: str, now_ns: int) -> Transition:
        """Acknowledge a firing alert (the only state that allows it).

        Raises ValueError for an empty ``by``, :class:`UnknownAlertError`, or
        :class:`InvalidTransitionError` for a pending, acknowledged or resolved alert.
        """
        by = by.strip()
        if not by:
            raise ValueError("acknowledging an alert needs a non-empty 'by' (who takes it)")
        record = self._records.get(fingerprint)
        if record is None:
            raise UnknownAlertError(f"no alert with fingerprint {fingerprint!r}")
        alert = record.alert
        if alert.state is State.ACKNOWLEDGED:
            raise InvalidTransitionError(
                f"alert {fingerprint} ({alert.rule}) is already acknowledged by "
                f"{alert.acknowledged_by}"
            )
        if alert.state is not State.FIRING:
            raise InvalidTransitionError(
                f"alert {fingerprint} ({alert.rule}) is {alert.state.value}: only a firing "
                "alert can be acknowledged"
            )
        new = dataclasses.replace(
            alert,
            state=State.ACKNOWLEDGED,
            updated_ns=now_ns,
            acknowledged_ns=now_ns,
            acknowledged_by=by,
            ack_comment=comment,
        )
        return self._transition(record, new, now_ns, actor=by, comment=comment)

    # -- internals -------------------------------------------------------------------------

    def _put(self, record: AlertRecord) -> None:
        self._records[record.alert.fingerprint] = record
        self._dirty.add(record.alert.fingerprint)

    def _transition(
        self,
        record: AlertRecord | None,
        new: Alert,
        now_ns: int,
        *,
        last_seen_ns: int | None = None,
        actor: str = "system",
        comment: str | None = None,
    ) -> Transition:
        previous = record.alert.state if record is not None else None
        seen = last_seen_ns
        if seen is None and record is not None:
            seen = record.last_seen_ns
        self._put(AlertRecord(new, seen))
        return Transition(new, previous, now_ns, actor=actor, comment=comment)

    def _start(
        self, signal: Signal, config: RuleConfig, record: AlertRecord | None, now_ns: int
    ) -> Transition:
        fires = config.for_s == 0
        new = Alert(
            fingerprint=signal.fingerprint,
            rule=str(signal.rule),
            labels=MappingProxyType(dict(signal.labels)),
            severity=signal.severity or config.severity,
            state=State.FIRING if fires else State.PENDING,
            summary=signal.summary,
            started_ns=now_ns,
            updated_ns=now_ns,
            value=signal.value,
            threshold=signal.threshold,
            fired_ns=now_ns if fires else None,
        )
        return self._transition(record, new, now_ns, last_seen_ns=now_ns)

    def _update(
        self, record: AlertRecord, signal: Signal, config: RuleConfig, now_ns: int
    ) -> list[Transition]:
        alert = record.alert
        severity = _max_severity(alert.severity, signal.severity or config.severity)
        value = signal.value if signal.value is not None else alert.value
        threshold = signal.threshold if signal.threshold is not None else alert.threshold
        summary = signal.summary or alert.summary
        changed = (
            severity is not alert.severity
            or summary != alert.summary
            or threshold != alert.threshold
            or not _same_value(value, alert.value)
        )
        if not changed:
            if record.last_seen_ns != now_ns:
                self._put(AlertRecord(alert, now_ns))
            return []
        new = dataclasses.replace(
            alert,
            severity=severity,
            value=value,
            threshold=threshold,
            summary=summary,
            updated_ns=now_ns,
        )
        if severity is not alert.severity and alert.state.active:
            comment = f"severity raised from {alert.severity.value} to {severity.value}"
            return [self._transition(record, new, now_ns, last_seen_ns=now_ns, comment=comment)]
        self._put(AlertRecord(new, now_ns))
        return []

    def _resolve(
        self,
        record: AlertRecord,
        now_ns: int,
        *,
        signal: Signal | None = None,
        comment: str | None = None,
    ) -> Transition:
        alert = record.alert
        new = dataclasses.replace(
            alert, state=State.RESOLVED, updated_ns=now_ns, resolved_ns=now_ns
        )
        if signal is not None:  # keep the value that cleared it, for the record
            new = dataclasses.replace(
                new,
                value=signal.value if signal.value is not None else alert.value,
                threshold=signal.threshold if signal.threshold is not None else alert.threshold,
                summary=signal.summary or alert.summary,
            )
        if comment is None and alert.state is State.PENDING:
            comment = "cleared before firing (never notified)"
        return self._transition(record, new, now_ns, comment=comment)

    def _due(self, record: AlertRecord, config: RuleConfig | None, now_ns: int) -> list[Transition]:
        """The time-driven changes of an unresolved alert at ``now_ns``."""
        if config is None or not config.enabled:
            return [self._resolve(record, now_ns, comment="rule disabled or removed")]
        out: list[Transition] = []
        alert = record.alert
        fire_at = alert.started_ns + _ns(config.for_s)
        expire_at = (
            record.last_seen_ns + _ns(config.resolve_after_s)
            if config.resolve_after_s is not None and record.last_seen_ns is not None
            else None
        )
        # An event that expired before its `for` elapsed never held long enough to fire.
        if (
            alert.state is State.PENDING
            and fire_at <= now_ns
            and (expire_at is None or fire_at < expire_at)
        ):
            new = dataclasses.replace(alert, state=State.FIRING, fired_ns=now_ns, updated_ns=now_ns)
            out.append(self._transition(record, new, now_ns))
            record = self._records[alert.fingerprint]
        if expire_at is not None and expire_at <= now_ns:
            comment = f"no occurrence for {config.resolve_after_s:g} s"
            if record.alert.state is State.PENDING:
                comment += "; cleared before firing (never notified)"
            out.append(self._resolve(record, now_ns, comment=comment))
        return out


def _same_value(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return a == b or (math.isnan(a) and math.isnan(b))
