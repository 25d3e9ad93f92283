"""What the ``stackwatch`` commands share: a red message and an exit code, settings and the
plant configuration loaded with a clear error instead of a traceback, time options and the
CA file of an ``mqtts://`` broker.

Exit code 2 means bad arguments or configuration, as in every command.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError

from stackwatch.service import Settings, StartupError, plant_config_path
from stackwatch.settings import ServiceSettings
from stream.plant import ConfigError, PlantConfig, load_plant_config
from stream.timeparse import parse_iso_ns

T = TypeVar("T")

CaFileOption = Annotated[
    Path | None,
    typer.Option(
        "--ca-file",
        help="CA bundle of an mqtts:// broker (default: STACKWATCH_MQTT_TLS_CA_FILE, "
        "else the system's CAs).",
    ),
]
"""The ``--ca-file`` option of the commands that publish to a broker (see :func:`tls_ca_file`)."""


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``message`` in red on standard error; the caller raises what this returns."""
    typer.secho(message, err=True, fg=typer.colors.RED)
    return typer.Exit(code)


def env_settings(factory: Callable[[], T]) -> T:
    """Settings read by ``factory`` from the environment, exit 2 when they are invalid."""
    try:
        return factory()
    except (ValidationError, SettingsError) as err:
        raise fail(f"invalid settings:\n{err}") from None


def load_settings(config: Path | None = None) -> Settings:
    """The service's settings, with ``--config`` in place of ``STACKWATCH_CONFIG``."""
    settings = env_settings(Settings.from_env)
    if config is not None:
        settings.service = settings.service.model_copy(update={"config": config})
    return settings


def load_plant(service: ServiceSettings, config: Path | None = None) -> PlantConfig:
    """The plant configuration: ``config``, else the settings' (``STACKWATCH_CONFIG`` or the
    demo plant)."""
    if config is not None:
        service = service.model_copy(update={"config": config})
    try:
        return load_plant_config(plant_config_path(service))
    except (StartupError, ConfigError) as err:
        raise fail(str(err)) from None


def parse_time(option: str, text: str) -> int:
    """An ISO 8601 time option (with an offset) in epoch ns."""
    try:
        return parse_iso_ns(text)
    except ValueError as err:
        raise fail(f"{option}: {err}") from None


def tls_ca_file(option: Path | None, setting: str | None) -> str | None:
    """The CA bundle that signed an ``mqtts://`` broker's certificate: ``--ca-file``, else the
    collector's ``STACKWATCH_MQTT_TLS_CA_FILE``, else ``None`` (the system's CAs). Loaded once
    here, so a missing or unreadable file is a clear error, not a retry loop when publishing."""
    ca_file = str(option) if option is not None else setting
    if ca_file is not None:
        try:
            ssl.create_default_context(cafile=ca_file)
        except OSError as err:  # ssl.SSLError is one too
            raise fail(f"CA file {ca_file}: {err.strerror or err}") from None
    return ca_file
