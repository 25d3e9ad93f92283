"""``stackwatch simulate --mqtt`` and ``stackwatch replay --mqtt`` to a Mosquitto that requires a
password: the user is in the URL, the password comes from ``STACKWATCH_MQTT_PASSWORD`` (as for
the collector), so it never has to be written into a URL on a command line."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest
import structlog
from typer.testing import CliRunner

from simulators.recording import RecordingWriter
from stackwatch.cli import app
from stream.model import NS_PER_S, Reading
from tests.servers import MosquittoServer, mosquitto

PLANT = """
plants:
  p:
    stacks:
      b1:
        reference_o2: 6
        sensors:
          nox: {quantity: nox, unit: mg/Nm3, valid_range: [0, 2000]}
          o2: {quantity: o2, unit: "%", valid_range: [0, 25]}
"""
T0 = 1_767_261_600 * NS_PER_S  # 2026-01-01T10:00:00Z


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoServer]:
    tmp = tmp_path_factory.mktemp("mosquitto-auth")
    passwd = tmp / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwd), "sim", "s3cret"], check=True)
    passwd.chmod(0o600)
    conf = f"allow_anonymous false\npassword_file {passwd}\n"
    if os.geteuid() == 0:  # Mosquitto would drop to a user who cannot read pytest's temp dir
        conf += "user root\n"
    with mosquitto(tmp / "broker", extra_conf=conf) as server:
        yield server


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def args_for(command: str, broker: MosquittoServer, prefix: str, tmp_path: Path) -> list[str]:
    plant = tmp_path / "plant.yaml"
    plant.write_text(PLANT)
    url = f"mqtt://sim@127.0.0.1:{broker.port}"
    if command == "simulate":
        return ["simulate", "-c", str(plant), "--start", "2026-01-01T10:00:00Z",
                "--duration", "5s", "--fast", "--mqtt", url]  # fmt: skip
    recording = tmp_path / "rec.csv"
    with RecordingWriter(recording) as writer:
        writer.write_many(
            Reading("p", "b1", sensor, T0 + i * NS_PER_S, float(i), sensor, "u")
            for i in range(5)
            for sensor in ("nox", "o2")
        )
    return ["replay", str(recording), "-c", str(plant), "--mqtt", url,
            "--topic-prefix", prefix, "--fast", "-q"]  # fmt: skip


@pytest.mark.parametrize("command", ["simulate", "replay"])
async def test_the_password_setting_reaches_the_broker(
    command: str, broker: MosquittoServer, topic_prefix: str, tmp_path: Path
) -> None:
    args = args_for(command, broker, topic_prefix, tmp_path)
    env = {"STACKWATCH_MQTT_TOPIC_PREFIX": topic_prefix, "STACKWATCH_MODE": "demo"}
    runner = CliRunner()
    async with aiomqtt.Client("127.0.0.1", broker.port, username="sim", password="s3cret") as sub:
        await sub.subscribe(f"{topic_prefix}/#", qos=1)
        result = await asyncio.to_thread(
            runner.invoke, app, args, env={**env, "STACKWATCH_MQTT_PASSWORD": "s3cret"}
        )
        assert result.exit_code == 0, result.output
        received = 0
        async with asyncio.timeout(10):
            async for _ in sub.messages:
                received += 1
                if received == 10:
                    break
    assert "published 10 readings" in result.output
