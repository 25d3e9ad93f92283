"""Secrets from files: any setting may be read from a file in ``STACKWATCH_SECRETS_DIR``.

Container platforms hand secrets over as files (Docker and Compose secrets in
``/run/secrets``, Kubernetes secret volumes), which keeps them out of the environment that
``docker inspect`` and ``/proc/<pid>/environ`` show. With ``STACKWATCH_SECRETS_DIR=/run/secrets``
the file ``/run/secrets/STACKWATCH_MQTT_PASSWORD`` (name case-insensitive) supplies
``STACKWATCH_MQTT_PASSWORD``; surrounding whitespace is stripped and JSON settings such as
``STACKWATCH_API_KEYS`` are parsed as in the environment. An environment variable of the same
name wins over the file.

The settings classes holding secrets derive from :class:`SecretFilesSettings` instead of
``BaseSettings``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)

SECRETS_DIR_VARIABLE = "STACKWATCH_SECRETS_DIR"


class _SecretsDir(BaseSettings):
    """Where the files are; read like every setting (environment, then ``.env``). Documented
    as ``ServiceSettings.secrets_dir``."""

    model_config = SettingsConfigDict(
        env_prefix="STACKWATCH_", env_file=".env", env_ignore_empty=True, extra="ignore"
    )

    secrets_dir: Path | None = Field(None)


def with_secret_files(
    settings_cls: type[BaseSettings],
    init_settings: PydanticBaseSettingsSource,
    env_settings: PydanticBaseSettingsSource,
    dotenv_settings: PydanticBaseSettingsSource,
) -> tuple[PydanticBaseSettingsSource, ...]:
    """The settings sources in priority order: arguments, environment, ``.env``, files.

    The directory is looked up each time a settings object is built, not at import.
    """
    directory = _SecretsDir().secrets_dir
    files = SecretsSettingsSource(settings_cls, secrets_dir=directory)
    return init_settings, env_settings, dotenv_settings, files


class SecretFilesSettings(BaseSettings):
    """``BaseSettings`` whose values may also come from files in ``STACKWATCH_SECRETS_DIR``."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return with_secret_files(settings_cls, init_settings, env_settings, dotenv_settings)
