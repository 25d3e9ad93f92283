"""The API end to end over ASGI, on top of a real SqliteStore with a fixed clock.

Readings of the "alpha" plant (NOW = 2024-01-01T12:00Z):
  nox: 999 at 10:00 (outside the default last hour), then 1..10 at 11:50, 11:51, ... 11:59
  o2:  7.5 at 11:58, status maintenance
and of the "beta" plant: so2 42 at 11:59.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.auth import validate_api_settings
from api.context import AppContext, ComponentHealth
from api.main import create_app
from api.settings import ApiSettings
from stream.model import NS_PER_S, Reading, Status, ns_from_datetime
from stream.plant import PlantConfig
from stream.schema import reading_to_point
from stream.storage.base import Store
from stream.storage.influx import InfluxStore
from stream.storage.settings import InfluxSettings
from stream.storage.sqlite import SqliteStore
from tests.servers import free_port

NOW = ns_from_datetime(datetime(2024, 1, 1, 12, tzinfo=UTC))
MIN = 60 * NS_PER_S
TOKEN = "k7Qp2xVb9LmZr4Tn8WcYe3Hd"  # 24 characters

CONFIG = PlantConfig.model_validate(
    {
        "plants": {
            "alpha": {
                "name": "Alpha works",
                "timezone": "Europe/Paris",
                "stacks": {
                    "b1": {
                        "name": "Boiler 1",
                        "reference_o2": 6,
                        "sensors": {
                            "nox": {"quantity": "nox", "unit": "mg/Nm3", "valid_range": [0, 2000]},
                            "o2": {
                                "quantity": "o2",
                                "unit": "%",
                                "valid_range": [0, 21],
                                "interval_s": 10,
                            },
                        },
                        "limits": {"nox": {"half_hour": 400, "daily": 200}},
                    }
                },
            },
            "beta": {
                "stacks": {
                    "s1": {
                        "sensors": {
                            "so2": {"quantity": "so2", "unit": "mg/Nm3", "valid_range": [0, 500]}
                        }
                    }
                }
            },
        }
    }
)

READINGS = [
    Reading("alpha", "b1", "nox", NOW - 120 * MIN, 999.0, "nox", "mg/Nm3"),
    *(
        Reading("alpha", "b1", "nox", NOW - (10 - i) * MIN, float(i + 1), "nox", "mg/Nm3")
        for i in range(10)
    ),
    Reading("alpha", "b1", "o2", NOW - 2 * MIN, 7.5, "o2", "%", Status.MAINTENANCE),
    Reading("beta", "s1", "so2", NOW - 1 * MIN, 42.0, "so2", "mg/Nm3"),
]

NOX = "/readings/alpha/b1/nox"


def no_components() -> Mapping[str, ComponentHealth]:
    return {}


def make_app(
    store: Store,
    *,
    demo: bool = True,
    components: Mapping[str, ComponentHealth] | None = None,
    **settings: Any,
) -> FastAPI:
    state = dict(components or {})
    ctx = AppContext(
        config=CONFIG,
        store=store,
        settings=ApiSettings.model_validate(settings),
        demo=demo,
        components=lambda: state,
        now_ns=lambda: NOW,
    )
    return create_app(ctx)


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


@pytest.fixture(autouse=True)
def no_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Settings come from the test only: no STACKWATCH_* variables, no .env file."""
    for name in list(os.environ):
        if name.startswith("STACKWATCH_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "api.sqlite", lookback_s=86_400, now_ns=lambda: NOW)
    await s.start()
    await s.write([reading_to_point(r) for r in READINGS])
    yield s
    await s.close()


@pytest.fixture
async def api(store: SqliteStore) -> AsyncIterator[httpx.AsyncClient]:
    async with client(make_app(store)) as c:
        yield c


def assert_error(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Every error has exactly the shape {"error": {"code", "message", "details"}}."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], list)
    return dict(body["error"])


# ------------------------------------------------------------------------------------ health


async def test_health_ok_lists_store_and_components(store: SqliteStore) -> None:
    mqtt = ComponentHealth(True, "connected to 127.0.0.1:1883")
    async with client(make_app(store, components={"mqtt": mqtt})) as c:
        for path in ("/health", "/health/ready"):
            resp = await c.get(path)
            assert resp.status_code == 200
            assert resp.json() == {
                "status": "ok",
                "components": {
                    "mqtt": {"ok": True, "detail": "connected to 127.0.0.1:1883"},
                    "store": {"ok": True, "detail": store.name},
                },
            }
        assert store.name == "sqlite"


async def test_health_degraded_when_a_component_is_not_ok(store: SqliteStore) -> None:
    components = {
        "mqtt": ComponentHealth(False, "reconnecting"),
        "writer": ComponentHealth(True),
    }
    async with client(make_app(store, components=components)) as c:
        resp = await c.get("/health")
        live = await c.get("/health/live")
    assert resp.status_code == 503
    body = resp.json()
    assert body["status"] == "degraded"
    assert body["components"]["mqtt"] == {"ok": False, "detail": "reconnecting"}
    assert body["components"]["writer"] == {"ok": True, "detail": ""}
    assert body["components"]["store"]["ok"] is True
    # Liveness does not depend on the components.
    assert (live.status_code, live.json()) == (200, {"status": "ok"})


async def test_health_degraded_when_the_store_is_closed(tmp_path: Path) -> None:
    closed = SqliteStore(tmp_path / "closed.sqlite", now_ns=lambda: NOW)
    await closed.start()
    await closed.close()
    async with client(make_app(closed)) as c:
        resp = await c.get("/health/ready")
    assert resp.status_code == 503
    assert resp.json()["status"] == "degraded"
    assert resp.json()["components"]["store"]["ok"] is False


# ------------------------------------------------------------------------------------ plants


async def test_plants_lists_the_configuration(api: httpx.AsyncClient) -> None:
    resp = await api.get("/plants")
    assert resp.status_code == 200
    plants = resp.json()
    assert [p["id"] for p in plants] == ["alpha", "beta"]
    assert plants[0] == {
        "id": "alpha",
        "name": "Alpha works",
        "timezone": "Europe/Paris",
        "stacks": [
            {
                "id": "b1",
                "name": "Boiler 1",
                "reference_o2": 6.0,
                "sensors": [
                    {
                        "id": "nox",
                        "quantity": "nox",
                        "unit": "mg/Nm3",
                        "valid_range": [0.0, 2000.0],
                        "interval_s": 1.0,
                        "description": "",
                    },
                    {
                        "id": "o2",
                        "quantity": "o2",
                        "unit": "%",
                        "valid_range": [0.0, 21.0],
                        "interval_s": 10.0,
                        "description": "",
                    },
                ],
                "limits": [
                    {
                        "quantity": "nox",
                        "unit": "mg/Nm3",
                        "half_hour": 400.0,
                        "hourly": None,
                        "daily": 200.0,
                        "monthly": None,
                        "yearly": None,
                    }
                ],
            }
        ],
    }
    assert plants[1]["timezone"] == "UTC"
    assert plants[1]["stacks"][0]["reference_o2"] is None
    assert plants[1]["stacks"][0]["limits"] == []


async def test_one_plant_and_unknown_plant(api: httpx.AsyncClient) -> None:
    resp = await api.get("/plants/beta")
    assert resp.status_code == 200
    assert resp.json()["id"] == "beta"
    assert [s["id"] for s in resp.json()["stacks"][0]["sensors"]] == ["so2"]
    err = assert_error(await api.get("/plants/gamma"), 404, "not_found")
    assert "gamma" in err["message"]


# ------------------------------------------------------------------------------------ latest


async def test_latest_lists_newest_value_of_every_sensor(api: httpx.AsyncClient) -> None:
    resp = await api.get("/readings/latest")
    assert resp.status_code == 200
    assert resp.json() == [
        {
            "plant": "alpha",
            "stack": "b1",
            "sensor": "nox",
            "quantity": "nox",
            "unit": "mg/Nm3",
            "time": "2024-01-01T11:59:00Z",
            "value": 10.0,
            "status": "valid",
        },
        {
            "plant": "alpha",
            "stack": "b1",
            "sensor": "o2",
            "quantity": "o2",
            "unit": "%",
            "time": "2024-01-01T11:58:00Z",
            "value": 7.5,
            "status": "maintenance",
        },
        {
            "plant": "beta",
            "stack": "s1",
            "sensor": "so2",
            "quantity": "so2",
            "unit": "mg/Nm3",
            "time": "2024-01-01T11:59:00Z",
            "value": 42.0,
            "status": "valid",
        },
    ]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"plant": "alpha"}, ["alpha/b1/nox", "alpha/b1/o2"]),  # one plant
        ({"sensor": "so2"}, ["beta/s1/so2"]),  # one sensor id across plants
        ({"plant": "alpha", "stack": "b1", "sensor": "o2"}, ["alpha/b1/o2"]),  # fully given
        ({"plant": "gamma"}, []),  # nothing stored: empty list, not 404
    ],
)
async def test_latest_filters(
    api: httpx.AsyncClient, params: dict[str, str], expected: list[str]
) -> None:
    resp = await api.get("/readings/latest", params=params)
    assert resp.status_code == 200
    assert [f"{r['plant']}/{r['stack']}/{r['sensor']}" for r in resp.json()] == expected


# ------------------------------------------------------------------------------------ series


def points(resp: httpx.Response) -> list[tuple[str, float]]:
    assert resp.status_code == 200, resp.text
    return [(p["time"], p["value"]) for p in resp.json()["points"]]


async def test_series_defaults_to_the_last_hour_raw(api: httpx.AsyncClient) -> None:
    resp = await api.get(NOX)
    assert points(resp) == [(f"2024-01-01T11:{50 + i}:00Z", float(i + 1)) for i in range(10)]
    body = resp.json()
    assert {k: v for k, v in body.items() if k != "points"} == {
        "plant": "alpha",
        "stack": "b1",
        "sensor": "nox",
        "quantity": "nox",
        "unit": "mg/Nm3",
        "start": "2024-01-01T11:00:00Z",
        "end": "2024-01-01T12:00:00Z",
        "every": None,
        "fn": None,
    }


async def test_series_explicit_range_is_half_open(api: httpx.AsyncClient) -> None:
    # 12:50+01:00 is 11:50Z; the end (11:53Z) is excluded.
    resp = await api.get(
        NOX, params={"start": "2024-01-01T12:50:00+01:00", "end": "2024-01-01T11:53:00Z"}
    )
    assert points(resp) == [
        ("2024-01-01T11:50:00Z", 1.0),
        ("2024-01-01T11:51:00Z", 2.0),
        ("2024-01-01T11:52:00Z", 3.0),
    ]
    assert resp.json()["start"] == "2024-01-01T11:50:00Z"


async def test_series_only_end_given_reaches_back_one_hour(api: httpx.AsyncClient) -> None:
    resp = await api.get(NOX, params={"end": "2024-01-01T10:30:00Z"})
    assert points(resp) == [("2024-01-01T10:00:00Z", 999.0)]
    assert resp.json()["start"] == "2024-01-01T09:30:00Z"


@pytest.mark.parametrize(
    ("every", "fn", "expected"),
    [
        (
            "5m",
            "mean",
            [
                ("2024-01-01T10:00:00Z", 999.0),
                ("2024-01-01T11:50:00Z", 3.0),
                ("2024-01-01T11:55:00Z", 8.0),
            ],
        ),
        (
            "300",
            "max",
            [
                ("2024-01-01T10:00:00Z", 999.0),
                ("2024-01-01T11:50:00Z", 5.0),
                ("2024-01-01T11:55:00Z", 10.0),
            ],
        ),
        (
            "300s",
            "sum",
            [
                ("2024-01-01T10:00:00Z", 999.0),
                ("2024-01-01T11:50:00Z", 15.0),
                ("2024-01-01T11:55:00Z", 40.0),
            ],
        ),
        ("1h", "count", [("2024-01-01T10:00:00Z", 1.0), ("2024-01-01T11:00:00Z", 10.0)]),
        ("1d", "first", [("2024-01-01T00:00:00Z", 999.0)]),  # window starts before `start`
    ],
)
async def test_series_aggregated(
    api: httpx.AsyncClient, every: str, fn: str, expected: list[tuple[str, float]]
) -> None:
    resp = await api.get(
        NOX,
        params={
            "start": "2024-01-01T09:00:00Z",
            "every": every,
            "fn": fn,
            "end": "2024-01-01T12:00:00Z",
        },
    )
    assert points(resp) == expected
    seconds = {"5m": 300, "300": 300, "300s": 300, "1h": 3600, "1d": 86_400}[every]
    assert (resp.json()["every"], resp.json()["fn"]) == (seconds, fn)


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"start": "2024-01-01T11:00:00"}, "query.start"),  # naive time
        ({"end": "yesterday"}, "query.end"),  # not a time
        ({"every": "0"}, "query.every"),  # below 1 s
        ({"every": "32d"}, "query.every"),  # above 31 d
        ({"every": "1w"}, "query.every"),  # unknown unit
        ({"every": "abc"}, "query.every"),  # not a duration
        ({"every": "1m", "fn": "median"}, "query.fn"),  # not an Aggregate
    ],
)
async def test_series_rejects_bad_parameters(
    api: httpx.AsyncClient, params: dict[str, str], loc: str
) -> None:
    err = assert_error(await api.get(NOX, params=params), 422, "validation_error")
    assert [d["loc"] for d in err["details"]] == [loc]
    assert loc in err["message"]


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"start": "2024-01-01T12:00:00Z", "end": "2024-01-01T12:00:00Z"}, "before"),  # empty
        ({"start": "2024-01-01T12:00:00Z", "end": "2024-01-01T11:00:00Z"}, "before"),  # reversed
        ({"start": "2023-11-30T11:59:59Z", "end": "2024-01-01T12:00:00Z"}, "31 days"),  # too long
    ],
)
async def test_series_rejects_bad_ranges(
    api: httpx.AsyncClient, params: dict[str, str], words: str
) -> None:
    err = assert_error(await api.get(NOX, params=params), 422, "validation_error")
    assert words in err["message"]


async def test_series_accepts_exactly_31_days(api: httpx.AsyncClient) -> None:
    resp = await api.get(NOX, params={"start": "2023-12-01T12:00:00Z", "every": "1d"})
    [(time, value)] = points(resp)
    assert time == "2024-01-01T00:00:00Z"
    assert value == pytest.approx((999 + 55) / 11)


async def test_series_of_unknown_sensor_is_404(api: httpx.AsyncClient) -> None:
    for path in ("/readings/alpha/b1/so2", "/readings/alpha/zz/nox", "/readings/zz/b1/nox"):
        assert_error(await api.get(path), 404, "not_found")


@pytest.mark.parametrize(
    ("max_points", "every", "status"),
    [
        (10, None, 200),  # exactly at the cap
        (9, None, 422),  # one raw point too many
        (9, "5m", 200),  # a coarser window fits
        (1, "5m", 422),  # still too many windows
    ],
)
async def test_series_point_cap(
    store: SqliteStore, max_points: int, every: str | None, status: int
) -> None:
    params = {"every": every} if every else {}
    async with client(make_app(store, max_points=max_points)) as c:
        resp = await c.get(NOX, params=params)
    if status == 200:
        assert len(resp.json()["points"]) <= max_points
    else:
        err = assert_error(resp, 422, "validation_error")
        assert f"more than {max_points} points" in err["message"]


# ------------------------------------------------------------------------------------ store errors


async def test_unreachable_store_is_503_and_degrades_health() -> None:
    # A real InfluxStore pointed at a port nobody listens on: connection refused, retryable.
    settings = InfluxSettings.model_validate(
        {"url": f"http://127.0.0.1:{free_port()}", "create_database": False, "timeout_s": 2}
    )
    influx = InfluxStore(settings)
    await influx.start()
    try:
        async with client(make_app(influx)) as c:
            data = await c.get("/readings/latest")
            series = await c.get(NOX)
            health = await c.get("/health")
    finally:
        await influx.close()
    for resp in (data, series):
        assert_error(resp, 503, "store_unavailable")
        assert resp.headers["retry-after"] == "5"
    assert health.status_code == 503
    assert health.json()["components"]["store"] == {
        "ok": False,
        "detail": "influxdb: not answering",
    }


async def test_store_refusing_the_query_is_502(store: SqliteStore, tmp_path: Path) -> None:
    # Another process breaks the schema under the store: a permanent, non-retryable error.
    other = sqlite3.connect(tmp_path / "api.sqlite")
    try:
        other.execute("DROP TABLE points")
        other.commit()
    finally:
        other.close()
    async with client(make_app(store)) as c:
        err = assert_error(await c.get("/readings/latest"), 502, "store_error")
    assert "points" not in err["message"]  # backend details stay in the log


# ------------------------------------------------------------------------------------ auth


@pytest.fixture
async def prod(store: SqliteStore) -> AsyncIterator[httpx.AsyncClient]:
    async with client(make_app(store, demo=False, token=TOKEN)) as c:
        yield c


PROTECTED = ["/plants", "/plants/alpha", "/readings/latest", NOX, "/metrics"]


@pytest.mark.parametrize("path", PROTECTED)
@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token-of-some-length-000", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer"],
)
async def test_production_refuses_missing_or_wrong_token(
    prod: httpx.AsyncClient, path: str, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    resp = await prod.get(path, headers=headers)
    assert_error(resp, 401, "unauthorized")
    assert resp.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("path", PROTECTED)
async def test_production_accepts_the_token(prod: httpx.AsyncClient, path: str) -> None:
    resp = await prod.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.status_code == 200


async def test_production_leaves_health_open(prod: httpx.AsyncClient) -> None:
    for path in ("/health", "/health/live", "/health/ready"):
        assert (await prod.get(path)).status_code == 200


async def test_production_without_configured_token_refuses_everyone(store: SqliteStore) -> None:
    # validate_api_settings stops the service first; the check still fails closed.
    async with client(make_app(store, demo=False)) as c:
        resp = await c.get("/plants", headers={"Authorization": "Bearer "})
    assert_error(resp, 401, "unauthorized")


@pytest.mark.parametrize(
    "token",
    [
        None,  # missing
        "k7Qp2xVb9LmZr4Tn8WcYe3H",  # 23 characters
        "changeme",
        "ChangeThis",
        "SECRET",
        "stackwatch",
        "token",
        "changeme-changeme-changeme",  # a placeholder repeated to pass the length check
        "TokenTokenTokenTokenToken",
        "x" * 40,  # one repeated character
    ],
)
def test_validate_api_settings_rejects_weak_tokens(token: str | None) -> None:
    settings = ApiSettings.model_validate({"token": token})
    with pytest.raises(ValueError, match="STACKWATCH_API_TOKEN"):
        validate_api_settings(settings, demo=False)
    validate_api_settings(settings, demo=True)  # demo mode accepts anything


def test_validate_api_settings_accepts_a_random_token() -> None:
    validate_api_settings(ApiSettings.model_validate({"token": TOKEN}), demo=False)
    validate_api_settings(
        ApiSettings.model_validate({"token": "stackwatch-prod-2f9c41d7e0ab"}), demo=False
    )


# ------------------------------------------------------------------------------------ misc


async def test_metrics_exposes_the_default_registry(api: httpx.AsyncClient) -> None:
    resp = await api.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    assert "# TYPE python_info gauge" in resp.text
    om = await api.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert om.headers["content-type"].startswith("application/openmetrics-text")
    assert om.text.endswith("# EOF\n")


async def test_unknown_route_uses_the_error_shape(api: httpx.AsyncClient) -> None:
    assert_error(await api.get("/nope"), 404, "not_found")
    assert_error(await api.post("/plants"), 405, "method_not_allowed")


async def test_cors_allows_configured_origins(store: SqliteStore) -> None:
    app = make_app(store, cors_origins=["https://dash.example"])
    async with client(app) as c:
        pre = await c.options(
            "/plants",
            headers={
                "Origin": "https://dash.example",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        other = await c.get("/plants", headers={"Origin": "https://evil.example"})
    assert pre.status_code == 200
    assert pre.headers["access-control-allow-origin"] == "https://dash.example"
    assert "access-control-allow-origin" not in other.headers


async def test_openapi_lists_every_route_typed(api: httpx.AsyncClient) -> None:
    resp = await api.get("/openapi.json")
    assert resp.status_code == 200
    doc = resp.json()
    assert doc["info"]["title"] == "StackWatch"
    assert doc["info"]["version"] == version("stackwatch")
    assert set(doc["paths"]) == {
        "/health",
        "/health/live",
        "/health/ready",
        "/plants",
        "/plants/{plant}",
        "/readings/latest",
        "/readings/{plant}/{stack}/{sensor}",
        "/series/{measurement}/{field}",
        "/compliance/{plant}/{stack}/latest",
        "/compliance/{plant}/daily",
        "/compliance/{plant}/monthly",
        "/compliance/{plant}/yearly",
        "/sensors/health",
        "/metrics",
        "/live",
        "/alerts",
        "/alerts/history",
        "/alerts/{fingerprint}",
        "/alerts/{fingerprint}/acknowledge",
        "/silences",
        "/silences/{silence_id}",
        "/notifications",
        "/notifications/suppressed",
        "/audit",
        "/audit/verify",
        "/reports/{plant}/daily",
        "/reports/{plant}/monthly",
        "/config",
    }
    schemas = doc["components"]["schemas"]
    assert {"ErrorOut", "HealthOut", "PlantOut", "ReadingOut", "SeriesOut"} <= set(schemas)
    assert schemas["ReadingOut"]["examples"][0]["sensor"] == "nox"
    op = doc["paths"]["/readings/{plant}/{stack}/{sensor}"]["get"]
    for code in ("401", "404", "422", "503"):
        ref = op["responses"][code]["content"]["application/json"]["schema"]["$ref"]
        assert ref == "#/components/schemas/ErrorOut"
    assert op["security"] == [{"HTTPBearer": []}]
    assert "security" not in doc["paths"]["/health"]["get"]
    assert (await api.get("/docs")).status_code == 200
