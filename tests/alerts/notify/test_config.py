"""Receiver configuration: validated at start-up, no network, no secrets in errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from alerts.notify.apprise_notifier import AppriseNotifier
from alerts.notify.config import ReceiversConfig
from alerts.notify.mqtt import MqttNotifier
from alerts.notify.retry import Retrying
from alerts.notify.webhook import WebhookNotifier

GOOD_SECRET = "Zq8-very-random-secret-value"


def receiver(**channels: Any) -> dict[str, Any]:
    return {"name": "officers", **channels}


def test_builds_retrying_channels_per_receiver() -> None:
    cfg = ReceiversConfig(
        receivers=[
            receiver(
                apprise=[
                    "mailtos://alerts:app-pw@smtp.example.com?to=eo@plant.example",
                    "tgram://123456789:abcdefg_hijklmnop/-100123",
                ],
                webhooks=[{"url": "https://ops.example/hook", "secret": GOOD_SECRET}],
                mqtt={"url": "mqtts://alerts.example:8883", "qos": 2},
            ),
            {"name": "silence"},
        ],
        retry_max_attempts=3,
    )
    fanouts = cfg.build(mqtt_url=None)
    assert set(fanouts) == {"officers", "silence"}
    assert fanouts["silence"].names == []
    officers = fanouts["officers"]
    assert officers.names == [
        "apprise[0]:mailtos", "apprise[1]:tgram", "webhook[0]:ops.example", "mqtt"
    ]  # fmt: skip
    kinds = []
    for ch in officers.notifiers:
        assert isinstance(ch, Retrying)
        kinds.append(type(ch.notifier))
    assert kinds == [AppriseNotifier, AppriseNotifier, WebhookNotifier, MqttNotifier]


def test_mqtt_channel_uses_the_service_broker_unless_it_has_its_own_url() -> None:
    cfg = ReceiversConfig(receivers=[receiver(mqtt={})])
    assert cfg.build("mqtt://127.0.0.1:1883")["officers"].names == ["mqtt"]
    with pytest.raises(ValueError, match="mqtt needs a url"):
        cfg.build(None)


def errors(**channels: Any) -> str:
    with pytest.raises(ValidationError) as err:
        ReceiversConfig(receivers=[receiver(**channels)])
    return str(err.value)


@pytest.mark.parametrize(
    ("secret", "why"),
    [
        ("changeme", "well-known placeholder"),
        ("CHANGEME", "well-known placeholder"),
        ("secretsecretsecret", "well-known placeholder"),
        ("short-but-real", "at least 16 characters"),
        ("", "at least 16 characters"),
    ],
)
def test_weak_webhook_secrets_are_rejected_without_echoing_them(secret: str, why: str) -> None:
    text = errors(webhooks=[{"url": "https://ops.example/hook", "secret": secret}])
    assert why in text
    if secret:
        assert secret not in text


def test_webhook_urls_must_be_http() -> None:
    text = errors(webhooks=[{"url": "ftp://u:pw-in-url@ops.example/x", "secret": GOOD_SECRET}])
    assert "http(s)" in text
    assert "pw-in-url" not in text


def test_unsupported_apprise_urls_are_rejected_showing_only_scheme_and_host() -> None:
    text = errors(apprise=["mailtoo://alerts:pw-in-url@smtp.example.com"])
    assert "mailtoo://smtp.example.com is not a supported" in text
    assert "pw-in-url" not in text


@pytest.mark.parametrize(
    ("mqtt", "why"),
    [
        ({"url": "http://broker:1883"}, "mqtt[s]://"),
        ({"topic_template": "alerts/#"}, "without + #"),
        ({"qos": 3}, "less than or equal to 2"),
    ],
)
def test_bad_mqtt_settings_are_rejected(mqtt: dict[str, Any], why: str) -> None:
    assert why in errors(mqtt=mqtt)


def test_unknown_fields_are_rejected() -> None:
    assert "Extra inputs are not permitted" in errors(slack="https://hooks.slack.com/x")


def test_receiver_names_are_unique_and_plain() -> None:
    with pytest.raises(ValidationError, match="unique"):
        ReceiversConfig(receivers=[{"name": "a"}, {"name": "a"}])
    with pytest.raises(ValidationError):
        ReceiversConfig(receivers=[{"name": "a b/c"}])


def test_retry_bounds_are_consistent() -> None:
    with pytest.raises(ValidationError, match="retry_min_s"):
        ReceiversConfig(retry_min_s=10, retry_max_s=5)


def test_reads_receivers_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    receivers = [receiver(webhooks=[{"url": "https://ops.example/hook", "secret": GOOD_SECRET}])]
    monkeypatch.setenv("STACKWATCH_ALERTS_RECEIVERS", json.dumps(receivers))
    monkeypatch.setenv("STACKWATCH_ALERTS_RETRY_MAX_ATTEMPTS", "4")
    cfg = ReceiversConfig()
    assert cfg.retry_max_attempts == 4
    assert cfg.receivers[0].webhooks[0].secret.get_secret_value() == GOOD_SECRET
    assert GOOD_SECRET not in repr(cfg)
