"""The live stream end to end: a real LiveHub behind ``GET /live`` served by uvicorn on a
loopback socket (SSE through httpx's ASGITransport would be buffered), read with httpx's
streaming client; plus the hub on its own for payloads and subscription semantics.

Both the server and the test run on the test's event loop, so a synchronous ``publish_*``
call completes before the server's stream task can take anything from its queue.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from fastapi import FastAPI

from alerts.model import Alert, RuleName, Severity, State, Transition, fingerprint
from api.context import AppContext, ComponentHealth
from api.live import (
    PEMS,
    SCORES,
    Dropped,
    EventType,
    LiveEvent,
    LiveFilter,
    LiveHub,
    LiveUnavailableError,
)
from api.main import create_app
from api.routes import live
from api.settings import ApiSettings
from stream.compliance.points import DAILY, PERIOD, STA
from stream.detect.events import EVENTS
from stream.detect.live import SCORES as DETECT_SCORES
from stream.model import Reading, Status, ns_from_datetime
from stream.pems.live import PEMS as PEMS_MEASUREMENT
from stream.plant import PlantConfig
from stream.schema import READINGS
from stream.storage.base import FieldValue, Point
from stream.storage.sqlite import SqliteStore

NOW = ns_from_datetime(datetime(2024, 1, 1, 12, tzinfo=UTC))
TIMEOUT_S = 5.0

CONFIG = PlantConfig.model_validate(
    {
        "plants": {
            "alpha": {
                "stacks": {
                    "b1": {
                        "sensors": {
                            "nox": {"quantity": "nox", "unit": "mg/Nm3", "valid_range": [0, 2000]},
                            "o2": {"quantity": "o2", "unit": "%", "valid_range": [0, 21]},
                        }
                    },
                    "b2": {
                        "sensors": {
                            "nox": {"quantity": "nox", "unit": "mg/Nm3", "valid_range": [0, 2000]}
                        }
                    },
                }
            },
            "beta": {
                "stacks": {
                    "s1": {
                        "sensors": {
                            "so2": {"quantity": "so2", "unit": "mg/Nm3", "valid_range": [0, 500]}
                        }
                    }
                }
            },
        }
    }
)


def reading(plant: str, stack: str, sensor: str, value: float, ts_ns: int = NOW) -> Reading:
    unit = "%" if sensor == "o2" else "mg/Nm3"
    return Reading(plant, stack, sensor, ts_ns, value, sensor, unit)


def transition(labels: Mapping[str, str], rule: str = RuleName.LIMIT_BREACH) -> Transition:
    alert = Alert(
        fingerprint=fingerprint(rule, labels),
        rule=rule,
        labels=labels,
        severity=Severity.CRITICAL,
        state=State.FIRING,
        summary="something is wrong",
        started_ns=NOW,
        updated_ns=NOW,
        fired_ns=NOW,
    )
    return Transition(alert, State.PENDING, NOW)


# ------------------------------------------------------------------------------- serving


@pytest.fixture(autouse=True)
def no_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Settings come from the test only: no STACKWATCH_* variables, no .env file."""
    for name in list(os.environ):
        if name.startswith("STACKWATCH_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def no_components() -> Mapping[str, ComponentHealth]:
    return {}


def make_app(tmp_path: Path, hub: LiveHub | None) -> FastAPI:
    """The service's app (``api.main`` includes the live router)."""
    ctx = AppContext(
        config=CONFIG,
        store=SqliteStore(tmp_path / "unused.sqlite"),  # never started: /live does not read it
        settings=ApiSettings(),
        demo=True,
        components=no_components,
        now_ns=lambda: NOW,
        live=hub,
    )
    return create_app(ctx)


@asynccontextmanager
async def serving(app: FastAPI, hub: LiveHub | None) -> AsyncIterator[httpx.AsyncClient]:
    """Serve ``app`` with uvicorn on a pre-bound loopback socket (accepting at once) with a
    small send buffer, so a client that does not read soon holds the server's writes."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16_384)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
            yield c
    finally:
        if hub is not None:
            hub.close()  # ends open streams, or the server would wait for them on shutdown
        server.should_exit = True
        await task
        sock.close()


@asynccontextmanager
async def running(tmp_path: Path, hub: LiveHub | None) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(make_app(tmp_path, hub), hub) as c:
        yield c


# ------------------------------------------------------------------------------- SSE reading


@dataclass
class Frame:
    """One SSE block (lines up to a blank line)."""

    lines: list[str]
    event: str | None = None
    data: Any = None
    comments: list[str] = field(default_factory=list)
    retry: int | None = None


class SseReader:
    def __init__(self, response: httpx.Response) -> None:
        self._lines = response.aiter_lines()

    async def frame(self) -> Frame:
        """The next block; raises StopAsyncIteration at the end of the body."""
        async with asyncio.timeout(TIMEOUT_S):
            lines: list[str] = []
            async for line in self._lines:
                if line == "":
                    return _parse(lines)
                lines.append(line)
            raise StopAsyncIteration

    async def event(self) -> Frame:
        """The next block that is an event (skipping heartbeats)."""
        while True:
            f = await self.frame()
            if f.event is not None:
                return f

    async def events(self, n: int) -> list[Frame]:
        return [await self.event() for _ in range(n)]


def _parse(lines: list[str]) -> Frame:
    f = Frame(lines)
    for line in lines:
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "":
            f.comments.append(value)
        elif name == "event":
            f.event = value
        elif name == "data":
            assert f.data is None, "one data line per event"
            f.data = orjson.loads(value)
        elif name == "retry":
            f.retry = int(value)
        else:
            raise AssertionError(f"unexpected SSE line {line!r}")
    return f


@asynccontextmanager
async def stream(c: httpx.AsyncClient, query: str = "") -> AsyncIterator[SseReader]:
    """An open ``/live`` stream, past its opening block (so the client is subscribed)."""
    async with c.stream("GET", f"/live{query}") as resp:
        assert resp.status_code == 200, await resp.aread()
        assert resp.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert resp.headers["cache-control"] == "no-cache"
        assert "content-length" not in resp.headers
        reader = SseReader(resp)
        opening = await reader.frame()
        assert opening.retry == live.RETRY_MS
        assert opening.event is None
        yield reader


def assert_error(resp: httpx.Response, status: int, code: str) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["error"]["code"] == code
    message: str = body["error"]["message"]
    return message


# ------------------------------------------------------------------------------- the stream


async def test_events_are_filtered_by_plant_stack_and_type(tmp_path: Path) -> None:
    hub = LiveHub()
    async with (
        running(tmp_path, hub) as c,
        stream(c, "?plant=alpha&stack=b1&types=reading,alert") as s,
    ):
        assert hub.clients == 1
        hub.publish_readings(
            [
                reading("alpha", "b1", "nox", 1.0),
                reading("alpha", "b2", "nox", 2.0),  # other stack
                reading("beta", "s1", "so2", 3.0),  # other plant
                reading("alpha", "b1", "o2", 4.0, NOW + 1),
            ]
        )
        tags = {"plant": "alpha", "stack": "b1", "pollutant": "nox"}
        hub.publish_points([Point(STA, tags, {"state": "valid"}, NOW)])  # type not asked for
        hub.publish_alert(transition({"plant": "alpha", "stack": "b2", "pollutant": "nox"}))
        hub.publish_alert(transition({"plant": "alpha", "stack": "b1", "pollutant": "nox"}))
        # Not tied to a plant: concerns every plant, so it reaches filtered clients too.
        hub.publish_alert(transition({"component": "store"}, RuleName.SERVICE_HEALTH))
        hub.publish_readings([reading("alpha", "b1", "nox", 5.0, NOW + 2)])  # the end marker

        frames = await s.events(5)
    assert [(f.event, f.lines[0]) for f in frames] == [
        ("reading", "event: reading"),
        ("reading", "event: reading"),
        ("alert", "event: alert"),
        ("alert", "event: alert"),
        ("reading", "event: reading"),
    ]
    assert all(len(f.lines) == 2 and f.lines[1].startswith("data: {") for f in frames)
    assert frames[0].data == {
        "plant": "alpha",
        "stack": "b1",
        "sensor": "nox",
        "quantity": "nox",
        "unit": "mg/Nm3",
        "time": "2024-01-01T12:00:00Z",
        "time_ns": NOW,
        "value": 1.0,
        "status": "valid",
    }
    assert frames[1].data["sensor"] == "o2"
    assert frames[2].data["alert"]["labels"] == {
        "plant": "alpha",
        "stack": "b1",
        "pollutant": "nox",
    }
    assert frames[3].data["alert"]["rule"] == "service_health"
    assert frames[4].data["value"] == 5.0


async def test_a_stack_filter_alone_matches_that_stack_of_any_plant(tmp_path: Path) -> None:
    hub = LiveHub()
    async with running(tmp_path, hub) as c, stream(c, "?stack=s1&types=reading") as s:
        hub.publish_readings([reading("alpha", "b1", "nox", 1.0), reading("beta", "s1", "so2", 2)])
        f = await s.event()
    assert (f.data["plant"], f.data["stack"]) == ("beta", "s1")


async def test_idle_stream_sends_heartbeat_comments(tmp_path: Path) -> None:
    hub = LiveHub(heartbeat_s=0.05)
    async with running(tmp_path, hub) as c, stream(c) as s:
        beats = [await s.frame(), await s.frame()]
        hub.publish_readings([reading("alpha", "b1", "nox", 1.0)])
        event = await s.event()
    assert [(f.lines, f.comments) for f in beats] == [([": heartbeat"], ["heartbeat"])] * 2
    assert event.event == "reading"


async def test_a_full_queue_drops_the_oldest_and_tells_the_client(tmp_path: Path) -> None:
    hub = LiveHub(queue_size=3)
    async with running(tmp_path, hub) as c, stream(c, "?types=reading") as s:
        # One synchronous call: the server's stream task cannot take anything meanwhile.
        hub.publish_readings([reading("alpha", "b1", "nox", float(i), NOW + i) for i in range(10)])
        frames = await s.events(4)
        hub.publish_readings([reading("alpha", "b1", "nox", 10.0, NOW + 10)])
        after = await s.event()
    assert frames[0].event == "dropped"
    assert frames[0].data == {"dropped": 7, "dropped_total": 7}
    assert [f.data["value"] for f in frames[1:]] == [7.0, 8.0, 9.0]
    assert (after.event, after.data["value"]) == ("reading", 10.0)  # no new notice: no new loss
    assert hub.dropped_total == 7


async def test_a_client_that_stops_reading_never_holds_up_publishers(tmp_path: Path) -> None:
    """The client reads nothing while readings pour in, in batches smaller than its queue:
    the server drains the queue into the socket until the socket is full and its write waits;
    then the hub drops the client's oldest events instead of blocking. Every published event
    is then either received or counted in a ``dropped`` notice, in order."""
    hub = LiveHub(queue_size=50)
    published = 0
    async with running(tmp_path, hub) as c, stream(c, "?types=reading") as s:
        for _ in range(100_000):  # bound only; stops as soon as the first event is dropped
            batch = [
                reading("alpha", "b1", "nox", float(published + i), NOW + published + i)
                for i in range(10)
            ]
            hub.publish_readings(batch)  # returns at once however stuck the client is
            published += len(batch)
            if hub.dropped_total:
                break
            await asyncio.sleep(0)  # let the server write what it can (not a synchronisation)
        assert hub.dropped_total > 0
        assert published > hub.queue_size  # the socket held the rest: real back-pressure
        marker = float(published)
        hub.publish_readings([reading("alpha", "b1", "nox", marker, NOW + published)])
        published += 1

        frames: list[Frame] = []
        while not frames or frames[-1].data.get("value") != marker:
            frames.append(await s.event())
    dropped = [f.data for f in frames if f.event == "dropped"]
    values = [f.data["value"] for f in frames if f.event == "reading"]
    assert dropped
    assert [d["dropped_total"] for d in dropped] == [
        sum(d["dropped"] for d in dropped[: i + 1]) for i in range(len(dropped))
    ]
    assert len(values) + dropped[-1]["dropped_total"] == published
    assert values == sorted(values) and len(set(values)) == len(values)
    last_notice = max(i for i, f in enumerate(frames) if f.event == "dropped")
    newest = [f.data["value"] for f in frames[last_notice + 1 :]]
    assert newest == [float(v) for v in range(published - len(newest), published)]
    assert 0 < len(newest) <= hub.queue_size


async def test_disconnect_unsubscribes(tmp_path: Path) -> None:
    hub = LiveHub()
    async with running(tmp_path, hub) as c:
        async with stream(c):
            assert hub.clients == 1
        async with asyncio.timeout(TIMEOUT_S):
            await hub.wait_for(lambda: hub.clients == 0)
        hub.publish_readings([reading("alpha", "b1", "nox", 1.0)])  # nobody to deliver to
        assert hub.dropped_total == 0


async def test_closing_the_hub_ends_streams_and_refuses_new_clients(tmp_path: Path) -> None:
    hub = LiveHub()
    async with running(tmp_path, hub) as c:
        async with stream(c) as s:
            hub.close()
            with pytest.raises(StopAsyncIteration):
                await s.frame()  # the body ends: the server can shut down
        assert hub.clients == 0
        resp = await c.get("/live")
    assert "shutting down" in assert_error(resp, 503, "unavailable")
    assert resp.headers["retry-after"] == "5"


async def test_too_many_clients_are_refused(tmp_path: Path) -> None:
    hub = LiveHub(max_clients=1)
    async with running(tmp_path, hub) as c, stream(c):
        resp = await c.get("/live")
    assert "too many live clients" in assert_error(resp, 503, "unavailable")


BAD_REQUESTS = [
    ("?plant=nope", 404, "not_found", "plant 'nope' is not configured"),
    ("?plant=alpha&stack=s1", 404, "not_found", "stack alpha/s1 is not configured"),
    ("?stack=nope", 404, "not_found", "stack 'nope' is not configured"),
    ("?types=reading,bogus", 422, "validation_error", "unknown event type(s) bogus"),
    ("?types=,", 422, "validation_error", "unknown event type(s) (none given)"),
]


async def test_bad_requests(tmp_path: Path) -> None:
    hub = LiveHub()
    async with running(tmp_path, hub) as c:
        for query, status, code, message in BAD_REQUESTS:
            resp = await c.get(f"/live{query}")
            assert assert_error(resp, status, code).startswith(message), query
        assert (await c.head("/live")).status_code == 405  # no endless body-less stream
    assert hub.clients == 0


async def test_without_a_hub_the_stream_is_unavailable(tmp_path: Path) -> None:
    async with running(tmp_path, None) as c:
        resp = await c.get("/live")
    assert "not running" in assert_error(resp, 503, "unavailable")


async def test_openapi_documents_the_stream(tmp_path: Path) -> None:
    async with running(tmp_path, LiveHub()) as c:
        doc = (await c.get("/openapi.json")).json()
    op = doc["paths"]["/live"]["get"]
    assert "text/event-stream" in op["responses"]["200"]["content"]
    assert {"404", "422", "503"} <= set(op["responses"])
    assert [p["name"] for p in op["parameters"]] == ["plant", "stack", "types"]
    assert "Last-Event-ID" in op["description"]


# ------------------------------------------------------------------------------- the hub


def drain(sub: Any) -> list[LiveEvent | Dropped]:
    items = []
    while (item := sub.get_nowait()) is not None:
        items.append(item)
    return items


def payloads(items: Sequence[LiveEvent | Dropped]) -> list[tuple[str, dict[str, Any]]]:
    return [(i.type.value, orjson.loads(i.data)) for i in items if isinstance(i, LiveEvent)]


def test_points_become_events_by_measurement() -> None:
    hub = LiveHub()
    sub = hub.subscribe()
    tags = {"plant": "alpha", "stack": "b1"}
    nox = {**tags, "pollutant": "nox"}
    sensor = {**tags, "sensor": "nox"}
    score: dict[str, FieldValue] = {
        "score": 0.1,
        "is_anomaly": False,
        "kind": "none",
        "drift": False,
        "warm": True,
    }
    hub.publish_points(
        [
            Point(STA, nox, {"normalised": 180.0, "validated": 150.0, "state": "valid"}, NOW),
            Point(DAILY, nox, {"validated_mean": 140.0, "complete": False}, NOW),
            Point(PERIOD, {**nox, "period": "month"}, {"validated_mean": 120.0}, NOW),
            Point(SCORES, sensor, score, NOW),  # normal: not streamed
            Point(SCORES, sensor, {**score, "is_anomaly": True, "kind": "residual"}, NOW + 1),
            Point(SCORES, sensor, {**score, "drift": True, "kind": "drift"}, NOW + 2),
            Point(EVENTS, {**sensor, "event": "fault"}, {"kind": "stuck", "active": True}, NOW),
            Point(PEMS, nox | {"sensor": "nox"}, {"prediction": 99.5, "substitute": True}, NOW),
            Point(READINGS, sensor, {"value": 1.0}, NOW),  # not a derived stream
            Point("compliance_unknown", nox, {"x": 1}, NOW),
        ]
    )
    got = payloads(drain(sub))
    assert [(t, d.get("period") or d.get("kind")) for t, d in got] == [
        ("average", "short_term"),
        ("average", "day"),
        ("average", "month"),
        ("score", "residual"),
        ("score", "drift"),
        ("detection", "stuck"),
        ("pems", None),
    ]
    assert got[0][1] == {
        "plant": "alpha",
        "stack": "b1",
        "pollutant": "nox",
        "normalised": 180.0,
        "validated": 150.0,
        "state": "valid",
        "period": "short_term",
        "time": "2024-01-01T12:00:00Z",
        "time_ns": NOW,
    }
    assert got[5][1]["event"] == "fault"
    assert got[6][1]["substitute"] is True


def test_alert_events_have_the_history_shape() -> None:
    hub = LiveHub()
    sub = hub.subscribe(LiveFilter(types=frozenset({EventType.ALERT})))
    hub.publish_alert(transition({"plant": "alpha", "stack": "b1", "pollutant": "nox"}))
    [(kind, data)] = payloads(drain(sub))
    assert kind == "alert"
    assert (data["previous"], data["state"], data["actor"], data["at_ns"]) == (
        "pending",
        "firing",
        "system",
        NOW,
    )
    assert data["alert"]["severity"] == "critical"


def test_readings_of_every_status_are_streamed() -> None:
    hub = LiveHub()
    sub = hub.subscribe()
    r = Reading("alpha", "b1", "o2", NOW, 7.5, "o2", "%", Status.CALIBRATION)
    hub.publish_readings([r])
    [(_, data)] = payloads(drain(sub))
    assert data["status"] == "calibration"


async def test_a_subscription_iterates_until_closed() -> None:
    hub = LiveHub()
    got: list[LiveEvent | Dropped] = []

    async def consume() -> None:
        with hub.subscribe() as sub:
            async for item in sub:
                got.append(item)
                if len(got) == 2:
                    hub.close()

    task = asyncio.create_task(consume())
    await hub.wait_for(lambda: hub.clients == 1)
    hub.publish_readings([reading("alpha", "b1", "nox", 1.0), reading("alpha", "b1", "nox", 2)])
    async with asyncio.timeout(TIMEOUT_S):
        await task
    assert len(got) == 2
    assert hub.clients == 0
    with pytest.raises(LiveUnavailableError):
        hub.subscribe()


async def test_next_times_out_with_none() -> None:
    hub = LiveHub()
    async with hub.subscribe() as sub:
        assert await sub.next(timeout_s=0.01) is None
    assert sub.closed and hub.clients == 0


def test_hub_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="positive"):
        LiveHub(queue_size=0)


def test_measurement_names_match_their_producers() -> None:
    assert (SCORES, PEMS) == (DETECT_SCORES, PEMS_MEASUREMENT)


def test_no_subscriber_means_no_work() -> None:
    hub = LiveHub(queue_size=1)
    hub.publish_readings([reading("alpha", "b1", "nox", float(i)) for i in range(5)])
    hub.publish_points([Point(STA, {"plant": "alpha"}, {"state": "valid"}, NOW)])
    hub.publish_alert(transition({"plant": "alpha"}))
    sub = hub.subscribe()
    assert sub.get_nowait() is None  # nothing queued for later subscribers: live only
    assert hub.dropped_total == 0
    sub.close()
