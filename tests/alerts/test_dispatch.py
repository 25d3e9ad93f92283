"""The dispatcher: grouping, timing, resolved notices, repeat-until-ack, escalation, silences,
inhibition and restart persistence. The clock is plain integers passed to ``flush``; alert
snapshots are built directly (the lifecycle is another module's job)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from alerts.dispatch import Dispatcher, DispatchResult, GroupState, LogEntry, decide
from alerts.inhibit import DEFAULT_INHIBIT_RULES, Inhibitor
from alerts.model import Alert, Notification, NotifyReason, Severity, State, fingerprint
from alerts.notifylog import NotifyLog
from alerts.routing import Router
from alerts.silences import SilenceBook, StatusSilencer
from stream.model import NS_PER_S, Status

S = NS_PER_S
T0 = 1_700_000_000 * S
NOX = {"plant": "demo", "stack": "boiler1", "pollutant": "nox"}
SO2 = {"plant": "demo", "stack": "boiler1", "pollutant": "so2"}
NOX1 = {"plant": "demo", "stack": "boiler1", "sensor": "nox1"}
O2 = {"plant": "demo", "stack": "boiler1", "sensor": "o2"}
R = NotifyReason

BASE: dict[str, Any] = {
    "receivers": ["ops"],
    "group_wait_s": 30,
    "group_interval_s": 300,
    "repeat_interval_s": 3600,
}
ESCALATING: dict[str, Any] = {
    **BASE,
    "escalation": [
        {"after_s": 600, "receivers": ["lead"]},
        {"after_s": 1800, "receivers": ["manager"]},
    ],
}


def firing(rule: str, labels: dict[str, str], at: int = T0) -> Alert:
    return Alert(
        fingerprint(rule, labels),
        rule,
        dict(labels),
        Severity.WARNING,
        State.FIRING,
        f"{rule} on {labels}",
        started_ns=at,
        updated_ns=at,
        fired_ns=at,
    )


def resolve(a: Alert, at: int) -> Alert:
    return replace(a, state=State.RESOLVED, resolved_ns=at, updated_ns=at)


def ack(a: Alert, at: int, by: str = "alice") -> Alert:
    return replace(
        a, state=State.ACKNOWLEDGED, acknowledged_ns=at, acknowledged_by=by, updated_ns=at
    )


@dataclass
class Rig:
    """A dispatcher over real SQLite files; ``restart()`` builds a new one over the same."""

    path: Path
    config: dict[str, Any]
    dispatcher: Dispatcher
    silences: SilenceBook
    log: NotifyLog

    @classmethod
    def open(cls, path: Path, config: dict[str, Any]) -> Rig:
        silences, log = SilenceBook(path / "alerts.db"), NotifyLog(path / "alerts.db")
        d = Dispatcher(Router.from_mapping(config), silences, Inhibitor(), log)
        return cls(path, config, d, silences, log)

    def close(self) -> None:
        self.silences.close()
        self.log.close()

    def restart(self) -> Rig:
        self.close()
        return Rig.open(self.path, self.config)

    def update(self, *alerts: Alert) -> None:
        for a in alerts:
            self.dispatcher.update(a)

    def flush(self, at: int) -> list[Notification]:
        return self.dispatcher.flush(at).notifications

    def run(self, start: int, end: int, step_s: int = 10) -> list[Notification]:
        """Flush every ``step_s`` from ``start`` to ``end`` inclusive, as the service would."""
        out = []
        for t in range(start, end + 1, step_s * S):
            out += self.flush(t)
        return out


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig.open(tmp_path, BASE)
    yield r
    r.close()


@pytest.fixture
def esc(tmp_path: Path) -> Iterator[Rig]:
    r = Rig.open(tmp_path, ESCALATING)
    yield r
    r.close()


def fps(alerts: tuple[Alert, ...]) -> list[str]:
    return [a.fingerprint for a in alerts]


def summary(notes: list[Notification]) -> list[tuple[str, NotifyReason, int, int]]:
    """(receiver, reason, seconds after T0, escalation level) of each notification."""
    return [(n.receiver, n.reason, (n.ts_ns - T0) // S, n.escalation_level) for n in notes]


# -- grouping and timing ----------------------------------------------------------------------


def test_same_plant_stack_pollutant_share_one_notification(rig: Rig) -> None:
    a, b = firing("limit_breach", NOX), firing("forecast_prealarm", NOX)
    c = firing("limit_breach", SO2)
    rig.update(a, b, c)
    notes = rig.flush(T0 + 30 * S)
    assert [n.reason for n in notes] == [R.FIRST, R.FIRST]
    by_pollutant = {n.group_labels["pollutant"]: n for n in notes}
    assert sorted(fps(by_pollutant["nox"].firing)) == sorted([a.fingerprint, b.fingerprint])
    assert fps(by_pollutant["so2"].firing) == [c.fingerprint]
    assert by_pollutant["nox"].group_key != by_pollutant["so2"].group_key
    assert by_pollutant["nox"].title == "[FIRING:2] forecast_prealarm, limit_breach demo/boiler1"
    assert len({n.id for n in notes}) == 2


def test_group_wait(rig: Rig) -> None:
    rig.update(firing("limit_breach", NOX))
    assert rig.flush(T0 + 29 * S) == []
    assert summary(rig.flush(T0 + 30 * S)) == [("ops", R.FIRST, 30, 0)]
    assert rig.flush(T0 + 31 * S) == []


def test_new_alerts_wait_for_the_group_interval(rig: Rig) -> None:
    a = firing("limit_breach", NOX)
    rig.update(a)
    rig.flush(T0 + 30 * S)
    b = firing("forecast_prealarm", NOX, at=T0 + 40 * S)
    rig.update(b)
    assert rig.run(T0 + 40 * S, T0 + 320 * S) == []
    [note] = rig.flush(T0 + 330 * S)
    assert note.reason is R.NEW_ALERTS
    assert fps(note.firing) == [a.fingerprint, b.fingerprint]


def test_repeat_interval(rig: Rig) -> None:
    rig.update(firing("limit_breach", NOX))
    notes = rig.run(T0, T0 + 2 * 3600 * S + 30 * S)
    assert summary(notes) == [
        ("ops", R.FIRST, 30, 0),
        ("ops", R.REPEAT, 3630, 0),
        ("ops", R.REPEAT, 7230, 0),
    ]


def test_repeat_stops_after_ack_but_acked_alerts_stay_listed(rig: Rig) -> None:
    a = firing("limit_breach", NOX)
    rig.update(a)
    rig.flush(T0 + 30 * S)
    rig.update(ack(a, T0 + 100 * S))
    assert rig.run(T0 + 100 * S, T0 + 3 * 3600 * S, step_s=60) == []
    b = firing("forecast_prealarm", NOX, at=T0 + 3 * 3600 * S)
    rig.update(b)
    [note] = rig.flush(T0 + 3 * 3600 * S + S)
    assert note.reason is R.NEW_ALERTS
    assert [x.state for x in note.firing] == [State.ACKNOWLEDGED, State.FIRING]
    # b is unacknowledged, so the group repeats again (with a listed as acknowledged).
    [again] = rig.flush(T0 + 4 * 3600 * S + S)
    assert again.reason is R.REPEAT


# -- resolved notices -------------------------------------------------------------------------


def test_resolved_is_sent_at_the_next_flush_not_a_group_interval_later(rig: Rig) -> None:
    a, b = firing("limit_breach", NOX), firing("forecast_prealarm", NOX)
    rig.update(a, b)
    rig.flush(T0 + 30 * S)
    rig.update(resolve(a, T0 + 40 * S))
    [note] = rig.flush(T0 + 41 * S)  # well inside the 300 s group interval
    assert note.reason is R.RESOLVED
    assert fps(note.resolved) == [a.fingerprint]
    assert fps(note.firing) == [b.fingerprint]
    assert note.status == "firing"
    assert rig.flush(T0 + 42 * S) == []  # sent once
    rig.update(resolve(b, T0 + 50 * S))
    [last] = rig.flush(T0 + 51 * S)
    assert (last.reason, last.status, fps(last.resolved)) == (
        R.RESOLVED,
        "resolved",
        [b.fingerprint],
    )


def test_alert_resolved_before_anyone_was_told_sends_nothing(rig: Rig) -> None:
    a = firing("limit_breach", NOX)
    rig.update(a)
    assert rig.flush(T0 + 10 * S) == []
    rig.update(resolve(a, T0 + 20 * S))
    assert rig.run(T0 + 20 * S, T0 + 600 * S) == []


def test_resolved_only_announces_known_alerts(rig: Rig) -> None:
    a = firing("limit_breach", NOX)
    rig.update(a)
    rig.flush(T0 + 30 * S)
    b = firing("forecast_prealarm", NOX, at=T0 + 35 * S)
    rig.update(b, resolve(a, T0 + 40 * S))
    [note] = rig.flush(T0 + 41 * S)
    assert (note.reason, note.firing, fps(note.resolved)) == (R.RESOLVED, (), [a.fingerprint])
    # b is announced on its own schedule: group_wait after it fired, one interval after 30 s.
    assert summary(rig.run(T0 + 42 * S, T0 + 400 * S)) == [("ops", R.FIRST, 332, 0)]


def test_resolve_then_refire_inside_one_interval_gives_both_notices(rig: Rig) -> None:
    a = firing("limit_breach", NOX)
    rig.update(a)
    rig.flush(T0 + 30 * S)
    again = firing("limit_breach", NOX, at=T0 + 60 * S)
    rig.update(resolve(a, T0 + 50 * S), again)  # both before the next flush
    [resolved] = rig.flush(T0 + 61 * S)
    assert resolved.reason is R.RESOLVED and fps(resolved.resolved) == [a.fingerprint]
    [refired] = rig.run(T0 + 62 * S, T0 + 400 * S)
    assert refired.reason is R.FIRST and refired.firing == (again,)
    assert refired.ts_ns == T0 + 332 * S  # one group interval after the first notice


def test_refire_is_announced_even_if_the_resolution_was_never_seen(rig: Rig) -> None:
    a = firing("limit_breach", NOX)
    rig.update(a)
    rig.flush(T0 + 30 * S)
    rig.update(firing("limit_breach", NOX, at=T0 + 100 * S))  # a new episode
    assert summary(rig.run(T0 + 100 * S, T0 + 400 * S)) == [("ops", R.FIRST, 330, 0)]


def test_without_send_resolved_nothing_is_sent_but_a_refire_is(tmp_path: Path) -> None:
    rig = Rig.open(tmp_path, {**BASE, "send_resolved": False})
    try:
        a = firing("limit_breach", NOX)
        rig.update(a)
        rig.flush(T0 + 30 * S)
        rig.update(resolve(a, T0 + 40 * S))
        assert rig.flush(T0 + 41 * S) == []
        rig.update(firing("limit_breach", NOX, at=T0 + 400 * S))
        assert summary(rig.run(T0 + 400 * S, T0 + 500 * S)) == [("ops", R.FIRST, 430, 0)]
    finally:
        rig.close()


# -- escalation -------------------------------------------------------------------------------


def test_escalation_levels_after_their_delays(esc: Rig) -> None:
    a = firing("limit_breach", NOX)
    esc.update(a)
    notes = esc.run(T0, T0 + 1900 * S)
    assert summary(notes) == [
        ("ops", R.FIRST, 30, 0),
        ("lead", R.ESCALATION, 600, 1),
        ("manager", R.ESCALATION, 1800, 2),
    ]
    assert notes[1].firing == (a,)
    assert notes[1].extra == {"escalated": a.fingerprint}
    assert esc.log.escalation_level(notes[0].group_key) == 2
    # Everyone who was told hears about the resolution, at once.
    esc.update(resolve(a, T0 + 2000 * S))
    assert summary(esc.flush(T0 + 2001 * S)) == [
        ("ops", R.RESOLVED, 2001, 0),
        ("lead", R.RESOLVED, 2001, 1),
        ("manager", R.RESOLVED, 2001, 2),
    ]


def test_ack_before_after_s_prevents_escalation(esc: Rig) -> None:
    a = firing("limit_breach", NOX)
    esc.update(a)
    esc.flush(T0 + 30 * S)
    esc.update(ack(a, T0 + 599 * S))
    assert esc.run(T0 + 599 * S, T0 + 3 * 3600 * S, step_s=60) == []


def test_ack_between_levels_stops_further_escalation(esc: Rig) -> None:
    a = firing("limit_breach", NOX)
    esc.update(a)
    esc.run(T0, T0 + 600 * S)
    esc.update(ack(a, T0 + 700 * S))
    assert esc.run(T0 + 700 * S, T0 + 2 * 3600 * S, step_s=60) == []


def test_each_alert_escalates_on_its_own_clock(esc: Rig) -> None:
    a = firing("limit_breach", NOX)
    b = firing("forecast_prealarm", NOX, at=T0 + 100 * S)
    esc.update(a)
    esc.run(T0, T0 + 90 * S)
    esc.update(b)
    lead = [n for n in esc.run(T0 + 100 * S, T0 + 800 * S) if n.receiver == "lead"]
    assert [(n.ts_ns - T0) // S for n in lead] == [600, 700]
    assert [n.extra["escalated"] for n in lead] == [a.fingerprint, b.fingerprint]


# -- silences ---------------------------------------------------------------------------------


def test_silenced_alert_is_left_out_and_recorded_once(rig: Rig) -> None:
    silence = rig.silences.add(
        ["rule=forecast_prealarm"],
        starts_ns=T0,
        ends_ns=T0 + 3600 * S,
        created_by="alice",
        now_ns=T0,
    )
    a, b = firing("limit_breach", NOX), firing("forecast_prealarm", NOX)
    rig.update(a, b)
    result = rig.dispatcher.flush(T0 + 30 * S)
    [note] = result.notifications
    assert note.firing == (a,)
    [s] = result.suppressed
    assert (s.alert_fingerprint, s.receiver, s.group_key) == (b.fingerprint, "ops", note.group_key)
    assert (s.reason, s.by, s.notify_reason, s.ts_ns) == (
        "silenced",
        silence.id,
        R.FIRST,
        T0 + 30 * S,
    )
    assert rig.dispatcher.flush(T0 + 31 * S) == DispatchResult()  # recorded once
    assert rig.log.suppressed() == [s]  # persisted for the audit trail


def test_silence_time_bounds_and_expiry(rig: Rig) -> None:
    window = rig.silences.add(
        ["plant=demo"],
        starts_ns=T0 + 1000 * S,
        ends_ns=T0 + 2000 * S,
        created_by="alice",
        now_ns=T0,
        comment="planned maintenance",
    )
    a = firing("limit_breach", NOX)
    rig.update(a)
    assert summary(rig.flush(T0 + 30 * S)) == [("ops", R.FIRST, 30, 0)]  # window not yet open
    b = firing("forecast_prealarm", NOX, at=T0 + 1100 * S)
    rig.update(b)
    assert rig.run(T0 + 1100 * S, T0 + 1990 * S) == []
    # The window ended: both are announced again (a was muted too, so this is a new start).
    [note] = rig.flush(T0 + 2000 * S)
    assert note.reason is R.FIRST
    assert fps(note.firing) == [a.fingerprint, b.fingerprint]
    suppressed = rig.log.suppressed()
    assert [(x.alert_fingerprint, x.by) for x in suppressed] == [(b.fingerprint, window.id)]

    c = firing("limit_breach", SO2, at=T0 + 2100 * S)
    s2 = rig.silences.add(
        ["pollutant=so2"], starts_ns=T0, ends_ns=T0 + 9000 * S, created_by="a", now_ns=T0
    )
    rig.update(c)
    assert rig.run(T0 + 2100 * S, T0 + 2500 * S) == []
    rig.silences.expire(s2.id, "bob", T0 + 2500 * S)
    [so2] = rig.flush(T0 + 2501 * S)
    assert so2.firing == (c,) and so2.reason is R.FIRST


def test_resolution_of_a_silenced_known_alert_is_suppressed(rig: Rig) -> None:
    a = firing("limit_breach", NOX)
    rig.update(a)
    rig.flush(T0 + 30 * S)
    silence = rig.silences.add(
        ["plant=demo"], starts_ns=T0 + 40 * S, ends_ns=T0 + 9000 * S, created_by="a", now_ns=T0
    )
    assert rig.run(T0 + 40 * S, T0 + 100 * S) == []
    rig.update(resolve(a, T0 + 100 * S))
    result = rig.dispatcher.flush(T0 + 101 * S)
    assert result.notifications == []
    assert [(s.notify_reason, s.by) for s in result.suppressed] == [(R.RESOLVED, silence.id)]


def test_silenced_escalation_is_recorded(esc: Rig) -> None:
    a = firing("limit_breach", NOX)
    esc.update(a)
    esc.flush(T0 + 30 * S)
    esc.silences.add(
        ["plant=demo"], starts_ns=T0 + 60 * S, ends_ns=T0 + 9000 * S, created_by="a", now_ns=T0
    )
    assert esc.run(T0 + 60 * S, T0 + 700 * S) == []
    [s] = [x for x in esc.log.suppressed() if x.notify_reason is R.ESCALATION]
    assert (s.receiver, s.escalation_level, s.ts_ns) == ("lead", 1, T0 + 600 * S)


def test_status_triggered_maintenance_window(rig: Rig) -> None:
    silencer = StatusSilencer(rig.silences)
    silencer.observe("demo", "boiler1", "nox1", Status.CALIBRATION, T0)
    a, b = firing("anomaly", NOX1), firing("anomaly", O2)
    rig.update(a, b)
    result = rig.dispatcher.flush(T0 + 30 * S)
    assert [n.firing for n in result.notifications] == [(b,)]
    assert [s.alert_fingerprint for s in result.suppressed] == [a.fingerprint]
    silencer.observe("demo", "boiler1", "nox1", Status.VALID, T0 + 100 * S)
    [note] = rig.run(T0 + 100 * S, T0 + 400 * S)
    assert note.reason is R.NEW_ALERTS
    assert sorted(fps(note.firing)) == sorted([a.fingerprint, b.fingerprint])


# -- inhibition -------------------------------------------------------------------------------


def test_sensor_fault_inhibits_anomaly_of_that_sensor_only(rig: Rig) -> None:
    fault = firing("sensor_fault", NOX1)
    anomaly_nox1, anomaly_o2 = firing("anomaly", NOX1), firing("anomaly", O2)
    rig.update(fault, anomaly_nox1, anomaly_o2)
    result = rig.dispatcher.flush(T0 + 30 * S)
    [note] = result.notifications  # grouped by plant/stack: no pollutant label
    assert sorted(fps(note.firing)) == sorted([fault.fingerprint, anomaly_o2.fingerprint])
    [s] = result.suppressed
    assert (s.alert_fingerprint, s.reason) == (anomaly_nox1.fingerprint, "inhibited")
    assert s.by == DEFAULT_INHIBIT_RULES[0].description
    # The fault clears: the anomaly is no longer explained and is announced.
    rig.update(resolve(fault, T0 + 100 * S))
    [resolved] = rig.flush(T0 + 101 * S)
    assert resolved.reason is R.RESOLVED
    [new] = rig.run(T0 + 102 * S, T0 + 400 * S)
    assert anomaly_nox1 in new.firing


def inhibited(target: Alert, *sources: Alert) -> str | None:
    rule = Inhibitor().inhibited_by(target, [target, *sources])
    return None if rule is None else rule.name


def test_default_inhibition_rules() -> None:
    plant = {"plant": "demo"}
    assert inhibited(firing("sensor_drift", NOX1), firing("sensor_fault", NOX1))
    assert inhibited(firing("anomaly", NOX1), firing("no_data", NOX1))
    assert inhibited(firing("anomaly", O2), firing("no_data", NOX1)) is None
    # Plant- or stack-wide link loss explains every per-sensor no_data there.
    assert inhibited(firing("no_data", NOX1), firing("no_data", plant))
    assert inhibited(firing("no_data", NOX1), firing("no_data", {**plant, "stack": "boiler1"}))
    assert inhibited(firing("no_data", NOX1), firing("no_data", {**plant, "stack": "b2"})) is None
    assert inhibited(firing("no_data", {**NOX1, "plant": "p2"}), firing("no_data", plant)) is None
    # Service health: of the plant, or (without a plant label) of all plants.
    assert inhibited(firing("no_data", NOX1), firing("service_health", plant))
    assert inhibited(firing("no_data", NOX1), firing("service_health", {"plant": "p2"})) is None
    assert inhibited(firing("no_data", NOX1), firing("service_health", {"component": "broker"}))
    # Only active sources count; the limit itself is never inhibited by these.
    fault = firing("sensor_fault", NOX1)
    assert inhibited(firing("anomaly", NOX1), resolve(fault, T0)) is None
    assert inhibited(firing("anomaly", NOX1), ack(fault, T0))
    assert inhibited(firing("limit_breach", NOX), fault, firing("service_health", plant)) is None


# -- restart persistence ----------------------------------------------------------------------


def test_restart_neither_resends_nor_forgets_repeat_timing(rig: Rig) -> None:
    a = firing("limit_breach", NOX)
    rig.update(a)
    [first] = rig.flush(T0 + 30 * S)
    rig = rig.restart()
    rig.update(a)  # the service re-feeds the open alerts
    assert rig.run(T0 + 31 * S, T0 + 3620 * S) == []
    assert summary(rig.flush(T0 + 3630 * S)) == [("ops", R.REPEAT, 3630, 0)]
    history = rig.log.sent()
    assert history[0].id == first.id
    assert [h.reason for h in history] == [R.FIRST, R.REPEAT]
    rig.close()


def test_restart_keeps_escalation_and_resolution_state(esc: Rig) -> None:
    a = firing("limit_breach", NOX)
    esc.update(a)
    esc.run(T0, T0 + 600 * S)
    esc = esc.restart()
    esc.update(a)
    assert summary(esc.run(T0 + 610 * S, T0 + 1800 * S)) == [("manager", R.ESCALATION, 1800, 2)]
    esc.update(resolve(a, T0 + 1900 * S))
    assert len(esc.flush(T0 + 1901 * S)) == 3
    esc = esc.restart()
    esc.update(resolve(a, T0 + 1900 * S))  # re-fed after the restart: no duplicate
    assert esc.flush(T0 + 1902 * S) == []
    esc.close()


# -- snapshots --------------------------------------------------------------------------------


def test_pending_and_stale_snapshots_are_ignored(rig: Rig) -> None:
    a = firing("limit_breach", NOX)
    rig.update(replace(a, state=State.PENDING, fired_ns=None))
    assert rig.dispatcher.alerts() == []
    acked = ack(a, T0 + 10 * S)
    rig.update(acked, a)  # the older firing snapshot arrives late
    assert rig.dispatcher.alerts() == [acked]
    rig.update(resolve(a, T0 + 20 * S), a)  # a late snapshot of the resolved episode
    assert rig.dispatcher.alerts() == []
    never = replace(firing("anomaly", NOX1), state=State.RESOLVED, fired_ns=None)
    rig.update(never)  # resolved while pending: never fired
    assert rig.run(T0, T0 + 400 * S) == []


def test_continue_routes_notify_each_route_separately(tmp_path: Path) -> None:
    config = {
        **BASE,
        "routes": [
            {"matchers": ["rule=limit_breach"], "receivers": ["compliance"], "continue": True},
            {"matchers": ["plant=demo"], "receivers": ["demo-team"]},
        ],
    }
    rig = Rig.open(tmp_path, config)
    try:
        rig.update(firing("limit_breach", NOX))
        notes = rig.flush(T0 + 30 * S)
        assert sorted(n.receiver for n in notes) == ["compliance", "demo-team"]
        assert len({n.group_key for n in notes}) == 2
    finally:
        rig.close()


# -- the pure decision ------------------------------------------------------------------------

ROUTE = Router.from_mapping(ESCALATING).routes()[0]


def entry(tick_s: int | None, level: int = 0, **told: int) -> LogEntry:
    tick = None if tick_s is None else T0 + tick_s * S
    return LogEntry("ops", "g", level, tick, tick, {k: T0 + v * S for k, v in told.items()})


def state(unacked: str = "", resolved: dict[str, int] | None = None, **active: int) -> GroupState:
    return GroupState(
        firing={k: T0 + v * S for k, v in active.items()},
        unacked=frozenset(unacked.split()),
        resolved={k: T0 + v * S for k, v in (resolved or {}).items()},
    )


@pytest.mark.parametrize(
    ("log", "group", "now_s", "level", "expected"),
    [
        (None, state("a", a=0), 29, 0, None),
        (None, state("a", a=0), 30, 0, R.FIRST),
        (None, state(), 500, 0, None),
        (entry(30, a=0), state("a b", a=0, b=40), 329, 0, None),
        (entry(30, a=0), state("a b", a=0, b=40), 330, 0, R.NEW_ALERTS),
        (entry(30, a=0), state("a", a=0), 3629, 0, None),
        (entry(30, a=0), state("a", a=0), 3630, 0, R.REPEAT),
        (entry(30, a=0), state("", a=0), 9999, 0, None),  # acknowledged: no repeat
        (entry(30, a=0), state(resolved={"a": 0}), 31, 0, R.RESOLVED),
        (entry(30, a=0), state(resolved={"a": -5}), 31, 0, None),  # another episode
        (entry(30, a=0), state("a", a=50, resolved={"a": 0}), 60, 0, R.RESOLVED),
        (entry(30, a=0), state("a", a=50), 330, 0, R.FIRST),  # refire: a new group episode
        (entry(30), state("a", a=100), 129, 0, None),  # flapping: one interval after 30 s
        (entry(30), state("a", a=100), 330, 0, R.FIRST),
        (None, state("a", a=0), 599, 1, None),
        (None, state("a", a=0), 600, 1, R.ESCALATION),
        (None, state("", a=0), 600, 1, None),  # acknowledged in time
        (entry(600, 1, a=0), state("a", a=0), 5000, 1, None),  # once per level
        (entry(600, 1, a=0), state(resolved={"a": 0}), 5000, 1, R.RESOLVED),
        (None, state("a", a=0), 1800, 2, R.ESCALATION),
    ],
)
def test_decide(
    log: LogEntry | None, group: GroupState, now_s: int, level: int, expected: NotifyReason | None
) -> None:
    assert decide(log, group, T0 + now_s * S, ROUTE, level) is expected


def test_decide_is_silent_about_resolutions_without_send_resolved() -> None:
    route = Router.from_mapping({**BASE, "send_resolved": False}).routes()[0]
    assert decide(entry(30, a=0), state(resolved={"a": 0}), T0 + 31 * S, route) is None


# -- property ---------------------------------------------------------------------------------

ALERTS = [
    ("limit_breach", NOX),
    ("forecast_prealarm", NOX),
    ("limit_breach", SO2),
    ("anomaly", NOX1),
]

RESOLVE_LATER = [(300, "flush", 0), (0, "resolve", 1)]

step = st.tuples(
    st.integers(0, 400),  # seconds to advance
    st.sampled_from(["fire", "resolve", "ack", "flush", "flush"]),
    st.integers(0, len(ALERTS) - 1),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(step, min_size=1, max_size=40))
# Found by Hypothesis: a refire announced together with the earlier episode's resolution.
@example([(0, "fire", 1), (30, "flush", 0), (0, "resolve", 1), (0, "fire", 1), *RESOLVE_LATER])
def test_no_announcements_closer_than_the_group_interval(steps: list[tuple[int, str, int]]) -> None:
    """Whatever the interleaving, a receiver gets at most one announcement per group per
    group interval (resolved notices and escalations are exempt), resolved notices only for
    alerts it was told about, never the same resolution twice, and in the end hears of
    every open alert and every resolution of an alert it was told about."""
    with tempfile.TemporaryDirectory() as tmp:
        rig = Rig.open(Path(tmp), ESCALATING)
        try:
            now = T0
            current: dict[int, Alert] = {}
            notes: list[Notification] = []
            for dt, action, i in steps:
                now += dt * S
                a = current.get(i)
                if action == "fire" and (a is None or a.state is State.RESOLVED):
                    current[i] = firing(*ALERTS[i], at=now)
                elif action == "resolve" and a is not None and a.state.active:
                    current[i] = resolve(a, now)
                elif action == "ack" and a is not None and a.state is State.FIRING:
                    current[i] = ack(a, now)
                if i in current:
                    rig.update(current[i])
                if action == "flush":
                    notes += rig.flush(now)
            notes += rig.flush(now + 4000 * S)
        finally:
            rig.close()
    last: dict[tuple[str, str], int] = {}
    told: dict[tuple[str, str], set[tuple[str, int | None]]] = {}
    seen_resolved: set[tuple[str, str, int | None]] = set()
    for n in notes:
        key = (n.receiver, n.group_key)
        if n.reason not in (R.RESOLVED, R.ESCALATION):
            assert n.ts_ns - last.get(key, -(10**30)) >= 300 * S, n
            last[key] = n.ts_ns
        for r in n.resolved:
            assert (r.fingerprint, r.fired_ns) in told.get(key, set())
            assert (n.receiver, r.fingerprint, r.fired_ns) not in seen_resolved
            seen_resolved.add((n.receiver, r.fingerprint, r.fired_ns))
        if n.reason is R.ESCALATION:
            told.setdefault(key, set()).update(
                (f.fingerprint, f.fired_ns)
                for f in n.firing
                if f.fingerprint in n.extra["escalated"].split(",")
            )
        else:
            told.setdefault(key, set()).update((f.fingerprint, f.fired_ns) for f in n.firing)
    # Liveness: once things settle, ops knows every open alert and every told resolution.
    route = Router.from_mapping(ESCALATING).routes()[0]
    for a in current.values():
        episode = (a.fingerprint, a.fired_ns)
        key = ("ops", route.group(a)[0])
        if a.state.active:
            assert episode in told.get(key, set())
        elif episode in told.get(key, set()):
            assert ("ops", *episode) in seen_resolved
