"""The fan-out stage: deliver one notification to all channels of a receiver at once.

Each channel runs concurrently under its own timeout, so a failing, retrying or hanging
channel never delays or blocks the others; ``send`` returns when every channel has finished
or timed out, with one :class:`DeliveryResult` per channel name. It never raises for a
channel's failure (an unexpected exception is reported as a non-retryable failure and
logged with its traceback).

>>> DeliveryResult.ok()
DeliveryResult(delivered=True, retryable=False, error=None)
>>> DeliveryResult.failed("HTTP 503", retryable=True).delivered
False
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import structlog

from alerts.model import Notification
from alerts.notify.base import Notifier, NotifyError

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """Outcome of one channel: delivered, or failed with ``error`` and whether a later
    attempt could succeed (``retryable``)."""

    delivered: bool
    retryable: bool = False
    error: str | None = None

    @classmethod
    def ok(cls) -> DeliveryResult:
        return cls(True)

    @classmethod
    def failed(cls, error: str, *, retryable: bool) -> DeliveryResult:
        return cls(False, retryable, error)


class Fanout:
    """All channels of one receiver. ``timeout_s`` bounds each channel's whole send
    (including a :class:`~alerts.notify.retry.Retrying` stage's retries)."""

    def __init__(self, notifiers: Sequence[Notifier], *, timeout_s: float = 300.0) -> None:
        names = [x.name for x in notifiers]
        if len(set(names)) != len(names):
            raise ValueError(f"channel names must be unique within a receiver: {names}")
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self.notifiers = tuple(notifiers)
        self._timeout_s = timeout_s

    @property
    def names(self) -> list[str]:
        return [x.name for x in self.notifiers]

    async def send(self, n: Notification) -> dict[str, DeliveryResult]:
        results = await asyncio.gather(*(self._one(x, n) for x in self.notifiers))
        return dict(zip(self.names, results, strict=True))

    async def _one(self, notifier: Notifier, n: Notification) -> DeliveryResult:
        try:
            async with asyncio.timeout(self._timeout_s):
                await notifier.send(n)
        except NotifyError as e:
            return DeliveryResult.failed(e.message, retryable=e.retryable)
        except TimeoutError:
            msg = f"{notifier.name}: no result within {self._timeout_s} s"
            log.warning("notification channel timed out", channel=notifier.name, notification=n.id)
            return DeliveryResult.failed(msg, retryable=True)
        except Exception as e:  # a bug in one channel must not take the others down
            log.exception("notifier crashed", channel=notifier.name, notification=n.id)
            return DeliveryResult.failed(
                f"{notifier.name}: {type(e).__name__}: {e}", retryable=False
            )
        return DeliveryResult.ok()
