"""Embedded store: one SQLite file, for deployments without an InfluxDB server.

It reproduces the InfluxDB semantics of :mod:`stream.storage.base` so both backends pass the
same contract suite: a series is ``(measurement, tags)``; writing the same series and timestamp
again merges the fields (those given overwrite, the others are kept: ``json_patch``);
aggregation windows are epoch-aligned and empty ones are omitted; ``first``/``last`` are by time
within the window; ``last()`` looks back from the wall clock, like ``now() - lookback``.
It refuses exactly the points InfluxDB would (:func:`~stream.storage.lineprotocol.check_point`).

Schema::

    series(id, measurement, tags)          -- tags: canonical JSON (sorted keys), unique per
                                           -- (measurement, tags)
    points(series_id, ts, fields)          -- ts: epoch ns; fields: JSON object;
                                           -- PRIMARY KEY (series_id, ts) WITHOUT ROWID

Tag filters select the matching series ids in SQL first, then their points in the time range
(a primary-key range scan per series). Field names and tag keys are matched with ``json_each``
rather than a JSON path, because a path cannot address a key containing a double quote.

sqlite3 connections are not meant to be shared between threads, and SQLite serialises writers
anyway, so one connection lives on one dedicated worker thread and every call is handed to it
with ``run_in_executor``: the event loop never blocks on disk I/O. The database runs in WAL mode
with ``synchronous=NORMAL``: a committed write survives a killed process (not necessarily a
power cut, which ``FULL`` would add at the cost of an fsync per commit).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import orjson

from stream.model import NS_PER_S
from stream.storage.base import (
    Aggregate,
    FieldValue,
    LastValue,
    Point,
    SeriesQuery,
    SeriesRow,
    StoreError,
)
from stream.storage.lineprotocol import check_point

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    measurement TEXT NOT NULL,
    tags TEXT NOT NULL,
    UNIQUE (measurement, tags)
);
CREATE TABLE IF NOT EXISTS points (
    series_id INTEGER NOT NULL REFERENCES series (id),
    ts INTEGER NOT NULL,
    fields TEXT NOT NULL,
    PRIMARY KEY (series_id, ts)
) WITHOUT ROWID;
"""

# The no-op DO UPDATE (rather than DO NOTHING) makes RETURNING yield the id of an existing row.
_UPSERT_SERIES = """
INSERT INTO series (measurement, tags) VALUES (?, ?)
ON CONFLICT (measurement, tags) DO UPDATE SET tags = excluded.tags
RETURNING id
"""

_UPSERT_POINT = """
INSERT INTO points (series_id, ts, fields) VALUES (?, ?, ?)
ON CONFLICT (series_id, ts) DO UPDATE SET fields = json_patch(points.fields, excluded.fields)
"""

# Statements are assembled from the constant fragments of this module only (hence the
# ``noqa: S608`` marks below); every value, name and tag travels as a bound parameter.

# The values of one numeric field: json_each types booleans as 'true'/'false', strings as 'text'.
_NUMERIC = "j.key = ? AND j.type IN ('integer', 'real')"

# Aggregates as SQL over rows (w = window start, ts, value). For first/last SQLite's documented
# bare-column rule applies: with a single min()/max() aggregate, ``value`` comes from that row.
_AGGREGATES: dict[Aggregate, str] = {
    Aggregate.MEAN: "avg(value)",
    Aggregate.MIN: "min(value)",
    Aggregate.MAX: "max(value)",
    Aggregate.SUM: "sum(value)",
    Aggregate.COUNT: "count(value)",
    Aggregate.FIRST: "value, min(ts)",
    Aggregate.LAST: "value, max(ts)",
}

# SQLite primary result codes of transient failures: another writer, I/O trouble, a full disk.
_RETRYABLE_CODES = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_IOERR", "SQLITE_FULL")


class SqliteStore:
    """:class:`~stream.storage.base.Store` in a local SQLite file.

    ``now_ns`` is the clock ``last()`` looks back from (injectable for tests);
    ``busy_timeout_s`` is how long a write waits for another process holding the file's lock
    before failing with a retryable error.
    """

    def __init__(
        self,
        path: Path,
        lookback_s: int = 86_400,
        now_ns: Callable[[], int] = time.time_ns,
        busy_timeout_s: float = 5.0,
    ) -> None:
        if lookback_s <= 0:
            raise ValueError(f"lookback_s must be positive, got {lookback_s}")
        self._path = Path(path)
        self._lookback_ns = lookback_s * NS_PER_S
        self._now_ns = now_ns
        self._busy_timeout_ms = int(busy_timeout_s * 1000)
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._series_ids: dict[tuple[str, str], int] = {}  # worker thread only

    @property
    def name(self) -> str:
        return "sqlite"

    async def start(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        try:
            await self._run(self._open)
        except BaseException:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise

    async def close(self) -> None:
        if self._executor is None:
            return
        try:
            await self._run(self._close)
        finally:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def ping(self) -> bool:
        try:
            return await self._run(lambda: self._db.execute("SELECT 1").fetchone() == (1,))
        except (StoreError, RuntimeError):
            return False

    async def write(self, points: Sequence[Point]) -> None:
        rows = []
        for i, p in enumerate(points):
            try:
                check_point(p)
            except ValueError as err:
                raise StoreError(f"point #{i} refused: {err}", retryable=False) from err
            rows.append(
                (
                    p.measurement,
                    _dumps(dict(sorted(p.tags.items()))),
                    p.ts_ns,
                    _dumps(dict(p.fields)),
                )
            )
        if rows:
            await self._run(lambda: self._write(rows))

    async def series(self, query: SeriesQuery) -> list[SeriesRow]:
        source, params = _values_of(
            query.measurement, query.where, query.field, query.start_ns, query.end_ns
        )
        limit = -1 if query.limit is None else query.limit
        if query.every_s is None:
            sql = f"SELECT ts, value FROM ({source}) ORDER BY ts, series_id LIMIT ?"  # noqa: S608
        else:
            every = query.every_s * NS_PER_S
            # Epoch-aligned window start; the double modulo floors negative timestamps too.
            sql = (
                f"SELECT w, {_AGGREGATES[Aggregate(query.aggregate)]} FROM ("  # noqa: S608
                f" SELECT ts - ((ts % {every}) + {every}) % {every} AS w, ts, value"
                f" FROM ({source})) GROUP BY w ORDER BY w LIMIT ?"
            )
        rows = await self._run(lambda: self._db.execute(sql, [*params, limit]).fetchall())
        return [SeriesRow(int(r[0]), float(r[1])) for r in rows]

    async def last(
        self, measurement: str, where: Mapping[str, str] | None = None
    ) -> list[LastValue]:
        series_sql, params = _series_ids(measurement, where or {})
        sql = (
            "SELECT s.tags, p.ts, p.fields FROM series s JOIN points p ON p.series_id = s.id"  # noqa: S608
            f" WHERE s.id IN ({series_sql}) AND p.ts = ("
            "  SELECT max(q.ts) FROM points q WHERE q.series_id = s.id AND q.ts > ?)"
        )

        def query() -> list[Any]:
            since = self._now_ns() - self._lookback_ns
            return self._db.execute(sql, [*params, since]).fetchall()

        result = [
            LastValue(_loads(tags), int(ts), _loads(fields))
            for tags, ts, fields in await self._run(query)
        ]
        result.sort(key=lambda lv: sorted(lv.tags.items()))
        return result

    async def scan(
        self, measurement: str, start_ns: int, end_ns: int, where: Mapping[str, str] | None = None
    ) -> list[LastValue]:
        """All points in ``[start_ns, end_ns)``, decoded on the worker thread (not the event
        loop); the points of one series share one tags dict."""
        series_sql, params = _series_ids(measurement, where or {})
        sql = (
            "SELECT s.id, s.tags, p.ts, p.fields FROM series s"  # noqa: S608
            " JOIN points p ON p.series_id = s.id"
            f" WHERE s.id IN ({series_sql}) AND p.ts >= ? AND p.ts < ?"
            " ORDER BY p.ts"
        )
        params += [start_ns, end_ns]

        def query() -> list[LastValue]:
            # Canonical tags JSON does not sort like sorted tag items ('{"a":"x",…}' sorts
            # before '{"a":"x"}'), so rows are ordered by time here and by tags in Python.
            series: dict[int, tuple[tuple[tuple[str, str], ...], dict[str, str]]] = {}
            keyed: list[tuple[int, tuple[tuple[str, str], ...], LastValue]] = []
            for sid, tags_json, ts, fields in self._db.execute(sql, params):
                if sid not in series:
                    tags = _loads(tags_json)
                    series[sid] = (tuple(sorted(tags.items())), tags)
                key, tags = series[sid]
                keyed.append((ts, key, LastValue(tags, ts, _loads(fields))))
            keyed.sort(key=lambda k: (k[0], k[1]))  # stable, and the rows are nearly sorted
            return [lv for _, _, lv in keyed]

        return await self._run(query)

    async def count(
        self,
        measurement: str,
        field: str,
        start_ns: int,
        end_ns: int,
        where: Mapping[str, str] | None = None,
    ) -> int:
        series_sql, params = _series_ids(measurement, where or {})
        sql = (
            "SELECT count(*) FROM points p, json_each(p.fields) j"  # noqa: S608
            f" WHERE p.series_id IN ({series_sql})"
            " AND p.ts >= ? AND p.ts < ? AND j.key = ?"
        )
        params += [start_ns, end_ns, field]
        row = await self._run(lambda: self._db.execute(sql, params).fetchone())
        return int(row[0])

    # -- worker thread ---------------------------------------------------------------------

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("SqliteStore used before start() or after close()")
        return self._conn

    def _open(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self._path, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.executescript(_SCHEMA)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
            self._series_ids.clear()

    def _write(self, rows: list[tuple[str, str, int, str]]) -> None:
        db = self._db
        new_ids: dict[tuple[str, str], int] = {}
        db.execute("BEGIN IMMEDIATE")
        try:
            for measurement, tags, ts, fields in rows:
                key = (measurement, tags)
                sid = self._series_ids.get(key) or new_ids.get(key)
                if sid is None:
                    sid = new_ids[key] = db.execute(_UPSERT_SERIES, key).fetchall()[0][0]
                db.execute(_UPSERT_POINT, (sid, ts, fields))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        self._series_ids.update(new_ids)  # only ids that are committed

    async def _run(self, fn: Callable[[], T]) -> T:
        if self._executor is None:
            raise RuntimeError("SqliteStore used before start() or after close()")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn)
        except sqlite3.Error as err:
            code = getattr(err, "sqlite_errorname", "") or ""
            retryable = code.startswith(_RETRYABLE_CODES)
            raise StoreError(
                f"sqlite ({code or type(err).__name__}): {err}", retryable=retryable
            ) from err


def _series_ids(measurement: str, where: Mapping[str, str]) -> tuple[str, list[Any]]:
    """SQL selecting the ids of the series of ``measurement`` whose tags match ``where``."""
    sql = "SELECT id FROM series WHERE measurement = ?"
    params: list[Any] = [measurement]
    for key, value in sorted(where.items()):
        sql += (
            " AND EXISTS (SELECT 1 FROM json_each(series.tags) t WHERE t.key = ? AND t.value = ?)"
        )
        params += [key, value]
    return sql, params


def _values_of(
    measurement: str, where: Mapping[str, str], field: str, start_ns: int, end_ns: int
) -> tuple[str, list[Any]]:
    """SQL yielding ``(series_id, ts, value)`` of one numeric field in ``[start_ns, end_ns)``."""
    series_sql, params = _series_ids(measurement, where)
    sql = (
        "SELECT p.series_id AS series_id, p.ts AS ts, j.value AS value"  # noqa: S608
        " FROM points p, json_each(p.fields) j"
        f" WHERE p.series_id IN ({series_sql})"
        f" AND p.ts >= ? AND p.ts < ? AND {_NUMERIC}"
    )
    return sql, [*params, start_ns, end_ns, field]


def _dumps(obj: Mapping[str, FieldValue] | Mapping[str, str]) -> str:
    return orjson.dumps(obj).decode()


def _loads(text: str) -> dict[str, Any]:
    value: dict[str, Any] = orjson.loads(text)
    return value
