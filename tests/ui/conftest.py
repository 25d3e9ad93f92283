"""Headless Chromium for the tests of the built-in page (Debian's ``chromium`` package).

The browser is the system one (``/usr/bin/chromium``, installed by ``make servers``), driven by
Playwright; Playwright's own browser downloads are not used. Screenshots and other artefacts go
to ``$STACKWATCH_TEST_ARTIFACTS`` (default ``var/test-artifacts/`` in the repository, which git
ignores).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

CHROMIUM = Path(os.environ.get("STACKWATCH_TEST_CHROMIUM", "/usr/bin/chromium"))
REPO = Path(__file__).resolve().parents[2]


def artifacts_dir() -> Path:
    path = Path(os.environ.get("STACKWATCH_TEST_ARTIFACTS", REPO / "var" / "test-artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium for one test module. Not longer: Playwright's sync API keeps an asyncio loop
    running on the main thread while it is open, which asyncio tests (pytest-asyncio) after
    it could not run under."""
    if not CHROMIUM.exists():
        if os.geteuid() != 0:
            pytest.skip(
                f"{CHROMIUM} is missing and installing it needs root: "
                "apt-get install --no-install-recommends chromium"
            )
        pytest.fail(f"{CHROMIUM} is missing: run `make servers` (apt-get install chromium)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True)
        yield b
        b.close()


@dataclass
class PageLog:
    """What the page reported: console errors and uncaught exceptions."""

    errors: list[str] = field(default_factory=list)
    allowed: list[str] = field(default_factory=list)
    """Substrings of errors a test provokes on purpose (e.g. the browser logging a 401)."""

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(a in e for a in self.allowed)]

    def console(self, msg: ConsoleMessage) -> None:
        if msg.type == "error":
            self.errors.append(f"console: {msg.text} ({msg.location.get('url', '')})")

    def page_error(self, exc: Exception) -> None:
        self.errors.append(f"uncaught: {exc}")


@pytest.fixture
def page(browser: Browser) -> Iterator[tuple[Page, PageLog]]:
    """A fresh page (own context: own sessionStorage) and the log of its errors."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    p = context.new_page()
    log = PageLog()
    p.on("console", log.console)
    p.on("pageerror", log.page_error)
    yield p, log
    context.close()
