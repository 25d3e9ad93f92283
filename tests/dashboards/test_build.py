"""``stackwatch dashboards build``: deterministic output, and ``--check`` (the CI check) fails
when ``dashboards/generated/`` is out of date with the generator."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import typer
from typer.testing import CliRunner

from dashboards.build import GENERATED_DIR
from stackwatch.dashboards_cli import dashboards_app
from tests.dashboards.test_schema import OTHER

app = typer.Typer()
app.add_typer(dashboards_app, name="dashboards")


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["dashboards", *args])
    return result.exit_code, result.output


def test_the_committed_dashboards_are_up_to_date() -> None:
    code, output = run("build", "--check")
    assert code == 0, output
    assert "4 dashboards up to date" in output


def test_build_reproduces_the_committed_files(tmp_path: Path) -> None:
    code, output = run("build", "--out", str(tmp_path))
    assert code == 0, output
    for path in sorted(GENERATED_DIR.glob("*.json")):
        assert (tmp_path / path.name).read_bytes() == path.read_bytes()
    assert output.count("wrote ") == 4


def test_check_names_every_stale_file(tmp_path: Path) -> None:
    out = tmp_path / "generated"
    shutil.copytree(GENERATED_DIR, out)
    stack = out / "stackwatch-stack.json"
    document = json.loads(stack.read_text())
    document["panels"][1]["targets"][0]["query"] += " LIMIT 5"  # a hand edit
    stack.write_text(json.dumps(document, indent=2) + "\n")
    (out / "stackwatch-sensors.json").unlink()
    (out / "old-dashboard.json").write_text("{}")

    code, output = run("build", "--check", "--out", str(out))
    assert code == 1
    assert f"{stack}: differs from the generator's output" in output
    assert f"{out / 'stackwatch-sensors.json'}: missing" in output
    assert f"{out / 'old-dashboard.json'}: not produced by the generator" in output
    assert "is out of date: run `stackwatch dashboards build" in output

    assert run("build", "--out", str(out))[0] == 0  # repairs it, removing the stale file
    assert not (out / "old-dashboard.json").exists()
    assert run("build", "--check", "--out", str(out))[0] == 0


def test_another_plant_configuration_gives_other_dashboards(tmp_path: Path) -> None:
    config = tmp_path / "plant.yaml"
    config.write_text(OTHER)
    out = tmp_path / "generated"
    assert run("build", "--config", str(config), "--out", str(out))[0] == 0
    stack = json.loads((out / "stackwatch-stack.json").read_text())
    assert [p["title"] for p in stack["panels"] if p["type"] == "row"][:3] == [
        "NOx",
        "Dust",
        "HCl",
    ]
    # The committed set (demo plant) is then out of date for this configuration.
    code, _ = run("build", "--check", "--config", str(config))
    assert code == 1


def test_a_bad_configuration_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "plant.yaml"
    config.write_text("plants: {demo: {stacks: {}}}\n")
    code, output = run("build", "--config", str(config), "--out", str(tmp_path / "out"))
    assert code == 2
    assert "plants.demo.stacks" in output
    assert not (tmp_path / "out").exists()
