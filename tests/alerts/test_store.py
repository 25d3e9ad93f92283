"""The alert store on a real SQLite file: restarts, history, filters, atomicity, durability."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.lifecycle import AlertBook
from alerts.model import RuleName, Severity, Signal, State, Transition, fingerprint
from alerts.rules import RulesConfig
from alerts.store import SCHEMA_VERSION, AlertStore, AlertStoreError
from stream.model import NS_PER_S

S = NS_PER_S
BOILER = {"plant": "demo", "stack": "boiler1", "pollutant": "nox"}
TURBINE = {"plant": "demo", "stack": "gt2", "pollutant": "co"}
OTHER_PLANT = {"plant": "north", "stack": "boiler1", "pollutant": "nox"}
SENSOR = {"plant": "demo", "stack": "boiler1", "sensor": "nox1"}


def breach(value: float, labels: dict[str, str] = BOILER) -> Signal:
    return Signal(RuleName.LIMIT_BREACH, labels, True, 0, value=value, threshold=100.0)


def event(rule: str, active: bool = True, labels: dict[str, str] = SENSOR) -> Signal:
    return Signal(rule, labels, active, 0, summary=f"{rule} ünïcode ✓")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state" / "alerts.db"


def test_state_survives_a_restart(db: Path) -> None:
    store = AlertStore(db)
    book = store.load_book()
    store.persist(book, book.observe(event(RuleName.NO_DATA), now_ns=10 * S))  # pending
    store.persist(book, book.observe(event(RuleName.SENSOR_DRIFT), now_ns=10 * S))
    store.persist(book, book.observe(event(RuleName.SENSOR_DRIFT), now_ns=1000 * S))  # again
    [fired] = book.observe(breach(120.0), now_ns=20 * S)
    ack = book.acknowledge(fired.alert.fingerprint, "alice", "burner retuned", now_ns=30 * S)
    store.persist(book, [fired, ack])
    history_before = store.history()
    alerts_before = book.alerts()
    store.close()

    restarted = AlertStore(db)
    book2 = restarted.load_book()
    assert book2.alerts() == alerts_before
    assert restarted.history() == history_before
    assert [t.alert.state for t in reversed(history_before)] == [
        State.PENDING,
        State.FIRING,
        State.FIRING,
        State.ACKNOWLEDGED,
    ]
    # The pending alert fires at its original deadline: 10 s + NO_DATA's 60 s.
    assert book2.evaluate(70 * S - 1) == []
    [late] = book2.evaluate(70 * S)
    assert (late.alert.rule, late.alert.state, late.alert.started_ns) == (
        RuleName.NO_DATA,
        State.FIRING,
        10 * S,
    )
    # The drift event resolves an hour after its last occurrence (1000 s), not its first.
    assert book2.evaluate(3610 * S) == []
    [expired] = book2.evaluate(4600 * S)
    assert (expired.alert.rule, expired.alert.state) == (RuleName.SENSOR_DRIFT, State.RESOLVED)
    acked = book2.get(fingerprint(RuleName.LIMIT_BREACH, BOILER))
    assert acked is not None and acked.state is State.ACKNOWLEDGED
    assert (acked.acknowledged_by, acked.ack_comment, acked.acknowledged_ns) == (
        "alice",
        "burner retuned",
        30 * S,
    )
    restarted.persist(book2, [late, expired])
    assert len(restarted.history()) == 6
    restarted.close()


def test_value_updates_without_transitions_are_persisted(db: Path) -> None:
    with AlertStore(db) as store:
        book = store.load_book()
        store.persist(book, book.observe(breach(120.0), now_ns=0))
        assert book.observe(breach(140.0), now_ns=5 * S) == []
        store.persist(book)
        [current] = store.current()
        assert (current.value, current.updated_ns) == (140.0, 5 * S)
        assert len(store.history()) == 1
        assert store.records()[0].last_seen_ns == 5 * S


def test_persist_failure_stores_nothing_and_keeps_changes_dirty(db: Path) -> None:
    store = AlertStore(db)
    book = store.load_book()
    transitions = book.observe(breach(120.0), now_ns=0)
    store.close()
    with pytest.raises(AlertStoreError, match="saving alerts"):
        store.persist(book, transitions)
    assert [r.alert.state for r in book.dirty()] == [State.FIRING]
    with AlertStore(db) as again:
        assert again.current() == [] and again.history() == []
        again.persist(book, transitions)  # the caller retries with the same transitions
        assert book.dirty() == []
        assert again.history() == transitions


def test_a_failing_save_is_rolled_back_entirely(db: Path) -> None:
    with AlertStore(db) as store:
        book = store.load_book()
        good = book.observe(breach(120.0), now_ns=0)
        # Fail the upsert of the current alert, after the history rows were inserted.
        trap = sqlite3.connect(db)
        trap.execute(
            "CREATE TRIGGER trap BEFORE INSERT ON alerts BEGIN SELECT RAISE(ABORT, 'boom'); END"
        )
        trap.commit()
        with pytest.raises(AlertStoreError, match="boom") as info:
            store.persist(book, good)
        assert not info.value.retryable
        assert store.history() == [] and store.current() == []
        trap.execute("DROP TRIGGER trap")
        trap.commit()
        trap.close()
        store.persist(book, good)  # and the store works on
        assert store.history() == good
        assert store.current() == [good[0].alert]


def test_a_locked_file_gives_a_retryable_error(db: Path) -> None:
    with AlertStore(db, busy_timeout_s=0.05) as store:
        book = store.load_book()
        other = sqlite3.connect(db, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        try:
            with pytest.raises(AlertStoreError) as info:
                store.persist(book, book.observe(breach(120.0), now_ns=0))
            assert info.value.retryable
        finally:
            other.execute("ROLLBACK")
            other.close()
        store.persist(book, [])  # the dirty record is written once the lock is gone
        assert [a.state for a in store.current()] == [State.FIRING]


def test_a_save_survives_the_process_being_killed(db: Path) -> None:
    code = textwrap.dedent(
        f"""
        import os
        from alerts.model import Signal
        from alerts.store import AlertStore
        store = AlertStore({str(db)!r})
        book = store.load_book()
        sig = Signal("limit_breach", {{"plant": "demo", "stack": "s"}}, True, 0, value=2.0,
                     threshold=1.0)
        store.persist(book, book.observe(sig, now_ns=7))
        os._exit(0)  # no close, no cleanup
        """
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True, timeout=60)
    with AlertStore(db) as store:
        [alert] = store.current()
        assert (alert.state, alert.fired_ns, alert.labels) == (
            State.FIRING,
            7,
            {"plant": "demo", "stack": "s"},
        )
        assert len(store.history()) == 1


def test_a_newer_schema_is_refused(db: Path) -> None:
    AlertStore(db).close()
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(AlertStoreError, match="newer than this StackWatch supports"):
        AlertStore(db)


def _populated(db: Path) -> tuple[AlertStore, AlertBook]:
    """Four alerts with history at distinct times (s): see the assertions below."""
    store = AlertStore(db)
    book = store.load_book()
    steps: list[tuple[int, Signal]] = [
        (1, breach(120.0)),  # boiler limit firing
        (2, breach(130.0, TURBINE)),  # turbine limit firing
        (3, breach(110.0, OTHER_PLANT)),  # other plant firing
        (4, event(RuleName.ANOMALY)),  # sensor anomaly firing (info)
        (5, breach(50.0)),  # boiler resolved
        (6, event(RuleName.NO_DATA, labels=TURBINE)),  # turbine no-data pending
    ]
    for second, sig in steps:
        store.persist(book, book.observe(sig, now_ns=second * S))
    ack = book.acknowledge(fingerprint(RuleName.LIMIT_BREACH, TURBINE), "bob", "", now_ns=7 * S)
    store.persist(book, [ack])
    return store, book


def test_history_filters_and_pages(db: Path) -> None:
    store, _ = _populated(db)
    with store:
        everything = store.history()
        assert [t.ts_ns // S for t in everything] == [7, 6, 5, 4, 3, 2, 1]  # newest first
        assert [t.ts_ns // S for t in store.history(state=State.FIRING)] == [4, 3, 2, 1]
        assert [t.ts_ns // S for t in store.history(rule=RuleName.ANOMALY)] == [4]
        assert [t.ts_ns // S for t in store.history(plant="north")] == [3]
        assert [t.ts_ns // S for t in store.history(plant="demo", stack="gt2")] == [7, 6, 2]
        boiler = fingerprint(RuleName.LIMIT_BREACH, BOILER)
        assert [t.ts_ns // S for t in store.history(fingerprint=boiler)] == [5, 1]
        window = store.history(since_ns=2 * S, until_ns=5 * S)
        assert [t.ts_ns // S for t in window] == [4, 3, 2]
        assert [t.ts_ns // S for t in store.history(limit=2, offset=1)] == [6, 5]
        assert store.history(offset=10) == []
        [acked] = store.history(state=State.ACKNOWLEDGED)
        assert (acked.actor, acked.previous, acked.comment) == ("bob", State.FIRING, "")
        [resolved] = store.history(state=State.RESOLVED)
        assert (resolved.previous, resolved.alert.value) == (State.FIRING, 50.0)
        with pytest.raises(ValueError, match="limit"):
            store.history(limit=0)


def test_current_filters_and_order(db: Path) -> None:
    store, book = _populated(db)
    with store:
        everything = store.current()
        assert sorted(everything, key=lambda a: a.fingerprint) == book.alerts()
        # most severe first (critical limit breaches, warning no-data, info anomaly), then newest
        assert [(a.rule, a.started_ns // S) for a in everything] == [
            (RuleName.LIMIT_BREACH, 3),
            (RuleName.LIMIT_BREACH, 2),
            (RuleName.LIMIT_BREACH, 1),
            (RuleName.NO_DATA, 6),
            (RuleName.ANOMALY, 4),
        ]
        assert [a.state for a in store.current(active_only=True)] == [
            State.FIRING,
            State.ACKNOWLEDGED,
            State.FIRING,
        ]
        assert [a.state for a in store.current(stack="gt2")] == [State.ACKNOWLEDGED, State.PENDING]
        assert [a.labels["plant"] for a in store.current(plant="north")] == ["north"]
        assert [a.rule for a in store.current(rule=RuleName.NO_DATA)] == [RuleName.NO_DATA]
        [resolved] = store.current(state=State.RESOLVED)
        assert resolved.labels == BOILER
        assert store.current(state=State.PENDING, plant="north") == []
        assert everything[-1].severity is Severity.INFO


def test_load_book_applies_the_configured_rules(db: Path) -> None:
    store, _ = _populated(db)
    with store:
        book = store.load_book(RulesConfig.model_validate({"no_data": {"for_s": 1}}))
        [fired] = book.evaluate(7 * S)  # pending since 6 s, now for 1 s
        assert (fired.alert.rule, fired.alert.state) == (RuleName.NO_DATA, State.FIRING)


_values = st.sampled_from([50.0, 94.0, 96.0, 101.0, 130.0])
_ops = st.lists(
    st.tuples(
        st.integers(1, 120),
        st.sampled_from(["breach", "drift", "no_data", "no_data_off", "ack", "evaluate"]),
        _values,
    ),
    min_size=1,
    max_size=25,
)


def _apply(book: AlertBook, op: str, value: float, now: int) -> list[Transition]:
    if op == "breach":
        return book.observe(breach(value), now_ns=now)
    if op == "drift":
        return book.observe(event(RuleName.SENSOR_DRIFT), now_ns=now)
    if op in ("no_data", "no_data_off"):
        return book.observe(event(RuleName.NO_DATA, op == "no_data"), now_ns=now)
    if op == "ack":
        fp = fingerprint(RuleName.LIMIT_BREACH, BOILER)
        alert = book.get(fp)
        if alert is None or alert.state is not State.FIRING:
            return []
        return [book.acknowledge(fp, "alice", f"at {now}", now_ns=now)]
    return book.evaluate(now)


@settings(max_examples=40, deadline=None)
@given(_ops, st.integers(0, 25))
def test_restarting_through_the_store_at_any_point_changes_nothing(
    ops: list[tuple[int, str, float]], restart_at: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "alerts.db"
        straight = AlertBook()
        store = AlertStore(path, durable=False)
        book = store.load_book()
        expected: list[Transition] = []
        now = 0
        for i, (dt, op, value) in enumerate(ops):
            if i == restart_at:
                store.close()
                store = AlertStore(path, durable=False)
                book = store.load_book()
            now += dt * S
            expected += _apply(straight, op, value, now)
            store.persist(book, _apply(book, op, value, now))
        assert book.records() == straight.records()
        assert store.records() == straight.records()
        assert store.history(limit=1000) == list(reversed(expected))
        store.close()
