"""Collector settings (environment prefix ``STACKWATCH_MQTT_``).

Validated at start-up; nothing here opens a connection.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from stream.secretfiles import SecretFilesSettings


class MqttProtocol(StrEnum):
    V311 = "3.1.1"
    V5 = "5"


class MqttSettings(SecretFilesSettings):
    model_config = SettingsConfigDict(
        env_prefix="STACKWATCH_MQTT_", env_file=".env", env_ignore_empty=True, extra="ignore"
    )

    url: str | None = Field(
        None,
        description="Broker URL mqtt://user:pass@host:1883 (mqtts:// for TLS). "
        "Unset: an embedded broker is started on 127.0.0.1.",
    )
    embedded_port: int = Field(
        1883,
        ge=0,
        le=65_535,
        description="Port of the embedded broker (no URL set). If it is taken, a free port is "
        "used and logged; 0 always picks a free port.",
    )
    topic_prefix: str = Field("stackwatch", pattern=r"^[^#+$][^#+]*$")
    deadletter_topic: str = Field(
        "stackwatch/deadletter",
        pattern=r"^[^#+$][^#+]*$",
        description="Rejected payloads are published to <deadletter_topic>/<reason>.",
    )
    client_id: str = Field("stackwatch-collector", min_length=1, max_length=128)
    protocol: MqttProtocol = MqttProtocol.V5
    session_expiry_s: int = Field(
        7 * 86_400,
        ge=1,
        description="MQTT 5 session expiry: how long the broker keeps "
        "unacknowledged messages for us while we are away.",
    )
    # The protocol's maximum: smaller windows starved the service at full speed (measured
    # 18 000-24 000 readings/s with 20 000 or 30 000, 24 000-27 000 with 65 535).
    inflight: int = Field(
        65_535,
        ge=1,
        le=65_535,
        description="Unacknowledged messages the broker may have outstanding to us (MQTT 5 "
        "receive maximum, and held by the collector, which stops reading while this many are "
        "unacknowledged). This is the backpressure bound of the collector.",
    )
    max_payload_bytes: int = Field(1_048_576, ge=64)
    max_readings_per_message: int = Field(10_000, ge=1)
    max_future_s: float = Field(
        300.0, ge=0, description="Timestamps further in the future than this are rejected."
    )
    earliest_year: int = Field(2000, ge=1970, description="Timestamps before this are rejected.")
    keepalive_s: int = Field(30, ge=5)
    reconnect_min_s: float = Field(0.5, gt=0)
    reconnect_max_s: float = Field(30.0, gt=0)
    tls_ca_file: str | None = Field(None, description="CA bundle for mqtts:// (default: system).")
    password: SecretStr | None = Field(None, description="Overrides the password in the URL.")

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.url is not None:
            parts = urlsplit(self.url)
            if parts.scheme not in ("mqtt", "mqtts"):
                raise ValueError("url must start with mqtt:// or mqtts://")
            if not parts.hostname:
                raise ValueError("url has no host")
            _ = parts.port  # raises ValueError on a bad port
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError("reconnect_min_s must not exceed reconnect_max_s")
        return self

    @property
    def host(self) -> str:
        return urlsplit(self.url or "mqtt://127.0.0.1").hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        parts = urlsplit(self.url or "mqtt://127.0.0.1")
        return parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    @property
    def tls(self) -> bool:
        return urlsplit(self.url or "mqtt://").scheme == "mqtts"

    @property
    def username(self) -> str | None:
        user = urlsplit(self.url or "mqtt://").username
        return unquote(user) if user else None

    def password_value(self) -> str | None:
        if self.password is not None:
            return self.password.get_secret_value()
        pw = urlsplit(self.url or "mqtt://").password
        return unquote(pw) if pw else None

    def password_override(self) -> str | None:
        """A non-empty ``STACKWATCH_MQTT_PASSWORD``, which replaces the password of any broker
        URL (also one given on a command line), or None."""
        return self.password.get_secret_value() if self.password else None

    def subscription(self) -> str:
        """The topic filter of sensor data: ``<prefix>/+/+/+``."""
        return f"{self.topic_prefix}/+/+/+"
