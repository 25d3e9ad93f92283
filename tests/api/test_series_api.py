"""``GET /series/{measurement}/{field}`` over ASGI, on the stores of the compliance and the
sensor health tests (filled by LiveCompliance, and by LiveDetection and LivePems).

Every served pair answers the stored points of the one series the parameters name; the
parameters and bounds are those of ``/readings/{plant}/{stack}/{sensor}`` (shared code).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from api.routes.series import SERIES
from stream.compliance.points import DAILY, PERIOD, STA
from stream.detect.live import SCORES
from stream.model import NS_PER_S
from stream.pems.live import PEMS
from stream.schema import READINGS
from stream.storage.sqlite import SqliteStore
from tests.api import test_compliance_api as comp
from tests.api import test_sensors_api as det
from tests.api.test_compliance_api import (
    Populated,
    assert_error,
    client,
    compliance_data,
    iso,
    make_app,
    no_environment,
)
from tests.api.test_sensors_api import Detected, detection_data

__all__ = ["compliance_data", "detection_data", "no_environment"]  # fixtures used here

B1 = {"plant": "alpha", "stack": "b1"}
GT1 = {"plant": "demo", "stack": "gt1"}
DAY = {"start": "2026-01-30T23:00:00Z", "end": "2026-02-02T02:10:00Z"}  # START to NOW
LAST_HOUR = {"start": det.at(0), "end": det.at(det.STEPS)}


@pytest.fixture
async def comp_store(compliance_data: Populated) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(compliance_data.path, now_ns=lambda: comp.NOW)
    await s.start()
    yield s
    await s.close()


@pytest.fixture
async def det_store(detection_data: Detected) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(detection_data.path, now_ns=lambda: det.NOW)
    await s.start()
    yield s
    await s.close()


@pytest.fixture
async def alpha(comp_store: SqliteStore) -> AsyncIterator[httpx.AsyncClient]:
    async with client(make_app(comp_store)) as c:
        yield c


@pytest.fixture
async def demo(det_store: SqliteStore) -> AsyncIterator[httpx.AsyncClient]:
    async with client(det.make_app(det_store)) as c:
        yield c


def points(resp: httpx.Response) -> list[tuple[str, float]]:
    assert resp.status_code == 200, resp.text
    return [(p["time"], p["value"]) for p in resp.json()["points"]]


# --------------------------------------------------------------------------- served pairs


@pytest.mark.parametrize("field", ["normalised", "validated", "mass_kg", "n_valid"])
async def test_short_term_averages(
    alpha: httpx.AsyncClient, comp_store: SqliteStore, field: str
) -> None:
    resp = await alpha.get(f"/series/{STA}/{field}", params={**B1, "pollutant": "nox", **DAY})
    stored = await comp_store.scan(STA, comp.START, comp.NOW, comp.NOX_B1)
    want = [(iso(p.ts_ns), float(p.fields[field])) for p in stored if field in p.fields]
    assert points(resp) == want
    assert len(want) >= 40  # the invalid hours have no normalised or validated value
    body = resp.json()
    assert (body["measurement"], body["field"], body["pollutant"], body["sensor"]) == (
        STA,
        field,
        "nox",
        None,
    )
    unit = {"normalised": "mg/Nm3", "validated": "mg/Nm3", "mass_kg": "kg", "n_valid": "count"}
    assert body["unit"] == unit[field]


async def test_daily_and_period_series(alpha: httpx.AsyncClient, comp_store: SqliteStore) -> None:
    daily = await alpha.get(
        f"/series/{DAILY}/valid_hours", params={**B1, "pollutant": "nox", **DAY}
    )
    stored = await comp_store.scan(DAILY, comp.START, comp.NOW, comp.NOX_B1)
    assert points(daily) == [(iso(p.ts_ns), p.fields["valid_hours"]) for p in stored]
    assert [v for _, v in points(daily)] == [20.0, 24.0, 3.0]
    assert daily.json()["unit"] == "h"

    period = await alpha.get(
        f"/series/{PERIOD}/coverage",
        params={
            **B1,
            "pollutant": "nox",
            "period": "year",
            "start": "2025-12-31T23:00:00Z",  # local 1 January: the year's point
            "end": "2026-01-31T00:00:00Z",
        },
    )
    [year] = await comp_store.scan(
        PERIOD, comp.START - 31 * 86_400 * NS_PER_S, comp.NOW, comp.NOX_B1 | {"period": "year"}
    )
    assert points(period) == [("2025-12-31T23:00:00Z", year.fields["coverage"])]
    assert (period.json()["period"], period.json()["unit"]) == ("year", "fraction")


async def test_readings_equal_the_readings_endpoint(alpha: httpx.AsyncClient) -> None:
    for extra in ({}, {"every": "1h", "fn": "max"}, {"every": "15m", "fn": "count"}):
        params = {"start": "2026-02-01T00:00:00Z", "end": "2026-02-02T00:00:00Z", **extra}
        series = await alpha.get(
            f"/series/{READINGS}/value", params={**B1, "sensor": "o2", **params}
        )
        readings = await alpha.get("/readings/alpha/b1/o2", params=params)
        assert points(series) == points(readings) != []
        for name in ("start", "end", "every", "fn", "unit"):
            assert series.json()[name] == readings.json()[name], name


async def test_anomaly_scores(demo: httpx.AsyncClient, det_store: SqliteStore) -> None:
    resp = await demo.get(f"/series/{SCORES}/score", params={**GT1, "sensor": "co", **LAST_HOUR})
    values = [v for _, v in points(resp)]
    assert len(values) == await det_store.count(
        SCORES, "score", det.START, det.NOW, {"sensor": "co"}
    )
    assert all(0.0 <= v <= 1.0 for v in values)
    assert values[-1] == 1.0  # stuck: a rule fault scores 1
    assert resp.json()["unit"] == "likelihood"
    mean = await demo.get(
        f"/series/{SCORES}/score",
        params={**GT1, "sensor": "co", **LAST_HOUR, "every": "1h", "fn": "mean"},
    )
    assert len(points(mean)) == 1


async def test_pems_prediction_interval_and_measured(
    demo: httpx.AsyncClient, detection_data: Detected
) -> None:
    by_field = {}
    for field in ("prediction", "lower", "upper", "measured"):
        resp = await demo.get(
            f"/series/{PEMS}/{field}", params={**GT1, "sensor": "nox", **LAST_HOUR}
        )
        by_field[field] = dict(points(resp))
        assert resp.json()["unit"] == "mg/Nm3"  # the analyser's
    times = list(by_field["prediction"])
    assert times and list(by_field["lower"]) == times == list(by_field["upper"])
    assert all(
        by_field["lower"][t] <= by_field["prediction"][t] <= by_field["upper"][t] for t in times
    )
    nox = {
        det.at((r.ts_ns - det.START) // NS_PER_S): r.value
        for r in detection_data.readings
        if r.sensor == "nox"
    }
    assert by_field["measured"] and all(nox[t] == v for t, v in by_field["measured"].items())


# ----------------------------------------------------------------------------- refused


@pytest.mark.parametrize(
    ("path", "params", "needle"),
    [
        ("/series/detection_events/score", GT1 | {"sensor": "nox"}, "detection_events.score"),
        ("/series/readings/status", GT1 | {"sensor": "nox"}, "readings.status"),
        ("/series/compliance_sta/state", B1 | {"pollutant": "nox"}, "compliance_sta.state"),
        ("/series/readings/value", {"plant": "nope", "stack": "b1", "sensor": "o2"}, "'nope'"),
        ("/series/readings/value", {"plant": "demo", "stack": "b1", "sensor": "o2"}, "demo/b1"),
        ("/series/readings/value", GT1 | {"sensor": "so2"}, "demo/gt1/so2"),
        ("/series/anomaly_scores/score", GT1 | {"sensor": "load"}, "not watched"),
        ("/series/pems/prediction", GT1 | {"sensor": "o2"}, "PEMS"),
        ("/series/compliance_daily/valid_hours", GT1 | {"pollutant": "so2"}, "'so2'"),
    ],
)
async def test_unknown_pairs_and_series_are_404(
    demo: httpx.AsyncClient, path: str, params: dict[str, str], needle: str
) -> None:
    assert needle in assert_error(await demo.get(path, params=params), 404, "not_found")


NOX = GT1 | {"sensor": "nox"}


@pytest.mark.parametrize(
    ("path", "params", "needle"),
    [
        ("/series/readings/value", {"stack": "gt1", "sensor": "nox"}, "query.plant"),
        ("/series/readings/value", GT1, "sensor is required"),
        ("/series/readings/value", NOX | {"pollutant": "nox"}, "pollutant does not apply"),
        ("/series/compliance_sta/validated", GT1 | {"pollutant": "nox", "sensor": "nox"}, "sensor"),
        ("/series/compliance_period/coverage", GT1 | {"pollutant": "nox"}, "period is required"),
        (
            "/series/compliance_sta/validated",
            GT1 | {"pollutant": "nox", "period": "month"},
            "period",
        ),
        (
            "/series/compliance_period/coverage",
            GT1 | {"pollutant": "nox", "period": "week"},
            "query.period",
        ),
        ("/series/readings/value", NOX | {"start": "2026-03-02T08:00:00"}, "query.start"),
        ("/series/readings/value", NOX | {"start": "1772438400"}, "query.start"),
        ("/series/readings/value", NOX | {"end": "0001-01-01T00:00:00Z"}, "query.end"),
        ("/series/readings/value", NOX | {"start": det.at(10), "end": det.at(5)}, "before end"),
        ("/series/readings/value", NOX | {"start": "2026-01-01T00:00:00Z"}, "31 days"),
        ("/series/readings/value", NOX | {"every": "0"}, "query.every"),
        ("/series/readings/value", NOX | {"every": "1m", "fn": "median"}, "query.fn"),
    ],
)
async def test_bad_parameters_are_422(
    demo: httpx.AsyncClient, path: str, params: dict[str, str], needle: str
) -> None:
    assert needle in assert_error(await demo.get(path, params=params), 422, "validation_error")


async def test_the_point_cap_applies(det_store: SqliteStore) -> None:
    async with client(det.make_app(det_store, max_points=100)) as c:
        raw = await c.get(f"/series/{SCORES}/score", params={**NOX, **LAST_HOUR})
        coarse = await c.get(f"/series/{SCORES}/score", params={**NOX, **LAST_HOUR, "every": "1m"})
    assert "more than 100 points" in assert_error(raw, 422, "validation_error")
    assert len(points(coarse)) == 22  # 1300 s in epoch-aligned minutes


async def test_openapi_documents_the_new_endpoints(demo: httpx.AsyncClient) -> None:
    doc = (await demo.get("/openapi.json")).json()
    op = doc["paths"]["/series/{measurement}/{field}"]["get"]
    for measurement, stored in SERIES.items():
        assert f"`{measurement}`" in op["description"]
        assert all(f"`{f}`" in op["description"] for f in stored.fields)
    error = "#/components/schemas/ErrorOut"
    paths: dict[str, Any] = doc["paths"]
    for path in (
        "/series/{measurement}/{field}",
        "/compliance/{plant}/{stack}/latest",
        "/compliance/{plant}/daily",
        "/compliance/{plant}/monthly",
        "/compliance/{plant}/yearly",
        "/sensors/health",
    ):
        responses = paths[path]["get"]["responses"]
        for code in ("401", "403", "404", "422", "503"):
            assert responses[code]["content"]["application/json"]["schema"]["$ref"] == error
    schemas = doc["components"]["schemas"]
    for name in (
        "StoredSeriesOut",
        "ComplianceLatestOut",
        "DailyComplianceOut",
        "PeriodComplianceOut",
        "SensorsHealthOut",
        "SensorHealthOut",
    ):
        assert schemas[name]["examples"], name
