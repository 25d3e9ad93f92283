"""Start-up security checks: production mode refuses open access and default secrets."""

from __future__ import annotations

from collector.settings import MqttSettings
from stream.storage.settings import InfluxSettings

DEFAULT_SECRETS = frozenset(
    {
        "",
        "changeme",
        "changethis",
        "change-me",
        "password",
        "secret",
        "admin",
        "token",
        "stackwatch",
        "influxdb",
        "mosquitto",
        "test",
        "default",
    }
)


def is_default_secret(value: str) -> bool:
    """True for an empty or well-known placeholder secret.

    >>> is_default_secret("ChangeMe"), is_default_secret("q8Zr3t-long-random")
    (True, False)
    """
    return value.strip().lower() in DEFAULT_SECRETS


def production_problems(mqtt: MqttSettings, influx: InfluxSettings) -> list[str]:
    """What forbids starting in production mode (the API token is checked by the API)."""
    problems: list[str] = []
    if mqtt.url is None:
        problems.append(
            "STACKWATCH_MQTT_URL is unset: the embedded broker allows anonymous access and is "
            "for demo mode only"
        )
    else:
        password = mqtt.password_value()
        if not mqtt.username or password is None:
            problems.append("STACKWATCH_MQTT_URL has no username and password")
        elif is_default_secret(password):
            problems.append(
                "the MQTT password (STACKWATCH_MQTT_PASSWORD or the one in STACKWATCH_MQTT_URL) "
                "is a well-known default"
            )
    if influx.url is not None:
        token = influx.token.get_secret_value() if influx.token else ""
        if is_default_secret(token):
            problems.append("STACKWATCH_INFLUX_TOKEN is unset or a well-known default")
    return problems
