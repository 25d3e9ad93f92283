"""InfluxDB store over the v1-compatible HTTP API (InfluxDB 1.x, 2.x ≥ 2.5 and 3.x all serve it).

Only three endpoints are used: ``POST /write`` (line protocol, ns precision), ``POST /query``
(InfluxQL, one statement per request because InfluxDB 3 answers only the first) and
``GET /ping``. A token, when configured, is sent as ``Authorization: Token <token>``.

Errors are classified so the caller can decide between retrying and dropping
(:class:`~stream.storage.base.StoreError`): transport failures, timeouts, HTTP 429 and 5xx are
retryable, and so is 404 on ``/write`` (database not found), a configuration problem an operator
can fix without losing the buffered data. Any other 4xx means the server refused the data
itself (bad line protocol, field type conflict) and carries the server's error text.

Queries are built from quoted identifiers and escaped string literals only
(:func:`ident`, :func:`literal`), so tag values and names cannot inject InfluxQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

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
from stream.storage.lineprotocol import encode_points
from stream.storage.settings import InfluxSettings

log = logging.getLogger(__name__)

# Backslash and newline escapes shared by quoted identifiers and string literals. Every name
# and value in a query passes through ident() or literal() (hence the ``noqa: S608`` marks).
_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n"})

# scan() asks for at most this much time per query: a day of 1 Hz data from 16 sensors is four
# queries of ~350 k points each, and InfluxDB 3 Core refuses queries over too many files.
SCAN_WINDOW_NS = 6 * 3600 * NS_PER_S

_TagKey = tuple[tuple[str, str], ...]  # sorted tag items: the identity and sort key of a series


def ident(name: str) -> str:
    """A double-quoted InfluxQL identifier.

    >>> print(ident('we"ird\\\\name'))
    "we\\"ird\\\\name"
    """
    return '"' + name.translate(_ESCAPES).replace('"', '\\"') + '"'


def literal(value: str) -> str:
    """A single-quoted InfluxQL string literal.

    >>> print(literal("it's"))
    'it\\'s'
    """
    return "'" + value.translate(_ESCAPES).replace("'", "\\'") + "'"


class InfluxStore:
    """:class:`~stream.storage.base.Store` backed by an InfluxDB server."""

    def __init__(self, settings: InfluxSettings) -> None:
        if settings.url is None:
            raise ValueError("InfluxStore needs settings.url (unset means: use the SQLite store)")
        self._settings = settings
        self._base_url = str(settings.url).rstrip("/")
        self._client: httpx.AsyncClient | None = None
        # Writes go through a blocking client in a worker thread: the request (a batch is
        # megabytes) is sent and its answer read while the event loop computes the next
        # batch; on the loop it would only progress when the computing yields.
        self._write_client: httpx.Client | None = None
        # One write at a time: InfluxDB 1.6 acknowledges (204) but loses whole requests when
        # concurrent writes create a shard (measured: 8 concurrent writes into a fresh
        # database lost one of them about once in 1 500 rounds). The writer's live batches and
        # its spool drain are the writes that could meet, e.g. after a database was recreated.
        self._write_lock = asyncio.Lock()
        # False until CREATE DATABASE has been answered (or is not needed): an unreachable
        # server at start-up, or a database dropped later, is retried before the next write.
        self._database_ready = not settings.create_database
        self._field_types: dict[str, dict[str, str]] = {}  # measurement -> field -> type

    @property
    def name(self) -> str:
        return "influxdb"

    async def start(self) -> None:
        headers = {}
        if self._settings.token is not None:
            headers["Authorization"] = f"Token {self._settings.token.get_secret_value()}"
        client: dict[str, Any] = {
            "base_url": self._base_url,
            "headers": headers,
            "timeout": self._settings.timeout_s,
        }
        self._client = httpx.AsyncClient(**client)
        self._write_client = httpx.Client(**client)
        if self._database_ready:
            return
        try:
            await self._ensure_database()
        except (httpx.HTTPError, StoreError) as err:
            log.warning(
                "InfluxDB at %s not ready at start-up (%s); writes will retry",
                self._base_url,
                _describe(err),
            )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        if self._write_client is not None:
            self._write_client.close()
            self._write_client = None

    async def ping(self) -> bool:
        try:
            resp = await self._http.get("/ping")
        except httpx.HTTPError:
            return False
        return resp.is_success

    async def write(self, points: Sequence[Point]) -> None:
        try:
            body = encode_points(points)
        except ValueError as err:
            raise StoreError(f"refused by line protocol: {err}", retryable=False) from err
        if not body:
            return
        if not self._database_ready:
            # On failure the write below reports the error with its own classification.
            with contextlib.suppress(httpx.HTTPError, StoreError):
                await self._ensure_database()
        params = {"db": self._settings.database, "precision": "ns"}
        if self._settings.retention_policy:
            params["rp"] = self._settings.retention_policy
        client = self._write_client
        if client is None:
            raise RuntimeError("InfluxStore used before start() or after close()")
        try:
            async with self._write_lock:
                resp = await asyncio.to_thread(
                    client.post,
                    "/write",
                    params=params,
                    content=body,
                    headers={"Content-Type": "text/plain; charset=utf-8"},
                )
        except httpx.TransportError as err:
            raise StoreError(f"write failed: {_describe(err)}", retryable=True) from err
        except httpx.HTTPError as err:
            raise StoreError(f"write failed: {_describe(err)}", retryable=False) from err
        if resp.is_success:
            return
        text = _error_text(resp)
        if resp.status_code == 404:
            self._database_ready = not self._settings.create_database
            raise StoreError(
                f"database not found: {self._settings.database!r} (HTTP 404: {text})",
                retryable=True,
            )
        raise StoreError(
            f"write refused (HTTP {resp.status_code}): {text}",
            retryable=_retryable_status(resp.status_code),
        )

    async def series(self, query: SeriesQuery) -> list[SeriesRow]:
        if not _expressible(query.where):
            return []
        where = self._where(query.start_ns, query.end_ns, query.where)
        if query.every_s is None:
            select = f"SELECT {ident(query.field)}"
            group = ""
        else:
            every_s = query.every_s
            select = f"SELECT {Aggregate(query.aggregate).value}({ident(query.field)})"
            group = f" GROUP BY time({every_s}s) fill(none)"
        limit = "" if query.limit is None else f" LIMIT {query.limit}"
        q = f"{select} FROM {self._source(query.measurement)} WHERE {where}{group}{limit}"
        rows = [
            SeriesRow(int(r[0]), float(r[1]))
            for s in await self._query(q)
            for r in s.get("values") or []
            if _is_number(r[1])
        ]
        rows.sort(key=lambda r: r.ts_ns)
        return rows

    async def last(
        self, measurement: str, where: Mapping[str, str] | None = None
    ) -> list[LastValue]:
        if not _expressible(where):
            return []
        conds = [f"time > now() - {int(self._settings.lookback_s)}s"]
        conds += [f"{ident(k)} = {literal(v)}" for k, v in sorted((where or {}).items())]
        q = (
            f"SELECT * FROM {self._source(measurement)} WHERE {' AND '.join(conds)}"  # noqa: S608
            " GROUP BY * ORDER BY time DESC LIMIT 1"
        )
        rows: list[tuple[dict[str, str], int, dict[str, FieldValue]]] = []
        for s in await self._query(q):
            columns: list[str] = s.get("columns") or []
            for row in (s.get("values") or [])[:1]:
                fields = {c: v for c, v in zip(columns[1:], row[1:], strict=True) if v is not None}
                if fields:
                    tags = {k: v for k, v in (s.get("tags") or {}).items() if v}
                    rows.append((tags, int(row[0]), fields))
        await self._restore_float_types(measurement, [fields for _, _, fields in rows])
        result = [LastValue(tags, ts, fields) for tags, ts, fields in rows]
        result.sort(key=lambda lv: sorted(lv.tags.items()))
        return result

    async def scan(
        self, measurement: str, start_ns: int, end_ns: int, where: Mapping[str, str] | None = None
    ) -> list[LastValue]:
        """All points in ``[start_ns, end_ns)``, one query per :data:`SCAN_WINDOW_NS` window.

        Each window is fetched with ``chunked=true``: InfluxDB 1.x applies ``max-row-limit``
        only to unchunked responses and, at least in 1.6, truncates them without setting the
        result's ``partial`` flag, so a chunked stream is the only reliable way to get every
        row. Decoding runs in a worker thread so a large window does not stall the event loop.
        """
        if not _expressible(where):
            return []
        tag_sets: dict[_TagKey, dict[str, str]] = {}  # one shared tags dict per series
        result: list[LastValue] = []
        for lo in range(start_ns, end_ns, SCAN_WINDOW_NS):
            hi = min(lo + SCAN_WINDOW_NS, end_ns)
            q = (
                f"SELECT * FROM {self._source(measurement)}"  # noqa: S608
                f" WHERE {self._where(lo, hi, where or {})} GROUP BY *"
            )
            started = time.perf_counter()
            series = await self._query(q, chunked=True)
            window = await asyncio.to_thread(_points_of, series, tag_sets)
            if floats := await self._float_fields(measurement, window.int_fields):
                await asyncio.to_thread(_ints_to_floats, window.fields, floats)
            log.debug(
                "scan %s [%d, %d): %d points in %.3f s",
                measurement,
                lo,
                hi,
                len(window.points),
                time.perf_counter() - started,
            )
            result += window.points
        return result

    async def count(
        self,
        measurement: str,
        field: str,
        start_ns: int,
        end_ns: int,
        where: Mapping[str, str] | None = None,
    ) -> int:
        if not _expressible(where):
            return 0
        q = (
            f"SELECT count({ident(field)}) FROM {self._source(measurement)}"  # noqa: S608
            f" WHERE {self._where(start_ns, end_ns, where or {})}"
        )
        return sum(int(r[1]) for s in await self._query(q) for r in s.get("values") or [])

    @property
    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RuntimeError("InfluxStore used before start() or after close()")
        return self._client

    def _source(self, measurement: str) -> str:
        rp = self._settings.retention_policy
        return f"{ident(rp)}.{ident(measurement)}" if rp else ident(measurement)

    @staticmethod
    def _where(start_ns: int, end_ns: int, tags: Mapping[str, str]) -> str:
        conds = [f"time >= {int(start_ns)}", f"time < {int(end_ns)}"]
        conds += [f"{ident(k)} = {literal(v)}" for k, v in sorted(tags.items())]
        return " AND ".join(conds)

    async def _query(self, q: str, *, chunked: bool = False) -> list[dict[str, Any]]:
        """Run one InfluxQL statement; return the series of its (only) result.

        With ``chunked`` the server streams the result as a sequence of JSON documents, each
        with a slice of the rows (a series may continue in the next one); their series are
        concatenated in order.
        """
        data = {"q": q, "db": self._settings.database, "epoch": "ns"}
        if chunked:
            data["chunked"] = "true"
        try:
            resp = await self._http.post("/query", data=data)
        except httpx.TransportError as err:
            raise StoreError(f"query failed: {_describe(err)}", retryable=True) from err
        except httpx.HTTPError as err:
            raise StoreError(f"query failed: {_describe(err)}", retryable=False) from err
        if not resp.is_success:
            raise StoreError(
                f"query refused (HTTP {resp.status_code}): {_error_text(resp)}; query: {q}",
                retryable=_retryable_status(resp.status_code),
            )
        bodies = await asyncio.to_thread(_json_documents, resp.text) if chunked else [_json(resp)]
        series: list[dict[str, Any]] = []
        for i, body in enumerate(bodies):
            if "results" not in body:
                raise StoreError(f"unreadable query response: {resp.text[:200]!r}", retryable=False)
            result = _first_result(body)
            if "error" in result:
                raise StoreError(f"query error: {result['error']}; query: {q}", retryable=False)
            if result.get("partial") and not chunked:
                raise StoreError(
                    "query result truncated by the server's row limit;"
                    " narrow the range or aggregate",
                    retryable=False,
                )
            if result.get("partial") and i == len(bodies) - 1:
                # In a chunked stream "partial" announces another chunk that never came.
                raise StoreError(f"query response ended early; query: {q}", retryable=True)
            series += result.get("series") or []
        if not bodies:
            raise StoreError(f"empty query response; query: {q}", retryable=False)
        return series

    async def _restore_float_types(
        self, measurement: str, rows: list[dict[str, FieldValue]]
    ) -> None:
        """Turn integral floats back into floats, in place.

        InfluxDB's JSON writes the float 5.0 as ``5``, indistinguishable from the integer 5, so
        the field types are looked up (``SHOW FIELD KEYS``) and cached per measurement.
        """
        ints = {k for fields in rows for k, v in fields.items() if type(v) is int}
        _ints_to_floats(rows, await self._float_fields(measurement, ints))

    async def _float_fields(self, measurement: str, names: set[str]) -> set[str]:
        """Those of ``names`` that are float fields of ``measurement``; field types are cached
        and looked up again only when a name is not known yet."""
        if not names:
            return set()
        types = self._field_types.setdefault(measurement, {})
        if not names <= types.keys():
            q = f"SHOW FIELD KEYS FROM {self._source(measurement)}"
            for s in await self._query(q):
                types.update((str(r[0]), str(r[1])) for r in s.get("values") or [])
        return {k for k in names if types.get(k) == "float"}

    async def _ensure_database(self) -> None:
        """``CREATE DATABASE`` on InfluxDB 1.x (idempotent); 2.x/3.x need no creation here."""
        resp = await self._http.get("/ping")
        if not resp.is_success:
            raise StoreError(f"ping: HTTP {resp.status_code}", retryable=True)
        version = resp.headers.get("X-Influxdb-Version", "").removeprefix("v")
        if version.startswith("1."):
            q = f"CREATE DATABASE {ident(self._settings.database)}"
            create = await self._http.post("/query", data={"q": q})
            if _retryable_status(create.status_code):
                raise StoreError(f"CREATE DATABASE: HTTP {create.status_code}", retryable=True)
            if error := _response_error(create):
                # e.g. no admin rights: the database may well exist already, so carry on.
                log.warning("CREATE DATABASE %s refused: %s", self._settings.database, error)
        self._database_ready = True


@dataclass(frozen=True, slots=True)
class _Window:
    """Points decoded from one scan query, with what float restoration needs: their (mutable)
    field dicts and the names of the fields that came back as JSON integers."""

    points: list[LastValue]
    fields: list[dict[str, FieldValue]]
    int_fields: set[str]


def _points_of(series: list[dict[str, Any]], tag_sets: dict[_TagKey, dict[str, str]]) -> _Window:
    """The rows of ``SELECT * … GROUP BY *`` series as points sorted by (time, sorted tags).

    Null columns are fields the point does not carry and are left out; a tag the series lacks
    comes back as ``""`` and is left out too. ``tag_sets`` interns one tags dict per series
    (across calls), so a million points of a few series do not hold a million tag dicts.
    """
    keyed: list[tuple[int, _TagKey, dict[str, FieldValue]]] = []
    for s in series:
        names: list[str] = (s.get("columns") or [])[1:]
        key = tuple(sorted((k, v) for k, v in (s.get("tags") or {}).items() if v))
        tag_sets.setdefault(key, dict(key))
        for row in s.get("values") or []:
            fields = {c: v for c, v in zip(names, row[1:], strict=True) if v is not None}
            if fields:
                keyed.append((int(row[0]), key, fields))
    keyed.sort(key=lambda k: (k[0], k[1]))
    fields_list = [fields for _, _, fields in keyed]
    return _Window(
        points=[LastValue(tag_sets[key], ts, fields) for ts, key, fields in keyed],
        fields=fields_list,
        int_fields={k for fields in fields_list for k, v in fields.items() if type(v) is int},
    )


def _ints_to_floats(rows: list[dict[str, FieldValue]], floats: set[str]) -> None:
    """In place: integer values of the ``floats`` fields become floats."""
    if not floats:
        return
    for fields in rows:
        for k in floats:
            v = fields.get(k)
            if type(v) is int:
                fields[k] = float(v)


def _json_documents(text: str) -> list[dict[str, Any]]:
    """The JSON documents of a chunked ``/query`` response (whitespace-separated objects);
    anything unparsable becomes an empty document, which the caller reports as unreadable."""
    decoder = json.JSONDecoder()
    docs: list[dict[str, Any]] = []
    pos, end = 0, len(text)
    while True:
        while pos < end and text[pos].isspace():
            pos += 1
        if pos >= end:
            return docs
        try:
            doc, pos = decoder.raw_decode(text, pos)
        except ValueError:
            return [*docs, {}]
        docs.append(doc if isinstance(doc, dict) else {})


def _retryable_status(status: int) -> bool:
    return status == 429 or status >= 500


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _error_text(resp: httpx.Response) -> str:
    """The server's own error message (``{"error": ...}`` or ``results[0].error``) or the body."""
    body = _json(resp)
    error = body.get("error", _first_result(body).get("error"))
    return str(error) if error is not None else resp.text.strip()[:500]


def _response_error(resp: httpx.Response) -> str | None:
    """None for a successful statement, else the error (HTTP status or ``results[0].error``)."""
    if not resp.is_success:
        return f"HTTP {resp.status_code}: {_error_text(resp)}"
    error = _first_result(_json(resp)).get("error")
    return None if error is None else str(error)


def _json(resp: httpx.Response) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _first_result(body: Mapping[str, Any]) -> dict[str, Any]:
    results = body.get("results")
    first = results[0] if isinstance(results, list) and results else None
    return first if isinstance(first, dict) else {}


def _describe(err: Exception) -> str:
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


def _expressible(where: Mapping[str, str] | None) -> bool:
    """Whether InfluxQL can compare tags with these values: a string literal cannot hold NUL
    or CR (InfluxDB refuses the query), and no stored tag holds them (line protocol cannot
    carry them either), so such a filter matches nothing and needs no query."""
    return not any("\x00" in v or "\r" in v for v in (where or {}).values())
