"""A bounded on-disk spool of point batches: the "store" half of store-and-forward.

When the store cannot take a batch (InfluxDB unreachable, HTTP 5xx/429), the writer appends the
batch here and acknowledges the source messages: the spool commit is the durable hand-off. A
drain task later writes the batches to the store, oldest first, and deletes each one only after
the store accepted it. Points are keyed by series and timestamp, so writing a batch twice (a
crash between the store write and the delete) is harmless.

One SQLite file in WAL mode with ``synchronous=FULL``: :meth:`Spool.append` returns only after
the batch is committed and synced, so an acknowledged message survives a killed process and a
power cut. Batches are serialised with orjson as ``[measurement, tags, fields, ts_ns]`` rows
(orjson keeps ``1.0`` and ``1`` apart, so field types round-trip).

The spool is bounded by ``max_bytes`` of serialised batches: an append beyond it raises
:class:`SpoolFullError`, and so does a full disk (SQLite's "database or disk is full"). The caller
then stops acknowledging, so the broker keeps the messages; nothing is dropped.

>>> import tempfile
>>> from stream.storage.base import Point
>>> a, b = Point("m", {"s": "a"}, {"v": 1.0, "n": 2}, 1), Point("m", {"s": "a"}, {"v": 2.0}, 2)
>>> with tempfile.TemporaryDirectory() as d:
...     spool = Spool(Path(d) / "spool.db", max_bytes=200, now_ns=lambda: 5_000_000_000)
...     first, second = spool.append([a]), spool.append([b])
...     print(spool.count, spool.size_bytes, spool.peek() == SpooledBatch(first, (a,), 5 * 10**9))
...     try:
...         spool.append([b] * 10)
...     except SpoolFullError as err:
...         print(err)
...     spool.delete(first)
...     print(spool.count, spool.peek().points == (b,))
...     spool.close()
2 64 True
spool full: 64 bytes spooled, a batch of 281 bytes would exceed the bound of 200 bytes
1 True
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from stream.model import NS_PER_S
from stream.storage.base import FieldValue, Point

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_ns INTEGER NOT NULL,
    points INTEGER NOT NULL,
    data BLOB NOT NULL
);
"""


class SpoolError(Exception):
    """The spool cannot take the batch (the message says why); nothing was appended."""


class SpoolFullError(SpoolError):
    """The spool cannot take the batch: its byte bound is reached, or the disk is full."""


@dataclass(frozen=True, slots=True)
class SpooledBatch:
    """One spooled batch: its id (increasing with append order), points and append time."""

    id: int
    points: tuple[Point, ...]
    created_ns: int


class Spool:
    """A FIFO of point batches in the SQLite file ``path`` (created with its directory;
    :class:`SpoolError` if it cannot be opened, e.g. not writable or not a database).

    Thread-safe (one connection behind a lock), so callers may run the blocking calls in worker
    threads (``asyncio.to_thread``). ``now_ns`` is the clock of append times and ages.
    """

    def __init__(
        self, path: Path, *, max_bytes: int, now_ns: Callable[[], int] = time.time_ns
    ) -> None:
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self._now_ns = now_ns
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            count, size, oldest = self._db.execute(
                "SELECT count(*), coalesce(sum(length(data)), 0), min(created_ns) FROM batches"
            ).fetchone()
        except (OSError, sqlite3.Error) as err:
            raise SpoolError(f"cannot open the spool {self.path}: {err}") from err
        self._count: int = count
        self._bytes: int = size
        self._oldest_ns: int | None = oldest

    @property
    def count(self) -> int:
        """Number of spooled batches."""
        return self._count

    @property
    def size_bytes(self) -> int:
        """Serialised size of the spooled batches (what ``max_bytes`` bounds)."""
        return self._bytes

    def oldest_age_s(self) -> float:
        """Seconds since the oldest spooled batch was appended; 0 when the spool is empty."""
        if self._oldest_ns is None:
            return 0.0
        return max(0.0, (self._now_ns() - self._oldest_ns) / NS_PER_S)

    def append(self, points: Sequence[Point]) -> int:
        """Commit ``points`` as one batch (durable when this returns); return its id.

        Raises :class:`SpoolFullError` beyond ``max_bytes`` or when the disk is full, and
        :class:`SpoolError` on any other database failure.
        """
        data = _encode(points)
        with self._lock:
            if self._bytes + len(data) > self.max_bytes:
                raise SpoolFullError(
                    f"spool full: {self._bytes} bytes spooled, a batch of {len(data)} bytes "
                    f"would exceed the bound of {self.max_bytes} bytes"
                )
            created = self._now_ns()
            try:
                cur = self._db.execute(
                    "INSERT INTO batches (created_ns, points, data) VALUES (?, ?, ?)",
                    (created, len(points), data),
                )
            except sqlite3.Error as err:
                if getattr(err, "sqlite_errorname", "") == "SQLITE_FULL" or "full" in str(err):
                    raise SpoolFullError(f"spool full: disk full at {self.path} ({err})") from err
                raise SpoolError(f"spool write failed at {self.path}: {err}") from err
            batch_id = cur.lastrowid
            assert batch_id is not None  # an INSERT always sets it
            self._count += 1
            self._bytes += len(data)
            if self._oldest_ns is None:
                self._oldest_ns = created
            return batch_id

    def peek(self) -> SpooledBatch | None:
        """The oldest batch, or ``None`` when the spool is empty."""
        with self._lock:
            row = self._db.execute(
                "SELECT id, created_ns, data FROM batches ORDER BY id LIMIT 1"
            ).fetchone()
        if row is None:
            return None
        return SpooledBatch(row[0], _decode(row[2]), row[1])

    def delete(self, batch_id: int) -> None:
        """Remove batch ``batch_id`` (after the store accepted it); unknown ids are ignored."""
        with self._lock:
            row = self._db.execute(
                "DELETE FROM batches WHERE id = ? RETURNING length(data)", (batch_id,)
            ).fetchone()
            if row is None:
                return
            self._count -= 1
            self._bytes -= row[0]
            oldest = self._db.execute(
                "SELECT created_ns FROM batches ORDER BY id LIMIT 1"
            ).fetchone()
            self._oldest_ns = None if oldest is None else oldest[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _encode(points: Sequence[Point]) -> bytes:
    return orjson.dumps([[p.measurement, dict(p.tags), dict(p.fields), p.ts_ns] for p in points])


def _decode(data: bytes) -> tuple[Point, ...]:
    rows: list[tuple[str, dict[str, str], dict[str, FieldValue], int]] = orjson.loads(data)
    return tuple(Point(m, tags, fields, ts) for m, tags, fields, ts in rows)
