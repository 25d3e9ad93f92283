"""Recordings: JSON lines read like CSV (same readings, same refusals), recording a live stream
from a real Mosquitto (checked like the collector, refusals counted), and ``stackwatch record
store`` exporting the embedded store in time order."""

from __future__ import annotations

import asyncio
import subprocess
from collections import Counter
from pathlib import Path

import aiomqtt
import pytest
import yaml
from typer.testing import CliRunner

from collector.settings import MqttSettings
from simulators.record import record_mqtt, record_store
from simulators.recording import (
    RecordingWriter,
    Refusals,
    count_records,
    iter_recording,
    read_recording,
    read_replay_csv,
)
from simulators.replay import replay_over_mqtt
from stackwatch.record_cli import record_app
from stream.model import NS_PER_MS, NS_PER_S, Reading, Status
from stream.plant import PlantConfig
from stream.schema import reading_to_point
from stream.storage.sqlite import SqliteStore
from stream.timeparse import format_iso_ns
from tests.e2e.service import PLANT_YAML
from tests.servers import MosquittoServer

T0 = 1_767_225_600 * NS_PER_S  # 2026-01-01T00:00:00Z
TIMEOUT = 10.0


@pytest.fixture(scope="module")
def config() -> PlantConfig:
    return PlantConfig.model_validate(yaml.safe_load(PLANT_YAML))


def sample(n: int = 6, t0: int = T0) -> list[Reading]:
    """Readings of both sensors with sub-millisecond times, odd values and every status."""
    statuses = list(Status)
    out = []
    for i in range(n):
        ts = t0 + i * NS_PER_S + 123_456_789
        out.append(Reading("p1", "s1", "nox", ts, 100.1 + i / 3, "nox", "mg/Nm3", statuses[i % 4]))
        out.append(Reading("p1", "s1", "o2", ts, 6.0 + i, "o2", "%"))
    return out


def written(path: Path, readings: list[Reading]) -> Path:
    with RecordingWriter(path) as w:
        w.write_many(readings)
    return path


# --- JSON lines ---------------------------------------------------------------------------


def test_jsonl_and_csv_give_the_same_readings(tmp_path: Path, config: PlantConfig) -> None:
    readings = sample()
    csv_path = written(tmp_path / "r.csv", readings)
    jsonl_path = written(tmp_path / "r.jsonl", readings)
    assert list(iter_recording(jsonl_path, config)) == readings
    assert list(iter_recording(csv_path, config)) == readings
    from_csv, from_jsonl = read_replay_csv(csv_path, config), read_recording(jsonl_path, config)
    assert (from_csv.accepted, from_jsonl.accepted) == (12, 12)
    for key, series in from_csv.series.items():
        other = from_jsonl.series[key]
        assert series.ts_ns.tolist() == other.ts_ns.tolist()
        assert series.values.tolist() == other.values.tolist()
        assert series.status.tolist() == other.status.tolist()
    assert count_records(csv_path) == count_records(jsonl_path) == 12


def test_jsonl_accepts_mqtt_style_ts(tmp_path: Path, config: PlantConfig) -> None:
    path = tmp_path / "r.ndjson"
    ms = T0 // NS_PER_MS
    path.write_text(
        f'{{"ts": {ms}, "plant": "p1", "stack": "s1", "sensor": "nox", "value": 5}}\n'
        "\n"  # blank lines are skipped
        f'{{"ts": {ms}.25, "plant": "p1", "stack": "s1", "sensor": "o2", "value": 6.5}}\n'
        '{"ts": "2026-01-01T01:00:00.000000001+01:00", "plant": "p1", "stack": "s1", '
        '"sensor": "o2", "value": 7, "status": "maintenance"}\n'
    )
    got = [(r.sensor, r.ts_ns, r.value, r.status) for r in iter_recording(path, config)]  # type: ignore[union-attr]
    assert got == [
        ("nox", T0, 5.0, Status.VALID),
        ("o2", T0 + 250_000, 6.5, Status.VALID),
        ("o2", T0 + 1, 7.0, Status.MAINTENANCE),
    ]


BAD_LINES = [
    # (line, expected reason)
    ("{not json", "malformed_json"),
    (
        '{"time": "2026-01-01T00:00:00Z", "ts": 1, "plant": "p1", "stack": "s1", "sensor": "nox", '
        '"value": 1}',
        "invalid_field",
    ),
    ("[1, 2]", "malformed_json"),
    (
        '{"time": "2026-01-01T00:00:00Z", "plant": "p1", "stack": "s1", "sensor": "nox", '
        '"value": 1, "vaule": 2}',
        "invalid_field",
    ),
    (
        '{"time": "2026-01-01T00:00:00Z", "plant": "p1", "stack": "s1", "sensor": "nox"}',
        "missing_field",
    ),
    ('{"plant": "p1", "stack": "s1", "sensor": "nox", "value": 1}', "missing_field"),
    (
        '{"time": "2026-01-01T00:00:00Z", "plant": 1, "stack": "s1", "sensor": "nox", "value": 1}',
        "invalid_field",
    ),
    (
        '{"time": "2026-01-01T00:00:00Z", "plant": "p1", "stack": "s1", "sensor": "co", '
        '"value": 1}',
        "unknown_sensor",
    ),
    (
        '{"time": "2026-01-01T00:00:00", "plant": "p1", "stack": "s1", "sensor": "nox", '
        '"value": 1}',
        "naive_timestamp",
    ),
    (
        '{"time": "yesterday", "plant": "p1", "stack": "s1", "sensor": "nox", "value": 1}',
        "invalid_time",
    ),
    (
        '{"time": 1767225600000, "plant": "p1", "stack": "s1", "sensor": "nox", "value": 1}',
        "invalid_time",
    ),  # fmt: skip  ("time" is text; epoch ms go in "ts")
    (
        '{"time": "2026-01-01T00:00:00Z", "plant": "p1", "stack": "s1", "sensor": "nox", '
        '"value": "12"}',
        "invalid_value",
    ),
    (
        '{"time": "2026-01-01T00:00:00Z", "plant": "p1", "stack": "s1", "sensor": "nox", '
        '"value": true}',
        "invalid_value",
    ),
    (
        '{"time": "2026-01-01T00:00:00Z", "plant": "p1", "stack": "s1", "sensor": "nox", '
        '"value": 5000}',
        "out_of_range",
    ),
    (
        '{"time": "2026-01-01T00:00:00Z", "plant": "p1", "stack": "s1", "sensor": "nox", '
        '"value": 1, "status": "ok"}',
        "invalid_status",
    ),
]


def test_bad_jsonl_lines_are_refused_with_reasons_and_line_numbers(
    tmp_path: Path, config: PlantConfig
) -> None:
    good = (
        '{"time": "2026-01-01T00:00:00Z", "plant": "p1", "stack": "s1", "sensor": "nox", '
        '"value": 1}'
    )
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join([good] + [line for line, _ in BAD_LINES]) + "\n")
    items = list(iter_recording(path, config))
    assert items[0] == Reading("p1", "s1", "nox", T0, 1.0, "nox", "mg/Nm3")
    refusals = Refusals(keep=100)
    assert list(refusals.readings(items)) == [items[0]]
    assert [m.split(":")[0] for m in refusals.first] == [
        f"line {i}" for i in range(2, len(BAD_LINES) + 2)
    ]
    assert [item[0] for item in items[1:]] == [reason for _, reason in BAD_LINES]  # type: ignore[index]
    recording = read_recording(path, config)
    assert recording.accepted == 1
    assert recording.rejected == Counter(reason for _, reason in BAD_LINES)


# --- recording from MQTT --------------------------------------------------------------------


async def test_record_mqtt_writes_what_was_published_and_counts_refusals(
    tmp_path: Path, mosquitto_server: MosquittoServer, topic_prefix: str, config: PlantConfig
) -> None:
    readings = sample(5, t0=T0 + 3600 * NS_PER_S * 24 * 30)
    settings = MqttSettings.model_validate(
        {"topic_prefix": topic_prefix, "deadletter_topic": f"{topic_prefix}/deadletter"}
    )
    subscribed = asyncio.Event()
    output = tmp_path / "live.jsonl"
    with RecordingWriter(output) as writer:
        recording = asyncio.create_task(
            record_mqtt(
                writer,
                config,
                mqtt_url=mosquitto_server.url,
                settings=settings,
                count=len(readings),
                subscribed=subscribed,
            )
        )
        await asyncio.wait_for(subscribed.wait(), TIMEOUT)
        async with aiomqtt.Client("127.0.0.1", mosquitto_server.port) as client:
            for topic, payload in [
                ("p1/s1/co", b'{"value": 1}'),
                ("p1/s1/nox", b'{"value": 5000}'),
                ("p1/s1/nox", b"{oops"),
                ("p1/s1", b'{"value": 1}'),
                ("deadletter/out_of_range", b"{}"),  # the service's own output: skipped
            ]:
                await client.publish(f"{topic_prefix}/{topic}", payload, qos=1)
        stats = await replay_over_mqtt(
            readings, mqtt_url=mosquitto_server.url, topic_prefix=topic_prefix, speed=float("inf")
        )
        assert stats.published == len(readings)
        result = await asyncio.wait_for(recording, TIMEOUT)
    assert result.written == len(readings)
    assert result.refused == Counter(
        {"unknown_sensor": 1, "out_of_range": 1, "malformed_json": 1, "bad_topic": 1}
    )
    assert list(iter_recording(output, config)) == readings


async def test_record_mqtt_stops_after_the_duration_or_on_stop(
    tmp_path: Path, mosquitto_server: MosquittoServer, topic_prefix: str, config: PlantConfig
) -> None:
    settings = MqttSettings.model_validate({"topic_prefix": topic_prefix})
    with RecordingWriter(tmp_path / "empty.csv") as writer:
        stats = await asyncio.wait_for(
            record_mqtt(
                writer, config, mqtt_url=mosquitto_server.url, settings=settings, duration_s=0.2
            ),
            TIMEOUT,
        )
        assert stats.written == 0
        stop, subscribed = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(
            record_mqtt(
                writer,
                config,
                mqtt_url=mosquitto_server.url,
                settings=settings,
                stop=stop,
                subscribed=subscribed,
            )
        )
        await asyncio.wait_for(subscribed.wait(), TIMEOUT)
        stop.set()
        assert (await asyncio.wait_for(task, TIMEOUT)).written == 0
    assert count_records(tmp_path / "empty.csv") == 0


# --- recording from the store ---------------------------------------------------------------


def test_record_store_exports_a_range_in_time_order(
    tmp_path: Path, config: PlantConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    readings = sample(6)
    other_stack = Reading("p1", "s2", "nox", T0 + NS_PER_S, 1.0, "nox", "mg/Nm3")

    async def fill_and_record() -> int:
        store = SqliteStore(tmp_path / "stackwatch.db")
        await store.start()
        try:
            # Written out of order: the export is ordered by time.
            await store.write([reading_to_point(r) for r in [*reversed(readings), other_stack]])
            with RecordingWriter(tmp_path / "direct.csv") as w:
                return await record_store(w, store, start_ns=T0, end_ns=T0 + 3 * NS_PER_S)
        finally:
            await store.close()

    assert asyncio.run(fill_and_record()) == 7
    in_range = [r for r in readings if r.ts_ns < T0 + 3 * NS_PER_S]
    expected = written(tmp_path / "expected.csv", [*in_range[:2], other_stack, *in_range[2:]])
    assert (tmp_path / "direct.csv").read_text() == expected.read_text()

    for name in ("STACKWATCH_INFLUX_URL", "STACKWATCH_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STACKWATCH_DATA_DIR", str(tmp_path))
    output = tmp_path / "export.jsonl"
    args = ["store", "-o", str(output), "--from", format_iso_ns(T0), "--plant", "p1"]
    result = CliRunner().invoke(
        record_app, [*args, "--stack", "s1", "--to", format_iso_ns(T0 + 3 * NS_PER_S)]
    )
    assert result.exit_code == 0, result.output
    assert list(iter_recording(output, config)) == in_range
    # A naive time is refused with a reason, not a traceback.
    bad = CliRunner().invoke(record_app, [*args, "--to", "2026-01-02T00:00:00"])
    assert bad.exit_code == 2
    assert "no UTC offset" in bad.output


def test_record_mqtt_cli_writes_the_file_and_reports_refusals(
    tmp_path: Path,
    mosquitto_server: MosquittoServer,
    topic_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Retained messages reach the recorder as soon as it subscribes (no race with a publisher;
    # their order is the broker's, hence a duration rather than a count).
    mosquitto_pub_retained(mosquitto_server.port, f"{topic_prefix}/p1/s1/co", '{"value": 1}')
    ts = "2026-01-01T00:00:00.000000001Z"
    good = f'{{"ts": "{ts}", "value": 12.5, "status": "calibration"}}'
    mosquitto_pub_retained(mosquitto_server.port, f"{topic_prefix}/p1/s1/nox", good)
    (tmp_path / "plant.yaml").write_text(PLANT_YAML)
    monkeypatch.setenv("STACKWATCH_CONFIG", str(tmp_path / "plant.yaml"))
    output = tmp_path / "live.csv"
    result = CliRunner().invoke(
        record_app,
        [
            "mqtt",
            "--mqtt",
            mosquitto_server.url,
            "--topic-prefix",
            topic_prefix,
            "-o",
            str(output),
            "--duration",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert output.read_text().splitlines()[1:] == [f"{ts},p1,s1,nox,12.5,calibration"]
    assert "wrote 1 reading(s)" in result.output
    assert "1 unknown_sensor" in result.output


def mosquitto_pub_retained(port: int, topic: str, message: str) -> None:
    subprocess.run(
        [
            "mosquitto_pub",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-q",
            "1",
            "-r",
            "-t",
            topic,
            "-m",
            message,
        ],
        check=True,
        timeout=TIMEOUT,
    )
