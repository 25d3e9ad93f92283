"""MQTT alert topic against the real Mosquitto."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import orjson
import pytest
from pydantic import SecretStr

from alerts.notify.base import NotifyError
from alerts.notify.mqtt import MqttNotifier, check_topic_template
from alerts.notify.render import to_json
from tests.alerts.notify.test_webhook import notification
from tests.servers import MosquittoServer, free_port, mosquitto


async def _next_message(sub: aiomqtt.Client) -> aiomqtt.Message:
    async with asyncio.timeout(5):
        async for msg in sub.messages:
            return msg
    raise AssertionError("subscription ended")


async def test_publishes_the_alert_json(
    mosquitto_server: MosquittoServer, topic_prefix: str
) -> None:
    notifier = MqttNotifier(
        "mqtt", mosquitto_server.url, f"{topic_prefix}/alerts/{{plant}}/{{stack}}"
    )
    n = notification(stack="boiler/2")
    async with aiomqtt.Client("127.0.0.1", mosquitto_server.port) as sub:
        await sub.subscribe(f"{topic_prefix}/#", qos=1)
        await notifier.send(n)
        msg = await _next_message(sub)
    assert msg.topic.value == f"{topic_prefix}/alerts/demo/boiler_2"
    assert msg.qos == 1
    assert isinstance(msg.payload, bytes)
    assert orjson.loads(msg.payload) == orjson.loads(orjson.dumps(to_json(n)))


async def test_retained_alert_reaches_a_late_subscriber(
    mosquitto_server: MosquittoServer, topic_prefix: str
) -> None:
    template = f"{topic_prefix}/alerts/{{receiver}}/{{status}}"
    await MqttNotifier("mqtt", mosquitto_server.url, template, retain=True).send(notification())
    async with aiomqtt.Client("127.0.0.1", mosquitto_server.port) as sub:
        await sub.subscribe(f"{topic_prefix}/#", qos=1)
        msg = await _next_message(sub)
    assert msg.topic.value == f"{topic_prefix}/alerts/officers/firing"
    assert msg.retain


async def test_unreachable_broker_is_retryable() -> None:
    notifier = MqttNotifier("mqtt", f"mqtt://127.0.0.1:{free_port()}", timeout_s=5)
    with pytest.raises(NotifyError) as err:
        await notifier.send(notification())
    assert err.value.retryable
    assert "mqtt mqtt to 127.0.0.1:" in str(err.value)


@pytest.fixture
def auth_broker(tmp_path: Path) -> Iterator[MosquittoServer]:
    """A Mosquitto that requires user ``alerts`` with password ``right-password``."""
    passwd = tmp_path / "passwd"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(passwd), "alerts", "right-password"], check=True
    )
    passwd.chmod(0o600)
    # The later allow_anonymous line overrides the fixture's default. Started as root,
    # Mosquitto drops to user "mosquitto", who cannot read pytest's private temp dir.
    conf = f"allow_anonymous false\npassword_file {passwd}\n"
    if os.geteuid() == 0:
        conf += "user root\n"
    with mosquitto(tmp_path / "broker", extra_conf=conf) as server:
        yield server


async def test_bad_credentials_are_not_retryable(
    auth_broker: MosquittoServer, topic_prefix: str
) -> None:
    url = f"mqtt://alerts:wrong-password@127.0.0.1:{auth_broker.port}"
    with pytest.raises(NotifyError) as err:
        await MqttNotifier("mqtt", url, f"{topic_prefix}/a").send(notification())
    assert not err.value.retryable
    assert "wrong-password" not in str(err.value)

    good = MqttNotifier(
        "mqtt",
        f"mqtt://127.0.0.1:{auth_broker.port}",
        f"{topic_prefix}/a",
        username=SecretStr("alerts"),
        password=SecretStr("right-password"),
    )
    await good.send(notification())  # the same broker accepts the right password


@pytest.mark.parametrize(
    "template", ["", "a/+/b", "a/#", "$SYS/x", "a/{plant!r}", "a/{plant:>5}", "a/{0}", "a/{"]
)
def test_rejects_bad_topic_templates(template: str) -> None:
    with pytest.raises(ValueError):
        check_topic_template(template)


def test_rejects_non_mqtt_urls() -> None:
    with pytest.raises(ValueError, match="mqtt"):
        MqttNotifier("mqtt", "http://127.0.0.1:1883")
    with pytest.raises(ValueError, match="qos"):
        MqttNotifier("mqtt", "mqtt://127.0.0.1", qos=3)
