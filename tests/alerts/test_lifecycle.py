"""The alert lifecycle: pending/firing/acknowledged/resolved, hysteresis, events, severity.

The clock is plain integers passed as ``now_ns``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from alerts.lifecycle import (
    AlertBook,
    AlertError,
    InvalidTransitionError,
    UnknownAlertError,
    dropped,
    recovery_threshold,
)
from alerts.model import RuleName, Severity, Signal, State, Transition, fingerprint
from alerts.rules import DEFAULT_RULES, RuleConfig, RulesConfig
from stream.model import NS_PER_S

S = NS_PER_S
LIMIT = 100.0
WHERE = {"plant": "demo", "stack": "boiler1", "pollutant": "nox"}
SENSOR = {"plant": "demo", "stack": "boiler1", "sensor": "nox1"}


def level(value: float, ts_ns: int = 0, *, threshold: float = LIMIT, **kw: object) -> Signal:
    return Signal(
        RuleName.LIMIT_BREACH,
        WHERE,
        active=True,
        ts_ns=ts_ns,
        value=value,
        threshold=threshold,
        **kw,  # type: ignore[arg-type]
    )


def event(
    rule: str, active: bool = True, ts_ns: int = 0, labels: dict[str, str] = SENSOR, **kw: object
) -> Signal:
    return Signal(rule, labels, active=active, ts_ns=ts_ns, **kw)  # type: ignore[arg-type]


def states(transitions: list[Transition]) -> list[tuple[State | None, State]]:
    return [(t.previous, t.alert.state) for t in transitions]


def rules(**overrides: dict[str, object]) -> RulesConfig:
    return RulesConfig.model_validate(overrides)


# -- pending / firing / resolved --------------------------------------------------------------


def test_pending_fires_once_its_for_duration_elapsed() -> None:
    book = AlertBook()
    [t] = book.observe(event(RuleName.NO_DATA), now_ns=10 * S)
    assert (t.previous, t.alert.state, t.alert.started_ns) == (None, State.PENDING, 10 * S)
    assert t.alert.fired_ns is None
    assert book.active() == []
    assert book.evaluate(70 * S - 1) == []  # NO_DATA's grace is 60 s
    [fired] = book.evaluate(70 * S)
    assert (fired.previous, fired.alert.state) == (State.PENDING, State.FIRING)
    assert (fired.alert.fired_ns, fired.ts_ns, fired.actor) == (70 * S, 70 * S, "system")
    assert fired.alert.started_ns == 10 * S  # pending since is kept
    assert book.active() == [fired.alert]
    assert book.evaluate(80 * S) == []


def test_pending_fires_on_the_next_signal_after_its_for_duration() -> None:
    book = AlertBook()
    book.observe(event(RuleName.NO_DATA), now_ns=0)
    assert states(book.observe(event(RuleName.NO_DATA), now_ns=59 * S)) == []
    assert states(book.observe(event(RuleName.NO_DATA), now_ns=61 * S)) == [
        (State.PENDING, State.FIRING)
    ]


def test_pending_alert_whose_condition_clears_is_dropped_never_fired() -> None:
    book = AlertBook()
    book.observe(event(RuleName.SENSOR_FAULT), now_ns=0)
    [t] = book.observe(event(RuleName.SENSOR_FAULT, active=False), now_ns=5 * S)
    assert (t.previous, t.alert.state) == (State.PENDING, State.RESOLVED)
    assert t.alert.fired_ns is None and t.alert.resolved_ns == 5 * S
    assert dropped(t)
    assert t.comment is not None and "never notified" in t.comment
    assert book.evaluate(100 * S) == []  # it does not fire later


def test_inactive_signal_for_an_unknown_fingerprint_makes_nothing() -> None:
    book = AlertBook()
    assert book.observe(event(RuleName.SENSOR_FAULT, active=False), now_ns=0) == []
    assert book.observe(level(50.0), now_ns=0) == []
    assert len(book) == 0


def test_firing_alert_resolves_when_the_level_clears() -> None:
    book = AlertBook()
    [t] = book.observe(level(120.0), now_ns=0)  # LIMIT_BREACH: for_s 0, fires at once
    assert (t.previous, t.alert.state, t.alert.fired_ns) == (None, State.FIRING, 0)
    assert t.alert.severity is Severity.CRITICAL
    [r] = book.observe(level(80.0, summary="back under the ELV"), now_ns=60 * S)
    assert (r.previous, r.alert.state, r.alert.resolved_ns) == (
        State.FIRING,
        State.RESOLVED,
        60 * S,
    )
    assert not dropped(r)
    assert r.alert.value == 80.0 and r.alert.summary == "back under the ELV"
    assert r.alert.fired_ns == 0
    assert book.active() == []


def test_firing_acknowledged_then_resolved() -> None:
    book = AlertBook()
    [t] = book.observe(level(120.0), now_ns=0)
    ack = book.acknowledge(t.alert.fingerprint, " alice ", "burner tuned", now_ns=5 * S)
    assert (ack.previous, ack.alert.state) == (State.FIRING, State.ACKNOWLEDGED)
    assert (ack.actor, ack.comment, ack.ts_ns) == ("alice", "burner tuned", 5 * S)
    assert ack.alert.acknowledged_by == "alice"
    assert ack.alert.ack_comment == "burner tuned"
    assert ack.alert.acknowledged_ns == 5 * S
    assert book.active() == [ack.alert]  # acknowledged alerts are still open
    assert book.observe(level(130.0), now_ns=6 * S) == []  # stays acknowledged
    assert book.get(t.alert.fingerprint).state is State.ACKNOWLEDGED  # type: ignore[union-attr]
    [r] = book.observe(level(90.0), now_ns=10 * S)
    assert (r.previous, r.alert.state) == (State.ACKNOWLEDGED, State.RESOLVED)
    assert r.alert.acknowledged_by == "alice"  # the resolved snapshot keeps who took it


def test_resolved_alert_whose_condition_returns_starts_a_new_episode() -> None:
    book = AlertBook()
    [first] = book.observe(level(120.0), now_ns=0)
    book.acknowledge(first.alert.fingerprint, "alice", "", now_ns=1 * S)
    book.observe(level(80.0), now_ns=2 * S)
    [again] = book.observe(level(110.0), now_ns=3 * S)
    assert (again.previous, again.alert.state) == (State.RESOLVED, State.FIRING)
    assert again.alert.fingerprint == first.alert.fingerprint
    assert (again.alert.started_ns, again.alert.fired_ns) == (3 * S, 3 * S)
    assert again.alert.acknowledged_by is None and again.alert.resolved_ns is None
    assert len(book) == 1


def test_acknowledge_errors_are_typed_and_clear() -> None:
    book = AlertBook()
    [pending] = book.observe(event(RuleName.NO_DATA), now_ns=0)
    [firing] = book.observe(level(120.0), now_ns=0)
    fp = firing.alert.fingerprint
    with pytest.raises(UnknownAlertError, match="no alert with fingerprint 'nope'"):
        book.acknowledge("nope", "alice", "", now_ns=0)
    with pytest.raises(InvalidTransitionError, match="is pending: only a firing alert"):
        book.acknowledge(pending.alert.fingerprint, "alice", "", now_ns=0)
    with pytest.raises(ValueError, match="non-empty 'by'"):
        book.acknowledge(fp, "  ", "", now_ns=0)
    book.acknowledge(fp, "alice", "on it", now_ns=1)
    with pytest.raises(InvalidTransitionError, match="already acknowledged by alice") as info:
        book.acknowledge(fp, "bob", "me too", now_ns=2)
    assert isinstance(info.value, AlertError) and not info.value.retryable
    assert book.get(fp).acknowledged_by == "alice"  # type: ignore[union-attr]
    book.observe(level(10.0), now_ns=3)
    with pytest.raises(InvalidTransitionError, match="is resolved"):
        book.acknowledge(fp, "bob", "", now_ns=4)


# -- events -----------------------------------------------------------------------------------


def test_event_alert_resolves_by_itself_after_its_last_occurrence() -> None:
    book = AlertBook()  # SENSOR_DRIFT: for 0, resolve_after 1 h
    [t] = book.observe(event(RuleName.SENSOR_DRIFT, summary="drift"), now_ns=0)
    assert t.alert.state is State.FIRING
    assert book.observe(event(RuleName.SENSOR_DRIFT), now_ns=1800 * S) == []  # occurs again
    assert book.evaluate(3600 * S) == []  # an hour after the first, not the last occurrence
    assert book.evaluate(5400 * S - 1) == []
    [r] = book.evaluate(5400 * S)
    assert (r.previous, r.alert.state, r.alert.resolved_ns) == (
        State.FIRING,
        State.RESOLVED,
        5400 * S,
    )
    assert r.comment == "no occurrence for 3600 s"


def test_late_signal_first_expires_the_old_episode_then_starts_a_new_one() -> None:
    book = AlertBook()
    book.observe(event(RuleName.SENSOR_DRIFT), now_ns=0)
    assert states(book.observe(event(RuleName.SENSOR_DRIFT), now_ns=7200 * S)) == [
        (State.FIRING, State.RESOLVED),
        (State.RESOLVED, State.FIRING),
    ]
    assert book.get(fingerprint(RuleName.SENSOR_DRIFT, SENSOR)).started_ns == 7200 * S  # type: ignore[union-attr]


def test_event_with_for_fires_only_if_it_keeps_occurring() -> None:
    cfg = rules(sensor_drift={"for_s": 10, "resolve_after_s": 5})
    once = AlertBook(cfg)
    once.observe(event(RuleName.SENSOR_DRIFT), now_ns=0)
    [t] = once.evaluate(20 * S)  # expired at 5 s, before its for elapsed at 10 s
    assert dropped(t) and t.comment is not None and "never notified" in t.comment

    repeated = AlertBook(cfg)
    out: list[Transition] = []
    for second in range(0, 13, 3):
        out += repeated.observe(event(RuleName.SENSOR_DRIFT), now_ns=second * S)
        out += repeated.evaluate(second * S + 1)
    assert states(out) == [(None, State.PENDING), (State.PENDING, State.FIRING)]
    assert out[1].alert.fired_ns == 12 * S


def test_event_rules_ignore_value_and_threshold() -> None:
    # A calibration-range event compares a fraction with a count: `active` decides.
    book = AlertBook()
    sig = event(RuleName.CALIBRATION_RANGE, value=0.1, threshold=5.0)
    [t] = book.observe(sig, now_ns=0)
    assert t.alert.state is State.FIRING and t.alert.value == 0.1


def test_signal_without_value_on_a_level_rule_uses_active() -> None:
    book = AlertBook()
    sig = Signal(RuleName.LIMIT_BREACH, WHERE, active=True, ts_ns=0)
    assert states(book.observe(sig, now_ns=0)) == [(None, State.FIRING)]
    off = Signal(RuleName.LIMIT_BREACH, WHERE, active=False, ts_ns=1)
    assert states(book.observe(off, now_ns=1)) == [(State.FIRING, State.RESOLVED)]


# -- hysteresis -------------------------------------------------------------------------------


def test_value_oscillating_inside_the_band_never_resolves() -> None:
    book = AlertBook()
    [t] = book.observe(level(104.0), now_ns=0)
    for i in range(1, 200):
        value = 96.0 if i % 2 else 104.0
        assert book.observe(level(value), now_ns=i * S) == []
    alert = book.get(t.alert.fingerprint)
    assert alert is not None and alert.state is State.FIRING and alert.value == 96.0
    [r] = book.observe(level(94.9), now_ns=300 * S)
    assert r.alert.state is State.RESOLVED


def test_value_exactly_at_the_recovery_threshold_clears() -> None:
    book = AlertBook()
    book.observe(level(101.0), now_ns=0)
    assert states(book.observe(level(95.0), now_ns=1)) == [(State.FIRING, State.RESOLVED)]


def test_value_in_the_band_does_not_start_an_alert_and_the_limit_itself_is_no_breach() -> None:
    book = AlertBook()
    assert book.observe(level(99.0), now_ns=0) == []
    assert book.observe(level(LIMIT), now_ns=1) == []  # breach is strictly above
    assert len(book) == 0


def test_value_hovering_just_above_the_limit_while_pending_fires_only_after_for() -> None:
    book = AlertBook(rules(limit_breach={"for_s": 60}))
    [t] = book.observe(level(100.5), now_ns=0)
    assert t.alert.state is State.PENDING
    for second, value in enumerate([99.0, 100.2, 97.0, 100.1, 99.9] * 13, start=1):
        now = second * S
        out = book.observe(level(value), now_ns=now)
        if now < 60 * S:
            assert out == [], second
        elif now == 60 * S:
            assert states(out) == [(State.PENDING, State.FIRING)]
            assert out[0].alert.started_ns == 0
        else:
            assert out == []
    [alert] = book.active()
    assert alert.state is State.FIRING and alert.fired_ns == 60 * S


def test_recovery_threshold() -> None:
    assert recovery_threshold(100.0, 0.95) == 100.0 * 0.95
    assert recovery_threshold(-10.0, 0.9) == pytest.approx(-11.0)
    assert recovery_threshold(50.0, 1.0) == 50.0


def test_recovery_ratio_override_changes_the_band() -> None:
    book = AlertBook(rules(limit_breach={"recovery_ratio": 0.8}))
    book.observe(level(120.0), now_ns=0)
    assert book.observe(level(85.0), now_ns=1) == []
    assert states(book.observe(level(80.0), now_ns=2)) == [(State.FIRING, State.RESOLVED)]


# -- dedup, updates, severity -----------------------------------------------------------------


def test_same_signal_twice_is_one_alert_and_one_transition() -> None:
    book = AlertBook()
    sig = event(RuleName.ANOMALY, summary="unusual NOx")
    first = book.observe(sig, now_ns=0)
    second = book.observe(sig, now_ns=1 * S)
    assert states(first) == [(None, State.FIRING)] and second == []
    assert len(book.alerts()) == 1
    # labels order does not matter: same fingerprint
    reordered = Signal(RuleName.ANOMALY, dict(reversed(list(SENSOR.items()))), True, 2)
    assert book.observe(reordered, now_ns=2 * S) == []
    assert len(book) == 1


def test_value_updates_keep_the_snapshot_current_without_transitions() -> None:
    book = AlertBook()
    [t] = book.observe(level(120.0, summary="NOx 120"), now_ns=0)
    assert book.observe(level(130.0, summary="NOx 130"), now_ns=5 * S) == []
    alert = book.get(t.alert.fingerprint)
    assert alert is not None
    assert (alert.value, alert.summary, alert.updated_ns, alert.state) == (
        130.0,
        "NOx 130",
        5 * S,
        State.FIRING,
    )
    assert book.observe(level(130.0, summary="NOx 130"), now_ns=9 * S) == []
    assert book.get(t.alert.fingerprint).updated_ns == 5 * S  # type: ignore[union-attr]


def test_severity_rise_while_firing_is_a_transition_and_never_falls_within_an_episode() -> None:
    book = AlertBook()  # ANOMALY: info by default
    [t] = book.observe(event(RuleName.ANOMALY), now_ns=0)
    assert t.alert.severity is Severity.INFO
    [up] = book.observe(event(RuleName.ANOMALY, severity=Severity.WARNING), now_ns=1 * S)
    assert (up.previous, up.alert.state, up.alert.severity) == (
        State.FIRING,
        State.FIRING,
        Severity.WARNING,
    )
    assert up.comment == "severity raised from info to warning"
    assert book.observe(event(RuleName.ANOMALY, severity=Severity.WARNING), now_ns=2 * S) == []
    assert book.observe(event(RuleName.ANOMALY, severity=Severity.INFO), now_ns=3 * S) == []
    assert book.get(t.alert.fingerprint).severity is Severity.WARNING  # type: ignore[union-attr]
    book.acknowledge(t.alert.fingerprint, "alice", "", now_ns=4 * S)
    [crit] = book.observe(event(RuleName.ANOMALY, severity=Severity.CRITICAL), now_ns=5 * S)
    assert (crit.previous, crit.alert.state) == (State.ACKNOWLEDGED, State.ACKNOWLEDGED)
    assert crit.alert.severity is Severity.CRITICAL


def test_severity_rise_while_pending_is_silent_and_a_new_episode_starts_from_the_default() -> None:
    book = AlertBook()  # SENSOR_FAULT: warning, for 10 s
    book.observe(event(RuleName.SENSOR_FAULT), now_ns=0)
    assert book.observe(event(RuleName.SENSOR_FAULT, severity=Severity.CRITICAL), now_ns=1) == []
    [fired] = book.evaluate(10 * S)
    assert fired.alert.severity is Severity.CRITICAL
    book.observe(event(RuleName.SENSOR_FAULT, active=False), now_ns=11 * S)
    [again] = book.observe(event(RuleName.SENSOR_FAULT), now_ns=12 * S)
    assert again.alert.severity is Severity.WARNING


# -- rules ------------------------------------------------------------------------------------


def test_disabled_rule_produces_nothing_and_its_open_alerts_resolve() -> None:
    book = AlertBook()
    book.observe(event(RuleName.ANOMALY), now_ns=0)
    disabled = AlertBook(rules(anomaly={"enabled": False}), book.records())
    assert disabled.observe(event(RuleName.ANOMALY, labels=WHERE), now_ns=1) == []
    assert len(disabled) == 1
    [r] = disabled.evaluate(2)
    assert (r.previous, r.alert.state) == (State.FIRING, State.RESOLVED)
    assert r.comment == "rule disabled or removed"
    assert disabled.evaluate(3) == []
    assert disabled.observe(event(RuleName.ANOMALY), now_ns=4) == []
    # a signal of the disabled rule resolves its open alert too, like evaluate would
    also = AlertBook(rules(anomaly={"enabled": False}), book.records())
    [r2] = also.observe(event(RuleName.ANOMALY), now_ns=2)
    assert r2.alert.state is State.RESOLVED


def test_alerts_of_a_removed_rule_resolve_on_evaluate() -> None:
    book = AlertBook()
    book.observe(event(RuleName.ANOMALY), now_ns=0)
    [record] = book.records()
    renamed = replace(record, alert=replace(record.alert, rule="old_rule_name"))
    [r] = AlertBook(records=[renamed]).evaluate(1)
    assert (r.alert.rule, r.alert.state) == ("old_rule_name", State.RESOLVED)


def test_unknown_rule_signal_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown alert rule 'bogus'"):
        AlertBook().observe(event("bogus"), now_ns=0)


def test_every_rule_has_a_default_and_event_rules_have_no_hysteresis() -> None:
    assert set(DEFAULT_RULES) == set(RuleName)
    config = RulesConfig()
    for name in RuleName:
        assert config.rule(name) == DEFAULT_RULES[name]
    assert config.rule(RuleName.LIMIT_BREACH).recovery_ratio == 0.95
    events = set(RuleName) - {RuleName.LIMIT_BREACH}
    assert all(DEFAULT_RULES[r].recovery_ratio is None for r in events)
    assert DEFAULT_RULES[RuleName.SERVICE_HEALTH].severity is Severity.CRITICAL


def test_overrides_merge_on_the_defaults() -> None:
    config = rules(
        forecast_prealarm={"severity": "critical", "resolve_after_s": None},
        no_data={"for_s": 300},
    )
    forecast = config.rule(RuleName.FORECAST)
    assert forecast.severity is Severity.CRITICAL and forecast.resolve_after_s is None
    assert forecast.for_s == 0  # not overridden
    assert config.rule(RuleName.NO_DATA).for_s == 300.0
    assert config.rule(RuleName.NO_DATA).severity is Severity.WARNING
    assert config.get("bogus") is None
    with pytest.raises(ValueError, match="unknown alert rule"):
        config.rule("bogus")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"limit_breech": {"for_s": 1}}, "unknown alert rule"),
        ({"limit_breach": {"recovery_ratio": 0}}, "recovery_ratio"),
        ({"limit_breach": {"recovery_ratio": 1.5}}, "recovery_ratio"),
        ({"limit_breach": {"for_s": -1}}, "for_s"),
        ({"anomaly": {"resolve_after_s": 0}}, "resolve_after_s"),
        ({"anomaly": {"severity": "urgent"}}, "severity"),
        ({"anomaly": {"for": 10}}, "Extra inputs"),
        ({"anomaly": {"for_s": "10"}}, "valid number"),
    ],
)
def test_invalid_rule_configuration_fails_at_validation(
    overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        RulesConfig.model_validate(overrides)


def test_rule_config_is_strict() -> None:
    with pytest.raises(ValidationError):
        RuleConfig.model_validate({"severity": "info", "enabled": "yes"})
    assert RuleConfig(severity=Severity.INFO).recovery_ratio == 0.95


# -- persistence support ----------------------------------------------------------------------


def test_dirty_records_until_marked_clean() -> None:
    book = AlertBook()
    book.observe(level(120.0), now_ns=0)
    dirty = book.dirty()
    assert [r.alert.state for r in dirty] == [State.FIRING]
    book.observe(level(125.0), now_ns=1)  # changed after dirty() was taken
    book.mark_clean(dirty)
    [still] = book.dirty()
    assert still.alert.value == 125.0 and still.last_seen_ns == 1
    book.mark_clean([still])
    assert book.dirty() == []
    book.observe(level(125.0), now_ns=2)  # same value, but a new last occurrence
    assert [r.last_seen_ns for r in book.dirty()] == [2]


def test_book_rebuilt_from_records_continues_identically() -> None:
    book = AlertBook()
    book.observe(event(RuleName.NO_DATA), now_ns=0)
    book.observe(event(RuleName.SENSOR_DRIFT), now_ns=100 * S)
    rebuilt = AlertBook(book.rules, book.records())
    assert rebuilt.alerts() == book.alerts()
    assert rebuilt.dirty() == []
    for now in (59 * S, 60 * S, 3700 * S):
        assert rebuilt.evaluate(now) == book.evaluate(now)


# -- properties -------------------------------------------------------------------------------

# Level values as multiples of the limit, around the band [0.95, 1.0] and beyond.
_ratios = st.sampled_from([0.5, 0.94, 0.95, 0.96, 0.99, 1.0, 1.001, 1.04, 1.5])
_steps = st.lists(st.tuples(st.integers(1, 20), _ratios), min_size=1, max_size=40)
_for = st.sampled_from([0, 5, 30])


@dataclass
class _Expected:
    state: State | None
    fired: bool


def _reference(steps: list[tuple[int, float]], for_s: int) -> list[_Expected]:
    """A batch reference: hysteresis over the whole series, then episodes as runs of holding."""
    times, values = [], []
    t = 0
    for dt, ratio in steps:
        t += dt * S
        times.append(t)
        values.append(ratio * LIMIT)
    holds: list[bool] = []
    for v in values:
        previous = holds[-1] if holds else False
        holds.append(v > LIMIT or (v > LIMIT * 0.95 and previous))
    out: list[_Expected] = []
    run_start: int | None = None
    last_run: tuple[int, int] | None = None  # (start time, time cleared)
    for i, h in enumerate(holds):
        if h:
            run_start = times[i] if run_start is None else run_start
            fired = times[i] - run_start >= for_s * S
            out.append(_Expected(State.FIRING if fired else State.PENDING, fired))
        else:
            if run_start is not None:
                last_run = (run_start, times[i])
                run_start = None
            if last_run is None:
                out.append(_Expected(None, False))
            else:  # fired if it had held for `for` by the time it was seen cleared
                out.append(_Expected(State.RESOLVED, last_run[1] - last_run[0] >= for_s * S))
    return out


def _signals(steps: list[tuple[int, float]]) -> list[tuple[int, Signal]]:
    out, t = [], 0
    for dt, ratio in steps:
        t += dt * S
        out.append((t, level(ratio * LIMIT, t)))
    return out


@settings(max_examples=300, deadline=None)
@given(_steps, _for)
def test_book_agrees_with_a_batch_reference_of_the_hysteresis(
    steps: list[tuple[int, float]], for_s: int
) -> None:
    book = AlertBook(rules(limit_breach={"for_s": for_s}))
    fp = fingerprint(RuleName.LIMIT_BREACH, WHERE)
    for (now, sig), expected in zip(_signals(steps), _reference(steps, for_s), strict=True):
        book.observe(sig, now_ns=now)
        alert = book.get(fp)
        assert (alert.state if alert else None) is expected.state
        if alert is not None:
            assert (alert.fired_ns is not None) is expected.fired


@settings(max_examples=300, deadline=None)
@given(_steps, _for)
def test_alert_starts_only_above_the_limit_and_resolves_only_below_recovery(
    steps: list[tuple[int, float]], for_s: int
) -> None:
    book = AlertBook(rules(limit_breach={"for_s": for_s}))
    for now, sig in _signals(steps):
        assert sig.value is not None
        for t in book.observe(sig, now_ns=now):
            if t.previous in (None, State.RESOLVED):
                assert sig.value > LIMIT
            if t.alert.state is State.RESOLVED:
                assert sig.value <= LIMIT * 0.95
            assert not (t.previous is State.RESOLVED and t.alert.state is State.RESOLVED)


@settings(max_examples=200, deadline=None)
@given(_steps, _for, st.lists(st.booleans(), min_size=40, max_size=40))
def test_results_do_not_depend_on_how_often_evaluate_runs(
    steps: list[tuple[int, float]], for_s: int, evaluate_before: list[bool]
) -> None:
    config = rules(limit_breach={"for_s": for_s})
    lazy, eager = AlertBook(config), AlertBook(config)
    lazy_out: list[Transition] = []
    eager_out: list[Transition] = []
    for (now, sig), early in zip(_signals(steps), evaluate_before, strict=False):
        lazy_out += lazy.observe(sig, now_ns=now)
        if early:
            eager_out += eager.evaluate(now - S // 2)
        eager_out += eager.observe(sig, now_ns=now)
        assert [a.state for a in lazy.alerts()] == [a.state for a in eager.alerts()]
    assert states(lazy_out) == states(eager_out)


@settings(max_examples=200, deadline=None)
@given(_steps, _for, st.integers(0, 40))
def test_rebuilding_from_records_at_any_point_changes_nothing(
    steps: list[tuple[int, float]], for_s: int, split: int
) -> None:
    config = rules(limit_breach={"for_s": for_s})
    straight, restarted = AlertBook(config), AlertBook(config)
    a: list[Transition] = []
    b: list[Transition] = []
    for i, (now, sig) in enumerate(_signals(steps)):
        if i == split:
            restarted = AlertBook(config, restarted.records())
        a += straight.observe(sig, now_ns=now)
        b += restarted.observe(sig, now_ns=now)
    assert a == b
    assert straight.records() == restarted.records()
