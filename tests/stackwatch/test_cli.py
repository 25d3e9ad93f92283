"""The ``stackwatch`` CLI: check-config, version, and start-up refusals in production mode."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.stream.test_plant_config import VALID


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stackwatch.cli", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_check_config_ok(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(VALID)
    result = cli("check-config", str(tmp_path / "p.yaml"))
    assert result.returncode == 0, result.stderr
    assert "plant demo: 1 stack(s), 2 sensor(s)" in result.stdout
    assert "limits nox" in result.stdout


def test_check_config_reports_problem(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(VALID.replace("[0, 25]", "[25, 0]"))
    result = cli("check-config", str(tmp_path / "p.yaml"))
    assert result.returncode == 2
    assert "plants.demo.stacks.boiler1.sensors.o2.valid_range" in result.stderr
    assert str(tmp_path / "p.yaml") in result.stderr


def test_version() -> None:
    result = cli("version")
    assert result.returncode == 0
    assert result.stdout.strip() == "0.1.0"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        # no broker URL: the embedded broker is anonymous, demo only
        ({}, "STACKWATCH_MQTT_URL is unset"),
        # a broker without credentials
        ({"STACKWATCH_MQTT_URL": "mqtt://broker:1883"}, "no username and password"),
        # a default password
        ({"STACKWATCH_MQTT_URL": "mqtt://sw:changeme@broker:1883"}, "well-known default"),
        # no API token
        ({"STACKWATCH_MQTT_URL": "mqtt://sw:Xq93-kd8s-Pq0z@broker"}, "STACKWATCH_API_TOKEN"),
        # InfluxDB without a token
        ({"STACKWATCH_INFLUX_URL": "http://influxdb:8086"}, "STACKWATCH_INFLUX_TOKEN"),
    ],
    ids=["no-broker", "anonymous-broker", "default-password", "no-api-token", "no-influx-token"],
)
def test_production_mode_refuses_open_access_and_default_secrets(
    tmp_path: Path, env: dict[str, str], expected: str
) -> None:
    (tmp_path / "p.yaml").write_text(VALID)
    base = {k: v for k, v in __import__("os").environ.items() if not k.startswith("STACKWATCH_")}
    result = cli(
        "run",
        env={
            **base,
            "STACKWATCH_CONFIG": str(tmp_path / "p.yaml"),
            "STACKWATCH_MODE": "production",
            **env,
        },
    )
    assert result.returncode == 2
    assert "refusing to start in production mode" in result.stderr
    assert expected in result.stderr
