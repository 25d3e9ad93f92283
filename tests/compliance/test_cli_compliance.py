"""``stackwatch compliance`` end to end: a simulated recording of the demo plant written as a
replay CSV, evaluated by the command in a subprocess, checked against a plain-Python batch
computation of the rules (hourly means, O2 normalisation, CI, daily means of valid hours).

The three days include the DST change of 29 March 2026 in Vienna (a 23-hour day) and a few
analyser faults, so the reference also has to get the 2/3 rule and the local day right.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from simulators.plant import PlantSimulator
from simulators.recording import read_replay_csv
from stream.compliance.engine import ComplianceEngine
from stream.compliance.longterm import local_day_bounds_ns
from stream.model import NS_PER_S, Reading, Status
from stream.plant import load_plant_config

TZ = "Europe/Vienna"
DAYS = [date(2026, 3, 28), date(2026, 3, 29), date(2026, 3, 30)]
HOUR_NS = 3600 * NS_PER_S
SEED = 11
CI = 0.2 * 200  # LCP NOx: 20 % of the daily ELV of boiler1

REPORT_KEYS = {
    "plant",
    "stack",
    "pollutant",
    "unit",
    "regime",
    "reference_o2",
    "limits",
    "confidence_interval",
    "short_term_period_s",
    "short_term_averages",
    "daily",
    "monthly",
    "yearly",
    "invalid_days",
    "events",
    "criteria",
    "compliant",
    "mass_kg_per_day",
    "mass_kg_per_year",
    "calibration_range_weeks",
    "qal3_events",
    "forecast",
}
DAILY_KEYS = {
    "date",
    "valid",
    "invalid_day",
    "valid_hours",
    "measured_mean",
    "validated_mean",
    "valid_sta",
    "invalid_sta",
    "excluded_sta",
}
PERIOD_KEYS = {"start", "end", "valid", "coverage", "measured_mean", "validated_mean"}
CRITERION_KEYS = {"name", "description", "passed", "n", "count", "allowed", "limit", "worst"}


@dataclass(frozen=True)
class Recorded:
    config: Path
    csv: Path
    readings: list[Reading]


def local(day: date, hour: int, minute: int = 0) -> int:
    """Epoch ns of a Vienna wall-clock time (hours after the DST change are fine)."""
    wall = datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(TZ))
    return int(wall.timestamp()) * NS_PER_S


# Analyser faults: (sensor, start, end, status). 20 calibration minutes leave exactly 40 valid
# readings (2/3 of the hour: valid), 21 leave 39 (invalid); half an hour of O2 malfunction
# invalidates the NOx hour through the O2 normalisation.
FAULTS = [
    ("nox", local(DAYS[0], 7, 0), local(DAYS[0], 7, 20), Status.CALIBRATION),
    ("nox", local(DAYS[0], 8, 0), local(DAYS[0], 8, 21), Status.CALIBRATION),
    ("nox", local(DAYS[1], 10), local(DAYS[1], 12), Status.MAINTENANCE),
    ("o2", local(DAYS[2], 15, 0), local(DAYS[2], 15, 30), Status.MALFUNCTION),
]


def with_faults(r: Reading) -> Reading:
    if r.stack != "boiler1":
        return r
    for sensor, start, end, status in FAULTS:
        if r.sensor == sensor and start <= r.ts_ns < end:
            return replace(r, status=status)
    return r


def iso(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns // NS_PER_S, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_csv(path: Path, readings: list[Reading], extra: str = "") -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["time", "plant", "stack", "sensor", "value", "status"])
        for r in readings:
            writer.writerow([iso(r.ts_ns), r.plant, r.stack, r.sensor, repr(r.value), r.status])
        handle.write(extra)
    return path


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """Three local days of the demo plant (every sensor at 60 s instead of 1-10 s)."""
    d = tmp_path_factory.mktemp("recording")
    demo = Path(str(files("simulators") / "demo_plant.yaml")).read_text(encoding="utf-8")
    config = d / "plant.yaml"
    config.write_text(re.sub(r"interval_s: \d+", "interval_s: 60", demo), encoding="utf-8")
    start, end = local_day_bounds_ns(DAYS[0], TZ)[0], local_day_bounds_ns(DAYS[-1], TZ)[1]
    sim = PlantSimulator(load_plant_config(config), seed=SEED, start_ns=start)
    readings = [with_faults(r) for r in sim.stream(end)]
    return Recorded(config, write_csv(d / "readings.csv", readings), readings)


def stackwatch(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stackwatch.cli", "compliance", *map(str, args)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )


@dataclass(frozen=True)
class RefDay:
    validated_mean: float
    measured_mean: float
    valid_hours: int
    invalid_hours: int


def reference_boiler1_nox(readings: list[Reading], interval_s: int = 60) -> dict[date, RefDay]:
    """The rules in plain Python: an hour is valid when NOx and O2 each have valid readings
    covering 2/3 of it (40 of 60); its value is mean(NOx)·(21 − 6)/(21 − mean(O2)); the
    validated value subtracts the CI; a day's mean is over its valid hours (local days)."""
    valid: dict[tuple[str, int], list[float]] = defaultdict(list)
    hours: set[int] = set()
    for r in readings:
        if r.stack == "boiler1" and r.sensor in ("nox", "o2"):
            hour = r.ts_ns - r.ts_ns % HOUR_NS
            hours.add(hour)
            if r.status is Status.VALID:
                valid[(r.sensor, hour)].append(r.value)
    per_day: dict[date, list[tuple[float, float]]] = defaultdict(list)
    invalid: dict[date, int] = defaultdict(int)
    for hour in sorted(hours):
        day = datetime.fromtimestamp(hour // NS_PER_S, ZoneInfo(TZ)).date()
        nox, o2 = valid[("nox", hour)], valid[("o2", hour)]
        if len(nox) * interval_s >= 2 / 3 * 3600 and len(o2) * interval_s >= 2 / 3 * 3600:
            measured = (sum(nox) / len(nox)) * (21 - 6) / (21 - sum(o2) / len(o2))
            per_day[day].append((measured, measured - CI))
        else:
            invalid[day] += 1
    return {
        day: RefDay(
            validated_mean=sum(v for _, v in values) / len(values),
            measured_mean=sum(m for m, _ in values) / len(values),
            valid_hours=len(values),
            invalid_hours=invalid[day],
        )
        for day, values in per_day.items()
    }


def close(a: float, b: float, rel: float = 1e-6, rounding: float = 0.0) -> bool:
    return abs(a - b) <= rel * abs(b) + rounding


def test_json_report_matches_a_plain_batch_computation(recorded: Recorded) -> None:
    result = stackwatch("--config", recorded.config, "--input", recorded.csv, "--format", "json")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    document = json.loads(result.stdout)

    reference = reference_boiler1_nox(recorded.readings)
    assert list(reference) == DAYS
    # faults: 1 invalid hour on the 28th (39 valid minutes), 2 on the 29th (a 23-h day), 1 on
    # the 30th (O2 malfunction)
    assert [(r.valid_hours, r.invalid_hours) for r in reference.values()] == [
        (23, 1),
        (21, 2),
        (23, 1),
    ]

    [nox] = [r for r in document["reports"] if (r["stack"], r["pollutant"]) == ("boiler1", "nox")]
    assert [d["date"] for d in nox["daily"]] == [d.isoformat() for d in DAYS]
    for day in nox["daily"]:
        ref = reference[date.fromisoformat(day["date"])]
        # the JSON rounds to 3 decimals: allow half a unit in the last place
        assert close(day["validated_mean"], ref.validated_mean, rounding=5e-4), (day, ref)
        assert close(day["measured_mean"], ref.measured_mean, rounding=5e-4), (day, ref)
        assert (day["valid_sta"], day["invalid_sta"], day["excluded_sta"]) == (
            ref.valid_hours,
            ref.invalid_hours,
            0,
        )
        assert day["valid"] is True and day["invalid_day"] is False
    assert nox["confidence_interval"] == CI
    assert nox["short_term_averages"] == {"valid": 67, "invalid": 4, "excluded": 0}

    # unrounded, through the same reader and engine in-process: 1e-6 relative
    plant_config = load_plant_config(recorded.config)
    recording = read_replay_csv(recorded.csv, plant_config)
    [engine_nox] = [
        r
        for r in ComplianceEngine(plant_config).evaluate(recording.series)
        if (r.stack, r.pollutant) == ("boiler1", "nox")
    ]
    for record in engine_nox.daily:
        ref = reference[record.date]
        assert record.validated_mean is not None and record.measured_mean is not None
        assert close(record.validated_mean, ref.validated_mean)
        assert close(record.measured_mean, ref.measured_mean)


def test_json_document_shape_and_verdict(recorded: Recorded) -> None:
    result = stackwatch("-c", recorded.config, "-i", recorded.csv, "-f", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert set(document) == {"input", "readings", "rejected", "reports", "compliant"}
    assert document["input"] == str(recorded.csv)
    assert document["readings"] == len(recorded.readings) == 71 * 60 * 16  # 23-h DST day
    assert document["rejected"] == {}
    assert [(r["stack"], r["pollutant"]) for r in document["reports"]] == [
        ("boiler1", "nox"),
        ("boiler1", "so2"),
        ("boiler1", "dust"),
        ("boiler1", "co"),
        ("gt1", "nox"),
        ("gt1", "co"),
    ]
    for report in document["reports"]:
        assert set(report) == REPORT_KEYS
        assert report["unit"] == "mg/Nm3" and report["regime"] == "lcp"
        assert report["short_term_period_s"] == 3600
        assert set(report["short_term_averages"]) == {"valid", "invalid", "excluded"}
        assert all(set(d) == DAILY_KEYS for d in report["daily"])
        assert all(set(p) == PERIOD_KEYS for p in report["monthly"] + report["yearly"])
        assert [p["start"] for p in report["monthly"]] == ["2026-03-01"]
        assert report["monthly"][0]["valid"] is False  # 3 days cover < 10 % of March
        assert report["criteria"] and all(set(c) == CRITERION_KEYS for c in report["criteria"])
        assert {c["name"] for c in report["criteria"]} == {"lcp_daily", "lcp_hourly"}
        assert report["compliant"] == all(c["passed"] for c in report["criteria"])
        assert report["mass_kg_per_day"] is not None  # both stacks have a flow sensor
        assert list(report["mass_kg_per_day"]) == [d.isoformat() for d in DAYS]
        assert report["forecast"] is None and report["events"] == []
    boiler_nox = document["reports"][0]
    assert boiler_nox["limits"] == {"unit": "mg/Nm3", "half_hour": 400.0, "daily": 200.0}
    assert boiler_nox["reference_o2"] == 6.0
    daily = next(c for c in boiler_nox["criteria"] if c["name"] == "lcp_daily")
    assert (daily["limit"], daily["n"], daily["allowed"]) == (220.0, 3, 0.0)
    assert document["compliant"] is True
    assert document["compliant"] == all(r["compliant"] for r in document["reports"])


def test_table_prints_the_verdict(recorded: Recorded, tmp_path: Path) -> None:
    result = stackwatch("--config", recorded.config, "--input", recorded.csv)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "demo/boiler1 NOX (LCP, mg/Nm3 at 6.0 % O2): COMPLIANT" in out
    assert "demo/gt1 CO (LCP, mg/Nm3 at 15.0 % O2): COMPLIANT" in out
    assert "NOT COMPLIANT" not in out
    reference = reference_boiler1_nox(recorded.readings)
    nox_block = out.split("demo/boiler1 SO2")[0]
    for day, ref in reference.items():
        assert re.search(rf"{day.isoformat()}\s+yes\s+{ref.valid_hours}\.0\s", nox_block)
        assert f"{ref.validated_mean:.1f}" in nox_block

    strict = tmp_path / "strict.yaml"
    text = recorded.config.read_text(encoding="utf-8")
    strict.write_text(text.replace("nox: {daily: 200,", "nox: {daily: 60,", 1), encoding="utf-8")
    result = stackwatch("--config", strict, "--input", recorded.csv)
    assert result.returncode == 0, result.stderr  # a verdict, not an error
    assert "demo/boiler1 NOX (LCP, mg/Nm3 at 6.0 % O2): NOT COMPLIANT" in result.stdout
    assert "[FAIL] IED Annex V Part 4 (b)" in result.stdout
    assert "demo/gt1 NOX (LCP, mg/Nm3 at 15.0 % O2): COMPLIANT" in result.stdout


def test_refused_rows_are_summarised_on_stderr_and_the_report_still_runs(
    recorded: Recorded, tmp_path: Path
) -> None:
    bad = (
        "2026-03-28T12:00:00,demo,boiler1,nox,100,valid\n"  # naive time
        "2026-03-28T12:00:00Z,demo,boiler1,nox,99999,valid\n"  # out of range
        "2026-03-28T12:00:00Z,demo,boiler9,nox,100,valid\n"  # unknown stack
        "2026-03-28T12:00:00Z,demo,boiler1,nox,100,sleeping\n"  # unknown status
    )
    path = write_csv(tmp_path / "bad.csv", recorded.readings, extra=bad)
    first_bad_line = len(recorded.readings) + 2
    result = stackwatch("--config", recorded.config, "--input", path, "--format", "json")
    assert result.returncode == 0, result.stderr
    assert (
        "rows refused: 1 invalid_status, 1 naive_timestamp, 1 out_of_range, 1 unknown_sensor"
        in result.stderr
    )
    assert f"line {first_bad_line}: time" in result.stderr
    assert f"line {first_bad_line + 2}: demo/boiler9/nox is not configured" in result.stderr
    document = json.loads(result.stdout)
    assert document["rejected"] == {
        "naive_timestamp": 1,
        "out_of_range": 1,
        "unknown_sensor": 1,
        "invalid_status": 1,
    }
    assert document["readings"] == len(recorded.readings)
    assert len(document["reports"]) == 6


def test_missing_columns_exit_2_with_a_clear_message(tmp_path: Path, recorded: Recorded) -> None:
    path = tmp_path / "no-value.csv"
    path.write_text("time,plant,stack,sensor\n2026-03-28T00:00:00Z,demo,boiler1,nox\n")
    result = stackwatch("--config", recorded.config, "--input", path)
    assert result.returncode == 2
    assert f"{path}: missing column(s) value" in result.stderr
    assert "time,plant,stack,sensor,value[,status]" in result.stderr
    assert result.stdout == ""


def test_unreadable_input_and_bad_config_exit_2(tmp_path: Path, recorded: Recorded) -> None:
    result = stackwatch("--config", recorded.config, "--input", tmp_path / "absent.csv")
    assert result.returncode == 2
    assert "absent.csv: cannot read" in result.stderr

    bad_config = tmp_path / "bad.yaml"
    bad_config.write_text(
        recorded.config.read_text(encoding="utf-8").replace("reference_o2: 6", "reference_o2: 30")
    )
    result = stackwatch("--config", bad_config, "--input", recorded.csv)
    assert result.returncode == 2
    assert "plants.demo.stacks.boiler1.reference_o2" in result.stderr


def test_empty_recording_reports_nothing(tmp_path: Path, recorded: Recorded) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("time,plant,stack,sensor,value,status\n")
    table = stackwatch("--config", recorded.config, "--input", path)
    assert table.returncode == 0 and table.stdout.strip() == "no limited pollutant has data"
    result = stackwatch("--config", recorded.config, "--input", path, "--format", "json")
    document: dict[str, Any] = json.loads(result.stdout)
    assert (document["reports"], document["readings"], document["compliant"]) == ([], 0, False)


def test_the_recording_spans_whole_local_days(recorded: Recorded) -> None:
    """Guard for the fixture: the first and last readings are at local midnight ± one step."""
    first, last = recorded.readings[0].ts_ns, recorded.readings[-1].ts_ns
    assert first == local(DAYS[0], 0)
    assert last == local(DAYS[-1] + timedelta(days=1), 0) - 60 * NS_PER_S


def test_a_recorded_month_is_reported_correctly(tmp_path: Path) -> None:
    """March 2026 (31 local days, one of them 23 h long) at 300 s: every daily record and the
    monthly average of boiler1 NOx against the plain computation; an invalid day (4 invalid
    hours, LCP) is reported and kept out of the monthly average."""
    demo = Path(str(files("simulators") / "demo_plant.yaml")).read_text(encoding="utf-8")
    config = tmp_path / "plant.yaml"
    config.write_text(re.sub(r"interval_s: \d+", "interval_s: 300", demo), encoding="utf-8")
    first, last = date(2026, 3, 1), date(2026, 3, 31)
    start, end = local_day_bounds_ns(first, TZ)[0], local_day_bounds_ns(last, TZ)[1]
    broken = (local(date(2026, 3, 10), 2), local(date(2026, 3, 10), 6))
    readings = [
        replace(r, status=Status.MAINTENANCE)
        if r.stack == "boiler1" and r.sensor == "nox" and broken[0] <= r.ts_ns < broken[1]
        else r
        for r in PlantSimulator(load_plant_config(config), seed=SEED, start_ns=start).stream(end)
    ]
    csv_path = write_csv(tmp_path / "march.csv", readings)
    result = stackwatch("--config", config, "--input", csv_path, "--format", "json")
    assert result.returncode == 0, result.stderr
    report = next(
        r
        for r in json.loads(result.stdout)["reports"]
        if (r["stack"], r["pollutant"]) == ("boiler1", "nox")
    )
    reference = reference_boiler1_nox(readings, interval_s=300)
    assert [d["date"] for d in report["daily"]] == [d.isoformat() for d in sorted(reference)]
    assert len(reference) == 31
    for day in report["daily"]:
        ref = reference[date.fromisoformat(day["date"])]
        assert close(day["validated_mean"], ref.validated_mean, rounding=5e-4)
        assert day["valid_sta"] == ref.valid_hours
        assert day["invalid_day"] == (ref.invalid_hours > 3)
    assert [d["date"] for d in report["daily"] if d["invalid_day"]] == ["2026-03-10"]
    assert report["invalid_days"] == 1
    kept = [
        v
        for d, ref in reference.items()
        if ref.invalid_hours <= 3
        for v in [ref.validated_mean] * ref.valid_hours
    ]
    month = report["monthly"][0]
    assert (month["start"], month["end"], month["valid"]) == ("2026-03-01", "2026-04-01", True)
    assert close(month["validated_mean"], sum(kept) / len(kept), rounding=5e-4)
