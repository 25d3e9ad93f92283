"""The notifier contract: one channel that delivers :class:`~alerts.model.Notification` s.

A notifier either returns (the channel accepted the message) or raises :class:`NotifyError`,
whose ``retryable`` flag tells the :class:`~alerts.notify.retry.Retrying` stage whether
another attempt can succeed (a timeout, a 503) or cannot (a rejected request, bad
credentials). Any other exception is a bug; :class:`~alerts.notify.fanout.Fanout` reports
it as a non-retryable failure of that channel only.

>>> err = NotifyError("webhook ops: HTTP 503", retryable=True)
>>> str(err)
'webhook ops: HTTP 503 (retryable: will be retried)'
>>> str(NotifyError("webhook ops: HTTP 400", retryable=False))
'webhook ops: HTTP 400 (not retryable: dropped)'
"""

from __future__ import annotations

from typing import Protocol

from alerts.model import Notification


class NotifyError(Exception):
    """A delivery failed. ``str()`` says what failed and whether it will be retried."""

    def __init__(self, message: str, *, retryable: bool, will_retry: bool | None = None) -> None:
        """``retryable``: another attempt may succeed. ``will_retry``: whether one is coming
        (default: ``retryable``; False once the retry stage has given up)."""
        self.message = message
        self.retryable = retryable
        if not retryable:
            verdict = "not retryable: dropped"
        elif will_retry is False:
            verdict = "retryable, but not retried any more"
        else:
            verdict = "retryable: will be retried"
        super().__init__(f"{message} ({verdict})")


class Notifier(Protocol):
    """One delivery channel. ``name`` is unique within a receiver (it keys fan-out results).

    ``send`` delivers one notification or raises :class:`NotifyError`; it must not swallow
    cancellation and should bound its own I/O with a timeout. Sending the same notification
    twice (a retry) may deliver it twice; receivers de-duplicate on ``Notification.id``.
    """

    name: str

    async def send(self, n: Notification) -> None: ...
