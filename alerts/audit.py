"""The audit trail: an append-only, hash-chained JSON-lines log of what happened to alerts.

Every alert transition, acknowledgement, silence, configuration load/change and notification
outcome (sent, suppressed, failed) is one line::

    {"actor":…,"data":{…},"hash":…,"kind":…,"prev":…,"seq":n,"subject":…,"ts":…,"ts_ns":…}

``seq`` counts from 1 without gaps; ``ts_ns`` is when the entry was recorded (integer ns since
the epoch, UTC) and ``ts`` the same instant in ISO 8601 for people; ``prev`` is the previous
entry's ``hash`` (64 zeros for the first); ``hash`` is SHA-256, or HMAC-SHA256 when the log
has a key, over the canonical JSON (sorted keys, compact separators, UTF-8) of the entry
without ``hash``. Each line *is* the canonical JSON of the whole entry, so any change of any
byte is detected by :func:`verify`: it breaks the JSON, the canonical form, the entry's hash,
or the chain (``prev``/``seq``) of the next entry.

What the chain cannot show: without a key, whoever can write the file can rewrite a whole
suffix with fresh hashes; with a key they cannot. Cutting entries off the *end* leaves a valid
chain either way. Against both, store :meth:`AuditLog.head` somewhere else (a ticket, another
host) and pass it to :func:`verify` as ``expect_head``: the log must still contain that entry.

Crash safety: an append returns only once its line and newline are on disk (``fsync``), so
bytes after the last newline are an append that never completed. Opening the log truncates
such a torn tail and records an ``audit_recovered`` entry holding the removed bytes, so a
crash never leaves the log unverifiable and never goes unnoticed. One process writes a log
(an exclusive ``flock``); threads of that process may append concurrently.

>>> import tempfile
>>> from pathlib import Path
>>> with tempfile.TemporaryDirectory() as d:
...     path = Path(d) / "audit.jsonl"
...     with AuditLog(path, clock=lambda: 1_700_000_000_000_000_000) as log:
...         entry = log.record(AuditKind.CONFIG_LOADED, "system", "plants.yaml", {"stacks": 2})
...     print(entry.seq, entry.ts, entry.prev == GENESIS)
...     print(verify(path).ok, read(path)[0].data)
1 2023-11-14T22:13:20+00:00 True
True {'stacks': 2}
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import structlog
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from alerts.model import State, Transition
from stream.model import datetime_from_ns

log = structlog.get_logger(__name__)

GENESIS = "0" * 64
"""The ``prev`` of the first entry."""

FIELDS = frozenset({"seq", "ts", "ts_ns", "actor", "kind", "subject", "data", "prev", "hash"})
_TORN_KEEP = 4096  # bytes of a torn tail quoted in the recovery entry (all of it is hashed)
_HEX = frozenset("0123456789abcdef")

__all__ = [
    "FIELDS",
    "GENESIS",
    "AuditEntry",
    "AuditError",
    "AuditKind",
    "AuditLog",
    "AuditSettings",
    "Problem",
    "VerifyReport",
    "read",
    "verify",
]


class AuditKind(StrEnum):
    """What an entry records. ``subject`` is the alert fingerprint, silence id, config file or
    notification id the entry is about."""

    ALERT_TRANSITION = "alert_transition"
    ACKNOWLEDGEMENT = "acknowledgement"
    SILENCE_CREATED = "silence_created"
    SILENCE_EXPIRED = "silence_expired"
    CONFIG_LOADED = "config_loaded"
    CONFIG_CHANGED = "config_changed"
    NOTIFICATION_SENT = "notification_sent"
    NOTIFICATION_SUPPRESSED = "notification_suppressed"
    NOTIFICATION_FAILED = "notification_failed"
    AUDIT_RECOVERED = "audit_recovered"  # a torn tail was truncated on open (data says what)


class AuditSettings(BaseSettings):
    """``STACKWATCH_ALERTS_AUDIT_KEY``: the HMAC key of the audit log (unset: plain SHA-256)."""

    model_config = SettingsConfigDict(
        env_prefix="STACKWATCH_ALERTS_AUDIT_",
        env_file=".env",
        env_ignore_empty=True,
        extra="ignore",
    )

    key: SecretStr | None = None


class AuditError(Exception):
    """The log cannot be opened or appended to. ``retryable``: the same call may succeed later
    (e.g. a full disk); otherwise an operator must act (another writer, a damaged last entry)."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the log. ``kind`` is a plain string so newer kinds still read."""

    seq: int
    ts: str
    ts_ns: int
    actor: str
    kind: str
    subject: str
    data: Mapping[str, Any]
    prev: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        """The entry as stored (JSON-ready)."""
        return {
            "seq": self.seq,
            "ts": self.ts,
            "ts_ns": self.ts_ns,
            "actor": self.actor,
            "kind": self.kind,
            "subject": self.subject,
            "data": dict(self.data),
            "prev": self.prev,
            "hash": self.hash,
        }


@dataclass(frozen=True, slots=True)
class Problem:
    """Why one line fails verification. ``line`` is 1-based; ``seq`` is None when the line is
    not a readable entry (or, for a head anchor problem, names the anchor)."""

    line: int
    seq: int | None
    reason: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f" (seq {self.seq})" if self.seq is not None else "")
        return f"{where}: {self.reason}"


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """Result of :func:`verify`. ``entries``: lines examined; ``head``: ``(seq, hash)`` of the
    last readable entry (``(0, GENESIS)`` for an empty log); ``hint``: a likely cause when
    *no* entry's hash matches (a wrong or missing key, or the whole log rewritten)."""

    ok: bool
    entries: int
    problems: list[Problem] = field(default_factory=list)
    head: tuple[int, str] = (0, GENESIS)
    hint: str | None = None


# --- canonical form and hashing -------------------------------------------------------------


def _canonical(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def _entry_hash(content: Mapping[str, Any], key: SecretStr | None) -> str:
    """Hash of an entry without its ``hash`` field; HMAC-SHA256 when keyed."""
    body = _canonical({k: v for k, v in content.items() if k != "hash"})
    if key is None:
        return hashlib.sha256(body).hexdigest()
    return hmac.new(key.get_secret_value().encode(), body, hashlib.sha256).hexdigest()


def _iso(ts_ns: int) -> str:
    return datetime_from_ns(ts_ns).isoformat()


def _clean_str(s: str) -> str:
    # Lone surrogates cannot be UTF-8 encoded; replace them rather than lose the entry.
    return s.encode("utf-8", "replace").decode()


def _json_value(value: object) -> Any:
    """``value`` as the plain JSON value it reads back as, so the hash written is the hash
    verified: tuples become lists, keys strings, non-finite floats their names, other objects
    their ``str``."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)  # an IntEnum reads back as a plain int
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return _clean_str(str(value))
    if isinstance(value, Mapping):
        return {_clean_str(str(k)): _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return [_json_value(v) for v in items]
    return _clean_str(str(value))


# --- reading lines --------------------------------------------------------------------------


def _reject_constant(name: str) -> None:
    raise ValueError(f"non-finite number {name}")


def _is_hex64(value: object) -> bool:
    return isinstance(value, str) and len(value) == 64 and set(value) <= _HEX


def _parse(raw: bytes) -> tuple[AuditEntry | None, list[str]]:
    """An entry from one line (without its newline) and what is wrong with it on its own.

    The entry is None when the line is not an entry at all (then the chain cannot be followed
    through it); otherwise the reasons are about its form and content, not its hash.
    """
    try:
        obj = json.loads(raw.decode(), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        return None, ["not valid UTF-8"]
    except (ValueError, RecursionError) as err:
        return None, [f"not valid JSON ({err})" if raw else "empty line"]
    if not isinstance(obj, dict):
        return None, ["not a JSON object"]
    if obj.keys() != FIELDS:
        missing = ", ".join(sorted(FIELDS - obj.keys())) or "none"
        extra = ", ".join(sorted(obj.keys() - FIELDS)) or "none"
        return None, [f"wrong fields (missing: {missing}; unexpected: {extra})"]
    wrong = [
        name
        for name, ok in (
            ("seq", type(obj["seq"]) is int and obj["seq"] >= 1),
            ("ts_ns", type(obj["ts_ns"]) is int),
            ("ts", isinstance(obj["ts"], str)),
            ("actor", isinstance(obj["actor"], str)),
            ("kind", isinstance(obj["kind"], str)),
            ("subject", isinstance(obj["subject"], str)),
            ("data", isinstance(obj["data"], dict)),
            ("prev", _is_hex64(obj["prev"])),
            ("hash", _is_hex64(obj["hash"])),
        )
        if not ok
    ]
    if wrong:
        return None, [f"invalid field(s): {', '.join(wrong)}"]
    entry = AuditEntry(**obj)
    reasons = []
    if _canonical(obj) != raw:
        reasons.append("not in canonical form (edited by hand?)")
    try:
        ts_ok = obj["ts"] == _iso(entry.ts_ns)
    except (ValueError, OverflowError, OSError):
        ts_ok = False
    if not ts_ok:
        reasons.append("ts does not match ts_ns")
    return entry, reasons


def _lines(path: Path) -> Iterator[tuple[int, bytes, bool]]:
    """``(line number, bytes without newline, complete)``: only the last may be incomplete."""
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            complete = raw.endswith(b"\n")
            yield number, raw[:-1] if complete else raw, complete


# --- verification ---------------------------------------------------------------------------


def verify(
    path: Path, *, key: SecretStr | None = None, expect_head: tuple[int, str] | None = None
) -> VerifyReport:
    """Check every line of the log at ``path`` and the chain between them.

    Finds edited entries (hash mismatch, non-canonical bytes), deleted, inserted or reordered
    entries (``seq`` not one more than the previous, ``prev`` not the previous ``hash``) and
    a torn last line. A line that is not an entry at all is reported once; the chain check
    resumes after it. ``key`` must be the key the log was written with (None: plain SHA-256).
    ``expect_head``: an earlier :meth:`AuditLog.head` kept elsewhere; the log must still hold
    that entry, which detects entries cut off the end. Raises ``FileNotFoundError``.
    """
    problems: list[Problem] = []
    prev: AuditEntry | None = None
    chain_known = True  # False right after an unreadable line: its hash is unknown
    head = (0, GENESIS)
    anchor_found = False
    hashed = mismatched = lines = 0
    for number, raw, complete in _lines(path):
        lines = number
        entry, reasons = _parse(raw)
        if not complete:
            reasons.insert(0, "incomplete last line (a torn write; truncated on next open)")
        if entry is None:
            problems.append(Problem(number, None, "; ".join(reasons)))
            prev, chain_known = None, False
            continue
        hashed += 1
        if _entry_hash(entry.to_dict(), key) != entry.hash:
            mismatched += 1
            reasons.append("hash mismatch (entry edited, or a different key)")
        if chain_known:
            want_seq, want_prev = (prev.seq + 1, prev.hash) if prev else (1, GENESIS)
            if entry.seq != want_seq:
                reasons.append(f"seq {entry.seq} where {want_seq} was expected")
            if entry.prev != want_prev:
                where = f"entry {prev.seq}" if prev else "the start of the log"
                reasons.append(f"prev does not match the hash of {where}")
        if expect_head is not None and entry.seq == expect_head[0]:
            anchor_found = True
            if entry.hash != expect_head[1]:
                reasons.append("hash differs from the expected head")
        if reasons:
            problems.append(Problem(number, entry.seq, "; ".join(reasons)))
        prev, chain_known = entry, True
        head = (entry.seq, entry.hash)
    if expect_head is not None and not anchor_found and expect_head != (0, GENESIS):
        problems.append(
            Problem(
                lines + 1,
                expect_head[0],
                f"expected head seq {expect_head[0]} is missing: the log ends at seq {head[0]}"
                " (entries cut off the end?)",
            )
        )
    hint = None
    if hashed and mismatched == hashed:
        hint = "no entry's hash matches: wrong or missing key, or the whole log was rewritten"
    return VerifyReport(not problems, lines, problems, head, hint)


# --- reading for the API --------------------------------------------------------------------


def read(
    path: Path,
    *,
    kind: str | None = None,
    subject: str | None = None,
    since_ns: int | None = None,
    until_ns: int | None = None,
    limit: int = 100,
    offset: int = 0,
    newest_first: bool = True,
) -> list[AuditEntry]:
    """Entries matching every filter given, a page of at most ``limit`` after skipping
    ``offset`` matches. ``since_ns`` is inclusive, ``until_ns`` exclusive (recording time).

    Does not verify (use :func:`verify`): lines that are not entries, such as a torn last
    line, are skipped. A missing file reads as no entries. Memory is O(offset + limit).
    """
    if limit < 0 or offset < 0:
        raise ValueError("limit and offset must not be negative")
    if not path.exists() or limit == 0:
        return []
    want = offset + limit
    matches: deque[AuditEntry] = deque(maxlen=want if newest_first else None)
    for _, raw, complete in _lines(path):
        entry = _parse(raw)[0] if complete else None
        if (
            entry is None
            or (kind is not None and entry.kind != kind)
            or (subject is not None and entry.subject != subject)
            or (since_ns is not None and entry.ts_ns < since_ns)
            or (until_ns is not None and entry.ts_ns >= until_ns)
        ):
            continue
        matches.append(entry)
        if not newest_first and len(matches) >= want:
            break
    ordered = list(reversed(matches)) if newest_first else list(matches)
    return ordered[offset:want]


# --- the writer -----------------------------------------------------------------------------


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _last_newline(fd: int, end: int) -> int:
    """Offset of the last ``\\n`` before ``end``, or -1."""
    chunk = 65536
    pos = end
    while pos > 0:
        start = max(0, pos - chunk)
        i = os.pread(fd, pos - start, start).rfind(b"\n")
        if i >= 0:
            return start + i
        pos = start
    return -1


class AuditLog:
    """The writer of one audit log file (see the module docstring for the format).

    Opening creates the file (and its directory) if needed, takes an exclusive lock on it
    (:class:`AuditError` if another process holds it), truncates a torn tail (recording an
    ``audit_recovered`` entry) and continues ``seq``/``prev`` from the last entry, which must
    be readable and hash correctly with ``key`` (else :class:`AuditError`: a wrong key would
    mix two keys in one chain; to change the key, start a new file). An append is durable
    when it returns. Use as a context manager or call :meth:`close`.
    """

    def __init__(
        self,
        path: Path,
        *,
        key: SecretStr | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.path = path
        self.key = key
        """The HMAC key (None: plain SHA-256); :func:`verify` needs the same one."""
        self._key = key
        self._clock = clock
        self._lock = threading.Lock()
        self._failing = False
        self._broken = False
        path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC
        try:
            self._fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o640)
            created = True
        except FileExistsError:
            self._fd = os.open(path, flags)
            created = False
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise AuditError(f"{path}: the audit log is in use by another writer") from None
        try:
            if created:
                _fsync_dir(path.parent)  # the new file's name must survive a crash too
            torn = self._open_tail()
            if torn is not None:
                self._record_recovery(torn)
        except BaseException:
            os.close(self._fd)
            raise

    def _open_tail(self) -> bytes | None:
        """Load ``seq``/``hash`` of the last entry, then truncate a torn tail (returned).

        The last entry is checked first so that a refusal leaves the file as it was.
        """
        size = os.fstat(self._fd).st_size
        self._end = size
        if size and os.pread(self._fd, 1, size - 1) != b"\n":
            self._end = _last_newline(self._fd, size) + 1
        self._seq, self._hash = 0, GENESIS
        if self._end:
            start = _last_newline(self._fd, self._end - 1) + 1
            entry, _ = _parse(os.pread(self._fd, self._end - 1 - start, start))
            if entry is None:
                raise AuditError(
                    f"{self.path}: the last entry is unreadable, so the chain cannot be "
                    "continued; run `stackwatch audit verify`"
                )
            if _entry_hash(entry.to_dict(), self._key) != entry.hash:
                # Most likely a missing or changed key: continuing would mix two keys in one
                # chain. A new key starts a new log file.
                raise AuditError(
                    f"{self.path}: the last entry's hash does not match with this key (a "
                    "wrong or missing key, or an edited entry); run `stackwatch audit verify`"
                )
            self._seq, self._hash = entry.seq, entry.hash
        if self._end == size:
            return None
        torn = os.pread(self._fd, size - self._end, self._end)
        os.ftruncate(self._fd, self._end)
        os.fsync(self._fd)
        return torn

    def _record_recovery(self, torn: bytes) -> None:
        digest = hashlib.sha256(torn).hexdigest()
        log.warning(
            "audit_torn_tail_truncated", path=str(self.path), bytes=len(torn), sha256=digest
        )
        self.record(
            AuditKind.AUDIT_RECOVERED,
            "system",
            self.path.name,
            {
                "reason": "torn last line truncated on open (an append interrupted by a crash)",
                "truncated_bytes": len(torn),
                "truncated_sha256": digest,
                "truncated_text": torn[:_TORN_KEEP].decode("utf-8", "replace"),
            },
        )

    def head(self) -> tuple[int, str]:
        """``(seq, hash)`` of the last entry (``(0, GENESIS)`` when empty): an anchor to keep
        outside the log and give to :func:`verify` as ``expect_head``."""
        with self._lock:
            return self._seq, self._hash

    def record(
        self,
        kind: AuditKind,
        actor: str,
        subject: str,
        data: Mapping[str, object] | None = None,
    ) -> AuditEntry:
        """Append one entry, durably, and return it. ``data`` is stored as plain JSON (see
        :func:`_json_value`). Raises :class:`AuditError` if it cannot be written; then nothing
        of it stays in the file."""
        clean = _json_value(dict(data or {}))
        with self._lock:
            if self._fd < 0:
                raise AuditError(f"{self.path}: the audit log is closed")
            if self._broken:
                raise AuditError(f"{self.path}: a failed append could not be undone; reopen")
            ts_ns = self._clock()
            content: dict[str, Any] = {
                "seq": self._seq + 1,
                "ts": _iso(ts_ns),
                "ts_ns": ts_ns,
                "actor": _clean_str(actor),
                "kind": str(kind),
                "subject": _clean_str(subject),
                "data": clean,
                "prev": self._hash,
            }
            content["hash"] = _entry_hash(content, self._key)
            line = _canonical(content) + b"\n"
            self._append(line)
            self._seq, self._hash = content["seq"], content["hash"]
            return AuditEntry(**content)

    def _append(self, line: bytes) -> None:
        try:
            view = memoryview(line)
            while view:
                view = view[os.write(self._fd, view) :]
            os.fsync(self._fd)
        except OSError as err:
            if not self._failing:
                log.error("audit_append_failed", path=str(self.path), error=str(err))
                self._failing = True
            try:  # leave no partial line behind: the next append must start a fresh line
                os.ftruncate(self._fd, self._end)
            except OSError:
                self._broken = True
            raise AuditError(f"{self.path}: append failed: {err}", retryable=True) from err
        self._end += len(line)
        if self._failing:
            log.info("audit_append_recovered", path=str(self.path))
            self._failing = False

    def record_transition(self, t: Transition) -> AuditEntry:
        """Record an alert state change: kind ``acknowledgement`` when an officer acknowledged
        it, else ``alert_transition``; subject is the alert fingerprint; ``at_ns`` the time of
        the transition (the entry's own time is when it was recorded)."""
        a = t.alert
        acked = a.state is State.ACKNOWLEDGED and t.previous is not State.ACKNOWLEDGED
        data: dict[str, object] = {
            "rule": a.rule,
            "labels": dict(a.labels),
            "from": t.previous,
            "to": a.state,
            "severity": a.severity,
            "summary": a.summary,
            "at_ns": t.ts_ns,
            "value": a.value,
            "threshold": a.threshold,
        }
        comment = t.comment if t.comment is not None else (a.ack_comment if acked else None)
        if comment is not None:
            data["comment"] = comment
        kind = AuditKind.ACKNOWLEDGEMENT if acked else AuditKind.ALERT_TRANSITION
        return self.record(kind, t.actor, a.fingerprint, data)

    def close(self) -> None:
        """Release the file and its lock (idempotent)."""
        with self._lock:
            if self._fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
