"""The retry stage: backoff, giving up, logging once."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from alerts.model import Notification
from alerts.notify.base import NotifyError
from alerts.notify.retry import Retrying, backoff_s
from tests.alerts.notify.test_webhook import notification


class Scripted:
    """A channel (third-party stand-in) failing with the scripted errors, then succeeding."""

    name = "scripted"

    def __init__(self, *errors: NotifyError) -> None:
        self.errors = list(errors)
        self.sent: list[str] = []

    async def send(self, n: Notification) -> None:
        self.sent.append(n.id)
        if self.errors:
            raise self.errors.pop(0)


def transient() -> NotifyError:
    return NotifyError("scripted: HTTP 503", retryable=True)


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, s: float) -> None:
        self.delays.append(s)


async def test_backoff_doubles_up_to_the_cap() -> None:
    sleeps = Sleeps()
    channel = Scripted(*[transient() for _ in range(7)])
    r = Retrying(channel, min_s=1, max_s=10, max_attempts=8, sleep=sleeps, rng=lambda: 1.0)
    await r.send(notification())
    assert sleeps.delays == [1, 2, 4, 8, 10, 10, 10]
    assert len(channel.sent) == 8


@pytest.mark.parametrize("retry", [1, 2, 5, 10])
def test_jitter_stays_within_half_and_full_delay(retry: int) -> None:
    cap = min(60.0, 2.0 ** (retry - 1))
    low = backoff_s(retry, min_s=1, max_s=60, rng=lambda: 0.0)
    high = backoff_s(retry, min_s=1, max_s=60, rng=lambda: 0.999)
    assert low == cap / 2
    assert cap / 2 < high < cap


async def test_non_retryable_gives_up_at_once() -> None:
    sleeps = Sleeps()
    channel = Scripted(NotifyError("scripted: HTTP 400", retryable=False))
    with pytest.raises(NotifyError) as err:
        await Retrying(channel, sleep=sleeps).send(notification())
    assert not err.value.retryable
    assert "HTTP 400" in str(err.value)
    assert sleeps.delays == []
    assert channel.sent == ["n1"]


async def test_gives_up_after_max_attempts_still_retryable() -> None:
    sleeps = Sleeps()
    channel = Scripted(*[transient() for _ in range(5)])
    with pytest.raises(NotifyError) as err:
        await Retrying(channel, max_attempts=3, sleep=sleeps).send(notification())
    assert err.value.retryable
    assert str(err.value) == (
        "scripted: HTTP 503; gave up after 3 attempt(s) (retryable, but not retried any more)"
    )
    assert len(sleeps.delays) == 2
    assert isinstance(err.value.__cause__, NotifyError)


async def test_logs_the_failure_once_and_the_recovery_once() -> None:
    sleeps = Sleeps()
    # Two notifications fail for good, then the third recovers after two more failures.
    channel = Scripted(*[transient() for _ in range(2 + 2 + 1)])
    r = Retrying(channel, max_attempts=2, sleep=sleeps)
    with capture_logs() as logs:
        for nid in ("a", "b"):
            with pytest.raises(NotifyError):
                await r.send(notification(nid))
        assert r.failing
        await r.send(notification("c"))
    assert not r.failing
    events = [(e["log_level"], e["event"]) for e in logs if e["log_level"] != "debug"]
    assert events == [
        ("warning", "notification channel failing"),
        ("error", "notification not delivered"),
        ("error", "notification not delivered"),
        ("info", "notification channel recovered"),
    ]


async def test_keeps_the_channel_name() -> None:
    assert Retrying(Scripted()).name == "scripted"


@pytest.mark.parametrize("kwargs", [{"min_s": 0}, {"min_s": 5, "max_s": 1}, {"max_attempts": 0}])
def test_rejects_bad_policies(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Retrying(Scripted(), **kwargs)  # type: ignore[arg-type]
