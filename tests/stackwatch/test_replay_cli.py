"""``stackwatch replay FILE --evaluate LABELS``: a short simulated recording with injected
faults through the whole pipeline into the embedded store, with metrics and alerts printed."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from typer.testing import CliRunner

from simulators.faults import FaultEvent, FaultInjector, FaultKind
from simulators.labels import write_labels
from simulators.plant import PlantSimulator
from simulators.recording import RecordingWriter
from stackwatch.cli import app
from stream.model import NS_PER_S, Reading
from stream.plant import PlantConfig, load_plant_config
from stream.storage.sqlite import SqliteStore
from stream.timeparse import parse_iso_ns
from tests.servers import MosquittoServer

PLANT = """
plants:
  p:
    timezone: UTC
    stacks:
      b1:
        reference_o2: 6
        detection: {warmup_s: 300}
        sensors:
          nox: {quantity: nox, unit: mg/Nm3, valid_range: [0, 2000]}
          co: {quantity: co, unit: mg/Nm3, valid_range: [0, 5000]}
          o2: {quantity: o2, unit: "%", valid_range: [0, 25]}
          load: {quantity: load, unit: "%", valid_range: [0, 120]}
        limits:
          nox: {daily: 200, half_hour: 400}
"""
START = 1_767_225_600 * NS_PER_S  # 2026-01-01T00:00Z
MINUTE = 60 * NS_PER_S


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The command configures structlog for the whole process; undo it for later tests."""
    yield
    structlog.reset_defaults()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, list[Reading]]:
    """40 minutes of a 4-analyser stack at 1 Hz with a spike and an 8-minute dropout."""
    base = tmp_path_factory.mktemp("replay")
    plant_file = base / "plant.yaml"
    plant_file.write_text(PLANT)
    config: PlantConfig = load_plant_config(plant_file)
    schedule = [
        FaultEvent("p", "b1", "nox", FaultKind.SPIKE, START + 20 * MINUTE,
                   START + 20 * MINUTE + NS_PER_S, magnitude=40.0),
        FaultEvent("p", "b1", "co", FaultKind.DROPOUT, START + 24 * MINUTE, START + 32 * MINUTE),
    ]  # fmt: skip
    injector = FaultInjector(PlantSimulator(config, seed=4, start_ns=START), schedule)
    readings = list(injector.stream(until_ns=START + 40 * MINUTE))
    recording = base / "incident.csv"
    with RecordingWriter(recording) as writer:
        writer.write_many(readings)
    labels = base / "incident.labels.csv"
    write_labels(labels, injector.labels)
    return plant_file, recording, labels, readings


def test_replay_runs_the_pipeline_and_scores_the_detection(
    recorded: tuple[Path, Path, Path, list[Reading]], tmp_path: Path
) -> None:
    plant_file, recording, labels, readings = recorded
    data_dir = tmp_path / "replay"
    result = CliRunner().invoke(
        app,
        [
            "replay",
            str(recording),
            "--config",
            str(plant_file),
            "--evaluate",
            str(labels),
            "--data-dir",
            str(data_dir),
            "--format",
            "json",
            "--quiet",
        ],
        env={"STACKWATCH_MODE": "demo"},
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["stored"] == len(readings)
    assert doc["first"] == "2026-01-01T00:00:00+00:00"
    assert doc["refused"] == {}

    kinds = {k["kind"]: k for k in doc["evaluation"]["kinds"]}
    assert set(kinds) == {"spike", "dropout"}
    assert kinds["spike"]["detected"] == 1 and kinds["spike"]["delay_median_s"] == 0.0
    assert kinds["dropout"]["detected"] == 1
    assert doc["evaluation"]["overall"]["recall"] == 1.0

    # The alerts ran on the data's time: the dropout raised "no data" for co within it,
    # and it resolved once co came back. Nothing was sent anywhere, only counted.
    no_data = [a for a in doc["alerts"] if a["rule"] == "no_data"]
    assert [a["labels"]["sensor"] for a in no_data] == ["co"]
    fired = parse_iso_ns(no_data[0]["fired"])
    assert START + 24 * MINUTE < fired < START + 32 * MINUTE
    assert parse_iso_ns(no_data[0]["resolved"]) >= START + 32 * MINUTE
    assert sum(doc["notifications"].values()) >= 1

    # Every reading is in the replay's embedded store, exactly as recorded.
    async def stored() -> list[tuple[int, float]]:
        store = SqliteStore(data_dir / "stackwatch.db", lookback_s=10 * 365 * 86_400)
        await store.start()
        try:
            rows = await store.scan(
                "readings",
                START,
                START + 41 * MINUTE,
                {"plant": "p", "stack": "b1", "sensor": "nox"},
            )
        finally:
            await store.close()
        return [(row.ts_ns, float(row.fields["value"])) for row in rows]

    expected = [(r.ts_ns, r.value) for r in readings if r.sensor == "nox"]
    assert asyncio.run(stored()) == expected


def test_table_output_lists_alerts_and_metrics(
    recorded: tuple[Path, Path, Path, list[Reading]], tmp_path: Path
) -> None:
    plant_file, recording, labels, _ = recorded
    result = CliRunner().invoke(
        app,
        [
            "replay",
            str(recording),
            "-c",
            str(plant_file),
            "--evaluate",
            str(labels),
            "--data-dir",
            str(tmp_path / "r"),
            "-q",
        ],
        env={"STACKWATCH_MODE": "demo"},
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "alerts that would have fired:" in out and "no_data" in out
    assert "kind" in out and "spike" in out and "dropout" in out and "false alarms:" in out


def test_bad_inputs_get_a_clear_error(
    recorded: tuple[Path, Path, Path, list[Reading]], tmp_path: Path
) -> None:
    plant_file, recording, labels, _ = recorded
    runner = CliRunner()
    env = {"STACKWATCH_MODE": "demo"}
    missing = runner.invoke(app, ["replay", str(tmp_path / "nope.csv"), "-c", str(plant_file)],
                            env=env)  # fmt: skip
    assert missing.exit_code == 2 and "nope.csv" in missing.output
    both = runner.invoke(
        app, ["replay", str(recording), "-c", str(plant_file), "--mqtt", "mqtt://x",
              "--evaluate", str(labels)], env=env)  # fmt: skip
    assert both.exit_code == 2 and "drop --mqtt" in both.output
    bad_labels = tmp_path / "bad.labels.csv"
    bad_labels.write_text("plant,stack,sensor,kind,start,end\np,b1,nox,meltdown,x,y\n")
    refused = runner.invoke(
        app, ["replay", str(recording), "-c", str(plant_file), "--evaluate", str(bad_labels)],
        env=env)  # fmt: skip
    assert refused.exit_code == 2 and "bad.labels.csv" in refused.output


def test_replay_over_mqtt_publishes_every_reading_in_order(
    recorded: tuple[Path, Path, Path, list[Reading]],
    mosquitto_server: MosquittoServer,
    topic_prefix: str,
) -> None:
    """``--mqtt``: the recording reaches the broker in recorded order, times kept."""
    plant_file, recording, _, readings = recorded
    first = readings[:400]
    short = recording.with_name("short.csv")
    with RecordingWriter(short) as writer:
        writer.write_many(first)
    sub = subprocess.Popen(
        ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(mosquitto_server.port), "-q", "1",
         "-t", f"{topic_prefix}/#", "-v", "-C", str(len(first) + 2), "-W", "60"],  # + probe x2
        stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        # Subscribed once a retained probe comes back (no sleep).
        probe = f"{topic_prefix}/probe"
        subprocess.run(
            ["mosquitto_pub", "-p", str(mosquitto_server.port), "-t", probe, "-r", "-m", "x"],
            check=True,
        )
        assert sub.stdout is not None
        assert sub.stdout.readline().split()[0].decode() == probe
        subprocess.run(
            ["mosquitto_pub", "-p", str(mosquitto_server.port), "-t", probe, "-r", "-n"],
            check=True,
        )
        result = CliRunner().invoke(
            app,
            ["replay", str(short), "-c", str(plant_file), "--mqtt", mosquitto_server.url,
             "--topic-prefix", topic_prefix, "--fast", "-q"],
            env={"STACKWATCH_MODE": "demo"},
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert f"published {len(first)} readings" in result.stdout
        out, _ = sub.communicate(timeout=60)
    finally:
        sub.kill()
    lines = out.decode().splitlines()
    lines = [ln for ln in lines if not ln.startswith(probe)]
    got = [(ln.split(" ", 1)[0], json.loads(ln.split(" ", 1)[1])) for ln in lines]
    expected = [(f"{topic_prefix}/p/b1/{r.sensor}", r) for r in first]
    assert len(got) == len(first)
    for (topic, payload), (want_topic, r) in zip(got, expected, strict=True):
        assert topic == want_topic
        assert payload["ts"] == r.ts_ns // 1_000_000 and payload["value"] == r.value


def test_replay_over_mqtt_shifted_to_now_at_x_n_ends_at_now(
    recorded: tuple[Path, Path, Path, list[Reading]],
    mosquitto_server: MosquittoServer,
    topic_prefix: str,
) -> None:
    """``--shift-to-now --speed N``: the last reading is "now" when it is sent, none later."""
    plant_file, recording, _, readings = recorded
    first = readings[:400]  # 100 s of data: 0.1 s at x 1000
    short = recording.with_name("short-shifted.csv")
    with RecordingWriter(short) as writer:
        writer.write_many(first)
    before = time.time_ns()
    result = CliRunner().invoke(
        app,
        ["replay", str(short), "-c", str(plant_file), "--mqtt", mosquitto_server.url,
         "--topic-prefix", topic_prefix, "--speed", "1000", "--shift-to-now", "-f", "json", "-q"],
        env={"STACKWATCH_MODE": "demo"},
    )  # fmt: skip
    after = time.time_ns()
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["published"] == len(first)
    last, start = parse_iso_ns(doc["last"]), parse_iso_ns(doc["first"])  # to the microsecond
    assert before - 1000 <= last <= after
    assert abs((last - start) - (first[-1].ts_ns - first[0].ts_ns)) <= 1000
    assert doc["shift_s"] == pytest.approx((last - first[-1].ts_ns) / 1e9, abs=1e-5)
