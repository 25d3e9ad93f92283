"""Silences: validation, time bounds, expiry, persistence, and status-triggered windows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from alerts.silences import (
    Silence,
    SilenceBook,
    SilenceError,
    SilenceNotFoundError,
    StatusSilencer,
    status_silence,
    triggers_silence,
)
from stream.compliance.types import OperatingMode
from stream.model import NS_PER_S, Status

S = NS_PER_S
T0 = 1_700_000_000 * S
NOX1 = {"plant": "demo", "stack": "boiler1", "sensor": "nox1"}


@pytest.fixture
def book(tmp_path: Path) -> Iterator[SilenceBook]:
    b = SilenceBook(tmp_path / "alerts.db")
    yield b
    b.close()


def add(book: SilenceBook, *matchers: str, start: int = T0, end: int = T0 + 3600 * S) -> Silence:
    return book.add(
        list(matchers), starts_ns=start, ends_ns=end, created_by="alice", now_ns=T0, comment="c"
    )


def test_add_validates(book: SilenceBook) -> None:
    with pytest.raises(SilenceError, match="after starts_ns"):
        add(book, "plant=demo", start=T0, end=T0)
    with pytest.raises(SilenceError, match="at least one matcher"):
        add(book)
    with pytest.raises(SilenceError, match="match every alert"):
        add(book, "plant=~.*")
    with pytest.raises(SilenceError, match="invalid regex"):
        add(book, "plant=~(")
    with pytest.raises(SilenceError, match="created_by"):
        book.add(["plant=demo"], starts_ns=T0, ends_ns=T0 + 1, created_by="", now_ns=T0)
    assert book.list(now_ns=T0, include_expired=True) == []


def test_silence_matches_within_its_time_bounds(book: SilenceBook) -> None:
    s = add(book, "plant=demo", "sensor=nox1", start=T0 + 10 * S, end=T0 + 20 * S)
    assert len(s.id) == 32
    assert s.source == "api" and s.created_by == "alice" and s.created_ns == T0
    assert book.silencing(NOX1, T0 + 9 * S) == []  # pending: a planned maintenance window
    assert s.state(T0) == "pending"
    assert book.silencing(NOX1, T0 + 10 * S) == [s]
    assert book.silencing({**NOX1, "sensor": "o2"}, T0 + 15 * S) == []
    assert book.silencing(NOX1, T0 + 20 * S) == []  # ends is exclusive
    assert book.active(T0 + 15 * S) == [s]
    assert s.state(T0 + 20 * S) == "expired"


def test_expire_ends_it_and_is_recorded(book: SilenceBook) -> None:
    s = add(book, "plant=demo")
    expired = book.expire(s.id, "bob", T0 + 60 * S)
    assert (expired.expired_by, expired.expired_ns) == ("bob", T0 + 60 * S)
    assert book.silencing(NOX1, T0 + 59 * S) == [expired]  # history still reads right
    assert book.silencing(NOX1, T0 + 60 * S) == []
    assert book.list(now_ns=T0 + 61 * S) == []
    assert book.list(now_ns=T0 + 61 * S, include_expired=True) == [expired]
    with pytest.raises(SilenceError, match="already expired"):
        book.expire(s.id, "bob", T0 + 61 * S)
    with pytest.raises(SilenceNotFoundError):
        book.expire("nope", "bob", T0)


def test_expiring_a_pending_window_means_it_never_starts(book: SilenceBook) -> None:
    s = add(book, "plant=demo", start=T0 + 100 * S, end=T0 + 200 * S)
    book.expire(s.id, "bob", T0)
    assert book.silencing(NOX1, T0 + 150 * S) == []


def test_silences_survive_a_restart(tmp_path: Path) -> None:
    first = SilenceBook(tmp_path / "s.db")
    kept = add(first, "plant=demo")
    gone = first.expire(add(first, "stack=boiler1").id, "bob", T0 + S)
    first.close()
    again = SilenceBook(tmp_path / "s.db")
    try:
        assert again.get(kept.id) == kept
        assert again.get(gone.id) == gone
        assert again.silencing(NOX1, T0 + 2 * S) == [kept]
    finally:
        again.close()


def test_purge_removes_long_ended_silences_only(book: SilenceBook) -> None:
    old = add(book, "plant=demo", end=T0 + S)
    current = add(book, "plant=demo")
    assert book.purge(T0 + 10 * S) == 1
    with pytest.raises(SilenceNotFoundError):
        book.get(old.id)
    assert book.get(current.id) == current


# -- status-triggered maintenance windows -----------------------------------------------------


def labels(rule: str, **kw: str) -> dict[str, str]:
    return {**NOX1, "rule": rule, **kw}


@pytest.mark.parametrize("status", [Status.CALIBRATION, Status.MAINTENANCE, "calibration"])
def test_sensor_status_silences_that_sensors_noise_not_breaches(status: Status | str) -> None:
    s = status_silence("demo", "boiler1", "nox1", status, start_ns=T0, end_ns=T0 + S)
    assert s.source == "plant_status"
    for rule in ("anomaly", "sensor_fault", "sensor_drift", "no_data"):
        assert s.matches(labels(rule)), rule
    assert not s.matches(labels("anomaly", sensor="o2"))
    assert not s.matches(labels("anomaly", stack="boiler2"))
    assert not s.matches({"plant": "demo", "stack": "boiler1", "pollutant": "nox", "rule": "x"})
    assert not s.matches(labels("limit_breach"))


@pytest.mark.parametrize("mode", [OperatingMode.STARTUP, OperatingMode.SHUTDOWN, "start-up"])
def test_startup_silences_excluded_period_alerts_of_the_stack(mode: OperatingMode | str) -> None:
    s = status_silence("demo", "boiler1", None, mode, start_ns=T0, end_ns=T0 + S)
    stack = {"plant": "demo", "stack": "boiler1"}
    assert s.matches({**stack, "pollutant": "nox", "rule": "limit_breach"})
    assert s.matches({**stack, "pollutant": "nox", "rule": "forecast_prealarm"})
    assert s.matches({**stack, "sensor": "o2", "rule": "anomaly"})
    assert not s.matches({**stack, "sensor": "o2", "rule": "sensor_fault"})
    assert not s.matches({**stack, "sensor": "o2", "rule": "no_data"})
    assert not s.matches({**stack, "pollutant": "nox", "rule": "daily_limit_exceeded"})
    assert not s.matches({"plant": "demo", "stack": "boiler2", "rule": "limit_breach"})


def test_statuses_that_open_no_window() -> None:
    for status in (Status.VALID, Status.MALFUNCTION, OperatingMode.NORMAL, "normal"):
        assert not triggers_silence(status)
        with pytest.raises(SilenceError, match="does not open"):
            status_silence("demo", "boiler1", "nox1", status, start_ns=T0, end_ns=T0 + S)
    with pytest.raises(SilenceError, match="needs the sensor"):
        status_silence("demo", "boiler1", None, Status.CALIBRATION, start_ns=T0, end_ns=T0 + S)


def test_status_silencer_opens_and_closes_windows(book: SilenceBook) -> None:
    silencer = StatusSilencer(book, max_window_s=3600)
    opened = silencer.observe("demo", "boiler1", "nox1", Status.CALIBRATION, T0)
    assert opened is not None
    assert (opened.starts_ns, opened.ends_ns) == (T0, T0 + 3600 * S)
    assert book.silencing(labels("anomaly"), T0 + S) == [opened]
    # Still calibrating, then maintenance: the same window.
    assert silencer.observe("demo", "boiler1", "nox1", Status.CALIBRATION, T0 + S) is None
    assert silencer.observe("demo", "boiler1", "nox1", Status.MAINTENANCE, T0 + 2 * S) is None
    # Another sensor gets its own.
    assert silencer.observe("demo", "boiler1", "o2", Status.MAINTENANCE, T0) is not None
    closed = silencer.observe("demo", "boiler1", "nox1", Status.VALID, T0 + 600 * S)
    assert closed is not None and closed.id == opened.id
    assert closed.expired_ns == T0 + 600 * S and closed.expired_by == "plant_status"
    assert book.silencing(labels("anomaly"), T0 + 600 * S) == []
    assert silencer.observe("demo", "boiler1", "nox1", Status.VALID, T0 + 601 * S) is None


def test_status_window_is_bounded_and_not_renewed(book: SilenceBook) -> None:
    silencer = StatusSilencer(book, max_window_s=60)
    assert silencer.observe("demo", "boiler1", "nox1", "maintenance", T0) is not None
    # Left in maintenance mode: after max_window the sensor is no longer silenced.
    assert silencer.observe("demo", "boiler1", "nox1", "maintenance", T0 + 120 * S) is None
    assert book.silencing(labels("no_data"), T0 + 120 * S) == []
    # Back to valid (nothing left to expire), then a new calibration opens a new window.
    assert silencer.observe("demo", "boiler1", "nox1", "valid", T0 + 130 * S) is None
    assert silencer.observe("demo", "boiler1", "nox1", "calibration", T0 + 140 * S) is not None


def test_status_silencer_finds_open_windows_after_restart(tmp_path: Path) -> None:
    first = SilenceBook(tmp_path / "s.db")
    opened = StatusSilencer(first).observe("demo", "boiler1", None, OperatingMode.STARTUP, T0)
    assert opened is not None
    first.close()
    book = SilenceBook(tmp_path / "s.db")
    try:
        silencer = StatusSilencer(book)
        assert silencer.observe("demo", "boiler1", None, OperatingMode.STARTUP, T0 + S) is None
        closed = silencer.observe("demo", "boiler1", None, OperatingMode.NORMAL, T0 + 2 * S)
        assert closed is not None and closed.id == opened.id
    finally:
        book.close()
