"""Service-wide settings (environment prefix ``STACKWATCH_``).

Component settings live with their packages: ``collector.settings.MqttSettings``
(``STACKWATCH_MQTT_*``), ``stream.storage.settings.InfluxSettings`` (``STACKWATCH_INFLUX_*``),
``api.settings.ApiSettings`` (``STACKWATCH_API_*``).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Mode(StrEnum):
    DEMO = "demo"
    PRODUCTION = "production"


class LogFormat(StrEnum):
    CONSOLE = "console"
    JSON = "json"


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="STACKWATCH_", env_file=".env", env_ignore_empty=True, extra="ignore"
    )

    config: Path | None = Field(
        None, description="Plant configuration YAML. Demo mode defaults to the demo plant."
    )
    mode: Mode = Field(
        Mode.PRODUCTION,
        description="production: API and broker authentication required, default secrets "
        "refused. demo: open access, for a laptop (make run).",
    )
    data_dir: Path = Field(Path("var"), description="Embedded store and local state.")
    secrets_dir: Path | None = Field(
        None,
        description="Directory of secret files (e.g. /run/secrets): a file named like a "
        "setting, e.g. STACKWATCH_MQTT_PASSWORD, supplies the MQTT, InfluxDB and API settings "
        "(an environment variable of the same name wins). See stream.secretfiles.",
    )
    log_level: str = Field("INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    log_format: LogFormat = LogFormat.CONSOLE
    write_batch_size: int = Field(5000, ge=1, description="Readings per storage write.")
    write_linger_s: float = Field(
        0.005,
        ge=0,
        description="How long a batch may wait to fill before it is written (latency floor).",
    )
    write_retry_max_s: float = Field(
        30.0, gt=0, description="Cap of the exponential backoff between write retries."
    )
    compliance_lateness_s: float = Field(
        60.0,
        ge=0,
        description="How late a reading may arrive before the short-term period "
        "it belongs to is evaluated (later readings re-evaluate their day).",
    )
    model_checkpoint_s: float = Field(
        300.0,
        gt=0,
        description="Seconds between checkpoints of the detection and PEMS models (also "
        "written at shutdown; after a crash, detection replays the readings stored since).",
    )
    queue_size: int = Field(
        20_000, ge=1, description="Decoded messages waiting for storage (backpressure bound)."
    )
    collector_process: bool = Field(
        True,
        description="Receive MQTT in a separate process (a second core for decoding and the "
        "MQTT protocol); false: in the service process.",
    )
    spool_max_bytes: int = Field(
        1 << 30,
        ge=0,
        description="Bound, in bytes, of the store-and-forward spool (data_dir/spool.db) that "
        "holds readings while the store is unreachable; when it is full, messages are no "
        "longer acknowledged and the broker keeps them. 0 disables the spool.",
    )
