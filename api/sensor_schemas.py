"""Response models of ``GET /sensors/health``: how each configured sensor and its models fare.

>>> share(3, 12), share(0, 0) is None
(0.25, True)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from stream.model import Status


def share(part: int, whole: int) -> float | None:
    """``part / whole``; None when ``whole`` is 0."""
    return part / whole if whole > 0 else None


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class DetectionHealthOut(_Out):
    """The anomaly detection of one watched sensor."""

    model_version: str | None = Field(
        description="The running model's version (null: detection does not run in this service)."
    )
    warm: bool | None = Field(
        description="The statistical score is past its warm-up (null: unknown here)."
    )
    last_score: float | None = Field(description="Newest anomaly likelihood (0-1).")
    last_kind: str | None = Field(
        description="What scored it: `none`, `residual`, `consistency`, `drift`, "
        "`out_of_range`, `stuck`, `rate_of_change`, `dropout`."
    )
    last_scored: datetime | None = Field(description="Time of the newest score.")
    anomalous: bool | None = Field(description="The newest score is an anomaly.")
    active_fault: str | None = Field(
        description="The kind of the sensor fault in progress (newest fault event active, "
        "not cleared since); null: none."
    )
    fault_since: datetime | None
    drift: bool = Field(description="Sensor drift suspected in the last 24 h.")
    last_drift: datetime | None


class PemsHealthOut(_Out):
    """The PEMS soft sensor predicting this analyser."""

    model_version: str | None = Field(
        description="The running model's version (null: not fitted yet, or PEMS does not "
        "run in this service)."
    )
    checked_1h: int = Field(description="Predictions of the last hour with a measured value.")
    outside_1h: int = Field(description="Those whose measured value was outside the interval.")
    outside_share_1h: float | None = Field(description="outside_1h / checked_1h.")
    substitutes_1h: int = Field(description="Substitute values of the last hour.")


_EXAMPLE: dict[str, Any] = {
    "plant": "demo",
    "stack": "gt1",
    "sensor": "nox",
    "quantity": "nox",
    "unit": "mg/Nm3",
    "interval_s": 1.0,
    "last_seen": "2026-02-10T11:04:59Z",
    "last_status": "valid",
    "last_value": 31.7,
    "availability_1h": 0.9997,
    "availability_24h": 0.9912,
    "detection": {
        "model_version": "det1-3f9a0c1b2d",
        "warm": True,
        "last_score": 0.41,
        "last_kind": "none",
        "last_scored": "2026-02-10T11:04:59Z",
        "anomalous": False,
        "active_fault": None,
        "fault_since": None,
        "drift": False,
        "last_drift": None,
    },
    "pems": {
        "model_version": "pems-poly2-sgd-7c2e",
        "checked_1h": 3598,
        "outside_1h": 212,
        "outside_share_1h": 0.0589,
        "substitutes_1h": 0,
    },
}


class SensorHealthOut(_Out):
    """One configured sensor: when it last reported, how completely, and its models."""

    model_config = ConfigDict(frozen=True, json_schema_extra={"examples": [_EXAMPLE]})

    plant: str
    stack: str
    sensor: str
    quantity: str
    unit: str
    interval_s: float = Field(description="Expected sampling interval in seconds.")
    last_seen: datetime | None = Field(
        description="Time of the newest stored reading (null: none within the store's "
        "look-back, `STACKWATCH_INFLUX_LOOKBACK_S`)."
    )
    last_status: Status | None
    last_value: float | None
    availability_1h: float = Field(
        description="Readings stored in the last hour (any status) / readings expected at "
        "`interval_s`, at most 1."
    )
    availability_24h: float = Field(description="The same over the last 24 hours.")
    detection: DetectionHealthOut | None = Field(
        description="Null: the detection does not watch this sensor."
    )
    pems: PemsHealthOut | None = Field(description="Null: no PEMS model predicts this sensor.")


class SensorsHealthOut(_Out):
    """The health of every configured sensor the filters select, in configuration order."""

    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={"examples": [{"time": "2026-02-10T11:05:00Z", "sensors": [_EXAMPLE]}]},
    )

    time: datetime = Field(description="When the answer was computed (the windows' end).")
    sensors: list[SensorHealthOut]
