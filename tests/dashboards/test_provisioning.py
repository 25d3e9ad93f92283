"""The Grafana provisioning files and compose.yaml fit together with the generated dashboards,
so ``docker compose up`` shows them with no clicks (checked from the files: no Docker here)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from dashboards.build import GENERATED_DIR
from dashboards.grafana import DATASOURCE_UID

ROOT = Path(__file__).parents[2]
PROVISIONING = ROOT / "dashboards" / "provisioning"


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _grafana() -> dict[str, Any]:
    service: dict[str, Any] = _load(ROOT / "compose.yaml")["services"]["grafana"]
    return service


def _mounts() -> dict[str, str]:
    """Container path → host path (relative to the repository) of the grafana service."""
    out = {}
    for volume in _grafana()["volumes"]:
        host, container, *_ = volume.split(":")
        out[container] = host
    return out


def test_the_datasource_is_influxql_with_the_token_header() -> None:
    [source] = _load(PROVISIONING / "datasources" / "influxdb.yaml")["datasources"]
    assert source["uid"] == DATASOURCE_UID
    assert source["type"] == "influxdb"
    assert source["jsonData"]["version"] == "InfluxQL"
    assert source["jsonData"]["httpHeaderName1"] == "Authorization"
    assert source["secureJsonData"]["httpHeaderValue1"] == "Token ${INFLUX_TOKEN}"
    # Every variable the file expands is set for the grafana container.
    lines = (PROVISIONING / "datasources" / "influxdb.yaml").read_text().splitlines()
    text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    used = set(re.findall(r"\$\{(\w+)\}", text))
    assert used <= set(_grafana()["environment"]), used


def test_compose_mounts_the_provisioning_and_the_generated_dashboards() -> None:
    mounts = _mounts()
    assert (
        mounts["/etc/grafana/provisioning/datasources"] == "./dashboards/provisioning/datasources"
    )
    assert mounts["/etc/grafana/provisioning/dashboards"] == "./dashboards/provisioning/dashboards"
    [provider] = _load(PROVISIONING / "dashboards" / "stackwatch.yaml")["providers"]
    assert provider["type"] == "file"
    assert mounts[provider["options"]["path"]] == "./dashboards/generated"
    assert (ROOT / "dashboards" / "generated").resolve() == GENERATED_DIR.resolve()


def test_every_dashboard_query_uses_the_provisioned_datasource() -> None:
    text = "".join(p.read_text() for p in GENERATED_DIR.glob("*.json"))
    uids = set(re.findall(r'"uid": "([^"]+)"', text))
    dashboards = {p.stem for p in GENERATED_DIR.glob("*.json")}
    assert uids - dashboards == {DATASOURCE_UID, "-- Grafana --"}
