"""InfluxStore failure handling: which errors are retryable, and start-up without a server.

Most cases run against the real InfluxDB 1.x test server. Statuses a healthy server does not
produce on demand (429, 5xx, a hung request) come from a tiny local HTTP server standing in for
a third-party InfluxDB, proxy or load balancer.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from stream.storage.base import Point, SeriesQuery, StoreError
from stream.storage.influx import InfluxStore
from stream.storage.settings import InfluxSettings
from tests.servers import InfluxServer, free_port

BASE = 1_700_000_000_000_000_000
POINT = Point("m", {"sensor": "a"}, {"v": 1.0}, BASE)
QUERY = SeriesQuery("m", "v", BASE, BASE + 1)


@asynccontextmanager
async def started(**settings: Any) -> AsyncIterator[InfluxStore]:
    store = InfluxStore(InfluxSettings.model_validate(settings))
    await store.start()
    try:
        yield store
    finally:
        await store.close()


# -- against the real server ------------------------------------------------------------------


async def test_ping_true_for_a_running_server(influx_server: InfluxServer) -> None:
    async with started(url=influx_server.url) as store:
        assert await store.ping()


async def test_unreachable_server_start_succeeds_and_operations_are_retryable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with caplog.at_level(logging.WARNING, logger="stream.storage.influx"):
        async with started(url=url, timeout_s=2) as store:
            assert not await store.ping()
            with pytest.raises(StoreError) as write_err:
                await store.write([POINT])
            with pytest.raises(StoreError) as query_err:
                await store.series(QUERY)
    assert write_err.value.retryable
    assert query_err.value.retryable
    assert "ConnectError" in str(write_err.value)
    assert any("not ready at start-up" in r.getMessage() for r in caplog.records)


async def test_start_creates_the_database_on_influxdb_1(influx_server: InfluxServer) -> None:
    db = f"t_{uuid.uuid4().hex[:12]}"
    async with started(url=influx_server.url, database=db) as store:
        await store.write([POINT])
        assert await store.count("m", "v", BASE, BASE + 1) == 1


async def test_write_to_a_missing_database_is_retryable(influx_server: InfluxServer) -> None:
    db = f"missing_{uuid.uuid4().hex[:8]}"
    async with started(url=influx_server.url, database=db, create_database=False) as store:
        with pytest.raises(StoreError) as exc:
            await store.write([POINT])
        assert exc.value.retryable
        assert "database not found" in str(exc.value)

        # Queries on it are refused by the server: not retryable.
        with pytest.raises(StoreError) as query_exc:
            await store.series(QUERY)
        assert not query_exc.value.retryable
        assert "database not found" in str(query_exc.value)


async def test_dropped_database_is_created_again_before_the_next_write(
    influx_server: InfluxServer,
) -> None:
    db = f"t_{uuid.uuid4().hex[:12]}"
    async with started(url=influx_server.url, database=db) as store:
        influx_server.query(f'DROP DATABASE "{db}"')
        with pytest.raises(StoreError) as exc:
            await store.write([POINT])
        assert exc.value.retryable

        await store.write([POINT])  # the caller's retry: the database is re-created first

        assert await store.count("m", "v", BASE, BASE + 1) == 1


async def test_field_type_conflict_is_not_retryable(
    influx_server: InfluxServer, influx_db: str
) -> None:
    async with started(url=influx_server.url, database=influx_db) as store:
        await store.write([Point("m", {}, {"v": "text"}, BASE)])
        with pytest.raises(StoreError) as exc:
            await store.write([Point("m", {}, {"v": 1.0}, BASE + 1)])
    assert not exc.value.retryable
    assert "field type conflict" in str(exc.value)  # the server's own explanation


# -- against a stand-in server ------------------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeInflux:
    """Answers every request with ``status`` and ``body``; records what it received."""

    status: int = 204
    body: dict[str, Any] = field(default_factory=dict)
    version: str = "1.8.10"
    hold: threading.Event | None = None  # when set up, requests wait for it (a hung server)
    requests: list[Request] = field(default_factory=list)
    url: str = ""


@contextmanager
def fake_influx(fake: FakeInflux) -> Iterator[FakeInflux]:
    class Handler(BaseHTTPRequestHandler):
        def answer(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            split = urlsplit(self.path)
            fake.requests.append(
                Request(self.command, split.path, parse_qs(split.query), dict(self.headers), body)
            )
            if fake.hold is not None:
                fake.hold.wait(10)
            payload = b"" if fake.status == 204 else json.dumps(fake.body).encode()
            self.send_response(fake.status)
            self.send_header("X-Influxdb-Version", fake.version)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = answer

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output quiet

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        if fake.hold is not None:
            fake.hold.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.mark.parametrize(
    ("status", "write_retryable", "query_retryable"),
    [
        (429, True, True),  # throttled
        (500, True, True),
        (502, True, True),  # a proxy without its upstream
        (503, True, True),
        (404, True, False),  # on /write: database not found, fixable without data loss
        (400, False, False),  # bad line protocol / bad query
        (401, False, False),  # wrong token: retrying the same request cannot help
        (413, False, False),  # request too large
    ],
)
async def test_http_status_classification(
    status: int, write_retryable: bool, query_retryable: bool
) -> None:
    with fake_influx(FakeInflux(status=status, body={"error": f"server says {status}"})) as fake:
        async with started(url=fake.url, create_database=False) as store:
            with pytest.raises(StoreError) as write_err:
                await store.write([POINT])
            with pytest.raises(StoreError) as query_err:
                await store.series(QUERY)
            assert await store.ping() is False
    assert write_err.value.retryable is write_retryable
    assert query_err.value.retryable is query_retryable
    assert f"server says {status}" in str(write_err.value)
    assert f"server says {status}" in str(query_err.value)
    if status == 404:
        assert "database not found" in str(write_err.value)


async def test_query_result_error_is_not_retryable() -> None:
    body = {"results": [{"statement_id": 0, "error": "database not found: x"}]}
    with fake_influx(FakeInflux(status=200, body=body)) as fake:
        async with started(url=fake.url, create_database=False) as store:
            with pytest.raises(StoreError) as exc:
                await store.last("m")
    assert not exc.value.retryable
    assert "database not found: x" in str(exc.value)


async def test_timeout_is_retryable() -> None:
    with fake_influx(FakeInflux(hold=threading.Event())) as fake:
        async with started(url=fake.url, create_database=False, timeout_s=0.2) as store:
            with pytest.raises(StoreError) as exc:
                await store.write([POINT])
    assert exc.value.retryable
    assert "Timeout" in str(exc.value)


async def test_write_request_shape_and_token_header() -> None:
    with fake_influx(FakeInflux()) as fake:
        async with started(
            url=fake.url,
            database="emissions",
            retention_policy="one_year",
            token="s3cret",
            create_database=False,
        ) as store:
            await store.write([POINT])
        async with started(url=fake.url, create_database=False) as anonymous:
            await anonymous.write([POINT])

    with_token, without_token = fake.requests
    assert (with_token.method, with_token.path) == ("POST", "/write")
    assert with_token.params == {"db": ["emissions"], "rp": ["one_year"], "precision": ["ns"]}
    assert with_token.headers["Authorization"] == "Token s3cret"
    assert with_token.body == b"m,sensor=a v=1.0 1700000000000000000\n"
    assert "Authorization" not in without_token.headers
    assert "rp" not in without_token.params


@pytest.mark.parametrize(
    ("version", "creates"), [("1.8.10", True), ("v2.7.11", False), ("3.2.0", False)]
)
async def test_create_database_only_on_influxdb_1(version: str, creates: bool) -> None:
    with fake_influx(FakeInflux(status=200, body={"results": [{}]}, version=version)) as fake:
        async with started(url=fake.url, database="emissions"):
            pass
    creates_db = [r for r in fake.requests if r.path == "/query"]
    assert fake.requests[0].path == "/ping"
    if creates:
        assert len(creates_db) == 1
        assert parse_qs(creates_db[0].body.decode())["q"] == ['CREATE DATABASE "emissions"']
    else:
        assert creates_db == []
