"""The notification log: what each receiver was told about each group, persisted in SQLite.

Like Alertmanager's nflog, one :class:`LogEntry` per ``(receiver, group_key, level)`` —
``level`` 0 for a route's own receivers, ``n`` for its n-th escalation level — holds what the
dispatcher's dedup decision needs, so a restart neither re-sends a notification nor forgets
when the next reminder or escalation is due:

* ``firing``: the alerts the receiver was told are firing, ``fingerprint -> fired_ns``. The
  ``fired_ns`` identifies the firing *episode*: an alert that resolved and fired again is a new
  episode and is notified again, even if the resolution was never seen (Alertmanager #1660).
* ``resolved``: the last resolved episode notified (or suppressed) per fingerprint.
* ``muted``: episodes whose notification was suppressed (silenced or inhibited) and recorded,
  so that is recorded once, and so their resolution can be recorded too.
* ``tick_ns``: when the last notification that announces alerts (first, new alerts, repeat,
  escalation) went out, the anchor of ``group_interval`` and ``repeat_interval``;
  ``sent_ns``: the last notification of any kind (resolved ones included).

Delivery contract: the dispatcher marks notifications as sent when it returns them, in the
same transaction as their log entries (:meth:`NotifyLog.commit`). Delivering them — with
retries, at least once — is the notifier's job; a crash between this commit and delivery loses
those notifications, a crash before it sends them again. Every notification sent and every
suppression is also kept as history (:meth:`NotifyLog.sent`, :meth:`NotifyLog.suppressed`)
for the audit trail. Calls are synchronous and cheap (entries are cached in memory; one small
transaction per flush that changed something).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, cast

from alerts.model import Notification, NotifyReason
from alerts.sqlite import open_db

MuteReason = Literal["silenced", "inhibited"]


@dataclass(frozen=True, slots=True)
class LogEntry:
    """What one receiver knows about one group at one escalation level (see module doc)."""

    receiver: str
    group_key: str
    level: int = 0
    tick_ns: int | None = None
    sent_ns: int | None = None
    firing: Mapping[str, int] = field(default_factory=dict)
    resolved: Mapping[str, int] = field(default_factory=dict)
    muted: Mapping[str, int] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, int]:
        return self.receiver, self.group_key, self.level


@dataclass(frozen=True, slots=True)
class Suppressed:
    """A notification that would have gone out for an alert but was muted.

    ``reason`` says how (``silenced``/``inhibited``), ``by`` by what (the silence ids, comma
    separated, or the inhibition rule's description); ``notify_reason`` is the kind of
    notification held back, ``escalation_level`` its level.
    """

    alert_fingerprint: str
    receiver: str
    group_key: str
    reason: MuteReason
    by: str
    ts_ns: int
    notify_reason: NotifyReason
    escalation_level: int = 0


@dataclass(frozen=True, slots=True)
class SentRecord:
    """History row of one notification sent (alerts by fingerprint)."""

    id: str
    receiver: str
    group_key: str
    reason: NotifyReason
    ts_ns: int
    escalation_level: int
    firing: tuple[str, ...]
    resolved: tuple[str, ...]


_SCHEMA = """
CREATE TABLE IF NOT EXISTS notify_log (
    receiver TEXT NOT NULL,
    group_key TEXT NOT NULL,
    level INTEGER NOT NULL,
    tick_ns INTEGER,
    sent_ns INTEGER,
    firing TEXT NOT NULL,
    resolved TEXT NOT NULL,
    muted TEXT NOT NULL,
    PRIMARY KEY (receiver, group_key, level)
);
CREATE TABLE IF NOT EXISTS notify_sent (
    id TEXT PRIMARY KEY,
    ts_ns INTEGER NOT NULL,
    receiver TEXT NOT NULL,
    group_key TEXT NOT NULL,
    reason TEXT NOT NULL,
    level INTEGER NOT NULL,
    firing TEXT NOT NULL,
    resolved TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS notify_sent_ts ON notify_sent (ts_ns);
CREATE TABLE IF NOT EXISTS notify_suppressed (
    ts_ns INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    receiver TEXT NOT NULL,
    group_key TEXT NOT NULL,
    reason TEXT NOT NULL,
    by TEXT NOT NULL,
    notify_reason TEXT NOT NULL,
    level INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS notify_suppressed_ts ON notify_suppressed (ts_ns);
"""


class NotifyLog:
    """The log in the SQLite file at ``path`` (created if missing; may be shared with the
    silences). Thread-safe."""

    def __init__(self, path: str | Path) -> None:
        self._lock = threading.Lock()
        self._db = open_db(path, _SCHEMA)
        rows = self._db.execute(
            "SELECT receiver, group_key, level, tick_ns, sent_ns, firing, resolved, muted"
            " FROM notify_log"
        ).fetchall()
        self._entries = {
            (r[0], r[1], r[2]): LogEntry(
                r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), json.loads(r[6]), json.loads(r[7])
            )
            for r in rows
        }

    def get(self, receiver: str, group_key: str, level: int = 0) -> LogEntry | None:
        return self._entries.get((receiver, group_key, level))

    def entries(self, group_key: str | None = None) -> list[LogEntry]:
        with self._lock:
            found = list(self._entries.values())
        return [e for e in found if group_key is None or e.group_key == group_key]

    def escalation_level(self, group_key: str) -> int:
        """The highest escalation level any receiver of the group was notified at (0: none)."""
        return max(
            (e.level for e in self.entries(group_key) if e.level and e.tick_ns is not None),
            default=0,
        )

    def commit(
        self,
        entries: Iterable[LogEntry],
        notifications: Sequence[Notification] = (),
        suppressed: Sequence[Suppressed] = (),
    ) -> None:
        """Store changed entries and the history of one flush, atomically."""
        changed = list(entries)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT OR REPLACE INTO notify_log VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            *e.key,
                            e.tick_ns,
                            e.sent_ns,
                            _dump(e.firing),
                            _dump(e.resolved),
                            _dump(e.muted),
                        )
                        for e in changed
                    ],
                )
                self._db.executemany(
                    "INSERT INTO notify_sent VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            n.id,
                            n.ts_ns,
                            n.receiver,
                            n.group_key,
                            n.reason.value,
                            n.escalation_level,
                            json.dumps([a.fingerprint for a in n.firing]),
                            json.dumps([a.fingerprint for a in n.resolved]),
                        )
                        for n in notifications
                    ],
                )
                self._db.executemany(
                    "INSERT INTO notify_suppressed VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            s.ts_ns,
                            s.alert_fingerprint,
                            s.receiver,
                            s.group_key,
                            s.reason,
                            s.by,
                            s.notify_reason.value,
                            s.escalation_level,
                        )
                        for s in suppressed
                    ],
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            # Only what is committed becomes visible to the next decision.
            self._entries.update((e.key, e) for e in changed)

    def sent(self, since_ns: int = 0, limit: int = 1000) -> list[SentRecord]:
        """Notifications sent at or after ``since_ns``, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, receiver, group_key, reason, ts_ns, level, firing, resolved"
                " FROM notify_sent WHERE ts_ns >= ? ORDER BY ts_ns, rowid LIMIT ?",
                (since_ns, limit),
            ).fetchall()
        return [
            SentRecord(
                r[0],
                r[1],
                r[2],
                NotifyReason(r[3]),
                r[4],
                r[5],
                tuple(json.loads(r[6])),
                tuple(json.loads(r[7])),
            )
            for r in rows
        ]

    def suppressed(self, since_ns: int = 0, limit: int = 1000) -> list[Suppressed]:
        """Suppressed notifications recorded at or after ``since_ns``, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT fingerprint, receiver, group_key, reason, by, ts_ns, notify_reason, level"
                " FROM notify_suppressed WHERE ts_ns >= ? ORDER BY ts_ns, rowid LIMIT ?",
                (since_ns, limit),
            ).fetchall()
        return [
            Suppressed(
                r[0], r[1], r[2], cast(MuteReason, r[3]), r[4], r[5], NotifyReason(r[6]), r[7]
            )
            for r in rows
        ]

    def purge(self, before_ns: int) -> int:
        """Forget history older than ``before_ns`` and entries with nothing outstanding that
        were last used before it; returns the number of entries removed."""
        with self._lock:
            stale = [
                e.key
                for e in self._entries.values()
                if not e.firing and not e.muted and (e.sent_ns or 0) < before_ns
            ]
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "DELETE FROM notify_log WHERE receiver = ? AND group_key = ? AND level = ?",
                    stale,
                )
                self._db.execute("DELETE FROM notify_sent WHERE ts_ns < ?", (before_ns,))
                self._db.execute("DELETE FROM notify_suppressed WHERE ts_ns < ?", (before_ns,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            for key in stale:
                del self._entries[key]
        return len(stale)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _dump(episodes: Mapping[str, int]) -> str:
    return json.dumps(dict(sorted(episodes.items())), separators=(",", ":"))
