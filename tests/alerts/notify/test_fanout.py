"""Fan-out: every channel of a receiver at once; one failing or slow channel blocks none."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiomqtt
import orjson
import pytest

from alerts.model import Notification
from alerts.notify.config import ReceiversConfig
from alerts.notify.fanout import DeliveryResult, Fanout
from alerts.notify.retry import Retrying
from stream.model import NS_PER_S
from tests.alerts.notify.test_apprise import Smtp
from tests.alerts.notify.test_webhook import (
    SECRET,
    T0_S,
    HookReceiver,
    closed_url,
    notification,
    running_receiver,
    webhook,
)
from tests.servers import MosquittoServer


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[HookReceiver, str]]:
    async with running_receiver() as served:
        yield served


async def test_working_channel_delivers_while_the_failing_one_still_retries(
    receiver: tuple[HookReceiver, str],
) -> None:
    hook, url = receiver
    in_backoff = asyncio.Event()
    release = asyncio.Event()

    async def gated_sleep(_: float) -> None:  # the failing channel's backoff waits for us
        in_backoff.set()
        await release.wait()

    failing = webhook(closed_url())
    failing.name = "down"
    fanout = Fanout([Retrying(failing, max_attempts=2, sleep=gated_sleep), webhook(url)])
    task = asyncio.create_task(fanout.send(notification()))
    async with asyncio.timeout(5):
        await hook.delivered.wait()
        await in_backoff.wait()
    assert not task.done()  # the failing channel is still in its backoff

    release.set()
    results = await asyncio.wait_for(task, 5)
    assert results["ops"] == DeliveryResult.ok()
    down = results["down"]
    assert not down.delivered
    assert down.retryable
    assert down.error is not None
    assert "gave up after 2 attempt(s)" in down.error


async def test_a_hanging_channel_times_out_alone(receiver: tuple[HookReceiver, str]) -> None:
    hook, url = receiver
    hook.hold = asyncio.Event()
    slow = webhook(url)
    slow.name = "slow"
    async with running_receiver() as (other, other_url):
        fanout = Fanout([slow, webhook(other_url)], timeout_s=0.3)
        results = await fanout.send(notification())
    assert results["ops"].delivered
    assert len(other.payloads) == 1
    assert hook.payloads == []
    assert results["slow"] == DeliveryResult.failed("slow: no result within 0.3 s", retryable=True)


class Crashing:
    """A channel with a bug (stand-in for a third-party plugin)."""

    name = "crashing"

    async def send(self, n: Notification) -> None:
        raise RuntimeError("boom")


async def test_a_crashing_channel_is_reported_not_raised(
    receiver: tuple[HookReceiver, str],
) -> None:
    hook, url = receiver
    results = await Fanout([Crashing(), webhook(url)]).send(notification())
    assert results["crashing"] == DeliveryResult.failed(
        "crashing: RuntimeError: boom", retryable=False
    )
    assert results["ops"].delivered
    assert len(hook.payloads) == 1


def test_channel_names_must_be_unique() -> None:
    with pytest.raises(ValueError, match="unique"):
        Fanout([webhook("http://a.example/"), webhook("http://b.example/")])


async def test_a_receiver_from_config_delivers_to_email_webhook_and_mqtt(
    receiver: tuple[HookReceiver, str],
    mosquitto_server: MosquittoServer,
    topic_prefix: str,
) -> None:
    """The done-when, end to end: one receiver, three kinds of channel, all real servers."""
    hook, url = receiver
    with Smtp() as smtp:
        cfg = ReceiversConfig(
            receivers=[
                {
                    "name": "officers",
                    "apprise": [smtp.url().get_secret_value()],
                    "webhooks": [{"url": url, "secret": SECRET}],
                    "mqtt": {"topic_template": f"{topic_prefix}/alerts/{{plant}}/{{stack}}"},
                }
            ]
        )
        fanouts = cfg.build(mosquitto_server.url, clock=lambda: T0_S * NS_PER_S)
        async with aiomqtt.Client("127.0.0.1", mosquitto_server.port) as sub:
            await sub.subscribe(f"{topic_prefix}/#", qos=1)
            results = await fanouts["officers"].send(notification("n-e2e"))
            async with asyncio.timeout(5):
                msg = await anext(aiter(sub.messages))
    assert results == {
        "apprise[0]:mailto": DeliveryResult.ok(),
        "webhook[0]:127.0.0.1": DeliveryResult.ok(),
        "mqtt": DeliveryResult.ok(),
    }
    assert smtp.inbox.messages[0]["Subject"] == "[FIRING:1] limit_breach demo/boiler1"
    assert hook.payloads[0]["id"] == "n-e2e"
    assert isinstance(msg.payload, bytes)
    assert orjson.loads(msg.payload)["id"] == "n-e2e"
