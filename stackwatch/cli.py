"""The ``stackwatch`` command line."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from enum import StrEnum
from importlib.metadata import version
from pathlib import Path
from typing import Annotated

import structlog
import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError

from simulators.recording import RecordingError, read_replay_csv
from stackwatch.apikey_cli import apikey_app
from stackwatch.audit_cli import audit_app
from stackwatch.dashboards_cli import dashboards_app
from stackwatch.detect_cli import detect_app
from stackwatch.logs import configure_logging
from stackwatch.pems_cli import pems_app
from stackwatch.record_cli import record_app
from stackwatch.replay_cli import replay_app
from stackwatch.report_cli import report_app
from stackwatch.service import Service, Settings, StartupError
from stackwatch.settings import Mode
from stackwatch.simulate_cli import simulate_app
from stream.compliance.engine import ComplianceEngine
from stream.compliance.report import to_json, to_table
from stream.plant import ConfigError, load_plant_config

app = typer.Typer(
    name="stackwatch",
    help="Real-time emission monitoring: MQTT collector, stream processing, storage and API.",
    no_args_is_help=True,
    add_completion=False,
)


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(message, err=True, fg=typer.colors.RED)
    return typer.Exit(code)


app.add_typer(detect_app)
app.add_typer(pems_app, name="pems")
app.add_typer(audit_app, name="audit")
app.add_typer(report_app, name="report")
app.add_typer(apikey_app, name="api-key")
app.add_typer(dashboards_app, name="dashboards")
app.add_typer(replay_app)
app.add_typer(record_app, name="record")
app.add_typer(simulate_app)


@app.command("check-config")
def check_config(
    file: Annotated[Path, typer.Argument(help="Plant configuration YAML file.")],
) -> None:
    """Validate a plant configuration file and summarise it."""
    try:
        cfg = load_plant_config(file)
    except ConfigError as err:
        raise _fail(str(err)) from None
    for plant_id, plant in cfg.plants.items():
        sensors = sum(len(s.sensors) for s in plant.stacks.values())
        typer.echo(f"plant {plant_id}: {len(plant.stacks)} stack(s), {sensors} sensor(s)")
        for stack_id, stack in plant.stacks.items():
            limits = ", ".join(q.value for q in stack.limits) or "none"
            typer.echo(f"  stack {stack_id}: sensors {', '.join(stack.sensors)}; limits {limits}")
    typer.echo(f"{file}: OK")


@app.command()
def run(
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="Demo mode: open access, embedded defaults, simulated "
            "plant (same as STACKWATCH_MODE=demo plus --simulate).",
        ),
    ] = False,
    simulate: Annotated[
        bool | None,
        typer.Option(
            "--simulate/--no-simulate",
            help="Publish a simulated plant over MQTT (default: on with --demo).",
        ),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Plant configuration (STACKWATCH_CONFIG).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the simulated plant.")] = 0,
) -> None:
    """Run the service: collector, storage writer, API (and a simulated plant in demo mode)."""
    try:
        settings = Settings.from_env()
    except (ValidationError, SettingsError) as err:
        raise _fail(f"invalid settings:\n{err}") from None
    if demo:
        settings.service = settings.service.model_copy(update={"mode": Mode.DEMO})
    if config is not None:
        settings.service = settings.service.model_copy(update={"config": config})
    configure_logging(settings.service.log_level, settings.service.log_format)
    do_simulate = simulate if simulate is not None else demo
    try:
        service = Service(settings, simulate=do_simulate, seed=seed)
    except (StartupError, ConfigError) as err:
        raise _fail(str(err)) from None
    asyncio.run(_serve(service))


async def _serve(service: Service) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, service.stop)
    try:
        await service.run()
    except Exception as err:
        structlog.get_logger(__name__).exception("service failed", error=str(err))
        sys.exit(1)


class OutputFormat(StrEnum):
    JSON = "json"
    TABLE = "table"


@app.command()
def compliance(
    config: Annotated[Path, typer.Option("--config", "-c", help="Plant configuration YAML.")],
    input_file: Annotated[
        Path, typer.Option("--input", "-i", help="Recording: time,plant,stack,sensor,value,status")
    ],
    fmt: Annotated[OutputFormat, typer.Option("--format", "-f")] = OutputFormat.TABLE,
) -> None:
    """Evaluate a recorded stream offline: daily validated averages, invalid days, criteria."""
    try:
        plant_config = load_plant_config(config)
        recording = read_replay_csv(input_file, plant_config)
    except (ConfigError, RecordingError) as err:
        raise _fail(str(err)) from None
    if recording.rejected:
        summary = ", ".join(f"{n} {reason}" for reason, n in sorted(recording.rejected.items()))
        typer.secho(f"rows refused: {summary}", err=True, fg=typer.colors.YELLOW)
        for message in recording.first_rejections:
            typer.secho(f"  {message}", err=True, fg=typer.colors.YELLOW)
    reports = ComplianceEngine(plant_config).evaluate(recording.series)
    if fmt is OutputFormat.JSON:
        document = {
            "input": str(input_file),
            "readings": recording.accepted,
            "rejected": dict(recording.rejected),
            "reports": [to_json(r) for r in reports],
            "compliant": bool(reports) and all(r.compliant for r in reports),
        }
        typer.echo(json.dumps(document, indent=2))
    else:
        typer.echo(to_table(reports) if reports else "no limited pollutant has data")


@app.command("version")
def show_version() -> None:
    """Print the StackWatch version."""
    typer.echo(version("stackwatch"))


if __name__ == "__main__":  # pragma: no cover
    app()
