"""The dispatcher: from alert snapshots to grouped, de-duplicated notifications.

:meth:`Dispatcher.update` takes each :class:`~alerts.model.Alert` snapshot the lifecycle
produces (the latest per fingerprint wins; ``pending`` ones are ignored). The service calls
:meth:`Dispatcher.flush` with the current time, typically every second; it returns the
notifications due now and the suppressions recorded now, and marks both in the
:class:`~alerts.notifylog.NotifyLog` (delivery is the notifier's job, see that module).

Per route, alerts are grouped (:meth:`~alerts.routing.ResolvedRoute.group`); per group and
receiver, the pure function :func:`decide` makes the dedup decision with an explicit
:class:`~alerts.model.NotifyReason` (Alertmanager's dedup stage):

* ``first``: ``group_wait`` after the earliest ``fired_ns`` of a group nobody was told about,
  and at least ``group_interval`` after the receiver's previous announcement (so a flapping
  group cannot notify faster than that);
* ``new_alerts``: alerts (or new firing episodes of known ones: resolve-then-refire) joined a
  group already notified, at most every ``group_interval``;
* ``resolved``: an alert the receiver was told about resolved — at the next flush, not a
  group interval later (Alertmanager #1510); only with ``send_resolved``;
* ``repeat``: every ``repeat_interval`` while an alert of the group is firing and not
  acknowledged (repeat-until-ack); acknowledged alerts are listed but trigger no repeats;
* ``escalation``: escalation level ``n`` of the route, once per alert episode, when the
  alert is still firing and unacknowledged ``after_s`` after it fired. Level receivers later
  get the ``resolved`` notice of the alerts they were escalated.

A notification lists the group's alerts that are not muted: announcements (first, new,
repeat, escalation) all of them, a resolved notice those the receiver already knew. Muted
alerts — silenced (:class:`~alerts.silences.SilenceBook`) or inhibited
(:class:`~alerts.inhibit.Inhibitor`) — are left out, and every notification that would have
gone out for them is recorded as :class:`~alerts.notifylog.Suppressed`: their announcement
(once ``group_wait`` after they fired), their escalations and their resolution. Reminders
(repeats) for muted alerts are not recorded one by one.

>>> from stream.model import NS_PER_S
>>> route = Router.from_mapping({"receivers": ["ops"], "group_wait_s": 30}).routes()[0]
>>> state = GroupState(firing={"a1": 0}, unacked=frozenset({"a1"}))
>>> decide(None, state, 10 * NS_PER_S, route) is None  # still in group_wait
True
>>> decide(None, state, 30 * NS_PER_S, route)
<NotifyReason.FIRST: 'first'>
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import structlog

from alerts.inhibit import InhibitionIndex, Inhibitor
from alerts.matchers import alert_labels
from alerts.model import Alert, Notification, NotifyReason, State
from alerts.notifylog import LogEntry, MuteReason, NotifyLog, Suppressed
from alerts.routing import ResolvedRoute, Router
from alerts.silences import Silence, SilenceBook

__all__ = [
    "DispatchResult",
    "Dispatcher",
    "GroupState",
    "LogEntry",
    "Suppressed",
    "decide",
]

log = structlog.get_logger(__name__)

_ANNOUNCE = (NotifyReason.FIRST, NotifyReason.NEW_ALERTS, NotifyReason.REPEAT)


@dataclass(frozen=True, slots=True)
class GroupState:
    """What a group holds for a decision, muted alerts left out.

    ``firing``: active alerts (firing or acknowledged), ``fingerprint -> fired_ns``;
    ``unacked``: those still firing (not acknowledged); ``resolved``: resolved alerts awaiting
    their notice, ``fingerprint -> fired_ns`` of the episode that resolved.
    """

    firing: Mapping[str, int] = field(default_factory=dict)
    unacked: frozenset[str] = frozenset()
    resolved: Mapping[str, int] = field(default_factory=dict)

    @property
    def since_ns(self) -> int | None:
        """When the group's current episode began: the earliest ``fired_ns``."""
        return min(self.firing.values(), default=None)

    @classmethod
    def of(cls, active: Iterable[Alert], resolved: Iterable[Alert] = ()) -> GroupState:
        active = list(active)
        return cls(
            firing={a.fingerprint: _fired(a) for a in active},
            unacked=frozenset(a.fingerprint for a in active if a.state is State.FIRING),
            resolved={a.fingerprint: _fired(a) for a in resolved},
        )


def decide(
    entry: LogEntry | None,
    state: GroupState,
    now_ns: int,
    route: ResolvedRoute,
    level: int = 0,
) -> NotifyReason | None:
    """Whether the receiver of ``entry`` gets a notification about the group now, and why.

    ``entry`` is what the receiver was told (None: nothing yet); ``level`` 0 decides for the
    route's receivers, ``n`` for its n-th escalation level. Pure: the same inputs always give
    the same answer.
    """
    told: Mapping[str, int] = entry.firing if entry is not None else {}
    tick = entry.tick_ns if entry is not None else None
    resolved_due = route.send_resolved and any(
        told.get(fp) == fired for fp, fired in state.resolved.items()
    )
    if level > 0:
        after = route.escalation[level - 1].after_ns
        if any(
            fp in state.unacked and told.get(fp) != fired and now_ns >= fired + after
            for fp, fired in state.firing.items()
        ):
            return NotifyReason.ESCALATION
        return NotifyReason.RESOLVED if resolved_due else None
    new = [fp for fp, fired in state.firing.items() if told.get(fp) != fired]
    known = len(state.firing) - len(new)
    interval_ok = tick is None or now_ns >= tick + route.group_interval_ns
    if new and interval_ok:
        if known:
            return NotifyReason.NEW_ALERTS
        since = state.since_ns
        if since is not None and now_ns >= since + route.group_wait_ns:
            return NotifyReason.FIRST
    if resolved_due:
        return NotifyReason.RESOLVED
    if known and state.unacked and tick is not None and now_ns >= tick + route.repeat_interval_ns:
        return NotifyReason.REPEAT
    return None


@dataclass(frozen=True, slots=True)
class DispatchResult:
    """What one flush produced: notifications to deliver, suppressions recorded."""

    notifications: list[Notification] = field(default_factory=list)
    suppressed: list[Suppressed] = field(default_factory=list)


Mute = tuple[MuteReason, str]


@dataclass(slots=True)
class _Group:
    route: ResolvedRoute
    key: str
    labels: dict[str, str]
    active: list[Alert] = field(default_factory=list)
    resolved: list[Alert] = field(default_factory=list)
    muted_active: list[tuple[Alert, Mute]] = field(default_factory=list)
    muted_resolved: list[tuple[Alert, Mute]] = field(default_factory=list)


class Dispatcher:
    """Groups, de-duplicates, mutes and escalates alert notifications (see module doc).

    Not thread-safe: call :meth:`update` and :meth:`flush` from one thread (the event loop).
    After a restart, feed it the open alerts again before the first flush; the notify log
    remembers what was already sent.
    """

    def __init__(
        self,
        router: Router,
        silences: SilenceBook,
        inhibitor: Inhibitor,
        notifylog: NotifyLog,
        *,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self._router = router
        self._silences = silences
        self._inhibitor = inhibitor
        self._log = notifylog
        self._new_id = new_id
        self._active: dict[str, Alert] = {}
        self._resolved: dict[tuple[str, int], Alert] = {}
        self._last_resolved: dict[str, int] = {}  # fingerprint -> last resolved episode
        # Flushes mostly see the same alerts and silences: reuse the inhibition index while
        # the active alerts are unchanged, and silence matches while the silences are.
        self._inhibition: InhibitionIndex | None = None
        self._silenced: tuple[tuple[str, ...], dict[tuple[str, str], list[str]]] = ((), {})

    def update(self, alert: Alert) -> None:
        """Take the latest snapshot of an alert; stale (out-of-order) snapshots are ignored."""
        if alert.state is State.PENDING:
            return
        fp = alert.fingerprint
        current = self._active.get(fp)
        if (
            current is not None
            and _fired(current) == _fired(alert)
            and alert.updated_ns < current.updated_ns
        ):
            return  # an older snapshot of the same episode
        if alert.state.active:
            if self._last_resolved.get(fp, -1) >= _fired(alert):
                return  # a late snapshot of an episode that already resolved
            self._active[fp] = alert
            self._inhibition = None
            return
        if alert.fired_ns is None:
            return  # resolved while pending: it never fired, nobody was told
        if current is not None and _fired(current) <= alert.fired_ns:
            del self._active[fp]
            self._inhibition = None
        self._resolved[(fp, alert.fired_ns)] = alert
        self._last_resolved[fp] = max(self._last_resolved.get(fp, -1), alert.fired_ns)

    def alerts(self) -> list[Alert]:
        """The active alerts the dispatcher holds, by fingerprint."""
        return [self._active[fp] for fp in sorted(self._active)]

    def _mute(
        self, alert: Alert, silences: list[Silence], inhibition: InhibitionIndex
    ) -> Mute | None:
        """Why an alert is muted now (silences take precedence over inhibition), or None."""
        by = self._silencing(alert, silences)
        if by:
            return "silenced", ",".join(by)
        rule = inhibition.inhibited_by(alert)
        return None if rule is None else ("inhibited", rule.description)

    def _silencing(self, alert: Alert, silences: list[Silence]) -> list[str]:
        cache = self._silenced[1]
        key = (alert.fingerprint, alert.severity.value)  # everything matchers can see
        found = cache.get(key)
        if found is None:
            labels = alert_labels(alert)
            found = cache[key] = [s.id for s in silences if s.matches(labels)]
        return found

    def flush(self, now_ns: int) -> DispatchResult:
        """Decide and return what is due at ``now_ns``; log it as sent (atomically)."""
        active = list(self._active.values())
        if self._inhibition is None:
            self._inhibition = self._inhibitor.prepare(active)
        silences = self._silences.active(now_ns)
        ids = tuple(s.id for s in silences)
        if ids != self._silenced[0] or len(self._silenced[1]) > 4 * len(active) + 1024:
            self._silenced = ids, {}  # new silences, or stale alerts piled up
        groups: dict[str, _Group] = {}
        for alert in [*active, *self._resolved.values()]:
            mute = self._mute(alert, silences, self._inhibition)
            for route in self._router.routes_for(alert):
                key, labels = route.group(alert)
                group = groups.get(key)
                if group is None:
                    group = groups[key] = _Group(route, key, labels)
                if alert.state.active and mute is None:
                    group.active.append(alert)
                elif mute is None:
                    group.resolved.append(alert)
                elif alert.state.active:
                    group.muted_active.append((alert, mute))
                else:
                    group.muted_resolved.append((alert, mute))
        result = DispatchResult()
        changed: list[LogEntry] = []
        for key in sorted(groups):
            group = groups[key]
            route = group.route
            stages = [(r, 0) for r in route.receivers] + [
                (r, i + 1) for i, level in enumerate(route.escalation) for r in level.receivers
            ]
            for receiver, level in stages:
                entry = self._log.get(receiver, key, level)
                stage = _Stage(group, receiver, level, entry, now_ns)
                result.suppressed.extend(stage.record_muted())
                note = stage.notify(self._new_id)
                if note is not None:
                    result.notifications.append(note)
                new_entry = stage.entry()
                if new_entry != entry and (entry is not None or _has_data(new_entry)):
                    changed.append(new_entry)
        if changed or result.notifications or result.suppressed:
            self._log.commit(changed, result.notifications, result.suppressed)
        # Every resolved alert was notified, suppressed or pruned above: drop them.
        self._resolved.clear()
        for n in result.notifications:
            log.info(
                "notification_due",
                notification_id=n.id,
                receiver=n.receiver,
                group_key=n.group_key,
                reason=n.reason.value,
                escalation_level=n.escalation_level,
                firing=len(n.firing),
                resolved=len(n.resolved),
            )
        for s in result.suppressed:
            log.info(
                "notification_suppressed",
                fingerprint=s.alert_fingerprint,
                receiver=s.receiver,
                group_key=s.group_key,
                reason=s.reason,
                by=s.by,
                notify_reason=s.notify_reason.value,
            )
        return result


class _Stage:
    """One receiver of one group at one level during a flush: the entry being updated."""

    def __init__(
        self, group: _Group, receiver: str, level: int, entry: LogEntry | None, now_ns: int
    ) -> None:
        self.group, self.receiver, self.level, self.now_ns = group, receiver, level, now_ns
        self.told: dict[str, int] = dict(entry.firing) if entry else {}
        self.muted: dict[str, int] = dict(entry.muted) if entry else {}
        self.done: dict[str, int] = dict(entry.resolved) if entry else {}
        self.tick = entry.tick_ns if entry else None
        self.sent = entry.sent_ns if entry else None

    def entry(self) -> LogEntry:
        return LogEntry(
            self.receiver,
            self.group.key,
            self.level,
            self.tick,
            self.sent,
            dict(self.told),
            dict(self.done),
            dict(self.muted),
        )

    def is_told(self, alert: Alert) -> bool:
        return self.told.get(alert.fingerprint) == _fired(alert)

    def record_muted(self) -> list[Suppressed]:
        """Suppressions due for the muted alerts, once per episode; updates the entry."""
        group, route, out = self.group, self.group.route, []
        for alert, mute in group.muted_active:
            fp, fired = alert.fingerprint, _fired(alert)
            if self.told.get(fp) == fired:
                del self.told[fp]  # told before the mute: remember it for its resolution
                self.muted[fp] = fired
            elif self.muted.get(fp) != fired and _due(alert, route, self.level, self.now_ns):
                if self.level:
                    reason = NotifyReason.ESCALATION
                elif any(self.is_told(a) for a in group.active):
                    reason = NotifyReason.NEW_ALERTS
                else:
                    reason = NotifyReason.FIRST
                out.append(self._suppressed(alert, mute, reason))
                self.muted[fp] = fired
        for alert, mute in group.muted_resolved:
            fp, fired = alert.fingerprint, _fired(alert)
            if self.told.get(fp) == fired or self.muted.get(fp) == fired:
                if route.send_resolved:
                    out.append(self._suppressed(alert, mute, NotifyReason.RESOLVED))
                _forget(self.told, alert)
                _forget(self.muted, alert)
                self.done[fp] = fired
        # No longer muted: announced like any other alert (if it is still firing).
        for alert in (*group.active, *group.resolved):
            if self.muted.get(alert.fingerprint) == _fired(alert):
                del self.muted[alert.fingerprint]
        return out

    def notify(self, new_id: Callable[[], str]) -> Notification | None:
        """The dedup decision for the unmuted alerts and the notification, if one is due."""
        group, route, now_ns = self.group, self.group.route, self.now_ns
        state = GroupState.of(group.active, group.resolved)
        reason = decide(self.entry(), state, now_ns, route, self.level)
        told_resolved = [a for a in group.resolved if self.is_told(a)]
        note = None
        if reason is not None:
            known = [a for a in group.active if self.is_told(a)]
            extra: dict[str, str] = {}
            if reason in _ANNOUNCE:
                firing = list(group.active)
                self.told = dict(state.firing)
            elif reason is NotifyReason.ESCALATION:
                escalated = [
                    a
                    for a in group.active
                    if not self.is_told(a) and _due(a, route, self.level, now_ns)
                ]
                firing = list(group.active)
                self.told = {a.fingerprint: _fired(a) for a in (*known, *escalated)}
                extra["escalated"] = ",".join(sorted(a.fingerprint for a in escalated))
            else:  # RESOLVED: the alerts the receiver knows, nothing announced early
                firing = known
                self.told = {a.fingerprint: _fired(a) for a in known}
            note = Notification(
                id=new_id(),
                receiver=self.receiver,
                group_key=group.key,
                group_labels=dict(group.labels),
                reason=reason,
                ts_ns=now_ns,
                firing=tuple(sorted(firing, key=_order)),
                resolved=tuple(sorted(told_resolved, key=_order)) if route.send_resolved else (),
                escalation_level=self.level,
                extra=extra,
            )
            self.sent = now_ns
            if reason is not NotifyReason.RESOLVED:
                self.tick = now_ns
        # Resolutions the receiver knew of are handled now (sent, or dropped without
        # send_resolved), so a refire is a new episode to announce.
        for alert in told_resolved:
            # Only that episode: an announcement above may already hold the refire's.
            _forget(self.told, alert)
            self.done[alert.fingerprint] = _fired(alert)
        return note

    def _suppressed(self, alert: Alert, mute: Mute, reason: NotifyReason) -> Suppressed:
        return Suppressed(
            alert.fingerprint,
            self.receiver,
            self.group.key,
            mute[0],
            mute[1],
            self.now_ns,
            reason,
            self.level,
        )


def _due(alert: Alert, route: ResolvedRoute, level: int, now_ns: int) -> bool:
    """Whether an alert's own notification is due at this level: its announcement
    ``group_wait`` after it fired (level 0), its escalation (level n)."""
    if level:
        after = route.escalation[level - 1].after_ns
        return alert.state is State.FIRING and now_ns >= _fired(alert) + after
    return now_ns >= _fired(alert) + route.group_wait_ns


def _forget(episodes: dict[str, int], alert: Alert) -> None:
    """Drop ``alert``'s episode from ``episodes`` (fingerprint -> fired), not a later one."""
    if episodes.get(alert.fingerprint) == _fired(alert):
        del episodes[alert.fingerprint]


def _fired(alert: Alert) -> int:
    return alert.fired_ns if alert.fired_ns is not None else alert.started_ns


def _order(alert: Alert) -> tuple[int, str]:
    return _fired(alert), alert.fingerprint


def _has_data(entry: LogEntry) -> bool:
    return bool(
        entry.tick_ns is not None
        or entry.sent_ns is not None
        or entry.firing
        or entry.resolved
        or entry.muted
    )
