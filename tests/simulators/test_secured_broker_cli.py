"""``stackwatch simulate --mqtt`` and ``stackwatch replay --mqtt`` to secured brokers: a Mosquitto
with TLS whose certificate a private CA signed (trusted through ``--ca-file`` or, like the
collector, through ``STACKWATCH_MQTT_TLS_CA_FILE``; a CA file that cannot be loaded is a clear
error), and a Mosquitto that requires a password, given as ``STACKWATCH_MQTT_PASSWORD`` (as for
the collector) so it never has to be written into a URL on a command line."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

import aiomqtt
import orjson
import pytest
import structlog
from typer.testing import CliRunner

from simulators.recording import RecordingWriter
from stackwatch.cli import app
from stream.model import NS_PER_S, Reading
from tests.servers import MosquittoServer, mosquitto
from tests.tls import Pki, TlsBroker

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


@pytest.fixture
def plant(tmp_path: Path) -> Path:
    path = tmp_path / "plant.yaml"
    path.write_text(PLANT)
    return path


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """``replay`` configures structlog for the whole process; undo it for later tests."""
    yield
    structlog.reset_defaults()


async def run_and_receive(
    tls_broker: TlsBroker, prefix: str, expected: int, args: list[str], env: Mapping[str, str]
) -> tuple[str, list[aiomqtt.Message]]:
    """Run the command while a subscriber on the broker's plain listener collects
    ``expected`` messages."""
    async with aiomqtt.Client("127.0.0.1", tls_broker.server.port) as sub:
        await sub.subscribe(f"{prefix}/#", qos=1)
        result = await asyncio.to_thread(CliRunner().invoke, app, args, env=dict(env))
        assert result.exit_code == 0, result.output
        messages: list[aiomqtt.Message] = []
        async with asyncio.timeout(10):
            async for message in sub.messages:
                messages.append(message)
                if len(messages) == expected:
                    break
    return result.output, messages


async def test_simulate_publishes_to_a_tls_broker_with_the_ca_file_option(
    tls_broker: TlsBroker, pki: Pki, plant: Path, topic_prefix: str
) -> None:
    args = ["simulate", "-c", str(plant), "--start", "2026-01-01T10:00:00Z", "--duration", "5s",
            "--fast", "--mqtt", tls_broker.url, "--ca-file", str(pki.ca)]  # fmt: skip
    output, messages = await run_and_receive(
        tls_broker, topic_prefix, 10, args, {"STACKWATCH_MQTT_TOPIC_PREFIX": topic_prefix}
    )
    assert "published 10 readings to 127.0.0.1" in output
    nox = [orjson.loads(m.payload)["ts"] for m in messages if m.topic.value.endswith("/nox")]
    assert nox == [T0 // 1_000_000 + 1000 * s for s in range(5)]


async def test_replay_publishes_to_a_tls_broker_with_the_collector_ca_setting(
    tls_broker: TlsBroker, pki: Pki, plant: Path, topic_prefix: str, tmp_path: Path
) -> None:
    readings = [
        Reading("p", "b1", sensor, T0 + i * NS_PER_S, float(i), sensor, "u")
        for i in range(5)
        for sensor in ("nox", "o2")
    ]
    recording = tmp_path / "rec.csv"
    with RecordingWriter(recording) as writer:
        writer.write_many(readings)
    args = ["replay", str(recording), "-c", str(plant), "--mqtt", tls_broker.url,
            "--topic-prefix", topic_prefix, "--fast", "-q"]  # fmt: skip
    env = {"STACKWATCH_MODE": "demo", "STACKWATCH_MQTT_TLS_CA_FILE": str(pki.ca)}
    output, messages = await run_and_receive(tls_broker, topic_prefix, len(readings), args, env)
    assert f"published {len(readings)} readings" in output
    assert [
        (m.topic.value.rsplit("/", 1)[1], orjson.loads(m.payload)["value"]) for m in messages
    ] == [(r.sensor, r.value) for r in readings]


@pytest.mark.parametrize("command", ["simulate", "replay"])
def test_a_ca_file_that_cannot_be_loaded_exits_2(command: str, plant: Path, tmp_path: Path) -> None:
    recording = tmp_path / "rec.csv"
    with RecordingWriter(recording) as writer:
        writer.write_many([Reading("p", "b1", "nox", T0, 1.0, "nox", "mg/Nm3")])
    not_pem = tmp_path / "not-a-ca.pem"
    not_pem.write_text("not a certificate\n")
    target = (
        ["simulate", "--duration", "1s"] if command == "simulate" else ["replay", str(recording)]
    )
    for ca_file, reason in (
        (tmp_path / "missing.pem", "no such file"),
        (not_pem, "no certificate"),
    ):
        result = CliRunner().invoke(
            app,
            # Checked before connecting: nothing listens there.
            [*target, "-c", str(plant), "--mqtt", "mqtts://127.0.0.1:1", "--ca-file", str(ca_file)],
            env={"STACKWATCH_MODE": "demo"},
        )
        assert result.exit_code == 2, result.output
        assert f"CA file {ca_file}: " in result.output and reason in result.output.lower()


@pytest.fixture(scope="module")
def auth_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoServer]:
    tmp = tmp_path_factory.mktemp("mosquitto-auth")
    passwd = tmp / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwd), "sim", "s3cret"], check=True)
    passwd.chmod(0o600)
    conf = f"allow_anonymous false\npassword_file {passwd}\n"
    if os.geteuid() == 0:  # Mosquitto would drop to a user who cannot read pytest's temp dir
        conf += "user root\n"
    with mosquitto(tmp / "broker", extra_conf=conf) as server:
        yield server


@pytest.mark.parametrize("command", ["simulate", "replay"])
async def test_the_password_setting_reaches_the_broker(
    command: str, auth_broker: MosquittoServer, plant: Path, topic_prefix: str, tmp_path: Path
) -> None:
    url = f"mqtt://sim@127.0.0.1:{auth_broker.port}"
    if command == "simulate":
        args = ["simulate", "-c", str(plant), "--start", "2026-01-01T10:00:00Z",
                "--duration", "5s", "--fast", "--mqtt", url]  # fmt: skip
    else:
        recording = tmp_path / "rec.csv"
        with RecordingWriter(recording) as writer:
            writer.write_many(
                Reading("p", "b1", sensor, T0 + i * NS_PER_S, float(i), sensor, "u")
                for i in range(5)
                for sensor in ("nox", "o2")
            )
        args = ["replay", str(recording), "-c", str(plant), "--mqtt", url,
                "--topic-prefix", topic_prefix, "--fast", "-q"]  # fmt: skip
    env = {
        "STACKWATCH_MQTT_TOPIC_PREFIX": topic_prefix,
        "STACKWATCH_MODE": "demo",
        "STACKWATCH_MQTT_PASSWORD": "s3cret",
    }
    async with aiomqtt.Client(
        "127.0.0.1", auth_broker.port, username="sim", password="s3cret"
    ) as sub:
        await sub.subscribe(f"{topic_prefix}/#", qos=1)
        result = await asyncio.to_thread(CliRunner().invoke, app, args, env=env)
        assert result.exit_code == 0, result.output
        received = 0
        async with asyncio.timeout(10):
            async for _ in sub.messages:
                received += 1
                if received == 10:
                    break
    assert "published 10 readings" in result.output
