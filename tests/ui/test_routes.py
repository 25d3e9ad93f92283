"""The routes serving the built-in page: redirects, the page, its assets, and nothing else."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from api.routes import ui


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.include_router(ui.router)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sw.test") as c:
        yield c


@pytest.mark.parametrize("path", ["/", "/ui"])
async def test_root_redirects_relatively_to_the_page(client: httpx.AsyncClient, path: str) -> None:
    r = await client.get(path, follow_redirects=False)
    assert r.status_code == 307
    assert r.headers["location"] == "ui/"  # relative: works under a proxy prefix


async def test_page_is_served_with_a_strict_content_security_policy(
    client: httpx.AsyncClient,
) -> None:
    r = await client.get("/ui/")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["cache-control"] == "no-cache"
    assert 'src="static/app.js"' in r.text


@pytest.mark.parametrize(
    ("name", "media_type"),
    [
        ("app.js", "text/javascript; charset=utf-8"),
        ("sse.js", "text/javascript; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
    ],
)
async def test_assets_have_their_media_type(
    client: httpx.AsyncClient, name: str, media_type: str
) -> None:
    r = await client.get(f"/ui/static/{name}")
    assert r.status_code == 200
    assert r.headers["content-type"] == media_type
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.content == (ui.STATIC_DIR / name).read_bytes()


@pytest.mark.parametrize(
    "path",
    [
        "/ui/static/missing.js",
        "/ui/static/index",  # no known extension
        "/ui/static/../routes/ui.py",
        "/ui/static/%2e%2e/routes/ui.py",
        "/ui/static/..%2f..%2fmain.py",
        "/ui/static/.hidden.js",
        "/ui/static/",
    ],
)
async def test_nothing_else_is_served(client: httpx.AsyncClient, path: str) -> None:
    assert (await client.get(path)).status_code == 404


async def test_every_module_the_page_imports_is_served(client: httpx.AsyncClient) -> None:
    """Module imports are relative (``./x.js``): each must exist, or the page fails to load."""
    for module in ui.STATIC_DIR.glob("*.js"):
        for imported in re.findall(r'from "\./([\w.-]+)"', module.read_text()):
            r = await client.get(f"/ui/static/{imported}")
            assert r.status_code == 200, (module, imported)
