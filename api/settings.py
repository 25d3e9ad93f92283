"""API settings (environment prefix ``STACKWATCH_API_``)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="STACKWATCH_API_", env_file=".env", env_ignore_empty=True, extra="ignore"
    )

    host: str = Field("127.0.0.1", description="Bind address (0.0.0.0 in containers).")
    port: int = Field(8000, ge=0, le=65_535, description="HTTP port (0: pick a free one).")
    token: SecretStr | None = Field(
        None,
        description="Bearer token required on every endpoint except health, outside demo "
        "mode. At least 24 characters.",
    )
    cors_origins: list[str] = Field(default_factory=list)
    max_points: int = Field(100_000, ge=1, description="Cap of rows per time-series response.")
