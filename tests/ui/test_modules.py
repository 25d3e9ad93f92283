"""The page's JavaScript modules in headless Chromium: the SSE parser, reconnect with backoff
and the bearer header, the live O2 normalisation and pairing.

The modules are served by the page's own router in a small FastAPI app under uvicorn, which
also offers a test stream that records the ``Authorization`` header and ends after each event
(so the client must reconnect).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from playwright.sync_api import Page

from api.routes import ui
from tests.e2e.service import wait_until
from tests.servers import free_port
from tests.ui.conftest import PageLog


@dataclass
class StreamServer:
    url: str
    authorizations: list[str | None] = field(default_factory=list)


@pytest.fixture(scope="module")
def server() -> Iterator[StreamServer]:
    port = free_port()
    state = StreamServer(f"http://127.0.0.1:{port}")
    app = FastAPI()
    app.include_router(ui.router)

    @app.get("/blank")
    async def blank() -> HTMLResponse:
        return HTMLResponse('<!doctype html><link rel="icon" href="data:,"><title>modules</title>')

    @app.get("/stream")
    async def stream(request: Request) -> Response:
        state.authorizations.append(request.headers.get("authorization"))
        n = len(state.authorizations)
        body = f'retry: 20\n: hello\n\nevent: reading\ndata: {{"n": {n}}}\n\n'
        return Response(body, media_type="text/event-stream")

    @app.get("/refused")
    async def refused() -> JSONResponse:
        body = {"error": {"code": "unauthorized", "message": "missing or invalid bearer token"}}
        return JSONResponse(body, status_code=401)

    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    wait_until(lambda: srv.started, 10, "uvicorn started")
    yield state
    srv.should_exit = True
    thread.join(10)


@pytest.fixture
def modules(server: StreamServer, page: tuple[Page, PageLog]) -> Iterator[Page]:
    p, log = page
    p.goto(f"{server.url}/blank")
    yield p
    assert log.unexpected() == []


def run(p: Page, body: str) -> Any:
    """Evaluate ``body`` (an async function body) with the page's modules as ``sse``, ``nm``."""
    return p.evaluate(
        f"""async () => {{
            const sse = await import("/ui/static/sse.js");
            const nm = await import("/ui/static/normalise.js");
            {body}
        }}"""
    )


def test_sse_parser_handles_chunks_split_anywhere(modules: Page) -> None:
    events = run(
        modules,
        r"""
        const text = "retry: 1500\r\n: comment\r\nevent: reading\r\ndata: {\"a\":\r\n" +
            "data: 1}\r\n\r\nevent: nodata\n\ndata:x\rdata:  y\r\rid: 7\nevent: tail\ndata: z";
        const results = [];
        // every split position, also between \r and \n
        for (let cut = 0; cut <= text.length; cut += 1) {
            const p = new sse.SseParser();
            const got = [...p.feed(text.slice(0, cut)), ...p.feed(text.slice(cut))];
            results.push(JSON.stringify([got, p.retryMs, p.lastEventId]));
        }
        return [...new Set(results)];
        """,
    )
    assert len(events) == 1, events  # the same outcome wherever the text was split
    assert events[0] == (
        '[[{"type":"reading","data":"{\\"a\\":\\n1}"},{"type":"message","data":"x\\n y"}],1500,"7"]'
    )


def test_backoff_grows_is_capped_and_jittered(modules: Page) -> None:
    delays = run(
        modules,
        """
        const low = [0, 1, 2, 3, 10].map((a) => sse.backoffMs(a, 1000, 30000, () => 0));
        const high = [0, 1, 2, 3, 10].map((a) => sse.backoffMs(a, 1000, 30000, () => 1));
        return [low, high];
        """,
    )
    assert delays == [[500, 1000, 2000, 4000, 15000], [1000, 2000, 4000, 8000, 30000]]


def test_live_stream_reconnects_with_the_bearer_key_and_stops_on_401(
    modules: Page, server: StreamServer, page: tuple[Page, PageLog]
) -> None:
    page[1].allowed.append("status of 401")  # Chromium logs every failed request
    result = run(
        modules,
        f"""
        const seen = [];
        const states = [];
        await new Promise((resolve) => {{
            const s = new sse.LiveStream({{
                url: () => "{server.url}/stream",
                headers: () => ({{ Authorization: "Bearer k-123" }}),
                baseDelayMs: 5,
                maxDelayMs: 20,
                onEvent: (type, data) => {{
                    seen.push([type, JSON.parse(data).n]);
                    if (seen.length === 3) {{ s.stop(); resolve(); }}
                }},
                onState: (state) => states.push(state),
            }});
            s.start();
        }});
        const refused = await new Promise((resolve) => {{
            const s = new sse.LiveStream({{
                url: () => "{server.url}/refused",
                headers: () => ({{}}),
                onEvent: () => {{}},
                onState: (state, detail) => {{
                    if (state === "stopped") resolve([detail.error.status, detail.error.message]);
                }},
            }});
            s.start();
        }});
        return {{ seen, states: states.slice(0, 4), refused }};
        """,
    )
    # Each connection delivers one event and ends: the stream reconnected twice.
    assert result["seen"] == [["reading", 1], ["reading", 2], ["reading", 3]]
    assert result["states"] == ["connecting", "connected", "reconnecting", "connecting"]
    assert server.authorizations[:3] == ["Bearer k-123"] * 3
    # A 401 ends the stream for good (the page asks for a key) instead of retrying.
    assert result["refused"] == [401, "missing or invalid bearer token"]


def test_normalise_to_the_reference_o2(modules: Page) -> None:
    values = run(
        modules,
        """
        return [nm.normalise(100, 11, 6), nm.normalise(100, 6, 6), nm.normalise(100, 21, 6),
                nm.normalise(100, 9, null)];
        """,
    )
    assert values == [150, 100, None, 100]


def test_o2_pairing_waits_for_the_o2_of_the_same_instant(modules: Page) -> None:
    result = run(
        modules,
        """
        const p = new nm.O2Pairing(5000, 60000);
        const out = [];
        // NOx at t=1000 arrives before any O2: it waits, and the O2 of t=1000 settles it.
        out.push(p.pair(1000, { v: 100 }).o2);
        out.push(p.addO2(1000, 11).map((w) => [w.t, w.v, w.o2]));
        // NOx at t=2000 is newer than the O2: it waits for the O2 of t=2000, not 1000's.
        out.push(p.pair(2000, { v: 120 }).o2);
        out.push(p.addO2(2000, 9).map((w) => [w.t, w.v, w.o2]));
        // Not newer than the O2 known: paired at once with the nearest.
        out.push(p.pair(1900, { v: 90 }).o2);
        // O2 goes silent: a reading 5 s newer gives up on the waiting one (nearest O2 used);
        // once the nearest O2 is too far, a reading gets none.
        out.push(p.pair(6000, { v: 130 }).o2);
        out.push(p.pair(11500, { v: 140 }).settled.map((w) => [w.t, w.o2]));
        out.push(p.pair(17000, { v: 150 }).settled.map((w) => [w.t, w.o2]));
        return out;
        """,
    )
    assert result == [
        None,
        [[1000, 100, 11]],
        None,
        [[2000, 120, 9]],
        9,
        None,
        [[6000, 9]],
        [],  # 11500 is 9.5 s after the last O2: no estimate
    ]
