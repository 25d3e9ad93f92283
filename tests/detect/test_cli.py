"""``stackwatch detect`` on plain CSV files: one or several value columns, options, errors."""

from __future__ import annotations

import csv
import math
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stackwatch.detect_cli import detect_app

START = datetime(2026, 3, 1, tzinfo=UTC)


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(detect_app, list(args))
    return result.exit_code, result.output


def plain_file(path: Path, n: int = 1500, spike_at: int = 1300) -> list[str]:
    """A NAB-style ``timestamp,value`` file (naive times) with one spike."""
    rng = random.Random(4)
    stamps = []
    with path.open("w", newline="") as f:
        f.write("timestamp,value\n")
        for i in range(n):
            stamp = (START + timedelta(seconds=i)).strftime("%Y-%m-%d %H:%M:%S")
            value = 50.0 + rng.gauss(0, 0.5) + (15.0 if i == spike_at else 0.0)
            f.write(f"{stamp},{value:.3f}\n")
            stamps.append(stamp)
    return stamps


def read(path: Path, sep: str = ",") -> list[list[str]]:
    with path.open(newline="") as f:
        return list(csv.reader(f, delimiter=sep))


def test_plain_timestamp_value_file(tmp_path: Path) -> None:
    stamps = plain_file(tmp_path / "in.csv")
    code, output = invoke("--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "o.csv"))
    assert code == 0, output
    rows = read(tmp_path / "o.csv")
    assert rows[0] == ["timestamp", "anomaly_score", "is_anomaly"]
    assert [r[0] for r in rows[1:]] == stamps  # one row per input row, in order, verbatim
    assert all(0.0 <= float(r[1]) <= 1.0 and r[2] in {"0", "1"} for r in rows[1:])
    flagged = [i for i, r in enumerate(rows[1:]) if r[2] == "1"]
    assert flagged == [1300]
    assert float(rows[1301][1]) > 0.99999
    assert "1500 row(s) scored, 1 anomalous (1 residual)" in output


def stack_file(path: Path, sep: str, n: int = 1500) -> None:
    """Three correlated columns plus a text column; o2 is silent for 30 rows at 1200."""
    rng = random.Random(5)
    with path.open("w", newline="") as f:
        writer = csv.writer(f, delimiter=sep, lineterminator="\n")
        writer.writerow(["site", "time", "nox", "o2", "flow"])
        for i in range(n):
            load = 0.7 + 0.2 * math.sin(i / 300)
            stamp = (START + timedelta(seconds=i)).isoformat().replace("+00:00", "Z")
            o2 = "" if 1200 <= i < 1230 else f"{12 - 6 * load + rng.gauss(0, 0.05):.2f}"
            nox = f"{150 * load + rng.gauss(0, 1.5):.1f}"
            writer.writerow(["demo", stamp, nox, o2, f"{50 * load + rng.gauss(0, 0.4):.1f}"])


def test_several_columns_with_time_column_and_separator(tmp_path: Path) -> None:
    stack_file(tmp_path / "in.csv", sep=";")
    code, output = invoke(
        "--input",
        str(tmp_path / "in.csv"),
        "--output",
        str(tmp_path / "o.csv"),
        "--time-column",
        "time",
        "--value-columns",
        "nox,o2,flow",
        "--sep",
        ";",
    )
    assert code == 0, output
    rows = read(tmp_path / "o.csv", sep=";")
    assert rows[0] == ["timestamp", "anomaly_score", "is_anomaly"]
    assert len(rows) == 1501
    flagged = [i for i, r in enumerate(rows[1:]) if r[2] == "1"]
    # o2 silent from row 1200: a dropout once 5 intervals are missing, until it is back
    assert flagged[0] == 1205 and 1229 <= flagged[-1] <= 1231
    assert "dropout" in output


def test_value_columns_default_to_every_other_column(tmp_path: Path) -> None:
    stack_file(tmp_path / "in.csv", sep=",", n=50)
    code, output = invoke(
        "-i", str(tmp_path / "in.csv"), "-o", str(tmp_path / "o.csv"), "--time-column", "time"
    )
    assert code == 2
    assert "site: 'demo' is not a number" in output  # the text column is a value column too


def test_epoch_seconds_are_accepted(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text("ts,v\n1700000000,1.0\n1700000001.5,2.0\n1700000003,nan\n")
    code, output = invoke(
        "-i", str(tmp_path / "in.csv"), "-o", str(tmp_path / "o.csv"), "--time-column", "ts"
    )
    assert code == 0, output
    assert read(tmp_path / "o.csv")[1:] == [
        ["1700000000", "0", "0"],
        ["1700000001.5", "0", "0"],
        ["1700000003", "0", "0"],
    ]


@pytest.mark.parametrize(
    ("content", "options", "message"),
    [
        # the time column is missing
        ("time,value\n2026-01-01T00:00:00Z,1\n", [], "no time column 'timestamp'"),
        # an unknown value column
        ("timestamp,a\n2026-01-01T00:00:00Z,1\n", ["--value-columns", "b"], "['b'] not in"),
        # a time that is not a time, with its line
        ("timestamp,a\n2026-01-01T00:00:00Z,1\nyesterday,2\n", [], "line 3: bad time"),
        # time going backwards
        (
            "timestamp,a\n2026-01-01T00:00:05Z,1\n2026-01-01T00:00:04Z,2\n",
            [],
            "line 3: time '2026-01-01T00:00:04Z' is earlier",
        ),
        # a value that is not a number
        ("timestamp,a\n2026-01-01T00:00:00Z,high\n", [], "line 2: a: 'high' is not a number"),
        # a short row
        ("timestamp,a,b\n2026-01-01T00:00:00Z,1\n", [], "line 2: 2 fields, expected at least 3"),
        # an empty file
        ("", [], "the file is empty"),
        # a separator of two characters
        ("timestamp,a\n", ["--sep", ";;"], "--sep must be a single character"),
    ],
    ids=[
        "no-time",
        "unknown-column",
        "bad-time",
        "backwards",
        "not-number",
        "short",
        "empty",
        "sep",
    ],
)
def test_bad_input_is_refused_with_its_line(
    tmp_path: Path, content: str, options: list[str], message: str
) -> None:
    (tmp_path / "in.csv").write_text(content)
    code, output = invoke("-i", str(tmp_path / "in.csv"), "-o", str(tmp_path / "o.csv"), *options)
    assert code == 2
    assert message in output


def test_runs_as_a_module(tmp_path: Path) -> None:
    plain_file(tmp_path / "in.csv", n=20)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "stackwatch.detect_cli",
            "-i",
            str(tmp_path / "in.csv"),
            "-o",
            str(tmp_path / "o.csv"),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert len(read(tmp_path / "o.csv")) == 21
