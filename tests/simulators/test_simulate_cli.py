"""``stackwatch simulate`` to a recording and to a real Mosquitto: readings, faults, labels,
summary and bad input."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import aiomqtt
import orjson
import pytest
import yaml
from typer.testing import CliRunner

from simulators.faults import FaultEvent, FaultKind
from simulators.labels import read_labels
from simulators.recording import read_replay_csv
from stackwatch.simulate_cli import simulate_app
from stream.model import NS_PER_S, SensorKey, Status
from stream.plant import PlantConfig, load_plant_config
from tests.servers import MosquittoServer

START = "2026-01-01T10:00:00Z"
T0 = 1_767_261_600 * NS_PER_S
PLANT = {
    "plants": {
        "p": {
            "stacks": {
                "b1": {
                    "reference_o2": 6,
                    "sensors": {
                        "nox": {"quantity": "nox", "unit": "mg/Nm3", "valid_range": [0, 2000]},
                        "co": {"quantity": "co", "unit": "mg/Nm3", "valid_range": [0, 5000]},
                        "o2": {"quantity": "o2", "unit": "%", "valid_range": [0, 25]},
                        "mode": {
                            "quantity": "mode",
                            "unit": "-",
                            "valid_range": [0, 3],
                            "interval_s": 10,
                        },
                    },
                }
            }
        }
    }
}


@pytest.fixture
def plant(tmp_path: Path) -> tuple[Path, PlantConfig]:
    path = tmp_path / "plant.yaml"
    path.write_text(yaml.safe_dump(PLANT))
    return path, load_plant_config(path)


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(simulate_app, list(args))
    return result.exit_code, result.output


def test_random_faults_to_a_csv_recording_with_labels(
    tmp_path: Path, plant: tuple[Path, PlantConfig]
) -> None:
    path, config = plant
    out, labels = tmp_path / "rec.csv", tmp_path / "labels.csv"
    code, output = invoke(
        "-c",
        str(path),
        "--start",
        START,
        "--duration",
        "3h",
        "--seed",
        "2",
        "--faults",
        "12",
        "--output",
        str(out),
        "--labels",
        str(labels),
    )
    assert code == 0, output
    recording = read_replay_csv(out, config)
    assert not recording.rejected  # every value in range, every status known
    events = read_labels(labels)
    # 12 per sensor-day, 3 fault-capable sensors, 3 h (2 after the warm-up): about 4.
    assert 1 <= len(events) <= 8
    assert all(
        T0 + 3600 * NS_PER_S <= e.start_ns < e.end_ns <= T0 + 3 * 3600 * NS_PER_S for e in events
    )
    nox = recording.series[SensorKey("p", "b1", "nox")]
    assert nox.ts_ns[0] == T0 and len(nox.ts_ns) <= 3 * 3600
    assert f"wrote {recording.accepted:,} readings to {out}" in output
    assert f"faults: {len({(e.kind, e.start_ns) for e in events})} (" in output
    assert f"labels: {len(events)} row(s) written" in output
    # The same seed gives the same file.
    again = tmp_path / "again.csv"
    code, _ = invoke(
        "-c",
        str(path),
        "--start",
        START,
        "--duration",
        "3h",
        "--seed",
        "2",
        "--faults",
        "12",
        "--output",
        str(again),
    )
    assert code == 0 and again.read_bytes() == out.read_bytes()


def test_a_faults_file_is_applied_and_labelled(
    tmp_path: Path, plant: tuple[Path, PlantConfig]
) -> None:
    path, _config = plant
    faults = tmp_path / "faults.yaml"
    faults.write_text(
        "- {plant: p, stack: b1, sensor: o2, kind: dropout,\n"
        "   start: '2026-01-01T10:10:00Z', duration: 5m}\n"
        "- {plant: p, stack: b1, sensor: nox, kind: maintenance,\n"
        "   start: '2026-01-01T10:20:00Z', duration: 60}\n"
        "- {plant: p, stack: b1, kind: startup, start: '2026-01-01T10:25:00Z', duration: 10m}\n"
        "- {plant: p, stack: b1, sensor: co, kind: spike,\n"
        "   start: '2026-01-01T12:00:00Z', duration: 1}\n"
    )
    out, labels = tmp_path / "rec.jsonl", tmp_path / "labels.csv"
    code, output = invoke(
        "-c",
        str(path),
        "--start",
        START,
        "--duration",
        "40m",
        "--faults-file",
        str(faults),
        "-o",
        str(out),
        "--labels",
        str(labels),
    )
    assert code == 0, output
    rows = [orjson.loads(line) for line in out.read_text().splitlines()]
    o2_times = {r["time"] for r in rows if r["sensor"] == "o2"}
    assert len(o2_times) == 40 * 60 - 5 * 60
    assert "2026-01-01T10:12:00Z" not in o2_times
    statuses = {r["time"]: r["status"] for r in rows if r["sensor"] == "nox"}
    assert statuses["2026-01-01T10:20:30Z"] == Status.MAINTENANCE.value
    assert statuses["2026-01-01T10:21:00Z"] == Status.VALID.value
    modes = {r["time"]: r["value"] for r in rows if r["sensor"] == "mode"}
    assert modes["2026-01-01T10:24:50Z"] == 0.0 and modes["2026-01-01T10:30:00Z"] == 1.0
    assert [(e.sensor, e.kind) for e in read_labels(labels)] == [
        ("o2", FaultKind.DROPOUT),
        ("nox", FaultKind.MAINTENANCE),
        ("", FaultKind.STARTUP),
    ]
    assert "faults: 3 (1 dropout, 1 maintenance, 1 startup)" in output
    assert "1 scheduled fault(s) start after the simulated period" in output
    assert read_labels(labels)[0] == FaultEvent(
        "p", "b1", "o2", FaultKind.DROPOUT, T0 + 600 * NS_PER_S, T0 + 900 * NS_PER_S
    )


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--start", START, "-o", "x.csv"], "--output needs --duration"),
        (
            ["--start", START, "--duration", "1h", "-o", "x.csv", "--mqtt", "mqtt://h"],
            "either --mqtt or --output",
        ),
        (
            ["--start", "2026-01-01T10:00:00", "--duration", "1h", "-o", "x.csv"],
            "--start: .*no UTC offset",
        ),
        (
            ["--start", START, "--duration", "a while", "-o", "x.csv"],
            "--duration: 'a while' is not a duration",
        ),
        (["--start", START, "--duration", "1h", "-o", "x.parquet"], "unknown recording format"),
        (["--duration", "1h", "-o", "x.csv", "--faults", "-1"], "--faults must be a non-negative"),
        (
            ["--duration", "1h", "-o", "x.csv", "--faults", "1", "--faults-file", "f.yaml"],
            "either --faults or --faults-file",
        ),
        (
            ["--duration", "1h", "-o", "x.csv", "--faults-file", "missing.yaml"],
            "missing.yaml: cannot read",
        ),
        (
            ["--duration", "1h", "--mqtt", "http://broker"],
            "--mqtt: broker URL must start with mqtt://",
        ),
        (["--duration", "1h", "--mqtt", "mqtt://h", "--rate", "-2"], "--rate must be 0"),
    ],
)
def test_bad_arguments_exit_2_with_a_reason(
    tmp_path: Path,
    plant: tuple[Path, PlantConfig],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    reason: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    code, output = invoke("-c", str(plant[0]), *args)
    assert code == 2
    assert re.search(reason, output), output


def test_bad_faults_file_names_the_event(tmp_path: Path, plant: tuple[Path, PlantConfig]) -> None:
    faults = tmp_path / "faults.yaml"
    faults.write_text(
        "- {plant: p, stack: b1, sensor: so2, kind: spike,\n"
        "   start: '2026-01-01T10:00:00Z', duration: 1}\n"
    )
    code, output = invoke(
        "-c",
        str(plant[0]),
        "--duration",
        "1h",
        "-o",
        str(tmp_path / "x.csv"),
        "--faults-file",
        str(faults),
    )
    assert code == 2
    assert f"{faults}: event 1: spike on p/b1/so2" in output and "no sensor 'so2'" in output


async def test_publishes_the_faulty_stream_over_mqtt(
    tmp_path: Path,
    plant: tuple[Path, PlantConfig],
    mosquitto_server: MosquittoServer,
    topic_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Broker and topic prefix from the collector's settings; --fast; the dropout is missing."""
    monkeypatch.setenv("STACKWATCH_MQTT_URL", mosquitto_server.url)
    monkeypatch.setenv("STACKWATCH_MQTT_TOPIC_PREFIX", topic_prefix)
    faults = tmp_path / "faults.yaml"
    faults.write_text(
        "- {plant: p, stack: b1, sensor: o2, kind: dropout,\n"
        "   start: '2026-01-01T10:00:05Z', duration: 5s}\n"
    )
    expected = 3 * 20 + 2 - 5  # nox, co, o2 at 1 Hz and mode every 10 s, minus the dropout
    args = ["-c", str(plant[0]), "--start", START, "--duration", "20s", "--fast"]
    async with aiomqtt.Client("127.0.0.1", mosquitto_server.port) as sub:
        await sub.subscribe(f"{topic_prefix}/#", qos=1)
        code, output = await asyncio.to_thread(invoke, *args, "--faults-file", str(faults))
        assert code == 0, output
        messages: list[aiomqtt.Message] = []
        async with asyncio.timeout(10):
            async for message in sub.messages:
                messages.append(message)
                if len(messages) == expected:
                    break
    assert f"published {expected} readings to 127.0.0.1" in output
    o2 = [orjson.loads(m.payload)["ts"] for m in messages if m.topic.value.endswith("/o2")]
    t0_ms = T0 // 1_000_000
    assert sorted(o2) == [t0_ms + 1000 * s for s in (*range(5), *range(10, 20))]
