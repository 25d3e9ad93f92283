"""QAL3 on check channels: the CUSUM drift chart of rules C8, offline and live."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.compliance.engine import ComplianceEngine
from stream.compliance.events import EVENTS, ComplianceEvent, EventKind
from stream.compliance.live import LiveCompliance
from stream.model import NS_PER_S, Reading
from stream.plant import PlantConfig, Quantity
from stream.schema import reading_to_point
from stream.series import series_from_readings
from stream.storage.sqlite import SqliteStore

DAY = 86_400 * NS_PER_S
T0 = 1_767_225_600 * NS_PER_S  # 2026-01-01T00:00Z


def config(**check: object) -> PlantConfig:
    span = {"analyser": "nox", "point": "span", "reference": 400.0, "s_ams": 2.0} | check
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
                                    "interval_s": 3600,
                                },
                                "nox_span": {
                                    "quantity": "nox",
                                    "unit": "mg/Nm3",
                                    "valid_range": [0, 2000],
                                    "interval_s": 86_400,
                                    "check": span,
                                },
                            },
                            "limits": {"nox": {"daily": 200}},
                        }
                    }
                }
            }
        }
    )


def checks(values: list[float]) -> list[Reading]:
    """One span check a day at noon, plus hourly NOx readings so the stack has data."""
    out = [
        Reading("p", "s", "nox_span", T0 + i * DAY + DAY // 2, v, "nox", "mg/Nm3")
        for i, v in enumerate(values)
    ]
    out += [
        Reading("p", "s", "nox", T0 + h * 3600 * NS_PER_S, 100.0, "nox", "mg/Nm3")
        for h in range(24 * len(values))
    ]
    return sorted(out, key=lambda r: r.ts_ns)


def test_check_channels_are_not_measurements_and_must_name_an_analyser() -> None:
    cfg = config()
    stack = cfg.plants["p"].stacks["s"]
    assert stack.pollutant_sensors(Quantity.NOX) == ["nox"]
    assert list(stack.check_channels("nox")) == ["nox_span"]
    with pytest.raises(ValueError, match=r"check\.analyser: no analyser 'so2'"):
        config(analyser="so2")


def test_offline_drift_goes_out_of_control_at_the_fourth_check() -> None:
    """C8: s_AMS 2.0 → k 1.002, h 5.70; span deviations +2.5: S⁺ 1.498, 2.996, 4.494, 5.992."""
    reports = ComplianceEngine(config()).evaluate(
        series_from_readings(checks([402.5, 402.5, 402.5, 402.5, 402.5]))
    )
    events = reports[0].qal3_events
    assert [(e.kind, e.point, e.ts_ns) for e in events] == [
        ("drift", "span", T0 + 3 * DAY + DAY // 2)
    ]
    assert events[0].statistic == pytest.approx(5.992)
    assert events[0].limit == pytest.approx(5.70)


async def test_live_drift_event_is_stored_and_handed_on_once(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    await store.start()

    seen: list[ComplianceEvent] = []
    live = LiveCompliance(config(), store, lateness_s=0, on_event=seen.append)
    try:
        for day in range(5):  # a new process would start from the stored history
            batch = [r for r in checks([402.5] * 5) if day * DAY <= r.ts_ns - T0 < (day + 1) * DAY]
            await store.write([reading_to_point(r) for r in batch])
            for _ in range(2):  # a redelivered batch repeats nothing
                derived = await live.add(batch)
                await store.write(derived)
        drift = [e for e in seen if e.kind is EventKind.QAL3_DRIFT]
        assert [(e.plant, e.stack, e.pollutant, e.ts_ns) for e in drift] == [
            ("p", "s", "nox", T0 + 3 * DAY + DAY // 2)
        ]
        stored = await store.scan(EVENTS, T0, T0 + 6 * DAY, {"kind": "qal3_drift"})
        assert [p.ts_ns for p in stored] == [T0 + 3 * DAY + DAY // 2]
        # A restarted engine rebuilds the chart from the stored checks and finds the same
        # event (same kind, source and time: the alerts pipeline deduplicates on that), and
        # no other.
        restarted = LiveCompliance(config(), store, lateness_s=0, on_event=seen.append)
        await restarted.add([r for r in checks([402.5] * 5) if r.sensor == "nox_span"][-1:])
        assert [e.ts_ns for e in seen if e.kind is EventKind.QAL3_DRIFT] == [
            T0 + 3 * DAY + DAY // 2,
            T0 + 3 * DAY + DAY // 2,
        ]
    finally:
        await store.close()
