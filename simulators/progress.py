"""A progress bar for long replays: done/total, rate (readings per second), elapsed and ETA.

One helper for every replay path (over MQTT, straight into the pipeline), so they look the same.
It draws on standard error with rich, and only when asked or when standard error is a
terminal: a log file or a CI run gets no control sequences. With the bar off, ``advance`` is
a no-op, so callers never branch on it.

>>> with replay_progress(3, enabled=False) as advance:
...     advance(2)
...     advance(1)
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class _RateColumn(ProgressColumn):
    """Readings per second, from rich's moving estimate."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-/s" if speed is None else f"{speed:,.0f}/s", style="progress.data.speed")


def progress_enabled(requested: bool | None = None) -> bool:
    """``requested`` if given, else whether standard error is a terminal."""
    return sys.stderr.isatty() if requested is None else requested


@contextlib.contextmanager
def replay_progress(
    total: int | None,
    enabled: bool | None = None,
    *,
    description: str = "replay",
    console: Console | None = None,
) -> Iterator[Callable[[int], None]]:
    """A context whose value is ``advance(n)``: count ``n`` more readings done.

    ``total`` may be ``None`` (unknown: no bar or ETA, only count and rate). ``enabled=None``
    draws only on a terminal (see :func:`progress_enabled`).
    """
    if not progress_enabled(enabled):
        yield _ignore
        return
    progress = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console or Console(stderr=True),
        transient=False,
    )
    with progress:
        task = progress.add_task(description, total=total)

        def advance(n: int) -> None:
            progress.advance(task, n)

        yield advance


def _ignore(n: int) -> None:
    """``advance`` when no bar is drawn."""
