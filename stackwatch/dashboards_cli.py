"""``stackwatch dashboards``: generate the Grafana dashboards and push them to a Grafana.

``build`` writes one JSON file per dashboard into ``dashboards/generated/`` (what the compose
stack provisions) from a plant configuration, by default the demo plant that compose runs.
``build --check`` writes nothing and exits 1 when the files differ from the generator's output
(the CI check). ``deploy`` pushes the files to an existing Grafana through ``grafana-client``
(``pip install 'stackwatch[grafana]'``), idempotently, into a folder.

Exit codes: 0 done (``--check``: up to date); 1 ``--check`` found differences, or Grafana
failed; 2 bad arguments, configuration or files, or grafana-client is not installed.

Wiring: ``app.add_typer(dashboards_app, name="dashboards")`` in ``stackwatch.cli``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from pydantic import SecretStr

from dashboards.build import DEMO_CONFIG, GENERATED_DIR, build_dashboards, check, write
from dashboards.grafana import Json
from stream.plant import ConfigError, load_plant_config

dashboards_app = typer.Typer(
    help="Grafana dashboards generated from the plant configuration.",
    no_args_is_help=True,
    add_completion=False,
)


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(message, err=True, fg=typer.colors.RED)
    return typer.Exit(code)


DirOption = Annotated[
    Path,
    typer.Option("--dir", help="Directory of the dashboard JSON files to push."),
]


@dashboards_app.command("build")
def build_command(
    config: Annotated[
        Path,
        typer.Option("--config", "-c", help="Plant configuration (default: the demo plant)."),
    ] = DEMO_CONFIG,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Directory to write the dashboard JSON files to.")
    ] = GENERATED_DIR,
    check_only: Annotated[
        bool,
        typer.Option("--check", help="Write nothing; exit 1 if the files are out of date."),
    ] = False,
) -> None:
    """Generate the dashboards from a plant configuration."""
    try:
        documents = build_dashboards(load_plant_config(config))
    except ConfigError as err:
        raise _fail(str(err)) from None
    if check_only:
        problems = check(documents, out)
        for problem in problems:
            typer.echo(problem, err=True)
        if problems:
            raise _fail(
                f"{out} is out of date: run `stackwatch dashboards build --config {config}`",
                code=1,
            )
        typer.echo(f"{out}: {len(documents)} dashboards up to date")
        return
    for path in write(documents, out):
        typer.echo(f"wrote {path}")


def _load(directory: Path) -> dict[str, Json]:
    files = sorted(directory.glob("*.json"))
    if not files:
        raise _fail(f"{directory}: no dashboard JSON files; run `stackwatch dashboards build`")
    documents = {}
    for path in files:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise _fail(f"{path}: cannot read dashboard JSON: {err}") from None
        if not isinstance(document, dict) or not document.get("uid"):
            raise _fail(f"{path}: not a dashboard with a uid")
        documents[path.name] = document
    return documents


@dashboards_app.command("deploy")
def deploy_command(
    url: Annotated[str, typer.Option("--url", envvar="GRAFANA_URL", help="Grafana base URL.")],
    token: Annotated[
        str,
        typer.Option(
            "--token",
            envvar="GRAFANA_TOKEN",
            help="Service-account token with dashboard and folder write access "
            "(or set GRAFANA_TOKEN, which keeps it out of the shell history).",
            show_default=False,
        ),
    ],
    folder: Annotated[str, typer.Option("--folder", help="Folder title.")] = "StackWatch",
    source: DirOption = GENERATED_DIR,
    timeout_s: Annotated[float, typer.Option("--timeout", help="Seconds per HTTP request.")] = 10.0,
) -> None:
    """Push the dashboards to an existing Grafana (idempotent)."""
    from dashboards.deploy import DeployError, connect, deploy  # noqa: PLC0415

    documents = _load(source)
    try:
        api = connect(url, SecretStr(token), timeout_s=timeout_s)
    except ImportError:
        raise _fail("grafana-client is not installed: pip install 'stackwatch[grafana]'") from None
    try:
        result = deploy(api, documents, folder_title=folder)
    except DeployError as err:
        hint = " (temporary: try again)" if err.retryable else ""
        raise _fail(f"deploy failed{hint}: {err}", code=1) from None
    typer.echo(f"folder {folder!r}: {result.folder.value}")
    for uid, outcome in result.dashboards.items():
        typer.echo(f"dashboard {uid}: {outcome.value}")
