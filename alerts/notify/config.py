"""Receiver configuration: which channels each receiver has (environment prefix
``STACKWATCH_ALERTS_``, e.g. ``STACKWATCH_ALERTS_RECEIVERS='[{"name": "officers", ...}]'``,
or built from a YAML/dict).

Validated at start-up without network calls: Apprise URLs must be supported by the installed
Apprise, webhook URLs http(s), webhook secrets at least 16 characters and not a well-known
placeholder, MQTT URLs ``mqtt[s]://`` with a valid topic template. Secrets are
:class:`~pydantic.SecretStr` and validation errors never echo the input.

>>> cfg = ReceiversConfig(receivers=[{
...     "name": "officers",
...     "apprise": ["mailto://mail.internal:25?from=alerts@plant.example&to=eo@plant.example"],
...     "webhooks": [{"url": "https://ops.example/hook", "secret": "k4Jf0-very-long-secret"}],
...     "mqtt": {},
... }])
>>> cfg.build(mqtt_url="mqtt://127.0.0.1:1883")["officers"].names
['apprise[0]:mailto', 'webhook[0]:ops.example', 'mqtt']
>>> try:
...     ReceiversConfig(receivers=[{"name": "x", "webhooks": [
...         {"url": "https://ops.example/hook", "secret": "changeme"}]}])
... except ValueError as e:
...     print("changeme" in str(e), "well-known placeholder" in str(e))
False True
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Self
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from alerts.notify.apprise_notifier import AppriseNotifier, redacted, validate_url
from alerts.notify.base import Notifier
from alerts.notify.fanout import Fanout
from alerts.notify.mqtt import DEFAULT_TOPIC_TEMPLATE, MqttNotifier, check_topic_template
from alerts.notify.retry import Retrying
from alerts.notify.webhook import WebhookNotifier

MIN_SECRET_LENGTH = 16
_PLACEHOLDER_SECRETS = frozenset(
    {"changeme", "change-me", "change_me", "changeit", "secret", "password", "default",
     "example", "test", "stackwatch", "replace-me", "replaceme", "your-secret-here",
     "webhook-secret", "changemechangeme", "secretsecretsecret", "0123456789abcdef",
     "1234567890123456"}
)  # fmt: skip
_STRICT = ConfigDict(extra="forbid", hide_input_in_errors=True)


class WebhookConfig(BaseModel):
    model_config = _STRICT

    url: str = Field(description="http(s) URL the signed JSON is POSTed to.")
    secret: SecretStr = Field(description="HMAC-SHA256 key shared with the receiver.")
    timeout_s: float = Field(10.0, gt=0)

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("webhook url must be http(s)://host/...")
        _ = parts.port  # raises ValueError on a bad port
        return v

    @field_validator("secret")
    @classmethod
    def _strong_secret(cls, v: SecretStr) -> SecretStr:
        s = v.get_secret_value()
        if s.strip().lower() in _PLACEHOLDER_SECRETS:
            raise ValueError("webhook secret is a well-known placeholder; set a random one")
        if len(s) < MIN_SECRET_LENGTH:
            raise ValueError(f"webhook secret must have at least {MIN_SECRET_LENGTH} characters")
        return v


class MqttAlertConfig(BaseModel):
    model_config = _STRICT

    url: str | None = Field(
        None, description="mqtt[s]://host[:port]; unset: the service's own broker."
    )
    topic_template: str = DEFAULT_TOPIC_TEMPLATE
    qos: int = Field(1, ge=0, le=2)
    retain: bool = False
    username: SecretStr | None = None
    password: SecretStr | None = None
    timeout_s: float = Field(10.0, gt=0)

    @field_validator("url")
    @classmethod
    def _mqtt_url(cls, v: str | None) -> str | None:
        if v is not None:
            parts = urlsplit(v)
            if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
                raise ValueError("mqtt url must be mqtt[s]://host[:port]")
            _ = parts.port
        return v

    @field_validator("topic_template")
    @classmethod
    def _template(cls, v: str) -> str:
        check_topic_template(v)
        return v


class ReceiverConfig(BaseModel):
    """One receiver (as routes name it) and its channels; no channel at all is allowed (a
    receiver that silences, like Alertmanager's empty receiver)."""

    model_config = _STRICT

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)
    apprise: list[SecretStr] = Field(
        default_factory=list, description="Apprise URLs (e-mail, Slack, Teams, Telegram, ...)."
    )
    webhooks: list[WebhookConfig] = Field(default_factory=list)
    mqtt: MqttAlertConfig | None = None

    @field_validator("apprise")
    @classmethod
    def _apprise_urls(cls, v: list[SecretStr]) -> list[SecretStr]:
        for url in v:
            validate_url(url)
        return v

    def channels(
        self,
        mqtt_url: str | None,
        *,
        clock: Callable[[], int] = time.time_ns,
        http_client: httpx.AsyncClient | None = None,
    ) -> list[Notifier]:
        """The bare notifiers (no retry), one per Apprise URL, webhook and MQTT topic."""
        out: list[Notifier] = []
        for i, url in enumerate(self.apprise):
            scheme = redacted(url).split(":", 1)[0]
            out.append(AppriseNotifier(f"apprise[{i}]:{scheme}", [url]))
        for i, w in enumerate(self.webhooks):
            out.append(
                WebhookNotifier(
                    f"webhook[{i}]:{urlsplit(w.url).hostname}",
                    w.url,
                    w.secret,
                    timeout_s=w.timeout_s,
                    client=http_client,
                    clock=clock,
                )
            )
        if self.mqtt is not None:
            broker = self.mqtt.url or mqtt_url
            if broker is None:
                raise ValueError(f"receiver {self.name}: mqtt needs a url (no service broker)")
            m = self.mqtt
            out.append(
                MqttNotifier(
                    "mqtt",
                    broker,
                    m.topic_template,
                    qos=m.qos,
                    retain=m.retain,
                    username=m.username,
                    password=m.password,
                    timeout_s=m.timeout_s,
                )
            )
        return out


class ReceiversConfig(BaseSettings):
    """All receivers plus the retry and timeout policy shared by their channels."""

    model_config = SettingsConfigDict(
        env_prefix="STACKWATCH_ALERTS_",
        env_file=".env",
        env_ignore_empty=True,
        extra="ignore",
        hide_input_in_errors=True,
    )

    receivers: list[ReceiverConfig] = Field(default_factory=list)
    retry_min_s: float = Field(1.0, gt=0, description="First retry delay (then doubling).")
    retry_max_s: float = Field(60.0, gt=0, description="Cap of the retry delay.")
    retry_max_attempts: int = Field(6, ge=1, description="Attempts per notification/channel.")
    channel_timeout_s: float = Field(
        300.0, gt=0, description="Bound on one channel's delivery including its retries."
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        names = [r.name for r in self.receivers]
        dupes = sorted({x for x in names if names.count(x) > 1})
        if dupes:
            raise ValueError(f"receiver names must be unique: {dupes}")
        if self.retry_min_s > self.retry_max_s:
            raise ValueError("retry_min_s must not exceed retry_max_s")
        return self

    def build(
        self,
        mqtt_url: str | None,
        *,
        clock: Callable[[], int] = time.time_ns,
        http_client: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> dict[str, Fanout]:
        """Receiver name -> its channels, each wrapped in :class:`Retrying`, in a
        :class:`Fanout`. ``mqtt_url`` is the service's broker, used by MQTT channels without
        their own URL. No network calls; raises ValueError for an MQTT channel without any
        URL."""
        return {
            r.name: Fanout(
                [
                    Retrying(
                        ch,
                        min_s=self.retry_min_s,
                        max_s=self.retry_max_s,
                        max_attempts=self.retry_max_attempts,
                        sleep=sleep,
                    )
                    for ch in r.channels(mqtt_url, clock=clock, http_client=http_client)
                ],
                timeout_s=self.channel_timeout_s,
            )
            for r in self.receivers
        }
