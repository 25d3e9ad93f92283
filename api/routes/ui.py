"""The built-in web page: ``/`` redirects to ``/ui/``, which serves the files of ``api/static``.

Open without a token, like health: the page and its assets hold no data. The page itself calls
the protected endpoints (``/plants``, ``/live``, ``/alerts``, ...) and asks for an API key
when one answers 401. Plain static files, no build step: only the files of :data:`STATIC_DIR`
with a known extension are served (no listing, no dot files, nothing outside the directory).

Every response forbids framing and MIME sniffing; the page has a strict Content Security
Policy (scripts, styles and connections to this origin only, no inline code), so a value
shown on the page can never run as script. ``Cache-Control: no-cache`` makes browsers
revalidate, so an upgraded service never runs with a stale page.

Redirects are relative (``Location: ui/``) so the page also works behind a reverse proxy that
serves the API under a path prefix.

>>> static_file("app.js") == STATIC_DIR / "app.js"
True
>>> static_file("../routes/ui.py") is None, static_file(".hidden.js") is None
(True, True)
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import FileResponse, RedirectResponse

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
"""Where the page's files live (``api/static``; shipped as package data)."""

MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
}
"""The only file types served (fixed here: the platform's MIME table varies)."""

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}

router = APIRouter(include_in_schema=False)


def static_file(path: str) -> Path | None:
    """The file of :data:`STATIC_DIR` that ``path`` names, or None when it is not served."""
    parts = Path(path).parts
    if not parts or any(p.startswith(".") for p in parts):
        return None
    candidate = (STATIC_DIR / path).resolve()
    if not candidate.is_relative_to(STATIC_DIR) or candidate.suffix not in MEDIA_TYPES:
        return None
    return candidate if candidate.is_file() else None


def _file(path: Path, headers: dict[str, str]) -> FileResponse:
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers=headers)


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("ui/", status_code=status.HTTP_307_TEMPORARY_REDIRECT)


@router.get("/ui")
async def ui_no_slash() -> RedirectResponse:
    return RedirectResponse("ui/", status_code=status.HTTP_307_TEMPORARY_REDIRECT)


@router.get("/ui/")
async def index() -> FileResponse:
    """The page (its relative links resolve under ``/ui/``)."""
    return _file(
        STATIC_DIR / "index.html", {**_HEADERS, "Content-Security-Policy": CONTENT_SECURITY_POLICY}
    )


@router.get("/ui/static/{path:path}")
async def asset(path: str) -> FileResponse:
    """A script, style sheet or icon of the page; 404 for anything else."""
    found = static_file(path)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
    return _file(found, _HEADERS)
