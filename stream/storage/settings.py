"""Storage settings (environment prefix ``STACKWATCH_INFLUX_``).

Without ``STACKWATCH_INFLUX_URL`` the embedded SQLite store is used.
"""

from __future__ import annotations

from pydantic import AnyHttpUrl, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from stream.secretfiles import SecretFilesSettings


class InfluxSettings(SecretFilesSettings):
    model_config = SettingsConfigDict(
        env_prefix="STACKWATCH_INFLUX_", env_file=".env", env_ignore_empty=True, extra="ignore"
    )

    url: AnyHttpUrl | None = Field(
        None, description="InfluxDB base URL, e.g. http://influxdb:8086. Unset: embedded store."
    )
    database: str = Field(
        "emissions", min_length=1, description="Database (1.x/3.x) or bucket (2.x) name."
    )
    retention_policy: str | None = Field(None, description="Optional 1.x retention policy.")
    token: SecretStr | None = Field(None, description="API token, sent as 'Authorization: Token'.")
    create_database: bool = Field(
        True, description="On InfluxDB 1.x, CREATE DATABASE at start-up if it is missing."
    )
    timeout_s: float = Field(10.0, gt=0, description="HTTP timeout per request.")
    lookback_s: int = Field(
        86_400, gt=0, description="How far back 'latest value' queries look (bounded scans)."
    )
