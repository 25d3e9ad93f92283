"""Live compliance equals offline compliance whatever the batching, order or restarts."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import yaml

from simulators.plant import PlantSimulator
from stream.compliance.engine import ComplianceEngine
from stream.compliance.events import EVENTS, ComplianceEvent, EventKind
from stream.compliance.live import LiveCompliance
from stream.compliance.points import DAILY, PERIOD, STA
from stream.model import NS_PER_S, Reading, Status
from stream.plant import PlantConfig
from stream.schema import reading_to_point
from stream.series import series_from_readings
from stream.storage.base import Point
from stream.storage.sqlite import SqliteStore

DEMO = Path(__file__).parents[2] / "simulators" / "demo_plant.yaml"
START = int(datetime(2026, 1, 4, 23, tzinfo=UTC).timestamp()) * NS_PER_S  # Vienna midnight


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    db = SqliteStore(tmp_path / "s.db")
    await db.start()
    yield db
    await db.close()


def config() -> PlantConfig:
    raw = yaml.safe_load(DEMO.read_text())
    for stack in raw["plants"]["demo"]["stacks"].values():
        for sensor in stack["sensors"].values():
            sensor["interval_s"] = 300
    return PlantConfig.model_validate(raw)


def readings(cfg: PlantConfig) -> list[Reading]:
    end = START + (2 * 86_400 + 600) * NS_PER_S
    out = []
    for r in PlantSimulator(cfg, seed=3, start_ns=START).stream(until_ns=end):
        hour = (r.ts_ns - START) // (3600 * NS_PER_S)
        bad = r.stack == "boiler1" and r.sensor == "nox" and 1 <= hour < 5
        out.append(replace(r, status=Status.MALFUNCTION) if bad else r)
    return out


async def feed(store: SqliteStore, live: LiveCompliance, batch: list[Reading]) -> None:
    """What the writer does: store the readings, then store what live compliance derives."""
    await store.write([reading_to_point(r) for r in batch])
    derived: list[Point] = await live.add(batch)
    if derived:
        await store.write(derived)


def offline_days(cfg: PlantConfig, rs: list[Reading]) -> dict[tuple[str, str, int], float | None]:
    return {
        (r.stack, r.pollutant, d.date.toordinal()): d.validated_mean
        for r in ComplianceEngine(cfg).evaluate(series_from_readings(rs))
        for d in r.daily
    }


async def stored_days(store: SqliteStore) -> dict[tuple[str, str, int], float | None]:
    days = {}
    for p in await store.scan(DAILY, START, START + 3 * 86_400 * NS_PER_S):
        if p.fields["complete"]:
            day = datetime.fromtimestamp((p.ts_ns + 3600 * NS_PER_S) // NS_PER_S, UTC).date()
            value = p.fields.get("validated_mean")
            days[(p.tags["stack"], p.tags["pollutant"], day.toordinal())] = (
                None if value is None else float(value)
            )
    return days


COMPLETE_DAYS = (date(2026, 1, 5).toordinal(), date(2026, 1, 6).toordinal())


def assert_same(
    offline: dict[tuple[str, str, int], float | None],
    live: dict[tuple[str, str, int], float | None],
) -> None:
    """Both complete days of every limited pollutant are stored, equal to offline."""
    expected = {k for k in offline if k[2] in COMPLETE_DAYS}
    assert len(expected) == 12  # 2 days × 6 limited pollutants of the demo plant
    assert expected <= live.keys()
    for key in expected:
        want, got = offline[key], live[key]
        assert (want is None) == (got is None), key
        if want is not None and got is not None:
            assert abs(want - got) <= 1e-9 * max(1.0, abs(want)), key


async def test_in_order_hourly_batches(store: SqliteStore) -> None:
    cfg = config()
    rs = readings(cfg)
    live = LiveCompliance(cfg, store, lateness_s=0)
    hour = 3600 * NS_PER_S
    for h in range(0, 50):
        await feed(store, live, [r for r in rs if h * hour <= r.ts_ns - START < (h + 1) * hour])
    assert_same(offline_days(cfg, rs), await stored_days(store))
    # Monthly and yearly averages so far: equal to the offline report over the same days.
    complete = [r for r in rs if r.ts_ns < START + 2 * 86_400 * NS_PER_S]
    offline = {
        (r.stack, r.pollutant): r
        for r in ComplianceEngine(cfg).evaluate(series_from_readings(complete))
    }
    periods = await store.scan(PERIOD, START - 10 * 86_400 * NS_PER_S, START)
    assert len(periods) == 12  # month and year of 6 limited pollutants
    for p in periods:
        report = offline[(p.tags["stack"], p.tags["pollutant"])]
        want = (report.monthly if p.tags["period"] == "month" else report.yearly)[0]
        assert p.fields["n_sta"] == want.n_sta
        assert p.fields["valid"] == want.valid
        got = p.fields.get("validated_mean")
        assert (got is None) == (want.validated_mean is None)
        if got is not None and want.validated_mean is not None:
            assert abs(float(got) - want.validated_mean) <= 1e-9 * abs(want.validated_mean)
    sta = await store.scan(
        STA, START, START + 86_400 * NS_PER_S, {"stack": "boiler1", "pollutant": "nox"}
    )
    assert [p.fields["state"] for p in sta][1:5] == ["invalid"] * 4


async def test_restart_mid_day_reloads_the_day_from_the_store(store: SqliteStore) -> None:
    cfg = config()
    rs = readings(cfg)
    half = START + 30 * 3600 * NS_PER_S  # in the middle of day 2
    live = LiveCompliance(cfg, store, lateness_s=0)
    await feed(store, live, [r for r in rs if r.ts_ns < half])
    restarted = LiveCompliance(cfg, store, lateness_s=0)  # empty memory
    await feed(store, restarted, [r for r in rs if r.ts_ns >= half])
    assert_same(offline_days(cfg, rs), await stored_days(store))


async def test_out_of_order_batches_converge(store: SqliteStore) -> None:
    cfg = config()
    rs = readings(cfg)
    live = LiveCompliance(cfg, store, lateness_s=0)
    batches = [rs[i : i + 500] for i in range(0, len(rs), 500)]
    random.Random(1).shuffle(batches)
    for batch in batches:
        await feed(store, live, batch)
    assert_same(offline_days(cfg, rs), await stored_days(store))


async def test_events_are_stored_and_handed_on_once(store: SqliteStore) -> None:
    """Day 1 of boiler1 NOx has 4 invalid hours (LCP: invalid day). With a daily NOx limit of
    50 mg/Nm3 the validated daily averages (~100) exceed 110 % of it, and while a day is
    running the forecast raises pre-alarms."""
    raw = yaml.safe_load(DEMO.read_text())
    for stack in raw["plants"]["demo"]["stacks"].values():
        for sensor in stack["sensors"].values():
            sensor["interval_s"] = 300
    raw["plants"]["demo"]["stacks"]["boiler1"]["limits"]["nox"] = {"daily": 50}
    cfg = PlantConfig.model_validate(raw)
    rs = readings(cfg)
    seen: list[ComplianceEvent] = []
    live = LiveCompliance(cfg, store, lateness_s=0, on_event=seen.append)
    hour = 3600 * NS_PER_S
    for h in range(0, 50):
        batch = [r for r in rs if h * hour <= r.ts_ns - START < (h + 1) * hour]
        await feed(store, live, batch)
        await feed(store, live, batch)  # a redelivery re-evaluates but repeats nothing
    nox = [e for e in seen if (e.stack, e.pollutant) == ("boiler1", "nox")]
    kinds = [e.kind for e in nox]
    assert kinds.count(EventKind.INVALID_DAY) == 1
    # Day 1 is invalid (it does not count), so only day 2 is a limit exceedance.
    exceeded = [e for e in nox if e.kind is EventKind.DAILY_LIMIT_EXCEEDED]
    assert len(exceeded) == 1
    assert exceeded[0].limit == pytest.approx(55.0) and exceeded[0].value is not None
    assert exceeded[0].value > 55.0
    assert kinds.count(EventKind.FORECAST_PREALARM) >= 10
    assert len(seen) == len(set(seen))
    stored = await store.scan(
        EVENTS, START, START + 3 * 86_400 * NS_PER_S, {"stack": "boiler1", "pollutant": "nox"}
    )
    assert sorted(p.tags["kind"] for p in stored) == sorted(k.value for k in kinds)
    others = [e for e in seen if e.stack != "boiler1" or e.pollutant != "nox"]
    assert all(e.kind is not EventKind.DAILY_LIMIT_EXCEEDED for e in others)
