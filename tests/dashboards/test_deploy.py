"""``stackwatch dashboards deploy`` through the real grafana-client against a local HTTP double
of Grafana's folder and dashboard API: the exact requests, idempotence, failures."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from dashboards.build import GENERATED_DIR
from stackwatch.dashboards_cli import dashboards_app
from tests.dashboards.grafana_double import GrafanaDouble, grafana_double

pytest.importorskip("grafana_client", reason="optional extra: pip install 'stackwatch[grafana]'")

TOKEN = "glsa_test-service-account-token"
UIDS = ["stackwatch-compliance", "stackwatch-overview", "stackwatch-sensors", "stackwatch-stack"]

app = typer.Typer()
app.add_typer(dashboards_app, name="dashboards")


@pytest.fixture
def grafana() -> Iterator[GrafanaDouble]:
    with grafana_double(TOKEN) as double:
        yield double


@pytest.fixture
def files(tmp_path: Path) -> Path:
    out = tmp_path / "generated"
    shutil.copytree(GENERATED_DIR, out, ignore=shutil.ignore_patterns(".gitkeep"))
    return out


def deploy(grafana: GrafanaDouble, files: Path, *extra: str, token: str = TOKEN) -> tuple[int, str]:
    result = CliRunner().invoke(
        app,
        ["dashboards", "deploy", "--url", grafana.url, "--dir", str(files), *extra],
        env={"GRAFANA_TOKEN": token},
    )
    return result.exit_code, result.output


def test_first_deploy_creates_the_folder_and_every_dashboard(
    grafana: GrafanaDouble, files: Path
) -> None:
    code, output = deploy(grafana, files)
    assert code == 0, output
    expected = [("GET", "/api/folders/stackwatch"), ("POST", "/api/folders")]
    for uid in UIDS:
        expected += [("GET", f"/api/dashboards/uid/{uid}"), ("POST", "/api/dashboards/db")]
    assert grafana.calls() == expected
    assert {r.authorization for r in grafana.requests} == {f"Bearer {TOKEN}"}
    assert grafana.requests[1].body == {"title": "StackWatch", "uid": "stackwatch"}
    posts = [r.body for r in grafana.requests if r.path == "/api/dashboards/db"]
    for uid, body in zip(UIDS, posts, strict=True):
        document = json.loads((files / f"{uid}.json").read_text())
        assert body == {
            "dashboard": document,  # "id": null as generated: Grafana matches by uid
            "folderUid": "stackwatch",
            "overwrite": True,
            "message": "stackwatch dashboards deploy",
        }
    assert "folder 'StackWatch': created" in output
    assert all(f"dashboard {uid}: created" in output for uid in UIDS)
    assert TOKEN not in output


def test_a_second_deploy_only_reads(grafana: GrafanaDouble, files: Path) -> None:
    assert deploy(grafana, files)[0] == 0
    versions = {uid: d["dashboard"]["version"] for uid, d in grafana.dashboards.items()}
    grafana.requests.clear()
    code, output = deploy(grafana, files)
    assert code == 0, output
    assert grafana.calls() == [("GET", "/api/folders/stackwatch")] + [
        ("GET", f"/api/dashboards/uid/{uid}") for uid in UIDS
    ]
    assert {uid: d["dashboard"]["version"] for uid, d in grafana.dashboards.items()} == versions
    assert all(f"dashboard {uid}: unchanged" in output for uid in UIDS)


def test_changes_are_written_and_nothing_else(grafana: GrafanaDouble, files: Path) -> None:
    assert deploy(grafana, files)[0] == 0
    path = files / "stackwatch-sensors.json"
    document = json.loads(path.read_text())
    document["title"] = "Sensor health (renamed)"
    path.write_text(json.dumps(document))
    grafana.dashboards["stackwatch-overview"]["meta"]["folderUid"] = "elsewhere"  # moved in UI
    grafana.requests.clear()

    code, output = deploy(grafana, files, "--folder", "Emissions")
    assert code == 0, output
    assert grafana.calls() == [
        ("GET", "/api/folders/stackwatch"),
        ("PUT", "/api/folders/stackwatch"),
        ("GET", "/api/dashboards/uid/stackwatch-compliance"),
        ("GET", "/api/dashboards/uid/stackwatch-overview"),
        ("POST", "/api/dashboards/db"),
        ("GET", "/api/dashboards/uid/stackwatch-sensors"),
        ("POST", "/api/dashboards/db"),
        ("GET", "/api/dashboards/uid/stackwatch-stack"),
    ]
    assert grafana.requests[1].body == {"title": "Emissions", "overwrite": True}
    assert grafana.folders["stackwatch"]["title"] == "Emissions"
    assert grafana.dashboards["stackwatch-sensors"]["dashboard"]["title"].endswith("(renamed)")
    assert grafana.dashboards["stackwatch-overview"]["meta"]["folderUid"] == "stackwatch"
    assert "dashboard stackwatch-sensors: updated" in output
    assert "dashboard stackwatch-stack: unchanged" in output


def test_a_refused_token_fails_without_retry_hint(grafana: GrafanaDouble, files: Path) -> None:
    code, output = deploy(grafana, files, token="wrong-token")
    assert code == 1
    assert "deploy failed: reading folder stackwatch" in output
    assert "temporary" not in output
    assert grafana.calls() == [("GET", "/api/folders/stackwatch")]


def test_a_grafana_server_error_is_reported_as_temporary(
    grafana: GrafanaDouble, files: Path
) -> None:
    grafana.fail_dashboard_writes = 503
    code, output = deploy(grafana, files)
    assert code == 1
    assert "deploy failed (temporary: try again): writing dashboard stackwatch-compliance" in output
    assert grafana.calls()[-1] == ("POST", "/api/dashboards/db")


def test_an_unreachable_grafana_is_reported_as_temporary(files: Path) -> None:
    with grafana_double(TOKEN) as gone:
        url = gone.url
    result = CliRunner().invoke(
        app,
        ["dashboards", "deploy", "--url", url, "--dir", str(files), "--timeout", "2"],
        env={"GRAFANA_TOKEN": TOKEN},
    )
    assert result.exit_code == 1
    assert "temporary" in result.output


def test_without_grafana_client_deploy_says_how_to_install(
    grafana: GrafanaDouble, files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "grafana_client", None)  # import fails
    code, output = deploy(grafana, files)
    assert code == 2
    assert "pip install 'stackwatch[grafana]'" in output
    assert grafana.requests == []


def test_an_empty_directory_is_refused(grafana: GrafanaDouble, tmp_path: Path) -> None:
    code, output = deploy(grafana, tmp_path)
    assert code == 2
    assert "no dashboard JSON files" in output
