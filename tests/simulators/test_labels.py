"""Labels files: write and read back, and clear errors for bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulators.faults import ExcursionCause, FaultEvent, FaultKind
from simulators.labels import LabelsError, read_labels, write_labels
from stream.model import NS_PER_S

T0 = 1_767_225_600 * NS_PER_S  # 2026-01-01T00:00:00Z
HEADER = "plant,stack,sensor,kind,start,end\n"


def test_round_trip_keeps_every_field_and_nanosecond(tmp_path: Path) -> None:
    events = [
        FaultEvent("p", "b1", "nox", FaultKind.SPIKE, T0 + 1, T0 + NS_PER_S + 1, magnitude=80.0),
        FaultEvent("p", "b1", "", FaultKind.STARTUP, T0, T0 + 3600 * NS_PER_S, 0.1),
        FaultEvent(
            "p",
            "b1",
            "co",
            FaultKind.EXCURSION,
            T0,
            T0 + 600 * NS_PER_S,
            3.0,
            ExcursionCause.AIR_SHORTAGE,
        ),
    ]
    path = tmp_path / "sub" / "labels.csv"
    assert write_labels(path, events) == 3
    assert read_labels(path) == [e.label() for e in events]
    lines = path.read_text().splitlines()
    assert lines[0] + "\n" == HEADER
    assert (
        lines[1] == "p,b1,nox,spike,2026-01-01T00:00:00.000000001Z,2026-01-01T00:00:01.000000001Z"
    )
    assert lines[2] == "p,b1,,startup,2026-01-01T00:00:00Z,2026-01-01T01:00:00Z"


def test_reading_tolerates_column_order_bom_blank_lines_and_offsets(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(
        "\ufeffkind,start,end,plant,stack,sensor,note\n\n"
        "drift,2026-01-01T01:00:00+01:00,2026-01-01T00:30:00Z,p,b1,nox,by hand\n",
        encoding="utf-8",
    )
    assert read_labels(path) == [
        FaultEvent("p", "b1", "nox", FaultKind.DRIFT, T0, T0 + 1800 * NS_PER_S)
    ]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("plant,stack,sensor,kind,start\n", "missing column.s. end"),
        (HEADER + "p,b1,nox,spike,2026-01-01T00:00:00Z\n", "line 2: 5 field.s., expected 6"),
        (
            HEADER + "p,b1,nox,bump,2026-01-01T00:00:00Z,2026-01-01T00:00:01Z\n",
            "line 2: kind 'bump' is unknown",
        ),
        (
            HEADER + "p,b1,nox,spike,2026-01-01T00:00:01Z,2026-01-01T00:00:02Z\n"
            "p,b1,nox,spike,yesterday,2026-01-01T00:00:01Z\n",
            "line 3: start 'yesterday' is not",
        ),
        (
            HEADER + "p,b1,nox,spike,2026-01-01T00:00:00,2026-01-01T00:00:01Z\n",
            "line 2: start .* has no UTC offset",
        ),
        (
            HEADER + "p,b1,nox,spike,2026-01-01T00:00:01Z,2026-01-01T00:00:01Z\n",
            "line 2: end .* is not after start",
        ),
        (
            HEADER + ",b1,nox,spike,2026-01-01T00:00:00Z,2026-01-01T00:00:01Z\n",
            "line 2: plant and stack must not be empty",
        ),
    ],
)
def test_bad_files_name_the_line_and_the_reason(tmp_path: Path, body: str, reason: str) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(body)
    with pytest.raises(LabelsError, match=f"^{path}: {reason}"):
        read_labels(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(LabelsError, match="cannot read"):
        read_labels(tmp_path / "nope.csv")
