"""Every generated dashboard validates against Grafana's dashboard JSON schema (generated
offline from ``@grafana/schema``) and our query rules; broken ones are refused."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards.build import DEMO_CONFIG, GENERATED_DIR, build_dashboards
from dashboards.grafana import SCHEMA_VERSION
from dashboards.validate import SCHEMA_PATH, validate
from stream.plant import PlantConfig, load_plant_config

ROOT = Path(__file__).parents[2]

# A second configuration unlike the demo: two plants in different time zones, a waste
# incinerator (half-hourly averages, no LCP daily criterion), NOx from NO + NO2 analysers in
# ppm, a QAL3 check channel, a monthly limit and a PEMS model.
OTHER = """
plants:
  north:
    timezone: Europe/Berlin
    stacks:
      wi1:
        reference_o2: 11
        compliance: {regime: wi}
        sensors:
          "no": {quantity: "no", unit: ppm, valid_range: [0, 1000], interval_s: 5}
          no2: {quantity: no2, unit: ppm, valid_range: [0, 200], interval_s: 5}
          hcl: {quantity: hcl, unit: mg/Nm3, valid_range: [0, 100], interval_s: 5}
          hcl_span:
            {quantity: hcl, unit: mg/Nm3, valid_range: [0, 100], interval_s: 86400,
             check: {analyser: hcl, point: span, reference: 40, s_ams: 1.0}}
          o2: {quantity: o2, unit: "%", valid_range: [0, 25], interval_s: 5}
          load: {quantity: load, unit: "%", valid_range: [0, 120], interval_s: 60}
        limits:
          nox: {daily: 200, half_hour: 400, monthly: 180}
          hcl: {daily: 10, half_hour: 60}
        pems:
          - {target: hcl, features: [load, o2]}
  south:
    timezone: Europe/Rome
    stacks:
      b2:
        reference_o2: 6
        sensors:
          dust: {quantity: dust, unit: mg/Nm3, valid_range: [0, 200]}
          o2: {quantity: o2, unit: "%", valid_range: [0, 25]}
        limits:
          dust: {hourly: 30, yearly: 10}
"""


def committed() -> dict[str, Any]:
    return {p.name: json.loads(p.read_text()) for p in sorted(GENERATED_DIR.glob("*.json"))}


def other_config() -> PlantConfig:
    return PlantConfig.model_validate(yaml.safe_load(OTHER))


def test_the_committed_dashboards_are_valid() -> None:
    documents = committed()
    assert sorted(documents) == [
        "stackwatch-compliance.json",
        "stackwatch-overview.json",
        "stackwatch-sensors.json",
        "stackwatch-stack.json",
    ]
    for name, document in documents.items():
        assert validate(document) == [], name
        assert document["schemaVersion"] == SCHEMA_VERSION


def test_dashboards_of_another_plant_configuration_are_valid() -> None:
    documents = build_dashboards(other_config())
    for name, document in documents.items():
        assert validate(document) == [], name
    stack = documents["stackwatch-stack.json"]
    rows = [p["title"] for p in stack["panels"] if p["type"] == "row"]
    assert rows == ["NOx", "Dust", "HCl", "Process and events"]
    assert stack["timezone"] == "browser"  # two plants, two zones
    queries = [t["query"] for p in stack["panels"] for t in p.get("targets", [])]
    # NOx of wi1 comes from its NO and NO2 analysers, averaged per half-hour (WI).
    assert any('"sensor" =~ /^(no|no2)$/' in q for q in queries)
    assert any("GROUP BY time(30m)" in q and "/ 48 AS" in q for q in queries)
    assert any('"pems"' in q and "'hcl'" in q for q in queries)
    # The QAL3 check channel (one reading a day) is not expected in the availability.
    sensors = documents["stackwatch-sensors.json"]
    availability = next(p for p in sensors["panels"] if p["title"].startswith("Availability"))
    assert not any("hcl_span" in t["query"] for t in availability["targets"])
    assert availability["interval"] == "10m"


def test_limits_come_from_the_plant_configuration() -> None:
    documents = build_dashboards(load_plant_config(DEMO_CONFIG))
    overview = json.dumps(documents["stackwatch-overview.json"])
    # boiler1 NOx: daily 200, half-hour 400; gt1 NOx: daily 50, no short-term ELV.
    assert 'last(\\"validated_mean\\") / 200 * 100' in overview
    assert 'last(\\"validated_mean\\") / 50 * 100' in overview
    assert 'mean(\\"validated\\") / 400 * 100' in overview
    compliance = json.dumps(documents["stackwatch-compliance.json"])
    assert "daily criterion 220" in compliance  # LCP: 110 % of the daily ELV


def _stack_doc() -> dict[str, Any]:
    return copy.deepcopy(committed()["stackwatch-stack.json"])


def _first_panel(doc: dict[str, Any]) -> dict[str, Any]:
    return next(p for p in doc["panels"] if p["type"] == "timeseries")


def _drop_schema_version(d: dict[str, Any]) -> None:
    del d["schemaVersion"]


def _old_schema_version(d: dict[str, Any]) -> None:
    d["schemaVersion"] = 36


def _string_width(d: dict[str, Any]) -> None:
    _first_panel(d)["gridPos"]["w"] = "16"


def _drop_time_to(d: dict[str, Any]) -> None:
    del d["time"]["to"]


def _unknown_key(d: dict[str, Any]) -> None:
    _first_panel(d)["queries"] = []


def _unbounded(d: dict[str, Any]) -> None:
    t = _first_panel(d)["targets"][0]
    t["query"] = t["query"].replace(" AND $timeFilter", "")


def _unknown_variable(d: dict[str, Any]) -> None:
    t = _first_panel(d)["targets"][0]
    t["query"] = t["query"].replace("$stack", "$stacks")


def _overlap(d: dict[str, Any]) -> None:
    panels = [p for p in d["panels"] if p["type"] != "row"]
    panels[1]["gridPos"] = dict(panels[0]["gridPos"])


def _other_datasource(d: dict[str, Any]) -> None:
    _first_panel(d)["targets"][0]["datasource"] = {"type": "influxdb", "uid": "other"}


def _not_portable(d: dict[str, Any]) -> None:
    t = _first_panel(d)["targets"][0]
    t["query"] += " SLIMIT 5"


def _two_statements(d: dict[str, Any]) -> None:
    t = _first_panel(d)["targets"][0]
    t["query"] += "; SELECT 1"


def _duplicate_ids(d: dict[str, Any]) -> None:
    panels = [p for p in d["panels"] if p["type"] != "row"]
    panels[1]["id"] = panels[0]["id"]


def _bad_variable_refresh(d: dict[str, Any]) -> None:
    d["templating"]["list"][0]["refresh"] = "sometimes"


@pytest.mark.parametrize(
    ("break_it", "expected"),
    [
        (_drop_schema_version, "'schemaVersion' is a required property"),
        (_old_schema_version, "schemaVersion is 36, not 42"),
        (_string_width, "gridPos.w: '16' is not of type 'number'"),
        (_drop_time_to, "time: 'to' is a required property"),
        (_unknown_key, "Additional properties are not allowed ('queries' was unexpected)"),
        (_unbounded, "not bounded by $timeFilter"),
        (_unknown_variable, "unknown variable $stacks"),
        (_overlap, "overlaps panel"),
        (_other_datasource, "datasource is not stackwatch-influxdb"),
        (_not_portable, "'SLIMIT' is not portable"),
        (_two_statements, "more than one statement"),
        (_duplicate_ids, "id used twice"),
        (_bad_variable_refresh, "templating.list.0.refresh: 'sometimes' is not one of [0, 1, 2]"),
    ],
)
def test_a_broken_dashboard_is_refused(
    break_it: Callable[[dict[str, Any]], None], expected: str
) -> None:
    doc = _stack_doc()
    assert validate(doc) == []
    break_it(doc)
    problems = validate(doc)
    assert any(expected in p for p in problems), problems


def test_the_schema_is_grafanas_for_the_compose_image() -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    assert "Panel" in schema["definitions"] and schema["$ref"] == "#/definitions/Dashboard"
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    image = compose["services"]["grafana"]["image"]
    version = image.rsplit(":", 1)[1]
    assert f"@grafana/schema@{version}" in schema["$comment"]
    script = (ROOT / "dashboards/schema/generate.sh").read_text()
    assert re.search(rf"GRAFANA_SCHEMA_VERSION:-{re.escape(version)}\}}", script)
