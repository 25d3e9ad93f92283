"""Alert persistence: the current alerts and their append-only history, in one SQLite file.

Schema (``PRAGMA user_version`` = 1)::

    alerts(fingerprint PRIMARY KEY, <alert columns>, last_seen_ns)
        -- one row per fingerprint: the latest snapshot of :class:`~alerts.model.Alert`;
        -- started_ns is the pending since-time (the `for` clock), last_seen_ns the last
        -- occurrence (the `resolve_after` clock): both survive a restart
    transitions(id INTEGER PRIMARY KEY AUTOINCREMENT, ts_ns, previous, actor, comment,
                <alert columns>)
        -- append-only audit trail: every state change with the snapshot it produced

``<alert columns>`` are the fields of :class:`~alerts.model.Alert`, with the labels as a JSON
object (sorted keys) plus copies of ``plant`` and ``stack`` to filter on.

Every :meth:`AlertStore.save` is one transaction (``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back
on any error), so a crash never leaves the history and the current alerts disagreeing. The file
runs in WAL mode with ``synchronous=FULL`` by default: a committed save survives a power cut,
not just a killed process. Methods are synchronous and small; one connection is shared behind a
lock, so calls from the event loop thread (or any other) are safe, one at a time.

>>> import tempfile, pathlib
>>> from alerts.lifecycle import AlertBook
>>> from alerts.model import Signal
>>> tmp = tempfile.TemporaryDirectory()
>>> store = AlertStore(pathlib.Path(tmp.name) / "alerts.db")
>>> book = store.load_book()
>>> sig = Signal("limit_breach", {"plant": "demo", "stack": "boiler1"}, True, 0, value=120.0,
...              threshold=100.0)
>>> store.persist(book, book.observe(sig, now_ns=0))
>>> [(t.previous, t.alert.state.value) for t in store.history()]
[(None, 'firing')]
>>> store.close(); tmp.cleanup()
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any

import structlog

from alerts.lifecycle import AlertBook, AlertRecord
from alerts.model import Alert, Severity, State, Transition
from alerts.rules import RulesConfig

log = structlog.get_logger(__name__)

SCHEMA_VERSION = 1

# The Alert fields as columns, in this order, in both tables.
_ALERT_COLUMNS = (
    "fingerprint",
    "rule",
    "labels",
    "plant",
    "stack",
    "severity",
    "state",
    "summary",
    "started_ns",
    "updated_ns",
    "value",
    "threshold",
    "fired_ns",
    "acknowledged_ns",
    "acknowledged_by",
    "ack_comment",
    "resolved_ns",
)

_STATES = ", ".join(f"'{s.value}'" for s in State)
_SEVERITIES = ", ".join(f"'{s.value}'" for s in Severity)

_ALERT_COLUMNS_DDL = f"""
    rule TEXT NOT NULL,
    labels TEXT NOT NULL,
    plant TEXT,
    stack TEXT,
    severity TEXT NOT NULL CHECK (severity IN ({_SEVERITIES})),
    state TEXT NOT NULL CHECK (state IN ({_STATES})),
    summary TEXT NOT NULL,
    started_ns INTEGER NOT NULL,
    updated_ns INTEGER NOT NULL,
    value REAL,
    threshold REAL,
    fired_ns INTEGER,
    acknowledged_ns INTEGER,
    acknowledged_by TEXT,
    ack_comment TEXT,
    resolved_ns INTEGER
"""

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS alerts (
    fingerprint TEXT PRIMARY KEY,
    {_ALERT_COLUMNS_DDL},
    last_seen_ns INTEGER
);
CREATE TABLE IF NOT EXISTS transitions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ns INTEGER NOT NULL,
    previous TEXT CHECK (previous IS NULL OR previous IN ({_STATES})),
    actor TEXT NOT NULL,
    comment TEXT,
    fingerprint TEXT NOT NULL,
    {_ALERT_COLUMNS_DDL}
);
CREATE INDEX IF NOT EXISTS transitions_ts ON transitions (ts_ns);
CREATE INDEX IF NOT EXISTS transitions_fingerprint ON transitions (fingerprint, ts_ns);
CREATE INDEX IF NOT EXISTS transitions_where ON transitions (plant, stack, ts_ns);
"""

# Statements are assembled from this module's constants only (hence ``noqa: S608``);
# every value travels as a bound parameter.
_COLS = ", ".join(_ALERT_COLUMNS)
_MARKS = ", ".join("?" for _ in _ALERT_COLUMNS)
_UPDATES = ", ".join(f"{c} = excluded.{c}" for c in _ALERT_COLUMNS[1:])
_UPSERT_ALERT = (
    f"INSERT INTO alerts ({_COLS}, last_seen_ns) VALUES ({_MARKS}, ?) "  # noqa: S608
    f"ON CONFLICT (fingerprint) DO UPDATE SET {_UPDATES}, last_seen_ns = excluded.last_seen_ns"
)
_INSERT_TRANSITION = (
    f"INSERT INTO transitions (ts_ns, previous, actor, comment, {_COLS}) "  # noqa: S608
    f"VALUES (?, ?, ?, ?, {_MARKS})"
)
_SEVERITY_ORDER = "CASE severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END"

# SQLite primary result codes of transient failures: another writer, I/O trouble, a full disk.
_RETRYABLE_CODES = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_IOERR", "SQLITE_FULL")


class AlertStoreError(Exception):
    """A failed store operation; ``retryable`` for transient causes (lock, I/O, full disk)."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def _alert_params(alert: Alert) -> tuple[Any, ...]:
    labels = dict(sorted(alert.labels.items()))
    return (
        alert.fingerprint,
        alert.rule,
        json.dumps(labels, separators=(",", ":")),
        labels.get("plant"),
        labels.get("stack"),
        alert.severity.value,
        alert.state.value,
        alert.summary,
        alert.started_ns,
        alert.updated_ns,
        alert.value,
        alert.threshold,
        alert.fired_ns,
        alert.acknowledged_ns,
        alert.acknowledged_by,
        alert.ack_comment,
        alert.resolved_ns,
    )


def _alert(row: sqlite3.Row) -> Alert:
    return Alert(
        fingerprint=row["fingerprint"],
        rule=row["rule"],
        labels=MappingProxyType(json.loads(row["labels"])),
        severity=Severity(row["severity"]),
        state=State(row["state"]),
        summary=row["summary"],
        started_ns=row["started_ns"],
        updated_ns=row["updated_ns"],
        value=row["value"],
        threshold=row["threshold"],
        fired_ns=row["fired_ns"],
        acknowledged_ns=row["acknowledged_ns"],
        acknowledged_by=row["acknowledged_by"],
        ack_comment=row["ack_comment"],
        resolved_ns=row["resolved_ns"],
    )


def _transition(row: sqlite3.Row) -> Transition:
    previous = row["previous"]
    return Transition(
        alert=_alert(row),
        previous=State(previous) if previous is not None else None,
        ts_ns=row["ts_ns"],
        actor=row["actor"],
        comment=row["comment"],
    )


class AlertStore:
    """Current alerts and transition history in the SQLite file ``path`` (created if missing).

    ``durable=False`` trades the fsync per save (``synchronous=FULL``) for ``NORMAL``: a
    killed process still loses nothing, a power cut may lose the last saves.
    ``busy_timeout_s``: how long a save waits for another process's lock on the file.
    Raises :class:`AlertStoreError` (also for a file written by a newer schema).
    """

    def __init__(self, path: Path | str, *, durable: bool = True, busy_timeout_s: float = 5.0):
        self._path = Path(path)
        self._lock = threading.Lock()
        self._failing = False
        self._path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(
                self._path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise _error(exc, f"cannot open alert store {self._path}") from exc
        conn.row_factory = sqlite3.Row
        self._conn = conn
        try:
            self._init_schema(durable)
        except BaseException:
            conn.close()
            raise

    def _init_schema(self, durable: bool) -> None:
        conn = self._conn
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise AlertStoreError(
                    f"alert store {self._path} has schema version {version}, newer than this "
                    f"StackWatch supports ({SCHEMA_VERSION})",
                    retryable=False,
                )
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise _error(exc, f"cannot initialise alert store {self._path}") from exc

    @property
    def path(self) -> Path:
        return self._path

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> AlertStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- writes ----------------------------------------------------------------------------

    def save(self, transitions: Sequence[Transition], records: Sequence[AlertRecord]) -> None:
        """Append ``transitions`` to the history and upsert ``records`` as current alerts,
        all or nothing."""
        if not transitions and not records:
            return
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.executemany(
                        _INSERT_TRANSITION,
                        [
                            (
                                t.ts_ns,
                                _state(t.previous),
                                t.actor,
                                t.comment,
                                *_alert_params(t.alert),
                            )
                            for t in transitions
                        ],
                    )
                    conn.executemany(
                        _UPSERT_ALERT,
                        [(*_alert_params(r.alert), r.last_seen_ns) for r in records],
                    )
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                error = _error(exc, f"saving alerts to {self._path} failed")
                if not self._failing:
                    log.error("alert_store_write_failed", error=str(exc), retryable=error.retryable)
                    self._failing = True
                raise error from exc
            if self._failing:
                log.info("alert_store_write_recovered")
                self._failing = False

    def persist(self, book: AlertBook, transitions: Sequence[Transition] = ()) -> None:
        """Save ``transitions`` and the book's changed records, then mark those clean.

        On failure nothing is stored and the records stay dirty; the caller keeps the
        transitions and passes them again.
        """
        records = book.dirty()
        self.save(transitions, records)
        book.mark_clean(records)

    # -- reads -----------------------------------------------------------------------------

    def records(self) -> list[AlertRecord]:
        """Every stored alert with its timing (ordered by fingerprint)."""
        rows = self._query("SELECT * FROM alerts ORDER BY fingerprint", ())
        return [AlertRecord(_alert(r), r["last_seen_ns"]) for r in rows]

    def load_book(self, rules: RulesConfig | None = None) -> AlertBook:
        """A book with every stored alert, pending since-times and last occurrences restored.

        Call ``evaluate(now)`` on it next: alerts whose ``for`` or ``resolve_after`` elapsed
        while the service was down change state then (and those transitions are saved like
        any other).
        """
        return AlertBook(rules, self.records())

    def current(
        self,
        *,
        state: State | None = None,
        plant: str | None = None,
        stack: str | None = None,
        rule: str | None = None,
        active_only: bool = False,
    ) -> list[Alert]:
        """Current alerts (resolved ones included unless filtered), most severe first, then
        newest first. ``active_only``: firing and acknowledged only."""
        where, params = _filters(state=state, plant=plant, stack=stack, rule=rule)
        if active_only:
            where.append("state IN (?, ?)")
            params += [State.FIRING.value, State.ACKNOWLEDGED.value]
        sql = (
            f"SELECT * FROM alerts{_where(where)} "  # noqa: S608
            f"ORDER BY {_SEVERITY_ORDER}, started_ns DESC, fingerprint"
        )
        return [_alert(r) for r in self._query(sql, params)]

    def history(
        self,
        *,
        state: State | None = None,
        rule: str | None = None,
        plant: str | None = None,
        stack: str | None = None,
        fingerprint: str | None = None,
        since_ns: int | None = None,
        until_ns: int | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Transition]:
        """Recorded transitions, newest first. ``state`` is the state transitioned to;
        ``since_ns`` inclusive, ``until_ns`` exclusive (on the transition's ``ts_ns``)."""
        if limit < 1 or offset < 0:
            raise ValueError(f"need limit >= 1 and offset >= 0, got {limit=} {offset=}")
        where, params = _filters(
            state=state, plant=plant, stack=stack, rule=rule, fingerprint=fingerprint
        )
        if since_ns is not None:
            where.append("ts_ns >= ?")
            params.append(since_ns)
        if until_ns is not None:
            where.append("ts_ns < ?")
            params.append(until_ns)
        sql = (
            f"SELECT * FROM transitions{_where(where)} "  # noqa: S608
            "ORDER BY ts_ns DESC, id DESC LIMIT ? OFFSET ?"
        )
        return [_transition(r) for r in self._query(sql, [*params, limit, offset])]

    def _query(self, sql: str, params: Sequence[Any]) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise _error(exc, f"reading alerts from {self._path} failed") from exc


def _state(state: State | None) -> str | None:
    return state.value if state is not None else None


def _filters(**columns: str | None) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    for column, value in columns.items():
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value.value if isinstance(value, State) else value)
    return where, params


def _where(clauses: list[str]) -> str:
    return f" WHERE {' AND '.join(clauses)}" if clauses else ""


def _error(exc: sqlite3.Error, message: str) -> AlertStoreError:
    name = getattr(exc, "sqlite_errorname", "")
    retryable = isinstance(name, str) and name.startswith(_RETRYABLE_CODES)
    return AlertStoreError(f"{message}: {exc}", retryable=retryable)
