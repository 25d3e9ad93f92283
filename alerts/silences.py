"""Silences and maintenance windows: time-bounded matchers that mute notifications.

A :class:`Silence` mutes every alert whose labels (plus ``rule`` and ``severity``) match all of
its matchers while ``starts_ns <= now < ends_ns`` (a window in the future is a planned
maintenance window). Silenced alerts still exist, are shown and audited: the dispatcher records
every notification a silence held back. Expiring a silence ends it early; silences are never
deleted except by :meth:`SilenceBook.purge` long after they ended, so the audit trail keeps
the silence a suppression names.

Silences come from the API (``source="api"``) or from the plants themselves
(``source="plant_status"``, see :func:`status_silence` and :class:`StatusSilencer`):

* a sensor reporting ``calibration`` or ``maintenance`` silences that sensor's
  ``anomaly``, ``sensor_fault``, ``sensor_drift`` and ``no_data`` alerts: test gases, zero/span
  steps and interrupted feeds look exactly like faults and anomalies. ``limit_breach`` is *not*
  silenced: non-valid values never enter compliance averages, so a breach raised meanwhile
  comes from valid data (another analyser, the rest of the period) and is real.
* a stack in ``start-up`` or ``shut-down`` (plant operating mode) silences the stack's
  ``anomaly``, ``sensor_drift``, ``limit_breach`` and ``forecast_prealarm`` alerts: the IED
  excludes these periods from the averages a limit applies to, and transients are expected.
  ``sensor_fault``, ``no_data``, ``daily_limit_exceeded`` and the data-quality rules stay on:
  a broken analyser or lost data matters in every mode, and a daily average is computed from
  normal operation only.

``malfunction`` never silences anything: it is precisely what the fault alerts report.

Persistence: one SQLite table (the file survives restarts; it may be shared with the notify
log). Calls are synchronous and cheap (the active silences are cached in memory, writes are
rare); the book is thread-safe so the API may call it from a worker thread.

>>> s = status_silence("demo", "boiler1", "nox1", "calibration", start_ns=0, end_ns=NS_PER_S)
>>> s.source, [str(m) for m in s.matchers][:3]
('plant_status', ['plant="demo"', 'stack="boiler1"', 'sensor="nox1"'])
>>> s.matches({"plant": "demo", "stack": "boiler1", "sensor": "nox1", "rule": "anomaly"})
True
>>> s.matches({"plant": "demo", "stack": "boiler1", "sensor": "nox1", "rule": "limit_breach"})
False
"""

from __future__ import annotations

import builtins
import re
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from alerts.matchers import Matcher, MatchOp, matches
from alerts.model import Labels, RuleName
from alerts.sqlite import open_db
from stream.compliance.types import OperatingMode
from stream.model import NS_PER_S, Status

log = structlog.get_logger(__name__)

SilenceSource = Literal["api", "plant_status"]
SilenceState = Literal["pending", "active", "expired"]

SENSOR_STATUS_RULES = (
    RuleName.ANOMALY,
    RuleName.SENSOR_FAULT,
    RuleName.SENSOR_DRIFT,
    RuleName.NO_DATA,
)
"""Rules silenced while a sensor is in calibration or maintenance."""

MODE_RULES = (
    RuleName.ANOMALY,
    RuleName.SENSOR_DRIFT,
    RuleName.LIMIT_BREACH,
    RuleName.FORECAST,
)
"""Rules silenced while a stack starts up or shuts down."""

_SENSOR_WINDOWS = {Status.CALIBRATION.value, Status.MAINTENANCE.value}
_MODE_WINDOWS = {
    "start-up": "start-up",
    "startup": "start-up",
    "shut-down": "shut-down",
    "shutdown": "shut-down",
}
STATUS_ACTOR = "plant_status"


class SilenceError(ValueError):
    """A silence request is invalid (bad matchers or times, already expired)."""


class SilenceNotFoundError(LookupError):
    """No silence has that id."""


class Silence(BaseModel):
    """A time-bounded set of matchers; all times are integer ns since the epoch (UTC).

    ``expired_ns``/``expired_by`` are set when someone ends it early (:meth:`SilenceBook.expire`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    matchers: tuple[Matcher, ...]
    starts_ns: int
    ends_ns: int
    created_by: str = Field(min_length=1)
    comment: str = ""
    created_ns: int
    source: SilenceSource = "api"
    expired_ns: int | None = None
    expired_by: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Silence:
        if not self.matchers:
            raise ValueError("a silence needs at least one matcher")
        if all(m.matches({}) for m in self.matchers):
            # As in Alertmanager: matchers that all match the empty string would silence
            # every alert of every plant, which is never what was meant.
            raise ValueError("the matchers would match every alert; add a specific one")
        if self.ends_ns <= self.starts_ns:
            raise ValueError(f"ends_ns ({self.ends_ns}) must be after starts_ns ({self.starts_ns})")
        return self

    @property
    def end_ns(self) -> int:
        """When it actually stops muting: the earlier of ``ends_ns`` and an early expiry."""
        return self.ends_ns if self.expired_ns is None else min(self.ends_ns, self.expired_ns)

    def state(self, now_ns: int) -> SilenceState:
        if now_ns >= self.end_ns:
            return "expired"
        return "active" if now_ns >= self.starts_ns else "pending"

    def is_active(self, now_ns: int) -> bool:
        return self.starts_ns <= now_ns < self.end_ns

    def matches(self, labels: Labels) -> bool:
        return matches(self.matchers, labels)


def triggers_silence(status: Status | OperatingMode | str) -> bool:
    """Whether a sensor status or stack operating mode opens a maintenance window."""
    return _window_kind(status) is not None


def status_silence(
    plant: str,
    stack: str,
    sensor: str | None,
    status: Status | OperatingMode | str,
    *,
    start_ns: int,
    end_ns: int,
) -> Silence:
    """The maintenance-window silence for a status (see the module docstring for the rules).

    ``status`` is a sensor :class:`~stream.model.Status` (``calibration``, ``maintenance``;
    ``sensor`` required) or a stack operating mode (``OperatingMode.STARTUP``/``SHUTDOWN`` or
    ``"start-up"``/``"shut-down"``; ``sensor`` None). Other statuses raise :class:`SilenceError`.
    """
    kind = _window_kind(status)
    if kind is None:
        raise SilenceError(f"status {status!r} does not open a maintenance window")
    scope = [Matcher(label="plant", value=plant), Matcher(label="stack", value=stack)]
    if kind in _SENSOR_WINDOWS:
        if not sensor:
            raise SilenceError(f"a {kind} window needs the sensor")
        scope.append(Matcher(label="sensor", value=sensor))
        rules: Sequence[str] = SENSOR_STATUS_RULES
    else:
        rules = MODE_RULES
    pattern = "|".join(re.escape(str(r)) for r in sorted(rules))
    try:
        return Silence(
            matchers=(*scope, Matcher(label="rule", op=MatchOp.RE, value=pattern)),
            starts_ns=start_ns,
            ends_ns=end_ns,
            created_by=STATUS_ACTOR,
            comment=f"{'/'.join(p for p in (plant, stack, sensor) if p)} reports {kind}",
            created_ns=start_ns,
            source="plant_status",
        )
    except ValidationError as err:
        raise SilenceError(_messages(err)) from err


def _window_kind(status: Status | OperatingMode | str) -> str | None:
    if isinstance(status, OperatingMode):
        return {OperatingMode.STARTUP: "start-up", OperatingMode.SHUTDOWN: "shut-down"}.get(status)
    text = str(status).lower()
    if text in _SENSOR_WINDOWS:
        return text
    return _MODE_WINDOWS.get(text)


def _messages(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"])
        parts.append(f"{where}: {e['msg']}" if where else str(e["msg"]))
    return "; ".join(parts)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS silences (
    id TEXT PRIMARY KEY,
    ends_ns INTEGER NOT NULL,
    data TEXT NOT NULL
);
"""


class SilenceBook:
    """All silences, persisted in the SQLite file at ``path`` (created if missing)."""

    def __init__(self, path: str | Path) -> None:
        self._lock = threading.Lock()
        self._db = open_db(path, _SCHEMA)
        self._silences: dict[str, Silence] = {
            s.id: s
            for s in (
                Silence.model_validate_json(row[0])
                for row in self._db.execute("SELECT data FROM silences")
            )
        }

    def add(
        self,
        matchers: Sequence[Matcher | str],
        *,
        starts_ns: int,
        ends_ns: int,
        created_by: str,
        now_ns: int,
        comment: str = "",
        source: SilenceSource = "api",
    ) -> Silence:
        """Create and store a silence (text matchers are parsed); raises :class:`SilenceError`."""
        try:
            silence = Silence(
                matchers=tuple(Matcher.parse(m) if isinstance(m, str) else m for m in matchers),
                starts_ns=starts_ns,
                ends_ns=ends_ns,
                created_by=created_by,
                comment=comment,
                created_ns=now_ns,
                source=source,
            )
        except ValidationError as err:
            raise SilenceError(_messages(err)) from err
        return self.save(silence)

    def save(self, silence: Silence) -> Silence:
        """Store a silence built elsewhere (e.g. :func:`status_silence`); its id must be new."""
        with self._lock:
            if silence.id in self._silences:
                raise SilenceError(f"silence {silence.id} exists already")
            self._write(silence)
        log.info(
            "silence_added",
            silence_id=silence.id,
            matchers=[str(m) for m in silence.matchers],
            starts_ns=silence.starts_ns,
            ends_ns=silence.ends_ns,
            created_by=silence.created_by,
            source=silence.source,
        )
        return silence

    def get(self, silence_id: str) -> Silence:
        try:
            return self._silences[silence_id]
        except KeyError:
            raise SilenceNotFoundError(silence_id) from None

    def expire(self, silence_id: str, by: str, now_ns: int) -> Silence:
        """End a silence now (a pending one never starts); raises if it already ended."""
        with self._lock:
            current = self.get(silence_id)
            if current.state(now_ns) == "expired":
                raise SilenceError(f"silence {silence_id} has already expired")
            expired = current.model_copy(update={"expired_ns": now_ns, "expired_by": by})
            self._write(expired)
        log.info("silence_expired", silence_id=silence_id, by=by)
        return expired

    def active(self, now_ns: int) -> builtins.list[Silence]:
        """Silences muting at ``now_ns``, oldest start first."""
        return sorted(
            (s for s in self._snapshot() if s.is_active(now_ns)), key=lambda s: s.starts_ns
        )

    def silencing(self, labels: Labels, now_ns: int) -> builtins.list[Silence]:
        """The active silences that mute an alert with these labels (empty: not silenced)."""
        return [s for s in self.active(now_ns) if s.matches(labels)]

    def purge(self, before_ns: int) -> int:
        """Delete silences that ended before ``before_ns``; returns how many."""
        with self._lock:
            old = [s.id for s in self._silences.values() if s.end_ns < before_ns]
            with self._transaction():
                self._db.executemany("DELETE FROM silences WHERE id = ?", [(i,) for i in old])
            for i in old:
                del self._silences[i]
        return len(old)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def list(self, *, now_ns: int, include_expired: bool = False) -> builtins.list[Silence]:
        """Pending and active silences (plus expired ones if asked), newest start first."""
        return sorted(
            (s for s in self._snapshot() if include_expired or s.state(now_ns) != "expired"),
            key=lambda s: (s.starts_ns, s.created_ns),
            reverse=True,
        )

    def _snapshot(self) -> Iterable[Silence]:
        with self._lock:
            return builtins.list(self._silences.values())

    def _write(self, silence: Silence) -> None:
        with self._transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO silences (id, ends_ns, data) VALUES (?, ?, ?)",
                (silence.id, silence.end_ns, silence.model_dump_json()),
            )
        self._silences[silence.id] = silence

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")


class StatusSilencer:
    """Opens and closes maintenance windows from the status the plants report.

    Feed it status observations, at least every change (sensor status per sensor, operating
    mode per stack with ``sensor=None``). Entering calibration/maintenance/start-up/shut-down
    creates a ``plant_status`` silence from ``ts_ns`` to ``ts_ns + max_window_s``; returning to
    a status that opens no window expires it at that time. The window is bounded on purpose
    and is not renewed while the status persists: a sensor left in maintenance mode must not
    silence itself forever. Open windows are found again in the book after a restart.
    """

    def __init__(self, book: SilenceBook, max_window_s: float = 8 * 3600) -> None:
        if max_window_s <= 0:
            raise ValueError(f"max_window_s must be positive, got {max_window_s}")
        self._book = book
        self._max_ns = round(max_window_s * NS_PER_S)
        self._open: dict[tuple[str, str, str | None], str] = {}
        for s in sorted(book.list(now_ns=0, include_expired=True), key=lambda s: s.starts_ns):
            if s.source == "plant_status" and s.expired_ns is None:
                self._open[_scope_of(s)] = s.id

    def observe(
        self,
        plant: str,
        stack: str,
        sensor: str | None,
        status: Status | OperatingMode | str,
        ts_ns: int,
    ) -> Silence | None:
        """Apply one status observation; returns the silence created or expired, if any."""
        key = (plant, stack, sensor)
        current_id = self._open.get(key)
        if triggers_silence(status):
            if current_id is not None:
                # Already in a window (e.g. calibration followed by maintenance), or its
                # window lapsed: only a return to normal re-arms it.
                return None
            silence = self._book.save(
                status_silence(
                    plant, stack, sensor, status, start_ns=ts_ns, end_ns=ts_ns + self._max_ns
                )
            )
            self._open[key] = silence.id
            return silence
        if current_id is None:
            return None
        del self._open[key]
        current = self._book.get(current_id)
        if current.state(ts_ns) == "expired":
            return None
        return self._book.expire(current.id, STATUS_ACTOR, ts_ns)


def _scope_of(silence: Silence) -> tuple[str, str, str | None]:
    eq = {m.label: m.value for m in silence.matchers if m.op is MatchOp.EQ}
    return eq.get("plant", ""), eq.get("stack", ""), eq.get("sensor")
