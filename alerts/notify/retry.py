"""The retry stage: wraps one notifier and retries its retryable failures with backoff.

Capped exponential backoff with "equal jitter": before retry ``k`` (1, 2, ...) it waits
between half and all of ``min(max_s, min_s * 2**(k-1))`` seconds, so many channels failing
together do not retry in lock-step yet never retry immediately. A non-retryable error ends
the attempt at once. ``sleep`` and ``rng`` are injectable so tests never really wait.

Logging: the first failure of a streak is logged once (warning) and the recovery once (info);
retries in between log at debug. Giving up on a notification is logged as an error each time,
as each is a notification that was not delivered.

>>> delays = []
>>> async def no_wait(s: float) -> None:
...     delays.append(s)
>>> class Flaky:
...     name = "flaky"
...     calls = 0
...     async def send(self, n: Notification) -> None:
...         self.calls += 1
...         if self.calls < 3:
...             raise NotifyError("flaky: HTTP 503", retryable=True)
>>> import asyncio
>>> from alerts.model import Notification, NotifyReason
>>> n = Notification("n1", "ops", "g", {}, NotifyReason.FIRST, ts_ns=0)
>>> r = Retrying(Flaky(), min_s=1, max_s=60, sleep=no_wait, rng=lambda: 1.0)
>>> from structlog.testing import capture_logs
>>> with capture_logs() as logs:
...     asyncio.run(r.send(n))
>>> delays
[1.0, 2.0]
>>> [e["event"] for e in logs if e["log_level"] != "debug"]
['notification channel failing', 'notification channel recovered']
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

import structlog

from alerts.model import Notification
from alerts.notify.base import Notifier, NotifyError

log = structlog.get_logger(__name__)


def backoff_s(retry: int, *, min_s: float, max_s: float, rng: Callable[[], float]) -> float:
    """Seconds to wait before retry number ``retry`` (1-based): equal-jitter capped backoff.

    >>> backoff_s(1, min_s=1, max_s=60, rng=lambda: 0.0), backoff_s(7, min_s=1, max_s=60,
    ...     rng=lambda: 1.0)
    (0.5, 60.0)
    """
    cap = min(max_s, min_s * 2.0 ** (retry - 1))
    return cap / 2 + rng() * cap / 2


class Retrying:
    """A :class:`~alerts.notify.base.Notifier` that retries ``notifier`` (same ``name``).

    At most ``max_attempts`` attempts per notification; when they are used up, or on a
    non-retryable error, ``send`` raises a :class:`NotifyError` carrying the last error's
    ``retryable`` flag and the number of attempts.
    """

    def __init__(
        self,
        notifier: Notifier,
        *,
        min_s: float = 1.0,
        max_s: float = 60.0,
        max_attempts: int = 6,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if not 0 < min_s <= max_s:
            raise ValueError("need 0 < min_s <= max_s")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.name = notifier.name
        self.notifier = notifier
        self._min_s = min_s
        self._max_s = max_s
        self._max_attempts = max_attempts
        self._sleep = sleep
        self._rng = rng
        self._failing = False

    @property
    def failing(self) -> bool:
        """True from a failure until the next successful delivery on this channel."""
        return self._failing

    async def send(self, n: Notification) -> None:
        attempt = 0
        while True:
            attempt += 1
            try:
                await self.notifier.send(n)
            except NotifyError as e:
                self._note_failure(n, e, attempt)
                if not e.retryable or attempt >= self._max_attempts:
                    log.error(
                        "notification not delivered",
                        channel=self.name,
                        notification=n.id,
                        attempts=attempt,
                        error=e.message,
                        retryable=e.retryable,
                    )
                    raise NotifyError(
                        f"{e.message}; gave up after {attempt} attempt(s)",
                        retryable=e.retryable,
                        will_retry=False,
                    ) from e
                await self._sleep(
                    backoff_s(attempt, min_s=self._min_s, max_s=self._max_s, rng=self._rng)
                )
            else:
                if self._failing:
                    self._failing = False
                    log.info("notification channel recovered", channel=self.name, attempts=attempt)
                return

    def _note_failure(self, n: Notification, e: NotifyError, attempt: int) -> None:
        if self._failing:
            log.debug("notification attempt failed", channel=self.name, attempt=attempt)
            return
        self._failing = True
        log.warning(
            "notification channel failing",
            channel=self.name,
            notification=n.id,
            error=e.message,
            retryable=e.retryable,
        )
