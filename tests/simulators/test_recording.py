"""The replay CSV reader: accepted times and defaults, and every refusal counted by reason with
its line number (a recording evaluated offline must accept exactly what the collector would)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simulators.recording import RecordingError, iter_replay_csv, read_replay_csv
from stream.model import NS_PER_S, Reading, SensorKey, Status
from stream.plant import PlantConfig

T0 = 1_767_225_600 * NS_PER_S  # 2026-01-01T00:00:00Z
NOX = SensorKey("p", "s", "nox")
O2 = SensorKey("p", "s", "o2")
HEADER = "time,plant,stack,sensor,value,status\n"


@pytest.fixture
def config() -> PlantConfig:
    return PlantConfig.model_validate(
        {
            "plants": {
                "p": {
                    "stacks": {
                        "s": {
                            "sensors": {
                                "nox": {
                                    "quantity": "nox",
                                    "unit": "mg/Nm3",
                                    "valid_range": [0, 2000],
                                },
                                "o2": {"quantity": "o2", "unit": "%", "valid_range": [0, 25]},
                            }
                        }
                    }
                }
            }
        }
    )


def write(tmp_path: Path, text: str, name: str = "r.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_iso_times_with_z_and_offsets(tmp_path: Path, config: PlantConfig) -> None:
    path = write(
        tmp_path,
        HEADER
        + "2026-01-01T00:00:00Z,p,s,nox,100,valid\n"
        + "2026-01-01T01:00:01+01:00,p,s,nox,101,valid\n"
        + "2025-12-31T19:00:02-05:00,p,s,nox,102,valid\n"
        + "2026-01-01T00:00:03.123456789Z,p,s,nox,103,valid\n"
        + "2026-01-01T05:30:04+05:30,p,s,nox,104,valid\n",
    )
    rec = read_replay_csv(path, config)
    assert rec.accepted == 5 and not rec.rejected
    series = rec.series[NOX]
    assert series.ts_ns.tolist() == [
        T0,
        T0 + 1 * NS_PER_S,
        T0 + 2 * NS_PER_S,
        T0 + 3 * NS_PER_S + 123_456_789,
        T0 + 4 * NS_PER_S,
    ]
    assert series.values.tolist() == [100.0, 101.0, 102.0, 103.0, 104.0]
    assert series.ts_ns.dtype == np.int64 and series.values.dtype == np.float64


def test_status_defaults_to_valid_and_is_coded(tmp_path: Path, config: PlantConfig) -> None:
    without_column = write(
        tmp_path, "time,plant,stack,sensor,value\n2026-01-01T00:00:00Z,p,s,o2,7\n"
    )
    rec = read_replay_csv(without_column, config)
    assert rec.series[O2].status.tolist() == [0]

    path = write(
        tmp_path,
        HEADER
        + "2026-01-01T00:00:00Z,p,s,o2,7,\n"  # empty: valid
        + "2026-01-01T00:00:01Z,p,s,o2,7,maintenance\n"
        + "2026-01-01T00:00:02Z,p,s,o2,7,malfunction\n"
        + "2026-01-01T00:00:03Z,p,s,o2,7, calibration \n"  # surrounding blanks are ignored
        + "2026-01-01T00:00:04Z,p,s,o2,7\n",  # status field left out: valid
        "statuses.csv",
    )
    rec = read_replay_csv(path, config)
    assert rec.accepted == 5 and not rec.rejected
    assert rec.series[O2].status.tolist() == [0, 1, 2, 3, 0]
    assert rec.series[O2].status.dtype == np.int8


def test_columns_in_any_order_and_a_byte_order_mark(tmp_path: Path, config: PlantConfig) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(
        "\ufeffsensor,value,status,time,stack,plant\no2,6.5,valid,2026-01-01T00:00:00Z,s,p\n".encode()
    )
    rec = read_replay_csv(path, config)
    assert rec.accepted == 1
    assert rec.series[O2].values.tolist() == [6.5]


def test_refused_rows_are_counted_by_reason_with_line_numbers(
    tmp_path: Path, config: PlantConfig
) -> None:
    rows = [
        "2026-01-01T00:00:00Z,p,s,nox,100,valid",  # line 2: accepted
        "2026-01-01T00:00:00Z,p,s,co,100,valid",  # 3: unknown sensor
        "2026-01-01T00:00:00Z,p,other,nox,100,valid",  # 4: unknown sensor (stack)
        "2026-01-01T00:00:00,p,s,nox,100,valid",  # 5: naive time
        "yesterday,p,s,nox,100,valid",  # 6: not a time
        "2026-01-01T00:00:01Z,p,s,nox,abc,valid",  # 7: not a number
        "2026-01-01T00:00:01Z,p,s,nox,nan,valid",  # 8: not finite
        "2026-01-01T00:00:01Z,p,s,nox,inf,valid",  # 9: not finite
        "2026-01-01T00:00:01Z,p,s,nox,2000.5,valid",  # 10: above the valid range
        "2026-01-01T00:00:01Z,p,s,o2,-0.1,valid",  # 11: below the valid range
        "2026-01-01T00:00:01Z,p,s,nox,100,broken",  # 12: unknown status
        "2026-01-01T00:00:01Z,p,s",  # 13: too few fields
        "2026-01-01T00:00:02Z,p,s,nox,2000,valid",  # 14: accepted (range is inclusive)
    ]
    path = write(tmp_path, HEADER + "\n".join(rows) + "\n")
    rec = read_replay_csv(path, config, keep_messages=20)
    assert rec.accepted == 2
    assert rec.series[NOX].values.tolist() == [100.0, 2000.0]
    assert dict(rec.rejected) == {
        "unknown_sensor": 2,
        "naive_timestamp": 1,
        "invalid_time": 1,
        "invalid_value": 1,
        "non_finite": 2,
        "out_of_range": 2,
        "invalid_status": 1,
        "missing_field": 1,
    }
    messages = rec.first_rejections
    assert [m.split(":")[0] for m in messages] == [f"line {n}" for n in range(3, 14)]
    assert "p/s/co is not configured" in messages[0]
    assert "no UTC offset" in messages[2]
    assert "'abc' is not a number" in messages[4]
    assert "'nan' is not finite" in messages[5]
    assert "outside [0.0, 2000.0]" in messages[7]
    assert "'broken' is unknown" in messages[9]
    assert "3 field(s), expected 6" in messages[10]


def test_only_the_first_messages_are_kept(tmp_path: Path, config: PlantConfig) -> None:
    rows = "".join(f"2026-01-01T00:00:{i:02d}Z,p,s,nox,-{i + 1},valid\n" for i in range(30))
    rec = read_replay_csv(write(tmp_path, HEADER + rows), config, keep_messages=3)
    assert rec.rejected == {"out_of_range": 30}
    assert [m.split(":")[0] for m in rec.first_rejections] == ["line 2", "line 3", "line 4"]
    assert rec.series == {}


def test_file_order_is_kept_per_sensor(tmp_path: Path, config: PlantConfig) -> None:
    rows = (
        "2026-01-01T00:00:02Z,p,s,nox,3,valid\n"
        "2026-01-01T00:00:00Z,p,s,o2,9,valid\n"
        "2026-01-01T00:00:01Z,p,s,nox,2,maintenance\n"
    )
    rec = read_replay_csv(write(tmp_path, HEADER + rows), config)
    assert rec.series[NOX].ts_ns.tolist() == [T0 + 2 * NS_PER_S, T0 + NS_PER_S]
    assert rec.series[NOX].status.tolist() == [0, 1]
    assert set(rec.series) == {NOX, O2}


def test_iter_yields_readings_with_the_configured_quantity_and_unit(
    tmp_path: Path, config: PlantConfig
) -> None:
    rows = "2026-01-01T00:00:00Z,p,s,nox,100,calibration\n2026-01-01T00:00:00Z,p,s,x,1,valid\n"
    items = list(iter_replay_csv(write(tmp_path, HEADER + rows), config))
    assert items == [
        Reading("p", "s", "nox", T0, 100.0, "nox", "mg/Nm3", Status.CALIBRATION),
        ("unknown_sensor", "line 3: p/s/x is not configured"),
    ]


@pytest.mark.parametrize(
    ("header", "missing"),
    [
        ("time,plant,stack,sensor", "value"),
        ("timestamp,plant,stack,sensor,value", "time"),
        ("", "time"),
    ],
)
def test_missing_columns_are_an_error(
    tmp_path: Path, config: PlantConfig, header: str, missing: str
) -> None:
    path = write(tmp_path, header + "\n" if header else "")
    with pytest.raises(RecordingError, match=f"missing column\\(s\\) {missing}") as err:
        read_replay_csv(path, config)
    assert str(path) in str(err.value)
    assert "time,plant,stack,sensor,value[,status]" in str(err.value)


def test_unreadable_file_is_an_error(tmp_path: Path, config: PlantConfig) -> None:
    with pytest.raises(RecordingError, match="cannot read"):
        read_replay_csv(tmp_path / "absent.csv", config)


def test_header_only_file_is_an_empty_recording(tmp_path: Path, config: PlantConfig) -> None:
    rec = read_replay_csv(write(tmp_path, HEADER + "\n"), config)
    assert (rec.series, rec.accepted, dict(rec.rejected)) == ({}, 0, {})
