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


def config(interval_s: int = 300, *, gt1_mode: bool = False) -> PlantConfig:
    raw = yaml.safe_load(DEMO.read_text())
    for stack in raw["plants"]["demo"]["stacks"].values():
        for sensor in stack["sensors"].values():
            sensor["interval_s"] = interval_s
    if gt1_mode:
        raw["plants"]["demo"]["stacks"]["gt1"]["sensors"]["mode"] = {
            "quantity": "mode",
            "unit": "-",
            "valid_range": [0, 3],
            "interval_s": interval_s,
        }
    return PlantConfig.model_validate(raw)


def readings(cfg: PlantConfig, span_s: int = 2 * 86_400 + 600) -> list[Reading]:
    end = START + span_s * NS_PER_S
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


def offline_sta(cfg: PlantConfig, rs: list[Reading], end_ns: int) -> dict[tuple[str, ...], float]:
    """Normalised STA of every valid period that ends by ``end_ns``, computed offline."""
    out: dict[tuple[str, ...], float] = {}
    for report in ComplianceEngine(cfg).evaluate(series_from_readings(rs)):
        assert report.sta is not None
        for t, state, value in zip(
            report.sta.start_ns.tolist(),
            report.sta.state.tolist(),
            report.sta.normalised.tolist(),
            strict=True,
        ):
            if state == 0 and t + report.sta_period_s * NS_PER_S <= end_ns:
                out[(report.stack, report.pollutant, str(t))] = value
    return out


async def stored_sta(store: SqliteStore, end_ns: int) -> dict[tuple[str, ...], float]:
    return {
        (p.tags["stack"], p.tags["pollutant"], str(p.ts_ns)): float(p.fields["normalised"])
        for p in await store.scan(STA, START, end_ns)
        # A period re-evaluated from valid to excluded keeps its earlier fields (points merge).
        if p.fields["state"] == "valid"
    }


def assert_same_sta(want: dict[tuple[str, ...], float], got: dict[tuple[str, ...], float]) -> None:
    assert want and want.keys() == got.keys()
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-12), key


async def test_memory_holds_about_a_minute_of_readings_not_the_day(store: SqliteStore) -> None:
    """At 10 s, four hours in one-minute batches: the analysers' and peripherals' readings are
    folded into period totals once the watermark has passed them, so what is held stays at a
    few minutes of readings (plus the plant mode, held whole) while the results stay equal to
    the offline engine's."""
    cfg = config(interval_s=10)
    rs = readings(cfg, span_s=4 * 3600)
    live = LiveCompliance(cfg, store, lateness_s=60)
    minute = 60 * NS_PER_S
    held = []
    for m in range(4 * 60):
        await feed(store, live, [r for r in rs if m * minute <= r.ts_ns - START < (m + 1) * minute])
        held.append(live.held_readings())
    modes = {(k, s.peripheral("mode")) for k, s in cfg.plants["demo"].stacks.items()}
    per_minute = len({(r.stack, r.sensor) for r in rs if (r.stack, r.sensor) not in modes}) * 6
    mode_per_minute = len({(r.stack, r.sensor) for r in rs if (r.stack, r.sensor) in modes}) * 6
    # Lateness, the settling step and the batch: at most four minutes of readings.
    for m, n in enumerate(held):
        assert n <= 4 * per_minute + (m + 1) * mode_per_minute, m
    assert held[-1] < len(rs) / 10
    end = START + 4 * 3600 * NS_PER_S - minute  # the watermark closes the last hour
    assert_same_sta(offline_sta(cfg, rs, end), await stored_sta(store, end))


async def test_a_late_reading_for_a_settled_hour_reopens_it(store: SqliteStore) -> None:
    """Hours already folded into totals get a corrected resend of boiler1's NOx (hour 0, same times,
    new values: the last one wins, as in storage) and a late start-up (plant mode) reading:
    the hours are counted again from the store and the new readings, equal to offline."""
    cfg = config(interval_s=60, gt1_mode=True)
    rs = readings(cfg, span_s=6 * 3600)
    live = LiveCompliance(cfg, store, lateness_s=0)
    hour = 3600 * NS_PER_S
    for h in range(6):
        await feed(store, live, [r for r in rs if h * hour <= r.ts_ns - START < (h + 1) * hour])
    assert live.held_readings() < len(rs) / 10  # hours 0-5 are settled
    corrected = [
        replace(r, value=r.value * 1.5)
        for r in rs
        if (r.stack, r.sensor) == ("boiler1", "nox") and r.ts_ns - START < hour
    ]
    mode = cfg.plants["demo"].stacks["gt1"].peripheral("mode")
    assert mode is not None
    minute = 60 * NS_PER_S
    startup = [  # resent as start-up (1) for the first 40 minutes of hour 3
        Reading("demo", "gt1", mode, START + 3 * hour + m * minute, 1.0, "mode", "-")
        for m in range(40)
    ]
    await feed(store, live, corrected + startup)
    merged = {(r.stack, r.sensor, r.ts_ns): r for r in [*rs, *corrected, *startup]}
    closed = START + 5 * hour  # the watermark is in hour 5
    want = offline_sta(cfg, list(merged.values()), closed)
    got = await stored_sta(store, closed)
    assert_same_sta(want, got)
    boiler_nox = ("boiler1", "nox", str(START))
    assert got[boiler_nox] != offline_sta(cfg, rs, closed)[boiler_nox]
    # gt1 in start-up for 40 of the 60 minutes of hour 3: excluded.
    assert not any(k[0] == "gt1" and k[2] == str(START + 3 * hour) for k in got)
    assert any(k[0] == "gt1" and k[2] == str(START + 2 * hour) for k in got)


async def test_a_period_turned_excluded_leaves_the_monthly_average(store: SqliteStore) -> None:
    """Day 1's hour 3 is resent as start-up (plant mode) while day 2 runs: it turns from valid
    to excluded. Its stored point keeps the earlier numbers (points merge), so the monthly
    average computed when day 2 ends must go by the stored state: it equals offline."""
    cfg = config(interval_s=300, gt1_mode=True)
    rs = readings(cfg)
    live = LiveCompliance(cfg, store, lateness_s=0)
    hour = 3600 * NS_PER_S
    mode = cfg.plants["demo"].stacks["gt1"].peripheral("mode")
    assert mode is not None
    startup = [
        Reading("demo", "gt1", mode, START + 3 * hour + m * 300 * NS_PER_S, 1.0, "mode", "-")
        for m in range(12)
    ]
    for h in range(50):
        await feed(store, live, [r for r in rs if h * hour <= r.ts_ns - START < (h + 1) * hour])
        if h == 30:  # day 1 is complete and stored; day 2 is running
            await feed(store, live, startup)
    merged = {(r.stack, r.sensor, r.ts_ns): r for r in [*rs, *startup]}
    complete = [r for r in merged.values() if r.ts_ns < START + 2 * 86_400 * NS_PER_S]
    offline = {
        (r.stack, r.pollutant): r
        for r in ComplianceEngine(cfg).evaluate(series_from_readings(complete))
    }
    months = [
        p
        for p in await store.scan(PERIOD, START - 10 * 86_400 * NS_PER_S, START)
        if p.tags["period"] == "month" and p.tags["stack"] == "gt1"
    ]
    assert len(months) == 2  # gt1's NOx and CO
    for p in months:
        want = offline[(p.tags["stack"], p.tags["pollutant"])].monthly[0]
        assert p.fields["n_sta"] == want.n_sta
        assert want.validated_mean is not None
        assert float(p.fields["validated_mean"]) == pytest.approx(want.validated_mean, rel=1e-9)


async def test_settled_readings_read_the_plant_mode_like_the_engine(store: SqliteStore) -> None:
    """The mode sensor reports 0.5 for an hour (the engine reads whole mode codes: 0, normal)
    and 2.7 for the next (2, shut-down): readings folded into totals are counted under the
    same mode as the offline engine counts them."""
    cfg = config(interval_s=60, gt1_mode=True)
    hour = 3600 * NS_PER_S
    rs = [
        replace(r, value=0.5 if 1 <= (r.ts_ns - START) // hour < 2 else 2.7)
        if r.sensor == "mode" and 1 <= (r.ts_ns - START) // hour < 3
        else r
        for r in readings(cfg, span_s=4 * 3600)
    ]
    live = LiveCompliance(cfg, store, lateness_s=0)
    for m in range(4 * 6):  # ten-minute batches: every hour is settled in parts
        ten = 600 * NS_PER_S
        await feed(store, live, [r for r in rs if m * ten <= r.ts_ns - START < (m + 1) * ten])
    closed = START + 3 * hour
    got = await stored_sta(store, closed)
    assert_same_sta(offline_sta(cfg, rs, closed), got)
    assert ("gt1", "nox", str(START + hour)) in got  # 0.5: normal operation
    assert ("gt1", "nox", str(START + 2 * hour)) not in got  # 2.7: shut-down, excluded
