"""API keys and roles over ASGI, around a real SqliteStore, AlertRuntime and LiveHub.

The matrix is built from the app's own routes, so a new route fails here until it is either
open (:data:`OPEN`) or given a role in :data:`EXPECTED`. Every protected route is called with
no token, an unknown token, a valid token in the wrong scheme (401 each), and with the token
of every role: 403 below the route's role, anything but 401/403 at or above it. ``/live`` is
served by uvicorn (its answer is an endless stream): the test reads the status and closes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from pydantic import ValidationError
from pydantic_settings import SettingsError
from structlog.testing import capture_logs
from typer.testing import CliRunner

from alerts.runtime import AlertRuntime
from alerts.settings import AlertsConfig, load_alerts_config
from api.auth import Keyring, validate_api_settings
from api.context import AppContext
from api.live import LiveHub
from api.main import create_app
from api.settings import ApiKey, ApiSettings, Role
from stackwatch.apikey_cli import apikey_app
from stream.storage.sqlite import SqliteStore
from tests.api.test_alerts_api import (
    ALERTS_YAML,
    PLANT,
    Clock,
    Scenario,
    open_runtime,
    play_scenario,
)
from tests.api.test_live import serving

TOKENS = {
    Role.OPERATOR: "op-7Hq2Lm9Xv4Rt8Kp3Wz6Nd5Jc",
    Role.OFFICER: "of-Bq8Zr2Ty6Ux4Vw1Sa9Pd3Mf",
    Role.ADMIN: "ad-Kc5Gh7Jn2Lp9Qs4Xt8Vb6Wm",
}
NAMES = {Role.OPERATOR: "grafana", Role.OFFICER: "k.huber", Role.ADMIN: "it.admin"}
LEGACY = "k7Qp2xVb9LmZr4Tn8WcYe3Hd"  # STACKWATCH_API_TOKEN: admin, named "admin"


def sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# Each form once: digest, plain token (development), digest in capitals.
KEYS: list[dict[str, str]] = [
    {"name": "grafana", "role": "operator", "token_sha256": sha256(TOKENS[Role.OPERATOR])},
    {"name": "k.huber", "role": "officer", "token": TOKENS[Role.OFFICER]},
    {"name": "it.admin", "role": "admin", "token_sha256": sha256(TOKENS[Role.ADMIN]).upper()},
]

FP = Scenario.breach_a
EXPECTED: dict[tuple[str, str], Role] = {
    ("GET", "/plants"): Role.OPERATOR,
    ("GET", "/plants/{plant}"): Role.OPERATOR,
    ("GET", "/readings/latest"): Role.OPERATOR,
    ("GET", "/readings/{plant}/{stack}/{sensor}"): Role.OPERATOR,
    ("GET", "/series/{measurement}/{field}"): Role.OPERATOR,
    ("GET", "/compliance/{plant}/{stack}/latest"): Role.OPERATOR,
    ("GET", "/compliance/{plant}/daily"): Role.OPERATOR,
    ("GET", "/compliance/{plant}/monthly"): Role.OPERATOR,
    ("GET", "/compliance/{plant}/yearly"): Role.OPERATOR,
    ("GET", "/sensors/health"): Role.OPERATOR,
    ("GET", "/metrics"): Role.OPERATOR,
    ("GET", "/live"): Role.OPERATOR,
    ("GET", "/alerts"): Role.OPERATOR,
    ("GET", "/alerts/history"): Role.OPERATOR,
    ("GET", "/alerts/{fingerprint}"): Role.OPERATOR,
    ("POST", "/alerts/{fingerprint}/acknowledge"): Role.OFFICER,
    ("GET", "/silences"): Role.OPERATOR,
    ("GET", "/silences/{silence_id}"): Role.OPERATOR,
    ("POST", "/silences"): Role.OFFICER,
    ("DELETE", "/silences/{silence_id}"): Role.OFFICER,
    ("GET", "/notifications"): Role.OPERATOR,
    ("GET", "/notifications/suppressed"): Role.OPERATOR,
    ("GET", "/audit"): Role.OFFICER,
    ("GET", "/audit/verify"): Role.OFFICER,
    ("GET", "/reports/{plant}/daily"): Role.OFFICER,
    ("GET", "/reports/{plant}/monthly"): Role.OFFICER,
    ("GET", "/config"): Role.ADMIN,
}
"""The least role of every protected route."""
OPEN = {
    ("GET", "/health"),
    ("GET", "/health/ready"),
    ("GET", "/health/live"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
    # The built-in page (api.routes.ui): its files hold no data, it asks for a key.
    ("GET", "/"),
    ("GET", "/ui"),
    ("GET", "/ui/"),
    ("GET", "/ui/static/{path:path}"),
}
NOT_YET_MOUNTED = {("GET", "/reports/{plant}/daily"), ("GET", "/reports/{plant}/monthly")}
"""In EXPECTED before ``api.main`` mounts them (with the officer role)."""
SAMPLES = {
    "plant": "alpha",
    "stack": "b1",
    "sensor": "nox",
    "measurement": "readings",
    "field": "value",
    "fingerprint": FP,
    "silence_id": "abc",
    "path": "app.js",
}
"""A value for each path parameter of the routes."""


def routes_of(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every route, included routers flattened; a route without methods
    (a mount, a websocket) is listed with the method ``*`` so that it, too, is classified."""
    found: set[tuple[str, str]] = set()
    for route in iter_route_contexts(app.routes):
        methods = route.methods or {"*"}
        found.update((m, str(route.path)) for m in methods if m != "HEAD")
    return sorted(found)


def _listing_app() -> FastAPI:
    """The app as the service builds it, only to list its routes (nothing is started)."""
    ctx = AppContext(
        config=PLANT,
        store=SqliteStore(Path("never-opened.sqlite")),
        settings=ApiSettings.model_construct(),  # no environment read at import
        demo=True,
        components=dict,
    )
    return create_app(ctx)


ROUTES = routes_of(_listing_app())
PROTECTED = [r for r in ROUTES if r not in OPEN]


def concrete(path: str) -> str:
    def value(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in SAMPLES:
            pytest.fail(f"no sample value for the path parameter {name!r}: add it to SAMPLES")
        return SAMPLES[name]

    return re.sub(r"\{(\w+)(?::\w+)?\}", value, path)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def as_role(role: Role) -> dict[str, str]:
    return bearer(TOKENS[role])


# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture(autouse=True)
def no_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Settings come from the test only: no STACKWATCH_* variables, no .env file."""
    for name in list(os.environ):
        if name.startswith("STACKWATCH_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def alerts_config(tmp_path: Path) -> AlertsConfig:
    path = tmp_path / "alerts.yaml"
    path.write_text(ALERTS_YAML, encoding="utf-8")
    return load_alerts_config(path, topic_prefix="t")


@pytest.fixture
async def runtime(
    alerts_config: AlertsConfig, tmp_path: Path, clock: Clock
) -> AsyncIterator[AlertRuntime]:
    rt = open_runtime(alerts_config, tmp_path / "data", clock)
    yield rt
    await rt.close()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "api.sqlite")
    await s.start()
    yield s
    await s.close()


def make_app(
    store: SqliteStore,
    runtime: AlertRuntime | None,
    clock: Clock,
    hub: LiveHub | None = None,
    *,
    demo: bool = False,
    **settings: Any,
) -> FastAPI:
    ctx = AppContext(
        config=PLANT,
        store=store,
        settings=ApiSettings.model_validate({"keys": KEYS, **settings}),
        demo=demo,
        components=dict,
        now_ns=clock,
        alerts=runtime,
        live=hub,
    )
    return create_app(ctx)


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


@pytest.fixture
async def api(
    store: SqliteStore, runtime: AlertRuntime, clock: Clock
) -> AsyncIterator[httpx.AsyncClient]:
    await play_scenario(runtime, clock)
    async with client(make_app(store, runtime, clock)) as c:
        yield c


async def call(
    app: FastAPI, hub: LiveHub, method: str, path: str, headers: dict[str, str]
) -> httpx.Response:
    """One request; ``/live`` over a real server, reading only its head unless it failed."""
    if path != "/live":
        async with client(app) as c:
            return await c.request(method, path, headers=headers)
    async with serving(app, hub) as c, c.stream(method, path, headers=headers) as resp:
        if resp.status_code != 200:
            await resp.aread()
        return resp


def assert_error(resp: httpx.Response, status: int, code: str) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    message = body["error"]["message"]
    assert isinstance(message, str) and message
    return message


# ------------------------------------------------------------------------------------ matrix


def test_every_route_is_open_or_has_a_role() -> None:
    unclassified = set(ROUTES) - OPEN - set(EXPECTED)
    assert not unclassified, f"give these routes a role in EXPECTED (or open them): {unclassified}"
    assert not OPEN & set(EXPECTED)
    stale = set(EXPECTED) - set(ROUTES)
    assert stale <= NOT_YET_MOUNTED, f"no longer routes of the app: {stale}"
    assert {r for r in ROUTES if r[1].startswith("/health")} <= OPEN


CALLERS: dict[str, tuple[Role | None, dict[str, str]]] = {
    "no token": (None, {}),
    "unknown token": (None, bearer("ad-Kc5Gh7Jn2Lp9Qs4Xt8Vb6Wn")),  # one character off
    "basic scheme": (None, {"Authorization": f"Basic {TOKENS[Role.ADMIN]}"}),
    **{role.value: (role, as_role(role)) for role in Role},
}
"""Who calls: the role of a valid bearer token, or None for no, an unknown or a misused one."""


def matrix_problem(resp: httpx.Response, role: Role | None, required: Role) -> str | None:
    """What is wrong with the answer to a caller with ``role`` (None: no valid token)."""
    body = resp.json() if resp.headers.get("content-type") == "application/json" else {}
    code = body.get("error", {}).get("code") if isinstance(body, dict) else None
    if role is None:
        if (resp.status_code, code) != (401, "unauthorized"):
            return f"expected 401 unauthorized, got {resp.status_code} {code}"
        if resp.headers.get("www-authenticate") != "Bearer":
            return "401 without WWW-Authenticate: Bearer"
    elif not role.allows(required):
        if (resp.status_code, code) != (403, "forbidden"):
            return f"expected 403 forbidden, got {resp.status_code} {code}"
        message = body["error"]["message"]
        if f"needs the {required.value} role" not in message or NAMES[role] not in message:
            return f"403 without the role and the key's name: {message!r}"
    elif resp.status_code in (401, 403) or resp.status_code >= 500:
        return f"expected access, got {resp.status_code}: {resp.text[:200]}"
    return None


@pytest.mark.parametrize("route", PROTECTED, ids=" ".join)
async def test_role_matrix(
    store: SqliteStore, runtime: AlertRuntime, clock: Clock, route: tuple[str, str]
) -> None:
    """Every caller of :data:`CALLERS` against one route; all mismatches are listed."""
    required = EXPECTED.get(route)
    if required is None:
        pytest.fail(f"{route} is neither open nor in EXPECTED: give it a role")
    method, path = route[0], concrete(route[1])
    problems = []
    hub = LiveHub()
    app = make_app(store, runtime, clock, hub)  # one app: its first request builds the routes
    for caller, (role, headers) in CALLERS.items():
        if hub.closed:  # serving /live closes the hub when done
            hub = LiveHub()
            app = make_app(store, runtime, clock, hub)
        resp = await call(app, hub, method, path, headers)
        problem = matrix_problem(resp, role, required)
        if problem is not None:
            problems.append(f"{caller}: {problem}")
    assert not problems, f"{method} {path} (needs {required.value}): " + "; ".join(problems)


async def test_demo_mode_opens_every_route(
    store: SqliteStore, runtime: AlertRuntime, clock: Clock
) -> None:
    hub = LiveHub()
    app = make_app(store, runtime, clock, hub, demo=True)
    problems = []
    for method, path in ROUTES:
        if hub.closed:
            hub = LiveHub()
            app = make_app(store, runtime, clock, hub, demo=True)
        resp = await call(app, hub, method, concrete(path), {})
        if resp.status_code in (401, 403) or resp.status_code >= 500:
            problems.append(f"{method} {path}: {resp.status_code} {resp.text[:200]}")
    assert not problems


async def test_open_routes_need_no_token(
    store: SqliteStore, runtime: AlertRuntime, clock: Clock
) -> None:
    async with client(make_app(store, runtime, clock)) as c:
        for method, path in sorted(OPEN & set(ROUTES)):
            resp = await c.request(method, concrete(path))
            assert resp.status_code in (200, 307), (method, path, resp.text)


def test_roles_are_ordered() -> None:
    assert [r.value for r in Role] == ["operator", "officer", "admin"]
    allowed = {(a, b) for a in Role for b in Role if a.allows(b)}
    assert allowed == {
        (Role.OPERATOR, Role.OPERATOR),
        (Role.OFFICER, Role.OPERATOR),
        (Role.OFFICER, Role.OFFICER),
        (Role.ADMIN, Role.OPERATOR),
        (Role.ADMIN, Role.OFFICER),
        (Role.ADMIN, Role.ADMIN),
    }


async def test_the_legacy_token_is_an_admin_key_named_admin(
    store: SqliteStore, runtime: AlertRuntime, clock: Clock
) -> None:
    async with client(make_app(store, runtime, clock, token=LEGACY)) as c:
        config = await c.get("/config", headers=bearer(LEGACY))
        still = await c.get("/config", headers=as_role(Role.ADMIN))
    assert config.status_code == 200, config.text
    assert config.json()["api_keys"][0] == {"name": "admin", "role": "admin"}
    assert still.status_code == 200


async def test_openapi_documents_401_and_403(api: httpx.AsyncClient) -> None:
    doc = (await api.get("/openapi.json")).json()
    error = "#/components/schemas/ErrorOut"
    for method, path in PROTECTED:
        if (method, path) in NOT_YET_MOUNTED:
            continue
        op = doc["paths"][path][method.lower()]
        assert op["security"] == [{"HTTPBearer": []}], (method, path)
        for code in ("401", "403"):
            # (FastAPI labels the errors of /live with the stream's media type.)
            content = op["responses"][code]["content"].values()
            assert [c["schema"]["$ref"] for c in content] == [error], (method, path)
    # Who acts is the key's holder: the acting-user fields are optional.
    schemas = doc["components"]["schemas"]
    assert schemas["AckIn"]["required"] == ["comment"]
    assert "created_by" not in schemas["SilenceIn"]["required"]
    assert schemas["AckIn"]["properties"]["by"]["type"] == "string"  # not nullable
    delete = doc["paths"]["/silences/{silence_id}"]["delete"]
    assert [p["required"] for p in delete["parameters"] if p["name"] == "by"] == [False]


# ------------------------------------------------------------------------------ acting user

ACK = f"/alerts/{FP}/acknowledge"


async def test_an_acknowledgement_is_recorded_under_the_keys_name(api: httpx.AsyncClient) -> None:
    officer = as_role(Role.OFFICER)
    other = await api.post(ACK, json={"by": "j.martin", "comment": "c"}, headers=officer)
    message = assert_error(other, 403, "forbidden")
    assert "'k.huber'" in message and "by" in message
    null = await api.post(ACK, json={"by": None, "comment": "c"}, headers=officer)
    assert "null" in assert_error(null, 422, "validation_error")
    operator = await api.post(ACK, json={"comment": "c"}, headers=as_role(Role.OPERATOR))
    assert_error(operator, 403, "forbidden")
    assert (await api.get(f"/alerts/{FP}", headers=officer)).json()["state"] == "firing"

    resp = await api.post(ACK, json={"comment": "Burner trim adjusted"}, headers=officer)
    assert resp.status_code == 200, resp.text
    assert resp.json()["acknowledged_by"] == "k.huber"
    [t] = (
        await api.get("/alerts/history", params={"state": "acknowledged"}, headers=officer)
    ).json()
    assert t["actor"] == "k.huber"
    audit = (await api.get("/audit", params={"kind": "acknowledgement"}, headers=officer)).json()
    assert [(e["actor"], e["subject"]) for e in audit] == [("k.huber", FP)]

    # Naming oneself is allowed; an admin key acts as its own holder too.
    own = f"/alerts/{Scenario.anomaly_a}/acknowledge"
    named = await api.post(
        own, json={"by": "it.admin", "comment": "seen"}, headers=as_role(Role.ADMIN)
    )
    assert (named.status_code, named.json()["acknowledged_by"]) == (200, "it.admin")


async def test_silences_are_created_and_expired_under_the_keys_name(
    api: httpx.AsyncClient,
) -> None:
    officer = as_role(Role.OFFICER)
    body = {"matchers": ["plant=alpha"], "duration_s": 600, "comment": "analyser swap"}
    other = await api.post("/silences", json={**body, "created_by": "j.martin"}, headers=officer)
    assert "'k.huber'" in assert_error(other, 403, "forbidden")
    assert (await api.get("/silences", headers=officer)).json() == []

    created = await api.post("/silences", json=body, headers=officer)
    assert created.status_code == 201, created.text
    silence = created.json()
    assert silence["created_by"] == "k.huber"
    same = await api.post("/silences", json={**body, "created_by": "k.huber"}, headers=officer)
    assert same.status_code == 201, same.text

    path = f"/silences/{silence['id']}"
    refused = await api.delete(path, params={"by": "j.martin"}, headers=officer)
    assert_error(refused, 403, "forbidden")
    assert (await api.get(path, headers=officer)).json()["state"] == "active"
    expired = await api.delete(path, headers=officer)
    assert expired.status_code == 200, expired.text
    assert (expired.json()["state"], expired.json()["expired_by"]) == ("expired", "k.huber")

    audit = (await api.get("/audit", params={"subject": silence["id"]}, headers=officer)).json()
    assert [(e["kind"], e["actor"]) for e in audit] == [
        ("silence_expired", "k.huber"),
        ("silence_created", "k.huber"),
    ]


async def test_demo_mode_requires_the_acting_user(
    store: SqliteStore, runtime: AlertRuntime, clock: Clock
) -> None:
    await play_scenario(runtime, clock)
    async with client(make_app(store, runtime, clock, demo=True)) as c:
        body = {"matchers": ["plant=alpha"], "duration_s": 600, "comment": "c"}
        no_creator = await c.post("/silences", json=body)
        silence = (await c.post("/silences", json={**body, "created_by": "eo"})).json()
        no_expirer = await c.delete(f"/silences/{silence['id']}")
        no_ack = await c.post(ACK, json={"comment": "c"})
        acked = await c.post(ACK, json={"by": "eo", "comment": "c"})
    for resp, loc in (
        (no_creator, "body.created_by"),
        (no_expirer, "query.by"),
        (no_ack, "body.by"),
    ):
        assert_error(resp, 422, "validation_error")
        assert [d["loc"] for d in resp.json()["error"]["details"]] == [loc]
        assert "demo mode" in resp.json()["error"]["message"]
    assert silence["created_by"] == "eo"
    assert acked.json()["acknowledged_by"] == "eo"


# ------------------------------------------------------------------------------------ /config


async def test_config_shows_the_configuration_without_secrets(
    store: SqliteStore, runtime: AlertRuntime, clock: Clock
) -> None:
    async with client(make_app(store, runtime, clock, token=LEGACY)) as c:
        resp = await c.get("/config", headers=as_role(Role.ADMIN))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["demo"] is False
    assert body["plants"] == PLANT.model_dump(mode="json")["plants"]
    assert body["api_keys"] == [
        {"name": "admin", "role": "admin"},
        {"name": "grafana", "role": "operator"},
        {"name": "k.huber", "role": "officer"},
        {"name": "it.admin", "role": "admin"},
    ]
    assert body["alert_receivers"] == ["officers"]
    for token in [*TOKENS.values(), LEGACY]:
        for secret in (token, sha256(token), sha256(token).upper()):
            assert secret not in resp.text


async def test_config_without_alerting(store: SqliteStore, clock: Clock) -> None:
    async with client(make_app(store, None, clock)) as c:
        resp = await c.get("/config", headers=as_role(Role.ADMIN))
    assert resp.json()["alert_receivers"] is None


# ---------------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("keys", "token", "words"),
    [
        ([{"name": "a", "role": "boss", "token_sha256": "a" * 64}], None, "'operator', 'officer'"),
        ([{"name": "a", "role": "admin", "token_sha256": "a" * 63}], None, "pattern"),
        ([{"name": "a", "role": "admin", "token_sha256": "a" * 65}], None, "pattern"),
        ([{"name": "a", "role": "admin", "token_sha256": "g" * 64}], None, "pattern"),
        ([{"name": "a", "role": "admin"}], None, "exactly one"),
        (
            [{"name": "a", "role": "admin", "token_sha256": "a" * 64, "token": TOKENS[Role.ADMIN]}],
            None,
            "exactly one",
        ),
        ([{"name": "a", "role": "admin", "token_sha256": "a" * 64, "pw": "x"}], None, "extra"),
        ([{"name": " a", "role": "admin", "token_sha256": "a" * 64}], None, "pattern"),
        ([{"name": "", "role": "admin", "token_sha256": "a" * 64}], None, "at least 1"),
        ([{"name": "System", "role": "admin", "token_sha256": "a" * 64}], None, "reserved"),
        (
            [KEYS[0], {**KEYS[0], "token_sha256": "b" * 64}],
            None,
            "STACKWATCH_API_KEYS[1]: the name 'grafana' is taken by STACKWATCH_API_KEYS[0]",
        ),
        (
            # the same token as a digest and in plain
            [KEYS[0], {"name": "b", "role": "admin", "token": TOKENS[Role.OPERATOR]}],
            None,
            "STACKWATCH_API_KEYS[1]: the same token as STACKWATCH_API_KEYS[0]",
        ),
        (
            [{"name": "admin", "role": "operator", "token_sha256": "a" * 64}],
            LEGACY,
            "the name 'admin' is taken by STACKWATCH_API_TOKEN",
        ),
        (
            [{"name": "ci", "role": "operator", "token_sha256": sha256(LEGACY)}],
            LEGACY,
            "the same token as STACKWATCH_API_TOKEN",
        ),
    ],
)
def test_key_settings_are_validated_without_echoing_tokens(
    keys: list[dict[str, str]], token: str | None, words: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        ApiSettings.model_validate({"keys": keys, "token": token})
    text = str(caught.value)
    assert words in text, text
    for secret in (*TOKENS.values(), LEGACY):
        assert secret not in text


def test_keys_load_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACKWATCH_API_KEYS", json.dumps(KEYS))
    settings = ApiSettings()
    assert [(k.name, k.role) for k in settings.api_keys()] == [
        ("grafana", Role.OPERATOR),
        ("k.huber", Role.OFFICER),
        ("it.admin", Role.ADMIN),
    ]
    ring = Keyring.of(settings)
    for role, token in TOKENS.items():
        principal = ring.identify(token)
        assert principal is not None and (principal.name, principal.role) == (NAMES[role], role)
    assert ring.identify(TOKENS[Role.ADMIN][:-1]) is None
    monkeypatch.setenv("STACKWATCH_API_KEYS", '[{"name": "a",')
    with pytest.raises(SettingsError, match="keys"):
        ApiSettings()


@pytest.mark.parametrize(
    ("key", "words"),
    [
        ({"token": "k7Qp2xVb9LmZr4Tn8WcYe3H"}, "too short (23 characters"),
        ({"token": "changeme-changeme-changeme"}, "placeholder"),
        ({"token": "x" * 40}, "placeholder"),
        ({"token_sha256": sha256("")}, "digest of an empty or placeholder token"),
        ({"token_sha256": sha256("changeme").upper()}, "digest of an empty or placeholder"),
    ],
)
def test_production_refuses_weak_key_tokens(key: dict[str, str], words: str) -> None:
    settings = ApiSettings.model_validate(
        {"keys": [KEYS[0], {"name": "ci", "role": "admin", **key}]}
    )
    with pytest.raises(ValueError, match=re.escape(words)) as caught:
        validate_api_settings(settings, demo=False)
    assert "STACKWATCH_API_KEYS[1] ('ci')" in str(caught.value)
    validate_api_settings(settings, demo=True)  # demo mode uses no keys


def test_production_lists_every_weak_token_and_needs_a_key() -> None:
    settings = ApiSettings.model_validate(
        {
            "token": "changeme",
            "keys": [*KEYS, {"name": "ci", "role": "operator", "token": "short-but-random-9"}],
        }
    )
    with pytest.raises(ValueError) as caught:
        validate_api_settings(settings, demo=False)
    assert str(caught.value).split("\n  - ") == [
        "STACKWATCH_API_TOKEN: the token is a placeholder value; set a random token",
        "STACKWATCH_API_KEYS[3] ('ci'): the token is too short (18 characters, at least 24 "
        "required)",
    ]
    with pytest.raises(ValueError, match="STACKWATCH_API_TOKEN or STACKWATCH_API_KEYS"):
        validate_api_settings(ApiSettings.model_validate({}), demo=False)
    validate_api_settings(ApiSettings.model_validate({"keys": KEYS}), demo=False)  # no token


async def test_startup_log_counts_keys_per_role_and_never_shows_tokens(
    store: SqliteStore, clock: Clock
) -> None:
    with capture_logs() as logs:
        make_app(store, None, clock, token=LEGACY)
        make_app(store, None, clock, demo=True)
    [event] = [e for e in logs if e["event"] == "api keys loaded"]
    assert {k: event[k] for k in ("operator", "officer", "admin")} == {
        "operator": 1,
        "officer": 1,
        "admin": 2,
    }
    text = repr(logs)
    for token in (*TOKENS.values(), LEGACY):
        assert token not in text and sha256(token) not in text
    with capture_logs() as logs:
        app = create_app(
            AppContext(
                config=PLANT,
                store=store,
                settings=ApiSettings.model_validate({}),
                demo=False,
                components=dict,
            )
        )
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == [
        "no API keys configured: every protected request is refused"
    ]
    async with client(app) as c:
        assert_error(await c.get("/plants", headers=as_role(Role.ADMIN)), 401, "unauthorized")


# -------------------------------------------------------------------------------------- CORS


async def test_cors_lets_a_dashboard_send_the_token_and_read_errors(
    store: SqliteStore, runtime: AlertRuntime, clock: Clock
) -> None:
    origin = {"Origin": "https://dash.example"}
    app = make_app(store, runtime, clock, cors_origins=["https://dash.example"])
    async with client(app) as c:
        preflight = await c.options(
            ACK,
            headers={
                **origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        refused = await c.get("/alerts", headers=origin)
        allowed = await c.get("/alerts", headers={**origin, **as_role(Role.OPERATOR)})
        foreign = await c.get("/alerts", headers={"Origin": "https://evil.example"})
    # The preflight carries no token and is not refused for it.
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://dash.example"
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    assert "POST" in preflight.headers["access-control-allow-methods"]
    # A 401 is readable by the page (not an opaque CORS failure), with its challenge.
    assert_error(refused, 401, "unauthorized")
    assert refused.headers["access-control-allow-origin"] == "https://dash.example"
    assert "www-authenticate" in refused.headers["access-control-expose-headers"].lower()
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://dash.example"
    assert "access-control-allow-credentials" not in allowed.headers  # tokens, not cookies
    assert "access-control-allow-origin" not in foreign.headers

    async with client(make_app(store, runtime, clock)) as c:  # no origins configured
        plain = await c.get("/alerts", headers={**origin, **as_role(Role.OPERATOR)})
    assert "access-control-allow-origin" not in plain.headers


# ---------------------------------------------------------------------------------------- CLI

runner = CliRunner()


async def test_a_minted_key_works_with_its_role(
    store: SqliteStore, runtime: AlertRuntime, clock: Clock
) -> None:
    result = runner.invoke(apikey_app, ["new", "--name", "m.roth", "--role", "officer"])
    assert result.exit_code == 0, result.output
    token, line = result.stdout.splitlines()
    entry = json.loads(line)
    assert entry == {"name": "m.roth", "role": "officer", "token_sha256": sha256(token)}
    assert re.fullmatch(r"swk_[A-Za-z0-9_-]{43}", token)
    assert "shown only now" in result.stderr and token not in result.stderr
    again = runner.invoke(apikey_app, ["new", "--name", "m.roth", "--role", "officer"])
    assert again.stdout.splitlines()[0] != token

    app = make_app(store, runtime, clock, keys=[entry])
    async with client(app) as c:
        audit = await c.get("/audit", headers=bearer(token))
        config = await c.get("/config", headers=bearer(token))
    assert audit.status_code == 200, audit.text
    assert "'m.roth'" in assert_error(config, 403, "forbidden")


def test_hash_reads_the_token_from_stdin() -> None:
    token = TOKENS[Role.OPERATOR]
    result = runner.invoke(
        apikey_app, ["hash", "--name", "grafana", "--role", "operator"], input=f"{token}\n"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == KEYS[0]
    assert ApiKey.model_validate(json.loads(result.stdout)).sha256 == sha256(token)
    assert token not in result.stdout


@pytest.mark.parametrize(
    ("args", "stdin", "words"),
    [
        (["new", "--name", "system", "--role", "admin"], None, "reserved"),
        (["new", "--name", " x", "--role", "admin"], None, "no surrounding blanks"),
        (["new", "--name", "x" * 101, "--role", "admin"], None, "at most 100"),
        (["hash", "--name", "ci", "--role", "admin"], "changeme\n", "placeholder"),
        (["hash", "--name", "ci", "--role", "admin"], "q8Zr3t-short\n", "too short"),
        (["hash", "--name", "ci", "--role", "admin"], "", "placeholder"),
    ],
)
def test_the_cli_refuses_what_the_service_would(
    args: list[str], stdin: str | None, words: str
) -> None:
    result = runner.invoke(apikey_app, args, input=stdin)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert words in result.stderr


def test_the_cli_refuses_an_unknown_role() -> None:
    result = runner.invoke(apikey_app, ["new", "--name", "x", "--role", "boss"])
    assert result.exit_code == 2
    assert "operator" in result.stderr and result.stdout == ""
