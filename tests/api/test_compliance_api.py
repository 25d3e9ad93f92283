"""The compliance endpoints over ASGI, on a real SqliteStore filled by LiveCompliance.

The "alpha" plant (Europe/Vienna) is simulated from local midnight of 2026-01-31 for 51 h
(readings every 5 min), fed hour by hour through the store and LiveCompliance as the writer
does; NOW is 2026-02-02 03:10 local. Stack b1 limits NOx and CO (hourly STA, LCP); its NOx
analyser is in malfunction from 01:00 to 05:00 on 31 January: 4 invalid hours, an invalid day
(more than 3). Stack b2 has no limits. The expected values are read from the store directly.
One test answers the same requests from a real InfluxDB holding the same points.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI

from api.compliance_schemas import StaOut
from api.context import AppContext, ModelsInfo
from api.main import create_app
from api.settings import ApiSettings
from simulators.plant import PlantSimulator
from stream.compliance.live import LiveCompliance
from stream.compliance.points import DAILY, PERIOD, STA
from stream.model import NS_PER_S, Reading, Status
from stream.plant import PlantConfig
from stream.schema import reading_to_point
from stream.storage.base import FieldValue, Point, Store
from stream.storage.influx import InfluxStore
from stream.storage.settings import InfluxSettings
from stream.storage.sqlite import SqliteStore
from tests.servers import InfluxServer

_S300 = {"interval_s": 300}
CONFIG = PlantConfig.model_validate(
    {
        "plants": {
            "alpha": {
                "name": "Alpha works",
                "timezone": "Europe/Vienna",
                "stacks": {
                    "b1": {
                        "reference_o2": 6,
                        "sensors": {
                            "nox": {"quantity": "nox", "unit": "mg/Nm3", "valid_range": [0, 2000]}
                            | _S300,
                            "co": {"quantity": "co", "unit": "mg/Nm3", "valid_range": [0, 5000]}
                            | _S300,
                            "o2": {"quantity": "o2", "unit": "%", "valid_range": [0, 25]} | _S300,
                            "flow": {
                                "quantity": "flow",
                                "unit": "Nm3/h",
                                "valid_range": [0, 200_000],
                            }
                            | _S300,
                        },
                        "compliance": {"lta_min_coverage": 0.02},
                        "limits": {
                            "nox": {"daily": 200, "half_hour": 400, "monthly": 90},
                            "co": {"daily": 100, "half_hour": 200},
                        },
                    },
                    "b2": {
                        "sensors": {
                            "o2": {"quantity": "o2", "unit": "%", "valid_range": [0, 25]} | _S300
                        }
                    },
                },
            }
        }
    }
)

HOUR = 3600 * NS_PER_S
START = int(datetime(2026, 1, 30, 23, tzinfo=UTC).timestamp()) * NS_PER_S  # Vienna midnight
NOW = START + 51 * HOUR + 10 * 60 * NS_PER_S  # 2026-02-02T02:10Z, 03:10 local
NOX_B1 = {"plant": "alpha", "stack": "b1", "pollutant": "nox"}


def readings() -> list[Reading]:
    out = []
    for r in PlantSimulator(CONFIG, seed=3, start_ns=START).stream(until_ns=NOW - 300 * NS_PER_S):
        hour = (r.ts_ns - START) // HOUR
        bad = r.stack == "b1" and r.sensor == "nox" and 1 <= hour < 5
        out.append(replace(r, status=Status.MALFUNCTION) if bad else r)
    return out


async def populate(store: Store) -> list[Point]:
    """Feed the readings hour by hour as the writer does; return every point written."""
    live = LiveCompliance(CONFIG, store, lateness_s=0)
    rs = readings()
    written: list[Point] = []
    for h in range(52):
        batch = [r for r in rs if h * HOUR <= r.ts_ns - START < (h + 1) * HOUR]
        if not batch:
            continue
        stored = [reading_to_point(r) for r in batch]
        await store.write(stored)
        derived = await live.add(batch)
        await store.write(derived)
        written += stored + derived
    return written


@dataclass(frozen=True)
class Populated:
    path: Path
    points: list[Point]


@pytest.fixture(scope="module")
def compliance_data(tmp_path_factory: pytest.TempPathFactory) -> Populated:
    """The store file, filled once per module (its own event loop: a sync fixture)."""
    path = tmp_path_factory.mktemp("compliance") / "store.sqlite"

    async def build() -> list[Point]:
        store = SqliteStore(path, now_ns=lambda: NOW)
        await store.start()
        try:
            return await populate(store)
        finally:
            await store.close()

    return Populated(path, asyncio.run(build()))


@pytest.fixture(autouse=True)
def no_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Settings come from the test only: no STACKWATCH_* variables, no .env file."""
    for name in list(os.environ):
        if name.startswith("STACKWATCH_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
async def store(compliance_data: Populated) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(compliance_data.path, now_ns=lambda: NOW)
    await s.start()
    yield s
    await s.close()


def make_app(
    store: Store,
    config: PlantConfig = CONFIG,
    *,
    now_ns: int = NOW,
    models: Callable[[], ModelsInfo] | None = None,
    **settings: Any,
) -> FastAPI:
    ctx = AppContext(
        config=config,
        store=store,
        settings=ApiSettings.model_validate(settings),
        demo=True,
        components=dict,
        now_ns=lambda: now_ns,
        models=models,
    )
    return create_app(ctx)


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


@pytest.fixture
async def api(store: SqliteStore) -> AsyncIterator[httpx.AsyncClient]:
    async with client(make_app(store)) as c:
        yield c


def assert_error(resp: httpx.Response, status: int, code: str) -> str:
    """Every error has exactly the shape {"error": {"code", "message", "details"}}."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    return str(body["error"]["message"])


def iso(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / NS_PER_S, UTC).isoformat().replace("+00:00", "Z")


def local_day(ts_ns: int) -> str:
    """The Vienna calendar day of a time, ``YYYY-MM-DD``."""
    utc = datetime.fromtimestamp(ts_ns // NS_PER_S, UTC)
    return utc.astimezone(ZoneInfo("Europe/Vienna")).date().isoformat()


async def stored_days(store: Store, **tags: str) -> dict[str, dict[str, FieldValue]]:
    rows = await store.scan(DAILY, START - 86_400 * NS_PER_S, NOW, tags)
    return {local_day(p.ts_ns): dict(p.fields) for p in rows}


# ------------------------------------------------------------------------------------ latest


async def test_latest_gives_the_newest_sta_and_todays_running_record(
    api: httpx.AsyncClient, store: SqliteStore
) -> None:
    resp = await api.get("/compliance/alpha/b1/latest")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["plant"], body["stack"], body["timezone"]) == ("alpha", "b1", "Europe/Vienna")
    assert body["time"] == "2026-02-02T02:10:00Z"
    assert [p["pollutant"] for p in body["pollutants"]] == ["nox", "co"]
    nox = body["pollutants"][0]
    assert nox["sta_period_s"] == 3600
    limits = nox["limits"]
    assert (limits["daily"], limits["half_hour"], limits["monthly"]) == (200.0, 400.0, 90.0)
    assert limits["daily_limit"]["value"] == pytest.approx(220.0)  # LCP: 110 % of the ELV
    assert limits["sta_limit"]["value"] == 400.0
    assert limits["max_invalid_sta_per_day"] == 3

    # The newest STA is the last closed hour (01:00-02:00Z), exactly as stored.
    [newest] = await store.scan(STA, NOW - HOUR - 10 * 60 * NS_PER_S, NOW, NOX_B1)
    sta = nox["short_term"]
    assert (sta["start"], sta["end"]) == ("2026-02-02T01:00:00Z", "2026-02-02T02:00:00Z")
    assert newest.ts_ns == NOW - HOUR - 10 * 60 * NS_PER_S
    assert sta["state"] == newest.fields["state"] == "valid"
    assert sta["normalised"] == newest.fields["normalised"]
    assert sta["validated"] == newest.fields["validated"]
    assert sta["validated"] < sta["normalised"]  # minus the confidence interval
    assert sta["n_valid"] == newest.fields["n_valid"] == 12
    assert sta["mass_kg"] == newest.fields["mass_kg"]
    assert sta["above_limit"] is False

    # Today (2 February, local) so far: 3 hours evaluated, the day is not over.
    today = nox["today"]
    stored = (await stored_days(store, **NOX_B1))["2026-02-02"]
    assert today["date"] == "2026-02-02"
    assert today["validated_mean"] == stored["validated_mean"]
    assert today["valid_hours"] == stored["valid_hours"] == 3.0
    assert today["complete"] is stored["complete"] is False
    assert today["valid"] is False  # fewer than 6 valid hours so far
    assert (today["valid_sta"], today["invalid_sta"], today["availability"]) == (3, 0, 1.0)
    assert today["above_limit"] is None  # a day is judged once it is over


async def test_latest_of_a_stack_without_limits_and_unknown_ones(api: httpx.AsyncClient) -> None:
    resp = await api.get("/compliance/alpha/b2/latest")
    assert resp.status_code == 200
    assert resp.json()["pollutants"] == []
    assert "plant 'nope'" in assert_error(
        await api.get("/compliance/nope/b1/latest"), 404, "not_found"
    )
    assert "alpha/nope" in assert_error(
        await api.get("/compliance/alpha/nope/latest"), 404, "not_found"
    )


async def test_latest_without_data_has_nulls(tmp_path: Path) -> None:
    empty = SqliteStore(tmp_path / "empty.sqlite")
    await empty.start()
    try:
        async with client(make_app(empty)) as c:
            body = (await c.get("/compliance/alpha/b1/latest")).json()
    finally:
        await empty.close()
    assert [(p["short_term"], p["today"]) for p in body["pollutants"]] == [(None, None)] * 2


# ------------------------------------------------------------------------------------- daily


async def test_daily_records_are_the_stored_ones(
    api: httpx.AsyncClient, store: SqliteStore
) -> None:
    resp = await api.get("/compliance/alpha/daily", params={"end": "2026-02-02"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["start"], body["end"]) == ("2026-01-03", "2026-02-02")  # 31 days by default
    assert [(s["stack"], s["pollutant"]) for s in body["series"]] == [("b1", "nox"), ("b1", "co")]
    for series in body["series"]:
        tags = {"plant": "alpha", "stack": "b1", "pollutant": series["pollutant"]}
        stored = await stored_days(store, **tags)
        assert [d["date"] for d in series["days"]] == ["2026-01-31", "2026-02-01", "2026-02-02"]
        for day in series["days"]:
            f = stored[day["date"]]
            # Read through numeric series, the booleans are derived: they equal the stored ones.
            assert day["valid"] is f["valid"]
            assert day["invalid_day"] is f["invalid_day"]
            assert day["complete"] is f["complete"]
            for name in ("validated_mean", "measured_mean", "valid_hours"):
                assert day[name] == f.get(name), name
            for name in ("valid_sta", "invalid_sta", "excluded_sta"):
                assert day[name] == f[name], name
    nox = body["series"][0]
    jan31, feb1, _ = nox["days"]
    assert (jan31["invalid_day"], jan31["invalid_sta"], jan31["valid_sta"]) == (True, 4, 20)
    assert jan31["availability"] == pytest.approx(20 / 24)
    assert jan31["above_limit"] is None  # an invalid day is not judged
    assert (feb1["valid"], feb1["complete"], feb1["availability"]) == (True, True, 1.0)
    assert feb1["above_limit"] is (feb1["validated_mean"] > 220.0)
    assert nox["invalid_days"] == 1
    assert nox["availability"] == pytest.approx((20 + 24 + 3) / (24 + 24 + 3))


@pytest.mark.parametrize(
    ("params", "dates"),
    [
        ({"start": "2026-02-01", "end": "2026-02-01"}, ["2026-02-01"]),  # end included
        ({"start": "2026-01-31", "end": "2026-02-01"}, ["2026-01-31", "2026-02-01"]),
        ({"start": "2025-02-02", "end": "2026-02-02"}, ["2026-01-31", "2026-02-01", "2026-02-02"]),
        ({"start": "2026-02-02"}, ["2026-02-02"]),  # end: today (local)
        ({}, ["2026-01-31", "2026-02-01", "2026-02-02"]),
        ({"end": "2026-01-30"}, []),
    ],
)
async def test_daily_range(
    api: httpx.AsyncClient, params: dict[str, str], dates: list[str]
) -> None:
    resp = await api.get("/compliance/alpha/daily", params={"pollutant": "nox", **params})
    assert resp.status_code == 200, resp.text
    [series] = resp.json()["series"]
    assert [d["date"] for d in series["days"]] == dates


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"start": "2026-2-1"}, "query.start"),
        ({"start": "20260201"}, "query.start"),
        ({"end": "1769900000"}, "query.end"),  # a Unix time is not a date
        ({"end": "2026-02-30"}, "query.end"),
        ({"start": "1969-12-31"}, "query.start"),
        ({"end": "2262-01-01"}, "query.end"),
        ({"stack": "x" * 65}, "query.stack"),
    ],
)
async def test_daily_refuses_bad_parameters(
    api: httpx.AsyncClient, params: dict[str, str], loc: str
) -> None:
    resp = await api.get("/compliance/alpha/daily", params=params)
    assert_error(resp, 422, "validation_error")
    assert [d["loc"] for d in resp.json()["error"]["details"]] == [loc]


async def test_daily_refuses_empty_and_long_ranges(api: httpx.AsyncClient) -> None:
    backwards = {"start": "2026-02-02", "end": "2026-02-01"}
    assert "start" in assert_error(
        await api.get("/compliance/alpha/daily", params=backwards), 422, "validation_error"
    )
    year_and_a_day = {"start": "2025-02-01", "end": "2026-02-02"}  # 367 days
    assert "366 days" in assert_error(
        await api.get("/compliance/alpha/daily", params=year_and_a_day), 422, "validation_error"
    )


@pytest.mark.parametrize(
    ("path", "params", "names"),
    [
        ("/compliance/nope/daily", {}, "plant 'nope'"),
        ("/compliance/alpha/daily", {"stack": "nope"}, "alpha/nope"),
        ("/compliance/alpha/daily", {"pollutant": "so2"}, "'so2'"),
        ("/compliance/alpha/daily", {"stack": "b2", "pollutant": "nox"}, "alpha/b2"),
        ("/compliance/alpha/monthly", {"pollutant": "dust"}, "'dust'"),
        ("/compliance/nope/yearly", {}, "plant 'nope'"),
    ],
)
async def test_unknown_plant_stack_or_pollutant_is_404(
    api: httpx.AsyncClient, path: str, params: dict[str, str], names: str
) -> None:
    assert names in assert_error(await api.get(path, params=params), 404, "not_found")


async def test_filters_select_one_series(api: httpx.AsyncClient) -> None:
    resp = await api.get("/compliance/alpha/daily", params={"stack": "b1", "pollutant": "co"})
    assert [(s["stack"], s["pollutant"]) for s in resp.json()["series"]] == [("b1", "co")]
    resp = await api.get("/compliance/alpha/daily", params={"stack": "b2"})
    assert resp.json()["series"] == []  # a stack without limits


# ------------------------------------------------------------------------------ month, year


async def test_monthly_averages_with_invalid_days_and_availability(
    api: httpx.AsyncClient, store: SqliteStore
) -> None:
    resp = await api.get("/compliance/alpha/monthly", params={"year": 2026, "pollutant": "nox"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["period"], body["start"], body["end"]) == ("month", "2026-01-01", "2027-01-01")
    [series] = body["series"]
    jan, feb = series["periods"]
    stored = {
        local_day(p.ts_ns): p.fields
        for p in await store.scan(PERIOD, START - 40 * 86_400 * NS_PER_S, NOW, NOX_B1)
        if p.tags["period"] == "month"
    }
    assert set(stored) == {"2026-01-01", "2026-02-01"}

    # January: only the invalid 31st, whose STA never enter the average.
    assert (jan["start"], jan["end"], jan["complete"]) == ("2026-01-01", "2026-02-01", True)
    assert (jan["n_sta"], jan["validated_mean"], jan["valid"]) == (0, None, False)
    assert (jan["days"], jan["invalid_days"]) == (1, 1)
    assert jan["availability"] == pytest.approx(20 / 24)
    assert jan["valid"] is stored["2026-01-01"]["valid"]

    # February so far: the average of the 1st (stored at the end of that day), the 2nd's STA
    # counted in the availability; coverage above the configured 2 %: judged, above 90.
    f = stored["2026-02-01"]
    assert (feb["start"], feb["end"], feb["complete"]) == ("2026-02-01", "2026-03-01", False)
    assert (feb["validated_mean"], feb["n_sta"], feb["coverage"]) == (
        f["validated_mean"],
        f["n_sta"],
        f["coverage"],
    )
    assert feb["valid"] is f["valid"] is True
    assert feb["above_limit"] is True and feb["validated_mean"] > 90
    assert (feb["days"], feb["invalid_days"], feb["valid_sta"], feb["invalid_sta"]) == (2, 0, 27, 0)
    assert feb["availability"] == 1.0


async def test_yearly_averages_count_the_invalid_days_of_the_year(
    api: httpx.AsyncClient, store: SqliteStore
) -> None:
    resp = await api.get("/compliance/alpha/yearly", params={"start_year": 2024, "end_year": 2026})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["period"], body["start"], body["end"]) == ("year", "2024-01-01", "2027-01-01")
    nox, co = body["series"]
    [year] = nox["periods"]  # only years with stored data
    [stored] = [
        p
        for p in await store.scan(PERIOD, START - 40 * 86_400 * NS_PER_S, NOW, NOX_B1)
        if p.tags["period"] == "year"
    ]
    assert (year["start"], year["end"], year["complete"]) == ("2026-01-01", "2027-01-01", False)
    assert year["validated_mean"] == stored.fields["validated_mean"]
    assert year["valid"] is stored.fields["valid"] is False  # 24 h of a year: too little
    assert year["above_limit"] is None
    assert (year["days"], year["invalid_days"]) == (3, 1)
    assert nox["limits"]["max_invalid_days_per_year"] == 10
    assert co["periods"][0]["invalid_days"] == 0  # the CO analyser was fine
    default = await api.get("/compliance/alpha/yearly")  # this year
    assert default.json()["start"] == "2026-01-01" and default.json()["series"] == body["series"]


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("/compliance/alpha/monthly", {"year": "1969"}, "query.year"),
        ("/compliance/alpha/monthly", {"year": "2262"}, "query.year"),
        ("/compliance/alpha/monthly", {"year": "twenty"}, "query.year"),
        ("/compliance/alpha/yearly", {"start_year": "2026", "end_year": "2025"}, "start_year"),
        ("/compliance/alpha/yearly", {"start_year": "2010", "end_year": "2026"}, "10 years"),
    ],
)
async def test_period_parameters_are_checked(
    api: httpx.AsyncClient, path: str, params: dict[str, str], message: str
) -> None:
    assert message in assert_error(await api.get(path, params=params), 422, "validation_error")


# ------------------------------------------------------------------------------- InfluxDB

SAME_ANSWERS: list[tuple[str, dict[str, str]]] = [
    ("/compliance/alpha/b1/latest", {}),
    ("/compliance/alpha/daily", {"start": "2026-01-30"}),
    ("/compliance/alpha/monthly", {}),
    ("/compliance/alpha/yearly", {"start_year": "2025"}),
    (
        "/series/compliance_sta/validated",
        {"plant": "alpha", "stack": "b1", "pollutant": "nox", "start": "2026-01-31T00:00:00Z"},
    ),
    (
        "/series/compliance_sta/n_valid",
        {"plant": "alpha", "stack": "b1", "pollutant": "nox", "every": "1d", "fn": "sum"},
    ),
    (
        "/series/compliance_daily/valid_hours",
        {"plant": "alpha", "stack": "b1", "pollutant": "co", "start": "2026-01-20T00:00:00Z"},
    ),
    (
        "/series/compliance_period/validated_mean",
        {
            "plant": "alpha",
            "stack": "b1",
            "pollutant": "nox",
            "period": "month",
            "start": "2026-01-15T00:00:00Z",
        },
    ),
    (
        "/series/readings/value",
        {"plant": "alpha", "stack": "b1", "sensor": "o2", "every": "1h", "fn": "max"},
    ),
]


async def test_influxdb_answers_like_sqlite(
    store: SqliteStore,
    compliance_data: Populated,
    influx_server: InfluxServer,
    influx_db: str,
) -> None:
    influx = InfluxStore(
        InfluxSettings.model_validate({"url": influx_server.url, "database": influx_db})
    )
    await influx.start()
    try:
        await influx.write(compliance_data.points)
        async with client(make_app(store)) as lite, client(make_app(influx)) as flux:
            for path, params in SAME_ANSWERS:
                want, got = await lite.get(path, params=params), await flux.get(path, params=params)
                assert (want.status_code, got.status_code) == (200, 200), (path, got.text)
                assert got.json() == want.json(), path
                assert want.json() != {}
    finally:
        await influx.close()


def test_the_fixture_data_spans_two_months() -> None:
    # Guards the scenario the tests rely on (local days, not UTC days).
    assert local_day(START) == "2026-01-31" and local_day(NOW) == "2026-02-02"
    assert date.fromisoformat(local_day(NOW)).month == 2


def test_a_period_re_evaluated_to_excluded_shows_no_numbers() -> None:
    """Re-evaluation (late plant-mode data) turned a valid hour into an excluded one; the stored
    point keeps its earlier numbers (points merge), which must not be shown as its value."""
    stale: dict[str, FieldValue] = {
        "state": "excluded",
        "n_valid": 4,
        "normalised": 180.0,
        "validated": 144.0,
    }
    sta = StaOut.of(NOW, stale, 3600, 400.0)
    assert (sta.state, sta.normalised, sta.validated, sta.above_limit) == (
        "excluded",
        None,
        None,
        None,
    )
    valid = StaOut.of(NOW, {**stale, "state": "valid"}, 3600, 100.0)
    assert (valid.normalised, valid.validated, valid.above_limit) == (180.0, 144.0, True)
