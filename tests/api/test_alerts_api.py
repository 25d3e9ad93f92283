"""The alert, silence, notification and audit endpoints over ASGI, around a real AlertRuntime.

The runtime keeps its SQLite files and audit log in ``tmp_path``; its receiver ``officers``
has no channel (every delivery succeeds at once, nothing leaves the process). One fake clock
drives both the runtime and the API. The scenario (T0 = 2024-01-01T12:00Z):

* T0       limit_breach alpha/b1/nox 250 > 200: fires at once (critical)
* T0+1 min anomaly alpha/b1/nox: fires at once (info)
* T0+2 min sensor_fault beta/s1/so2: pending (its rule waits 150 s here)
* T0+3 min limit_breach beta/s1/so2 80 > 50: fires (critical); T0+4 min 10: resolved
* T0+4 min tick: the officers are notified
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from alerts.model import Signal
from alerts.runtime import AlertRuntime
from alerts.settings import AlertsConfig, load_alerts_config
from api.context import AppContext
from api.main import create_app
from api.settings import ApiSettings
from stream.model import NS_PER_S, ns_from_datetime
from stream.plant import PlantConfig
from stream.storage.sqlite import SqliteStore

T0 = ns_from_datetime(datetime(2024, 1, 1, 12, tzinfo=UTC))
MIN = 60 * NS_PER_S
TOKEN = "k7Qp2xVb9LmZr4Tn8WcYe3Hd"

PLANT = PlantConfig.model_validate(
    {
        "plants": {
            "alpha": {
                "stacks": {
                    "b1": {
                        "sensors": {
                            "nox": {"quantity": "nox", "unit": "mg/Nm3", "valid_range": [0, 2000]}
                        },
                        "limits": {"nox": {"half_hour": 200}},
                    }
                }
            },
            "beta": {
                "stacks": {
                    "s1": {
                        "sensors": {
                            "so2": {"quantity": "so2", "unit": "mg/Nm3", "valid_range": [0, 500]}
                        },
                        "limits": {"so2": {"half_hour": 50}},
                    }
                }
            },
        }
    }
)

ALERTS_YAML = """
rules: {sensor_fault: {for_s: 150}}
receivers: [{name: officers}]
route: {receivers: [officers], group_wait_s: 0}
"""

BREACH_A = {"plant": "alpha", "stack": "b1", "pollutant": "nox"}
ANOMALY_A = {"plant": "alpha", "stack": "b1", "sensor": "nox"}
FAULT_B = {"plant": "beta", "stack": "s1", "sensor": "so2", "fault": "stuck"}
BREACH_B = {"plant": "beta", "stack": "s1", "pollutant": "so2"}


class Clock:
    """The fake clock of the runtime and the API (integer ns)."""

    def __init__(self) -> None:
        self.ns = T0

    def __call__(self) -> int:
        return self.ns

    def at(self, ns: int) -> None:
        assert ns >= self.ns
        self.ns = ns


def rfc3339(ns: int) -> str:
    return datetime.fromtimestamp(ns / NS_PER_S, tz=UTC).isoformat().replace("+00:00", "Z")


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


def open_runtime(
    config: AlertsConfig, data_dir: Path, clock: Clock, key: SecretStr | None = None
) -> AlertRuntime:
    return AlertRuntime(
        config,
        PLANT,
        data_dir=data_dir,
        fanouts=config.receivers.build(None),
        audit_key=key,
        clock=clock,
    )


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
    *,
    demo: bool = True,
) -> FastAPI:
    settings = ApiSettings.model_validate({"token": TOKEN} if not demo else {})
    ctx = AppContext(
        config=PLANT,
        store=store,
        settings=settings,
        demo=demo,
        components=dict,
        now_ns=clock,
        alerts=runtime,
    )
    return create_app(ctx)


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


class Scenario:
    """Fingerprints of the scenario's alerts (see the module docstring)."""

    breach_a = Signal("limit_breach", BREACH_A, True, 0).fingerprint
    anomaly_a = Signal("anomaly", ANOMALY_A, True, 0).fingerprint
    fault_b = Signal("sensor_fault", FAULT_B, True, 0).fingerprint
    breach_b = Signal("limit_breach", BREACH_B, True, 0).fingerprint


async def play_scenario(runtime: AlertRuntime, clock: Clock) -> None:
    runtime.signal(Signal("limit_breach", BREACH_A, True, T0, "nox high", 250.0, 200.0))
    clock.at(T0 + MIN)
    runtime.signal(Signal("anomaly", ANOMALY_A, True, T0 + MIN, "odd nox", 4.2))
    clock.at(T0 + 2 * MIN)
    runtime.signal(Signal("sensor_fault", FAULT_B, True, T0 + 2 * MIN, "so2 stuck"))
    clock.at(T0 + 3 * MIN)
    runtime.signal(Signal("limit_breach", BREACH_B, True, T0 + 3 * MIN, "so2 high", 80.0, 50.0))
    clock.at(T0 + 4 * MIN)
    runtime.signal(Signal("limit_breach", BREACH_B, True, T0 + 4 * MIN, "so2 ok", 10.0, 50.0))
    await runtime.tick()
    await runtime.wait_deliveries()


@pytest.fixture
async def api(
    store: SqliteStore, runtime: AlertRuntime, clock: Clock
) -> AsyncIterator[httpx.AsyncClient]:
    await play_scenario(runtime, clock)
    async with client(make_app(store, runtime, clock)) as c:
        yield c


def assert_error(resp: httpx.Response, status: int, code: str | None) -> dict[str, Any]:
    """Every error has exactly the shape {"error": {"code", "message", "details"}}."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    if code is not None:
        assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return dict(body["error"])


def fingerprints(resp: httpx.Response) -> list[str]:
    assert resp.status_code == 200, resp.text
    return [a["fingerprint"] for a in resp.json()]


# ------------------------------------------------------------------------------------ alerts


async def test_alerts_most_severe_first_then_newest(api: httpx.AsyncClient) -> None:
    s = Scenario
    resp = await api.get("/alerts")
    # critical: beta (started T0+3) before alpha (T0); warning; info.
    assert fingerprints(resp) == [s.breach_b, s.breach_a, s.fault_b, s.anomaly_a]
    breach = resp.json()[1]
    assert breach == {
        "fingerprint": s.breach_a,
        "rule": "limit_breach",
        "labels": BREACH_A,
        "severity": "critical",
        "state": "firing",
        "summary": "nox high",
        "value": 250.0,
        "threshold": 200.0,
        "started_at": "2024-01-01T12:00:00Z",
        "started_ns": T0,
        "updated_at": "2024-01-01T12:00:00Z",
        "updated_ns": T0,
        "fired_at": "2024-01-01T12:00:00Z",
        "fired_ns": T0,
        "acknowledged_at": None,
        "acknowledged_ns": None,
        "acknowledged_by": None,
        "ack_comment": None,
        "resolved_at": None,
        "resolved_ns": None,
    }
    resolved = resp.json()[0]
    assert (resolved["state"], resolved["resolved_ns"], resolved["value"]) == (
        "resolved",
        T0 + 4 * MIN,
        10.0,
    )


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"state": "firing"}, ["breach_a", "anomaly_a"]),
        ({"state": "pending"}, ["fault_b"]),
        ({"active_only": "true"}, ["breach_a", "anomaly_a"]),
        ({"plant": "beta"}, ["breach_b", "fault_b"]),
        ({"plant": "alpha", "stack": "b1", "rule": "anomaly"}, ["anomaly_a"]),
        ({"severity": "critical"}, ["breach_b", "breach_a"]),
        ({"severity": "critical", "active_only": "true"}, ["breach_a"]),
        ({"limit": "2", "offset": "1"}, ["breach_a", "fault_b"]),
        ({"plant": "gamma"}, []),
    ],
)
async def test_alerts_filters(
    api: httpx.AsyncClient, params: dict[str, str], expected: list[str]
) -> None:
    resp = await api.get("/alerts", params=params)
    assert fingerprints(resp) == [getattr(Scenario, name) for name in expected]


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"state": "open"}, "query.state"),
        ({"severity": "fatal"}, "query.severity"),
        ({"active_only": "maybe"}, "query.active_only"),
        ({"limit": "0"}, "query.limit"),
        ({"limit": "1001"}, "query.limit"),
        ({"offset": "-1"}, "query.offset"),
        ({"plant": "p" * 201}, "query.plant"),
    ],
)
async def test_alerts_reject_bad_filters(
    api: httpx.AsyncClient, params: dict[str, str], loc: str
) -> None:
    err = assert_error(await api.get("/alerts", params=params), 422, "validation_error")
    assert [d["loc"] for d in err["details"]] == [loc]


async def test_one_alert_and_unknown_alert(api: httpx.AsyncClient) -> None:
    resp = await api.get(f"/alerts/{Scenario.fault_b}")
    assert resp.status_code == 200
    assert (resp.json()["state"], resp.json()["labels"]) == ("pending", FAULT_B)
    err = assert_error(await api.get("/alerts/0123456789abcdef"), 404, "not_found")
    assert "0123456789abcdef" in err["message"]
    assert_error(await api.get("/alerts/" + "f" * 65), 422, "validation_error")


# ------------------------------------------------------------------------------------ history


def states(resp: httpx.Response) -> list[tuple[str, str | None, str]]:
    assert resp.status_code == 200, resp.text
    return [(t["alert"]["fingerprint"], t["previous"], t["state"]) for t in resp.json()]


async def test_history_newest_first_with_filters_and_paging(api: httpx.AsyncClient) -> None:
    s = Scenario
    everything = [
        (s.breach_b, "firing", "resolved"),
        (s.breach_b, None, "firing"),
        (s.fault_b, None, "pending"),
        (s.anomaly_a, None, "firing"),
        (s.breach_a, None, "firing"),
    ]
    resp = await api.get("/alerts/history")
    assert states(resp) == everything
    first = resp.json()[0]
    assert (first["at"], first["at_ns"], first["actor"]) == (
        "2024-01-01T12:04:00Z",
        T0 + 4 * MIN,
        "system",
    )
    assert first["alert"]["resolved_ns"] == T0 + 4 * MIN

    async def query(**params: str) -> list[tuple[str, str | None, str]]:
        return states(await api.get("/alerts/history", params=params))

    assert await query(fingerprint=s.breach_b) == everything[:2]
    assert await query(state="firing") == [everything[1], everything[3], everything[4]]
    assert await query(rule="limit_breach", plant="alpha") == [everything[4]]
    assert await query(plant="beta", stack="s1") == everything[:3]
    # since inclusive, until exclusive; offsets other than Z are understood.
    assert (
        await query(since=rfc3339(T0 + MIN), until="2024-01-01T13:03:00+01:00") == (everything[2:4])
    )
    assert await query(until="0001-01-01T00:00:00Z") == []  # clamped, not an error
    assert await query(since="9999-12-31T23:59:59+00:00") == []
    assert await query(limit="2", offset="1") == everything[1:3]
    assert await query(offset="5") == []


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"since": "2024-01-01T12:00:00"}, "query.since"),  # naive
        ({"until": "yesterday"}, "query.until"),
        ({"until": "0.5"}, "query.until"),  # a Unix timestamp is not RFC 3339
        ({"limit": "0"}, "query.limit"),
        ({"limit": "1001"}, "query.limit"),
        ({"offset": "-1"}, "query.offset"),
        ({"offset": "1000001"}, "query.offset"),
        ({"state": "gone"}, "query.state"),
        ({"fingerprint": "f" * 65}, "query.fingerprint"),
    ],
)
async def test_history_rejects_bad_parameters(
    api: httpx.AsyncClient, params: dict[str, str], loc: str
) -> None:
    err = assert_error(await api.get("/alerts/history", params=params), 422, "validation_error")
    assert [d["loc"] for d in err["details"]] == [loc]


# ------------------------------------------------------------------------------------ acknowledge


async def test_acknowledge_then_conflict_and_audit(
    api: httpx.AsyncClient, clock: Clock, runtime: AlertRuntime
) -> None:
    fp = Scenario.breach_a
    clock.at(T0 + 5 * MIN)
    body = {"by": " j.martin ", "comment": "Burner trim adjusted"}
    resp = await api.post(f"/alerts/{fp}/acknowledge", json=body)
    assert resp.status_code == 200, resp.text
    alert = resp.json()
    assert (alert["state"], alert["acknowledged_by"], alert["ack_comment"]) == (
        "acknowledged",
        "j.martin",
        "Burner trim adjusted",
    )
    assert (alert["acknowledged_ns"], alert["acknowledged_at"]) == (
        T0 + 5 * MIN,
        "2024-01-01T12:05:00Z",
    )
    # The runtime's own view changed too (the dispatcher stops reminders from it).
    assert (await api.get(f"/alerts/{fp}")).json()["state"] == "acknowledged"
    assert (await api.get("/alerts", params={"state": "acknowledged"})).json()[0][
        "fingerprint"
    ] == fp

    again = assert_error(
        await api.post(f"/alerts/{fp}/acknowledge", json={"by": "b", "comment": "me too"}),
        409,
        "conflict",
    )
    assert "already acknowledged by j.martin" in again["message"]

    [t] = (await api.get("/alerts/history", params={"state": "acknowledged"})).json()
    assert (t["actor"], t["comment"], t["previous"]) == (
        "j.martin",
        "Burner trim adjusted",
        "firing",
    )

    [entry] = (await api.get("/audit", params={"kind": "acknowledgement"})).json()
    assert (entry["actor"], entry["subject"], entry["ts_ns"]) == ("j.martin", fp, T0 + 5 * MIN)
    assert entry["data"]["comment"] == "Burner trim adjusted"
    assert (entry["data"]["from"], entry["data"]["to"]) == ("firing", "acknowledged")


async def test_acknowledge_refused_for_pending_resolved_and_unknown(api: httpx.AsyncClient) -> None:
    body = {"by": "eo", "comment": "looking"}
    for fp, word in ((Scenario.fault_b, "pending"), (Scenario.breach_b, "resolved")):
        err = assert_error(await api.post(f"/alerts/{fp}/acknowledge", json=body), 409, "conflict")
        assert word in err["message"]
    assert_error(
        await api.post("/alerts/0123456789abcdef/acknowledge", json=body), 404, "not_found"
    )


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"by": "eo", "comment": ""}, "body.comment"),
        ({"by": "eo", "comment": "   "}, "body.comment"),
        ({"by": "eo", "comment": "x" * 2001}, "body.comment"),
        ({"by": "", "comment": "ok"}, "body.by"),
        ({"by": "e" * 101, "comment": "ok"}, "body.by"),
        ({"comment": "ok"}, "body.by"),
        ({"by": "eo", "comment": "ok", "role": "admin"}, "body.role"),
        ({"by": 5, "comment": "ok"}, "body.by"),
    ],
)
async def test_acknowledge_validates_the_body(
    api: httpx.AsyncClient, body: dict[str, Any], loc: str
) -> None:
    resp = await api.post(f"/alerts/{Scenario.breach_a}/acknowledge", json=body)
    err = assert_error(resp, 422, "validation_error")
    assert [d["loc"] for d in err["details"]] == [loc]
    assert (await api.get(f"/alerts/{Scenario.breach_a}")).json()["state"] == "firing"


async def test_lone_surrogates_are_refused_not_a_server_error(api: httpx.AsyncClient) -> None:
    # JSON may carry "\ud800"; UTF-8 storage cannot. 422, never 500.
    raw = b'{"by": "eo", "comment": "bad \\ud800 text"}'
    resp = await api.post(
        f"/alerts/{Scenario.breach_a}/acknowledge",
        content=raw,
        headers={"content-type": "application/json"},
    )
    err = assert_error(resp, 422, "validation_error")
    assert [d["loc"] for d in err["details"]] == ["body.comment"]
    raw = b'{"matchers": ["plant=\\udfff"], "duration_s": 60, "created_by": "eo", "comment": "c"}'
    resp = await api.post("/silences", content=raw, headers={"content-type": "application/json"})
    assert_error(resp, 422, "validation_error")


# ------------------------------------------------------------------------------------ audit


async def test_audit_entries_filters_and_order(api: httpx.AsyncClient) -> None:
    newest = (await api.get("/audit", params={"limit": "1000"})).json()
    seqs = [e["seq"] for e in newest]
    assert seqs == sorted(seqs, reverse=True) and seqs[-1] == 1
    assert newest[-1]["kind"] == "config_loaded"
    oldest = (await api.get("/audit", params={"newest_first": "false", "limit": "3"})).json()
    assert [e["seq"] for e in oldest] == [1, 2, 3]
    assert set(oldest[0]) == {"seq", "ts", "ts_ns", "actor", "kind", "subject", "data"} | {
        "prev",
        "hash",
    }
    assert oldest[1]["prev"] == oldest[0]["hash"]

    about_b = (await api.get("/audit", params={"subject": Scenario.breach_b})).json()
    assert [(e["kind"], e["data"]["to"]) for e in about_b] == [
        ("alert_transition", "resolved"),
        ("alert_transition", "firing"),
    ]
    window = (
        await api.get(
            "/audit",
            params={
                "kind": "alert_transition",
                "since": rfc3339(T0 + MIN),
                "until": rfc3339(T0 + 3 * MIN),
            },
        )
    ).json()
    assert [e["subject"] for e in window] == [Scenario.fault_b, Scenario.anomaly_a]
    sent = (await api.get("/audit", params={"kind": "notification_sent"})).json()
    assert sent and all(e["data"]["receiver"] == "officers" for e in sent)
    paged = (await api.get("/audit", params={"limit": "2", "offset": "1"})).json()
    assert [e["seq"] for e in paged] == seqs[1:3]
    assert_error(await api.get("/audit", params={"kind": "nope"}), 422, "validation_error")
    assert_error(await api.get("/audit", params={"limit": "0"}), 422, "validation_error")


async def test_audit_verify_ok_then_finds_an_edited_line(
    api: httpx.AsyncClient, runtime: AlertRuntime
) -> None:
    resp = await api.get("/audit/verify")
    assert resp.status_code == 200
    report = resp.json()
    lines = runtime.audit.path.read_bytes().splitlines(keepends=True)
    assert report == {
        "ok": True,
        "entries": len(lines),
        "keyed": False,
        "head_seq": len(lines),
        "head_hash": json.loads(lines[-1])["hash"],
        "hint": None,
        "problems_total": 0,
        "problems": [],
    }
    # Someone rewrites the summary of one entry (same length, still canonical JSON).
    index = next(i for i, line in enumerate(lines) if b'"summary":"so2 high"' in line)
    lines[index] = lines[index].replace(b'"summary":"so2 high"', b'"summary":"so2 fine"')
    runtime.audit.path.write_bytes(b"".join(lines))

    report = (await api.get("/audit/verify")).json()
    assert report["ok"] is False
    assert report["problems_total"] == 1
    [problem] = report["problems"]
    assert (problem["line"], problem["seq"]) == (index + 1, index + 1)
    assert "hash mismatch" in problem["reason"]


async def test_audit_verify_finds_entries_cut_off_the_end(
    api: httpx.AsyncClient, runtime: AlertRuntime
) -> None:
    lines = runtime.audit.path.read_bytes().splitlines(keepends=True)
    runtime.audit.path.write_bytes(b"".join(lines[:-2]))  # still a valid chain on its own
    report = (await api.get("/audit/verify")).json()
    assert report["ok"] is False
    assert "cut off the end" in report["problems"][0]["reason"]


async def test_audit_verify_uses_the_logs_key(
    alerts_config: AlertsConfig, tmp_path: Path, clock: Clock, store: SqliteStore
) -> None:
    key = SecretStr("a-long-random-audit-key-0f3c9d")
    rt = open_runtime(alerts_config, tmp_path / "keyed", clock, key=key)
    try:
        await play_scenario(rt, clock)
        async with client(make_app(store, rt, clock)) as c:
            report = (await c.get("/audit/verify")).json()
    finally:
        await rt.close()
    assert (report["ok"], report["keyed"], report["problems"]) == (True, True, [])


# ------------------------------------------------------------------------------------ silences


async def test_silence_lifecycle(api: httpx.AsyncClient, clock: Clock) -> None:
    now = clock.ns
    created = await api.post(
        "/silences",
        json={
            "matchers": ["plant=alpha", 'rule=~"anomaly|sensor_drift"'],
            "duration_s": 7200,
            "created_by": "j.martin",
            "comment": "Analyser swap",
        },
    )
    assert created.status_code == 201, created.text
    s = created.json()
    assert s["matchers"] == [
        {"label": "plant", "op": "=", "value": "alpha", "text": 'plant="alpha"'},
        {
            "label": "rule",
            "op": "=~",
            "value": "anomaly|sensor_drift",
            "text": 'rule=~"anomaly|sensor_drift"',
        },
    ]
    assert s["text"] == '{plant="alpha",rule=~"anomaly|sensor_drift"}'
    assert (s["state"], s["starts_ns"], s["ends_ns"], s["created_ns"]) == (
        "active",
        now,
        now + 7200 * NS_PER_S,
        now,
    )
    assert (s["created_by"], s["comment"], s["source"], s["expired_at"]) == (
        "j.martin",
        "Analyser swap",
        "api",
        None,
    )

    planned = await api.post(
        "/silences",
        json={
            "matchers": [
                {"label": "stack", "value": "s1"},
                {"label": "sensor", "op": "!~", "value": "o2|co"},
            ],
            "starts_at": "2024-01-02T06:00:00Z",
            "ends_at": "2024-01-02T14:00:00+01:00",
            "created_by": "j.martin",
            "comment": "Planned maintenance",
        },
    )
    assert planned.status_code == 201, planned.text
    p = planned.json()
    assert (p["state"], p["starts_at"], p["ends_at"]) == (
        "pending",
        "2024-01-02T06:00:00Z",
        "2024-01-02T13:00:00Z",
    )
    assert [m["op"] for m in p["matchers"]] == ["=", "!~"]

    listed = (await api.get("/silences")).json()
    assert [x["id"] for x in listed] == [p["id"], s["id"]]  # newest start first
    assert (await api.get(f"/silences/{s['id']}")).json() == s

    clock.at(now + MIN)
    expired = await api.delete(f"/silences/{s['id']}", params={"by": "a.chef"})
    assert expired.status_code == 200, expired.text
    e = expired.json()
    assert (e["state"], e["expired_ns"], e["expired_by"]) == ("expired", now + MIN, "a.chef")
    assert [x["id"] for x in (await api.get("/silences")).json()] == [p["id"]]
    assert [x["id"] for x in (await api.get("/silences?include_expired=true")).json()] == [
        p["id"],
        s["id"],
    ]
    again = await api.delete(f"/silences/{s['id']}", params={"by": "a.chef"})
    assert "already expired" in assert_error(again, 409, "conflict")["message"]
    assert_error(await api.delete("/silences/nope", params={"by": "a"}), 404, "not_found")
    assert_error(await api.get("/silences/nope"), 404, "not_found")
    assert_error(await api.delete(f"/silences/{p['id']}"), 422, "validation_error")  # no by
    assert_error(
        await api.delete(f"/silences/{p['id']}", params={"by": " "}), 422, "validation_error"
    )

    audit = (await api.get("/audit", params={"subject": s["id"]})).json()
    assert [(x["kind"], x["actor"]) for x in audit] == [
        ("silence_expired", "a.chef"),
        ("silence_created", "j.martin"),
    ]
    assert audit[1]["data"]["matchers"] == ['plant="alpha"', 'rule=~"anomaly|sensor_drift"']


VALID = {"matchers": ["plant=alpha"], "duration_s": 60, "created_by": "eo", "comment": "c"}


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"ends_at": "2024-01-01T13:00:00Z"}, "exactly one"),  # both ends given
        ({"duration_s": None}, "exactly one"),  # no end at all
        ({"matchers": []}, "at least 1"),
        ({"matchers": ["plant"]}, "not a matcher"),
        ({"matchers": ['sensor=~"(nox"']}, "invalid regex"),
        ({"matchers": [{"label": "s", "op": "=~", "value": "(" * 499 + ")" * 499}]}, "regex"),
        ({"matchers": ["s=~a{4294967296}"]}, "regex"),  # re.compile: OverflowError
        ({"matchers": [{"label": "9lives", "value": "x"}]}, "pattern"),
        ({"matchers": [{"label": "plant", "op": "~", "value": "x"}]}, "op"),
        ({"matchers": ['sensor=~".*"', "plant="]}, "every alert"),
        ({"matchers": ["plant=a"] * 33}, "at most 32"),
        ({"duration_s": 0}, "greater than 0"),
        ({"duration_s": 366 * 86_400 + 1}, "less than or equal"),
        ({"created_by": "  "}, "created_by"),
        ({"comment": ""}, "comment"),
        ({"starts_at": "2024-01-01T12:00:00"}, "timezone"),  # naive
        ({"starts_at": "2300-01-01T00:00:00Z"}, "2262"),
        ({"starts_at": 1_704_110_400}, "RFC 3339"),  # not a Unix timestamp
        (
            {
                "starts_at": "2024-01-01T13:00:00Z",
                "duration_s": None,
                "ends_at": rfc3339(T0 + 30 * MIN),
            },
            "after",
        ),
        ({"duration_s": None, "ends_at": "2024-01-01T11:00:00Z"}, "past"),
        ({"starts_at": "2024-01-01T00:00:00Z", "duration_s": 3600}, "past"),
        ({"duration_s": None, "ends_at": "2025-01-05T00:00:00Z"}, "366 days"),
        ({"extra": 1}, "extra"),
        ({"starts_at": None}, "null"),  # optional, not nullable (as the schema says)
        ({"ends_at": None}, "null"),
    ],
)
async def test_silence_create_rejects_invalid_requests(
    api: httpx.AsyncClient, change: dict[str, Any], words: str
) -> None:
    body = {**VALID, **change}
    body = {k: v for k, v in body.items() if v is not None or (k in change and k != "duration_s")}
    err = assert_error(await api.post("/silences", json=body), 422, "validation_error")
    assert words.lower() in err["message"].lower(), err["message"]
    assert (await api.get("/silences")).json() == []


async def test_silenced_alert_is_suppressed_and_listed(
    api: httpx.AsyncClient, runtime: AlertRuntime, clock: Clock
) -> None:
    sent = (await api.get("/notifications")).json()
    assert {fp for n in sent for fp in n["firing"]} == {Scenario.breach_a, Scenario.anomaly_a}
    assert all(
        (n["receiver"], n["reason"], n["at_ns"], n["escalation_level"])
        == ("officers", "first", T0 + 4 * MIN, 0)
        for n in sent
    )
    audit_sent = (await api.get("/audit", params={"kind": "notification_sent"})).json()
    assert {e["subject"] for e in audit_sent} == {n["id"] for n in sent}

    silence = (
        await api.post(
            "/silences",
            json={
                "matchers": ["plant=beta", "rule=sensor_fault"],
                "duration_s": 3600,
                "created_by": "eo",
                "comment": "known fault",
            },
        )
    ).json()
    clock.at(T0 + 5 * MIN)  # the fault's 150 s `for` elapsed: it fires, muted
    await runtime.tick()
    await runtime.wait_deliveries()
    [muted] = (await api.get("/notifications/suppressed")).json()
    assert muted == {
        "alert_fingerprint": Scenario.fault_b,
        "receiver": "officers",
        "group_key": muted["group_key"],
        "reason": "silenced",
        "by": silence["id"],
        "at": "2024-01-01T12:05:00Z",
        "at_ns": T0 + 5 * MIN,
        "notify_reason": "first",
        "escalation_level": 0,
    }
    assert (await api.get("/notifications", params={"since": rfc3339(T0 + 5 * MIN)})).json() == []
    assert len((await api.get("/notifications", params={"limit": "1"})).json()) == 1
    later = {"since": rfc3339(T0 + 6 * MIN)}
    assert (await api.get("/notifications/suppressed", params=later)).json() == []
    assert_error(
        await api.get("/notifications", params={"since": "2024-01-01"}), 422, "validation_error"
    )
    assert_error(
        await api.get("/notifications/suppressed", params={"limit": "1001"}),
        422,
        "validation_error",
    )


# ------------------------------------------------------------------------------------ auth, 503

ENDPOINTS = [
    ("GET", "/alerts"),
    ("GET", "/alerts/history"),
    ("GET", f"/alerts/{Scenario.breach_a}"),
    ("POST", f"/alerts/{Scenario.breach_a}/acknowledge"),
    ("GET", "/silences"),
    ("POST", "/silences"),
    ("GET", "/silences/abc"),
    ("DELETE", "/silences/abc?by=eo"),
    ("GET", "/notifications"),
    ("GET", "/notifications/suppressed"),
    ("GET", "/audit"),
    ("GET", "/audit/verify"),
]
BODIES = {
    "/silences": VALID,
    f"/alerts/{Scenario.breach_a}/acknowledge": {"by": "eo", "comment": "c"},
}


async def request(c: httpx.AsyncClient, method: str, path: str, **kw: Any) -> httpx.Response:
    return await c.request(method, path, json=BODIES.get(path), **kw)


async def request_as_key(c: httpx.AsyncClient, method: str, path: str, **kw: Any) -> httpx.Response:
    """As :func:`request`, without naming the acting user: with a key, the key names it."""
    body = BODIES.get(path)
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in {"by", "created_by"}}
    return await c.request(method, path.removesuffix("?by=eo"), json=body, **kw)


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
async def test_production_requires_the_token(
    store: SqliteStore, runtime: AlertRuntime, clock: Clock, method: str, path: str
) -> None:
    await play_scenario(runtime, clock)
    async with client(make_app(store, runtime, clock, demo=False)) as c:
        refused = await request_as_key(c, method, path)
        wrong = await request_as_key(
            c, method, path, headers={"Authorization": "Bearer wrong-token-of-some-length-0"}
        )
        for resp in (refused, wrong):
            assert_error(resp, 401, "unauthorized")
            assert resp.headers["www-authenticate"] == "Bearer"
        assert b'"actor":"admin"' not in runtime.audit.path.read_bytes()  # nothing was done
        allowed = await request_as_key(
            c, method, path, headers={"Authorization": f"Bearer {TOKEN}"}
        )
    assert allowed.status_code in (200, 201, 404), allowed.text  # "abc" is no silence
    if method == "POST":  # STACKWATCH_API_TOKEN is the admin key named "admin"
        assert b'"actor":"admin"' in runtime.audit.path.read_bytes()


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
async def test_without_alerting_every_endpoint_is_503(
    store: SqliteStore, clock: Clock, method: str, path: str
) -> None:
    async with client(make_app(store, None, clock)) as c:
        resp = await request(c, method, path)
    err = assert_error(resp, 503, None)
    assert "alerting is not running" in err["message"]
    async with client(make_app(store, None, clock, demo=False)) as c:
        assert_error(await request(c, method, path), 401, "unauthorized")  # auth comes first


# ------------------------------------------------------------------------------------ openapi


async def test_openapi_types_every_alert_endpoint(api: httpx.AsyncClient) -> None:
    doc = (await api.get("/openapi.json")).json()
    paths = doc["paths"]
    ops = {(m.upper(), p) for p, item in paths.items() for m in item}
    expected = {
        (m, p.split("?")[0].replace(Scenario.breach_a, "{fingerprint}")) for m, p in ENDPOINTS
    }
    expected = {(m, p.replace("/silences/abc", "/silences/{silence_id}")) for m, p in expected}
    assert expected <= ops
    error = "#/components/schemas/ErrorOut"
    for method, path in expected:
        op = paths[path][method.lower()]
        assert op["security"] == [{"HTTPBearer": []}]
        assert op["tags"][0] in {"alerts", "silences", "audit"}
        for code in ("401", "422", "503"):
            assert op["responses"][code]["content"]["application/json"]["schema"]["$ref"] == error
        ok = op["responses"]["201" if (method, path) == ("POST", "/silences") else "200"]
        assert ok["content"]["application/json"]["schema"]
    for method, path, code in [
        ("get", "/alerts/{fingerprint}", "404"),
        ("post", "/alerts/{fingerprint}/acknowledge", "404"),
        ("post", "/alerts/{fingerprint}/acknowledge", "409"),
        ("delete", "/silences/{silence_id}", "404"),
        ("delete", "/silences/{silence_id}", "409"),
    ]:
        schema = paths[path][method]["responses"][code]["content"]["application/json"]["schema"]
        assert schema["$ref"] == error
    schemas = doc["components"]["schemas"]
    for name in (
        "AlertOut",
        "TransitionOut",
        "AckIn",
        "SilenceIn",
        "SilenceOut",
        "SentOut",
        "SuppressedOut",
        "AuditEntryOut",
        "VerifyOut",
    ):
        assert schemas[name]["examples"], name
    assert len(schemas["SilenceIn"]["examples"]) == 2  # text and object matchers
