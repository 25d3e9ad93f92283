"""Live events over longer periods: the yearly invalid-day counter (C4) and the weekly
valid-calibration-range counter (C10), computed from stored results of earlier days."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from stream.compliance.events import EVENTS, ComplianceEvent, EventKind
from stream.compliance.live import LiveCompliance
from stream.model import NS_PER_S, Reading, Status
from stream.plant import PlantConfig
from stream.schema import reading_to_point
from stream.storage.sqlite import SqliteStore

HOUR = 3600 * NS_PER_S
MONDAY = int(datetime(2026, 1, 5, tzinfo=UTC).timestamp()) * NS_PER_S


def config(calibration: dict[str, object] | None = None) -> PlantConfig:
    nox: dict[str, object] = {
        "quantity": "nox",
        "unit": "mg/Nm3",
        "valid_range": [0, 2000],
        "interval_s": 3600,
    }
    if calibration:
        nox["calibration"] = calibration
    return PlantConfig.model_validate(
        {
            "plants": {
                "p": {
                    "stacks": {
                        "s": {
                            "sensors": {"nox": nox},
                            "limits": {"nox": {"daily": 200}},
                        }
                    }
                }
            }
        }
    )


def hourly(days: int, value: float, bad_hours_per_day: int = 0) -> list[Reading]:
    return [
        Reading(
            "p",
            "s",
            "nox",
            MONDAY + (d * 24 + h) * HOUR,
            value,
            "nox",
            "mg/Nm3",
            Status.MALFUNCTION if h < bad_hours_per_day else Status.VALID,
        )
        for d in range(days)
        for h in range(24)
    ]


async def run(tmp_path: Path, cfg: PlantConfig, rs: list[Reading]) -> list[ComplianceEvent]:
    store = SqliteStore(tmp_path / "s.db")
    await store.start()
    seen: list[ComplianceEvent] = []
    live = LiveCompliance(cfg, store, lateness_s=0, on_event=seen.append)
    try:
        for day in range(len(rs) // 24):
            batch = rs[day * 24 : (day + 1) * 24]
            await store.write([reading_to_point(r) for r in batch])
            await store.write(await live.add(batch))
        # close the last day
        tail = [Reading("p", "s", "nox", rs[-1].ts_ns + HOUR, 1.0, "nox", "mg/Nm3")]
        await store.write([reading_to_point(r) for r in tail])
        await store.write(await live.add(tail))
        stored = await store.scan(EVENTS, MONDAY, MONDAY + 400 * 24 * HOUR)
        assert sorted((p.tags["kind"], p.ts_ns) for p in stored) == sorted(
            (e.kind.value, e.ts_ns) for e in seen
        )
        return seen
    finally:
        await store.close()


async def test_the_eleventh_invalid_day_of_a_year_raises_the_reliability_event(
    tmp_path: Path,
) -> None:
    events = await run(tmp_path, config(), hourly(12, 100.0, bad_hours_per_day=4))
    kinds = [e.kind for e in events]
    assert kinds.count(EventKind.INVALID_DAY) == 12
    exceeded = [e for e in events if e.kind is EventKind.INVALID_DAYS_EXCEEDED]
    assert [(e.value, e.ts_ns) for e in exceeded] == [
        (11.0, MONDAY + 10 * 24 * HOUR),
        (12.0, MONDAY + 11 * 24 * HOUR),
    ]


async def test_three_hours_invalid_is_still_a_valid_day(tmp_path: Path) -> None:
    events = await run(tmp_path, config(), hourly(12, 100.0, bad_hours_per_day=3))
    assert events == []


async def test_a_week_above_the_calibration_range_counts_six(tmp_path: Path) -> None:
    """C10: QAL2 range 0-450 → threshold 495; a week entirely above it: +6, new QAL2."""
    cfg = config({"upper": 450.0})
    events = await run(tmp_path, cfg, hourly(7, 500.0) + hourly(14, 100.0)[7 * 24 :])
    ranges = [e for e in events if e.kind is EventKind.CALIBRATION_RANGE]
    sunday = MONDAY + 6 * 24 * HOUR
    assert [(e.ts_ns, e.value, e.limit) for e in ranges] == [(sunday, 1.0, 6.0)]
    assert "new QAL2 required" in ranges[0].message
