"""Secure by default: production mode refuses missing or default secrets, naming each one,
and secrets may come from files (``STACKWATCH_SECRETS_DIR``) instead of the environment.

Settings are read the way ``stackwatch run`` reads them (:meth:`Settings.from_env`), from a
clean environment in an empty working directory (no stray ``.env``).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

import pytest

from stackwatch.service import Service, Settings, StartupError, check_settings

MQTT_PASSWORD = "mq-" + "7f3a9c" * 5
INFLUX_TOKEN = "ix-" + "c41d0e" * 6
API_TOKEN = "api-" + "9b2e6f" * 5
PRODUCTION: dict[str, str | None] = {
    "STACKWATCH_MODE": "production",
    "STACKWATCH_MQTT_URL": "mqtt://stackwatch@broker:1883",
    "STACKWATCH_MQTT_PASSWORD": MQTT_PASSWORD,
    "STACKWATCH_INFLUX_URL": "http://influxdb:8086",
    "STACKWATCH_INFLUX_TOKEN": INFLUX_TOKEN,
    "STACKWATCH_API_TOKEN": API_TOKEN,
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """A clean STACKWATCH_* environment and a working directory without a ``.env``."""
    for name in list(os.environ):
        if name.startswith("STACKWATCH_"):
            monkeypatch.delenv(name)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return monkeypatch


def _settings(env: pytest.MonkeyPatch, values: Mapping[str, str | None]) -> Settings:
    for name, value in values.items():
        if value is None:
            env.delenv(name, raising=False)
        else:
            env.setenv(name, value)
    return Settings.from_env()


def _refusal(settings: Settings) -> str:
    with pytest.raises(StartupError) as err:
        Service(settings)  # the first thing the service does is check_settings
    message = str(err.value)
    assert message.startswith("refusing to start in production mode:")
    for secret in (MQTT_PASSWORD, INFLUX_TOKEN, API_TOKEN):
        assert secret not in message  # a refusal never echoes a (good) secret
    return message


def test_production_with_strong_secrets_starts(env: pytest.MonkeyPatch) -> None:
    settings = _settings(env, PRODUCTION)
    check_settings(settings)
    assert settings.mqtt.password_value() == MQTT_PASSWORD


def test_demo_mode_needs_no_secrets(env: pytest.MonkeyPatch) -> None:
    check_settings(_settings(env, {"STACKWATCH_MODE": "demo"}))


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"STACKWATCH_MQTT_URL": None}, "STACKWATCH_MQTT_URL is unset"),
        ({"STACKWATCH_MQTT_PASSWORD": None}, "STACKWATCH_MQTT_URL has no username and password"),
        ({"STACKWATCH_MQTT_PASSWORD": "changeme"}, "STACKWATCH_MQTT_PASSWORD"),
        (
            {"STACKWATCH_MQTT_PASSWORD": None, "STACKWATCH_MQTT_URL": "mqtt://sw:mosquitto@b"},
            "STACKWATCH_MQTT_URL) is a well-known default",
        ),
        ({"STACKWATCH_INFLUX_TOKEN": None}, "STACKWATCH_INFLUX_TOKEN is unset"),
        ({"STACKWATCH_INFLUX_TOKEN": "influxdb"}, "STACKWATCH_INFLUX_TOKEN is unset or a well"),
        ({"STACKWATCH_API_TOKEN": None}, "STACKWATCH_API_TOKEN or STACKWATCH_API_KEYS is required"),
        ({"STACKWATCH_API_TOKEN": "changethis"}, "STACKWATCH_API_TOKEN: the token"),
        ({"STACKWATCH_API_TOKEN": "short-but-random-Q9"}, "STACKWATCH_API_TOKEN: the token"),
        (
            {
                "STACKWATCH_API_TOKEN": None,
                "STACKWATCH_API_KEYS": json.dumps(
                    [
                        {
                            "name": "grafana",
                            "role": "operator",
                            "token_sha256": hashlib.sha256(b"changeme").hexdigest(),
                        }
                    ]
                ),
            },
            "STACKWATCH_API_KEYS[0] ('grafana'): token_sha256 is the digest of",
        ),
    ],
)
def test_each_missing_or_default_secret_is_refused_by_name(
    env: pytest.MonkeyPatch, change: dict[str, str | None], named: str
) -> None:
    message = _refusal(_settings(env, PRODUCTION | change))
    assert named in message
    assert message.count("\n  - ") == 1, message  # only the changed secret is reported


def test_all_problems_are_reported_at_once(env: pytest.MonkeyPatch) -> None:
    message = _refusal(_settings(env, {"STACKWATCH_INFLUX_URL": "http://influxdb:8086"}))
    for name in ("STACKWATCH_MQTT_URL", "STACKWATCH_INFLUX_TOKEN", "STACKWATCH_API_TOKEN"):
        assert name in message
    assert "STACKWATCH_MODE=demo" in message  # and how to run without them, knowingly


def _secret_files(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir()
    for name, value in files.items():
        (directory / name).write_text(value + "\n")  # as `echo ... > file` writes it
    return directory


def test_secrets_come_from_files(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    keys = [{"name": "grafana", "role": "operator", "token": API_TOKEN}]
    secrets = _secret_files(
        tmp_path / "secrets",
        {
            "STACKWATCH_MQTT_PASSWORD": MQTT_PASSWORD,
            "stackwatch_influx_token": INFLUX_TOKEN,  # Docker secret names are often lower case
            "STACKWATCH_API_KEYS": json.dumps(keys),
        },
    )
    plain = {k: v for k, v in PRODUCTION.items() if k.endswith(("_URL", "_MODE"))}
    settings = _settings(env, plain | {"STACKWATCH_SECRETS_DIR": str(secrets)})
    check_settings(settings)
    assert settings.mqtt.password_value() == MQTT_PASSWORD
    assert settings.influx.token is not None
    assert settings.influx.token.get_secret_value() == INFLUX_TOKEN
    assert [k.name for k in settings.api.api_keys()] == ["grafana"]
    assert settings.service.secrets_dir == secrets


def test_environment_wins_over_a_secret_file(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secrets = _secret_files(tmp_path / "secrets", {"STACKWATCH_INFLUX_TOKEN": "from-the-file"})
    settings = _settings(env, PRODUCTION | {"STACKWATCH_SECRETS_DIR": str(secrets)})
    assert settings.influx.token is not None
    assert settings.influx.token.get_secret_value() == INFLUX_TOKEN


def test_secrets_dir_may_be_set_in_dot_env(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secrets = _secret_files(tmp_path / "secrets", {"STACKWATCH_MQTT_PASSWORD": "changeme"})
    Path(".env").write_text(f"STACKWATCH_SECRETS_DIR={secrets}\n")
    settings = _settings(env, PRODUCTION | {"STACKWATCH_MQTT_PASSWORD": None})
    assert settings.mqtt.password_value() == "changeme"
    # A default secret is refused wherever it comes from.
    assert "STACKWATCH_MQTT_PASSWORD" in _refusal(settings)
