"""Every panel query of every dashboard runs against a real InfluxDB that the real pipeline
filled (simulated demo plant → MQTT → ``stackwatch run``), with variables and time range
substituted as Grafana does, and returns series of the expected shape.

The recording: 38 hours of the demo plant at one reading per sensor and minute (a complete
plant day and 14 hours of the next). Injected, so that every panel has something to show:

* boiler1 NOx: twice as high on day 1 (a daily limit exceedance), 2 hours in maintenance
  (2 invalid hourly averages; 4 would make an invalid day, and a month whose only finished day
  is invalid has no validated average yet);
* boiler1 SO2: silent for 30 minutes (a dropout fault, availability below 100 %);
* gt1 NOx: 2.5 times as high on day 2 (daily-average pre-alarms), silent for 30 minutes (PEMS
  substitutes, a dropout fault);
* gt1 CO: 30 minutes in calibration.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import yaml

from dashboards.build import DEMO_CONFIG, build_dashboards
from dashboards.facts import stack_facts
from dashboards.grafana import Json
from dashboards.render_example import render
from dashboards.run import Series, View, panel_range, run_statement, run_target, statement
from simulators.plant import PlantSimulator
from stream.model import NS_PER_S, Reading, Status
from stream.plant import PlantConfig
from tests.e2e.service import ServiceProcess, service_env, wait_until
from tests.servers import InfluxServer, MosquittoServer

INTERVAL_S = 60
DAY1 = datetime(2026, 2, 28, 23, tzinfo=UTC)  # 2026-03-01 00:00 in Europe/Vienna
START_NS = int(DAY1.timestamp()) * NS_PER_S
HOURS = 38
END_NS = START_NS + HOURS * 3600 * NS_PER_S
STACKS = ("boiler1", "gt1")
PNG_ENV = "STACKWATCH_DASHBOARD_PNG"


def plant_yaml() -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load(DEMO_CONFIG.read_text(encoding="utf-8"))
    for stack in raw["plants"]["demo"]["stacks"].values():
        for sensor in stack["sensors"].values():
            sensor["interval_s"] = INTERVAL_S
        for model in stack.get("pems", []):
            model["training_rows"] = 240  # 4 h of minutes
    return raw


def _hour(r: Reading) -> float:
    return (r.ts_ns - START_NS) / (3600 * NS_PER_S)


def recording(config: PlantConfig) -> list[Reading]:
    out = []
    for r in PlantSimulator(config, seed=11, start_ns=START_NS).stream(until_ns=END_NS):
        h, where = _hour(r), (r.stack, r.sensor)
        if where == ("gt1", "nox") and 28 <= h < 28.5:
            continue
        if where == ("boiler1", "so2") and 30 <= h < 30.5:
            continue
        if where == ("boiler1", "nox") and 2 <= h < 4:
            r = replace(r, status=Status.MAINTENANCE)  # noqa: PLW2901
        elif where == ("gt1", "co") and 27 <= h < 27.5:
            r = replace(r, status=Status.CALIBRATION)  # noqa: PLW2901
        elif where == ("boiler1", "nox") and h < 24:
            r = replace(r, value=round(r.value * 2, 2))  # noqa: PLW2901
        elif where == ("gt1", "nox") and h >= 24:
            r = replace(r, value=min(500.0, round(r.value * 2.5, 2)))  # noqa: PLW2901
        out.append(r)
    return out


async def publish(port: int, prefix: str, readings: list[Reading]) -> None:
    """Each reading as its own message, in time order, as the analysers send them (hourly
    batches per sensor would let a PEMS model see its inputs an hour before its target)."""
    async with aiomqtt.Client("127.0.0.1", port) as client:
        for i in range(0, len(readings), 500):
            # Each publish is handed to the client in list order before any acknowledgement
            # is awaited, so the broker receives them in order, 500 in flight at a time.
            await asyncio.gather(
                *(
                    client.publish(
                        f"{prefix}/demo/{r.stack}/{r.sensor}",
                        json.dumps(
                            {"ts": r.ts_ns // 1_000_000, "value": r.value, "status": r.status}
                        ),
                        qos=1,
                    )
                    for r in readings[i : i + 500]
                )
            )


@dataclass(frozen=True)
class Populated:
    influx: InfluxServer
    database: str
    config: PlantConfig
    dashboards: dict[str, Json]
    readings: int

    def query(self, q: str) -> Json:
        return self.influx.query(q, db=self.database)

    def view(self, stacks: tuple[str, ...], sensors: list[str] | None = None) -> View:
        variables = {"plant": ["demo"], "stack": list(stacks)}
        if sensors is not None:
            variables["sensor"] = sensors
        return View(variables, START_NS, END_NS, "Europe/Vienna")


def _count(p: InfluxServer, db: str, q: str) -> int:
    series = p.query(q, db=db)["results"][0].get("series")
    return int(series[0]["values"][0][1]) if series else 0


@pytest.fixture(scope="module")
def populated(
    tmp_path_factory: pytest.TempPathFactory,
    mosquitto_server: MosquittoServer,
    influx_server: InfluxServer,
) -> Iterator[Populated]:
    tmp = tmp_path_factory.mktemp("dashboards")
    raw = plant_yaml()
    (tmp / "plant.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    config = PlantConfig.model_validate(raw)
    readings = recording(config)
    database = f"t_{uuid.uuid4().hex[:12]}"
    influx_server.create_database(database)
    prefix = f"sw{uuid.uuid4().hex[:10]}"
    env = service_env(
        tmp / "plant.yaml",
        mosquitto_server.url,
        influx_server.url,
        database,
        prefix,
        STACKWATCH_MQTT_MAX_FUTURE_S=str(10 * 365 * 86_400),
        STACKWATCH_COMPLIANCE_LATENESS_S="0",
    )
    svc = ServiceProcess(tmp, env)
    svc.start().wait_healthy()
    try:
        asyncio.run(publish(mosquitto_server.port, prefix, readings))
        total = len(readings)
        wait_until(
            lambda: _count(influx_server, database, 'SELECT count("value") FROM readings') == total,
            60,
            f"{total} readings stored",
        )
        # Derived points are written with the batch that produced them. An hour's averages
        # are computed once a reading of the next hour arrives: the last one is hour 36.
        wait_until(
            lambda: (
                _count(
                    influx_server,
                    database,
                    "SELECT count(\"n_valid\") FROM compliance_sta WHERE stack = 'gt1' "
                    f"AND time >= {END_NS - 2 * 3600 * NS_PER_S}",
                )
                == 2
            ),
            30,
            "the last hour's short-term averages",
        )
    finally:
        assert svc.stop() == 0, svc.logs()[-3000:]
    yield Populated(influx_server, database, config, build_dashboards(config), len(readings))


# --- what each query should return -----------------------------------------------------

_ALIAS = re.compile(r'\s+AS\s+"([^"]+)"\s*$', re.IGNORECASE)


def _split_top(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    return [*parts, current]


def expected_columns(query: str) -> list[str]:
    """``time`` and the name of every selected expression (its alias, or the quoted key)."""
    fields = query.split("SELECT ", 1)[1].split(' FROM "', 1)[0]
    names = []
    for item in _split_top(fields):
        m = _ALIAS.search(item)
        bare = re.fullmatch(r'\s*"([^"]+)"\s*', item)
        assert m or bare, f"unaliased expression {item!r} in {query}"
        names.append(m.group(1) if m else bare.group(1))  # type: ignore[union-attr]
    return ["time", *names]


def expected_tags(query: str) -> set[str]:
    group = query.split(" GROUP BY ", 1)[1] if " GROUP BY " in query else ""
    return set(re.findall(r'"(\w+)"', group.split(" fill(", 1)[0]))


def expects_data(query: str, stack: str, config: PlantConfig) -> bool:
    """Whether a query must return rows with only ``stack`` selected: not when it is pinned
    to other stacks (a limit of theirs), about a pollutant the stack has no limit for, or
    about a PEMS model the stack does not have."""
    pinned = re.search(r'"stack" =~ /\^\(([^)]*)\)\$/', query)
    if pinned and stack not in pinned.group(1).split("|"):
        return False
    facts = {f.stack: f for f in stack_facts(config)}[stack]
    pollutant = re.search(r"\"pollutant\" = '(\w+)'", query)
    if pollutant and pollutant.group(1) not in facts.pollutants:
        return False
    if ' FROM "pems"' in query:
        return any(p.pems for p in facts.pollutants.values())
    return True


def check_shape(query: str, series: list[Series]) -> None:
    columns, tags = expected_columns(query), expected_tags(query)
    for s in series:
        assert s.columns == columns, query
        assert set(s.tags) == tags, query
        assert s.values, query
        assert all(START_NS - 366 * 86_400 * NS_PER_S <= row[0] <= END_NS for row in s.values)


def panels(document: Json) -> Iterator[Json]:
    for panel in document["panels"]:
        if panel["type"] not in ("row", "text"):
            yield panel


# --- tests -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "stackwatch-overview.json",
        "stackwatch-compliance.json",
        "stackwatch-sensors.json",
        "stackwatch-stack.json",
    ],
)
def test_every_panel_query_returns_data_of_the_expected_shape(
    populated: Populated, name: str
) -> None:
    document = populated.dashboards[name]
    sensors = sorted({s for _, s in _sensor_keys(populated.config)})
    multi = not name.endswith("stack.json")
    selections = [STACKS] if multi else [(s,) for s in STACKS]
    for selected in selections:
        view = populated.view(selected, sensors)
        for panel in panels(document):
            for target in panel["targets"]:
                query = statement(panel, target, view)
                series = run_target(populated.query, panel, target, view)
                if multi or expects_data(target["query"], selected[0], populated.config):
                    assert series, f"no data: {panel['title']} {target['refId']}: {query}"
                    check_shape(target["query"], series)
                else:
                    assert not series, f"data for another stack: {panel['title']}: {query}"
        for ann in document["annotations"]["list"][1:]:
            q = ann["target"]["query"]
            series = run_statement(populated.query, _plain(q, view))
            assert series, f"annotation {ann['name']!r} has no events for {selected}"
            check_shape(q, series)
            columns = series[0].columns + list(series[0].tags)
            assert ann["target"]["textColumn"] in columns
            assert set(ann["target"]["tagsColumn"].split(",")) <= set(columns)
        for variable in document["templating"]["list"]:
            series = run_statement(populated.query, _plain(variable["query"], view))
            values = {row[1] for row in series[0].values}
            wanted = {"plant": {"demo"}, "stack": set(STACKS), "sensor": set(sensors)}
            assert values == wanted[variable["name"]], variable["query"]


def _plain(query: str, view: View) -> str:
    return statement({}, {"query": query}, view)


def _sensor_keys(config: PlantConfig) -> set[tuple[str, str]]:
    return {(k.stack, k.sensor) for k, _ in config.sensors()}


def _panel(document: Json, title: str) -> Json:
    return next(p for p in document["panels"] if p.get("title") == title)


def _last(series: list[Series], column: str) -> Any:
    [s] = series
    i = s.columns.index(column)
    return [row[i] for row in s.values if row[i] is not None][-1]


def test_running_and_projected_daily_average_match_the_engine(populated: Populated) -> None:
    """The panel's InfluxQL arithmetic gives the engine's numbers: the running average equals
    the stored daily average of the open day, the projection the engine's pre-alarm value."""
    stack_doc = populated.dashboards["stackwatch-stack.json"]
    panel = _panel(stack_doc, "NOx: today's daily average, running and projected")
    view = populated.view(("gt1",))
    [target] = [
        t
        for t in panel["targets"]
        if run_target(populated.query, panel, t, view)  # the gt1 limit group
    ]
    series = run_target(populated.query, panel, target, view)
    start, _ = panel_range(panel, view)
    assert start == START_NS + 24 * 3600 * NS_PER_S  # today = day 2 from the plant's midnight
    running, projected = (
        _last(series, "running daily average"),
        _last(series, "projected daily average"),
    )

    engine = populated.query(
        "SELECT validated_mean FROM compliance_daily WHERE stack = 'gt1' AND pollutant = 'nox' "
        f"AND complete = false AND time >= {start}"
    )["results"][0]["series"][0]["values"][0][1]
    assert abs(running - engine) <= 1e-9 * abs(engine)
    prealarm = populated.query(
        "SELECT last(value) FROM compliance_events WHERE stack = 'gt1' AND pollutant = 'nox' "
        f"AND kind = 'forecast_prealarm' AND time >= {start}"
    )["results"][0]["series"][0]["values"][0][1]
    assert abs(projected - prealarm) <= 1e-9 * abs(prealarm)
    assert projected > 50  # above gt1's daily NOx ELV: that is why there is a pre-alarm


def test_availability_is_a_percentage_of_the_configured_interval(populated: Populated) -> None:
    overview = populated.dashboards["stackwatch-overview.json"]
    panel = _panel(overview, "Data availability, % of expected readings")
    view = populated.view(STACKS)
    values: dict[str, list[float]] = {}
    for target in panel["targets"]:
        for s in run_target(populated.query, panel, target, view):
            inside = [row for row in s.values if START_NS <= row[0] < END_NS - 600 * NS_PER_S]
            values[s.tags["stack"]] = [row[1] for row in inside]
    assert max(values["gt1"]) == pytest.approx(100) and max(values["boiler1"]) == pytest.approx(100)
    # boiler1's SO2 silent for 30 min: 1 of its 10 sensors for three 10-minute buckets.
    assert sorted(values["boiler1"])[:3] == pytest.approx([90, 90, 90])


def test_the_stack_detail_example_renders(populated: Populated, tmp_path: Path) -> None:
    out = Path(os.environ.get(PNG_ENV) or tmp_path / "stack.png")
    document = populated.dashboards["stackwatch-stack.json"]
    view = View(
        {"plant": ["demo"], "stack": ["gt1"]},
        END_NS - 14 * 3600 * NS_PER_S,
        END_NS,
        "Europe/Vienna",
    )
    render(
        populated.query,
        document,
        view,
        "NOx",
        out,
        title="StackWatch: stack detail, demo/gt1 (simulated)",
    )
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
