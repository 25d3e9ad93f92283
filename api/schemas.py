"""Typed request and response models of the API, so the OpenAPI document describes every body.

Times are serialised as ISO-8601 in UTC. Every error, whatever its origin (bad parameter,
unknown resource, missing token, unavailable store), has the :class:`ErrorOut` shape.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from stream.model import Status
from stream.storage.base import Aggregate

MAX_EVERY_S = 31 * 86_400

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400}


def parse_every(value: object) -> object:
    """Seconds from ``"90"``, ``90``, ``"30s"``, ``"1m"``, ``"1h"`` or ``"1d"``.

    Other strings are refused with a message naming the accepted forms; non-strings are left
    to pydantic's integer validation.

    >>> parse_every("15m"), parse_every("3600"), parse_every(5)
    (900, 3600, 5)
    """
    if not isinstance(value, str):
        return value
    m = _DURATION.match(value)
    if m is None:
        raise ValueError("expected seconds or a duration such as 30s, 1m, 1h, 1d")
    return int(m.group(1)) * _UNIT_S[m.group(2)]


Every = Annotated[
    int,
    BeforeValidator(parse_every),
    Field(ge=1, le=MAX_EVERY_S),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^\d+[smhd]?$",
            "description": "Window length: seconds, or a number with unit s, m, h or d "
            "(1 s to 31 d).",
            "examples": ["60", "30s", "1m", "1h", "1d"],
        }
    ),
]
"""Aggregation window in seconds, accepted as an integer or a duration such as ``1m``."""


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


# ---------------------------------------------------------------------------------- errors


class ErrorDetail(_Out):
    """One problem with the request (validation errors list each offending parameter)."""

    loc: str = Field(description="Where the problem is, e.g. `query.start`.")
    message: str


class ErrorBody(_Out):
    code: str = Field(
        description="Stable machine-readable code: `validation_error`, `not_found`, "
        "`unauthorized`, `store_unavailable`, `store_error`, ..."
    )
    message: str = Field(description="Human-readable explanation.")
    details: list[ErrorDetail] = Field(default_factory=list)


class ErrorOut(_Out):
    """The body of every error response."""

    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "code": "not_found",
                        "message": "plant 'x' is not configured",
                        "details": [],
                    }
                }
            ]
        },
    )

    error: ErrorBody


# ---------------------------------------------------------------------------------- health


class ComponentOut(_Out):
    ok: bool
    detail: str = ""


class HealthOut(_Out):
    """Readiness: ``ok`` when every component is, ``degraded`` otherwise (HTTP 503)."""

    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "status": "ok",
                    "components": {
                        "store": {"ok": True, "detail": "sqlite"},
                        "mqtt": {"ok": True, "detail": "connected to 127.0.0.1:1883"},
                    },
                }
            ]
        },
    )

    status: Literal["ok", "degraded"]
    components: dict[str, ComponentOut]


class LiveOut(_Out):
    model_config = ConfigDict(frozen=True, json_schema_extra={"examples": [{"status": "ok"}]})

    status: Literal["ok"] = "ok"


# ---------------------------------------------------------------------------------- plants


class SensorOut(_Out):
    id: str
    quantity: str = Field(description="What the sensor measures, e.g. `nox`, `o2`.")
    unit: str
    valid_range: tuple[float, float] = Field(description="Physically possible [min, max].")
    interval_s: float = Field(description="Expected sampling interval in seconds.")
    description: str = ""


class LimitOut(_Out):
    """Emission limit values of one pollutant by averaging period (null: no limit)."""

    quantity: str
    unit: str
    half_hour: float | None = None
    hourly: float | None = None
    daily: float | None = None
    monthly: float | None = None
    yearly: float | None = None


class StackOut(_Out):
    id: str
    name: str
    reference_o2: float | None = Field(description="Reference O2 in % vol dry, if any.")
    sensors: list[SensorOut]
    limits: list[LimitOut]


class PlantOut(_Out):
    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "demo",
                    "name": "Demo plant",
                    "timezone": "Europe/Paris",
                    "stacks": [
                        {
                            "id": "boiler1",
                            "name": "Boiler 1",
                            "reference_o2": 6.0,
                            "sensors": [
                                {
                                    "id": "nox",
                                    "quantity": "nox",
                                    "unit": "mg/Nm3",
                                    "valid_range": [0, 2000],
                                    "interval_s": 1.0,
                                    "description": "",
                                }
                            ],
                            "limits": [
                                {
                                    "quantity": "nox",
                                    "unit": "mg/Nm3",
                                    "half_hour": 400,
                                    "hourly": None,
                                    "daily": 200,
                                    "monthly": None,
                                    "yearly": None,
                                }
                            ],
                        }
                    ],
                }
            ]
        },
    )

    id: str
    name: str
    timezone: str
    stacks: list[StackOut]


# ---------------------------------------------------------------------------------- readings


class ReadingOut(_Out):
    """The newest stored value of one sensor."""

    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "plant": "demo",
                    "stack": "boiler1",
                    "sensor": "nox",
                    "quantity": "nox",
                    "unit": "mg/Nm3",
                    "time": "2024-01-01T12:00:00Z",
                    "value": 87.5,
                    "status": "valid",
                }
            ]
        },
    )

    plant: str
    stack: str
    sensor: str
    quantity: str
    unit: str
    time: datetime
    value: float
    status: Status


class PointOut(_Out):
    time: datetime = Field(description="Point time, or window start when aggregated.")
    value: float


class SeriesOut(_Out):
    """A time series over ``[start, end)``: raw points, or one row per non-empty window."""

    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "plant": "demo",
                    "stack": "boiler1",
                    "sensor": "nox",
                    "quantity": "nox",
                    "unit": "mg/Nm3",
                    "start": "2024-01-01T11:00:00Z",
                    "end": "2024-01-01T12:00:00Z",
                    "every": 60,
                    "fn": "mean",
                    "points": [
                        {"time": "2024-01-01T11:00:00Z", "value": 86.2},
                        {"time": "2024-01-01T11:01:00Z", "value": 88.0},
                    ],
                }
            ]
        },
    )

    plant: str
    stack: str
    sensor: str
    quantity: str
    unit: str
    start: datetime
    end: datetime
    every: int | None = Field(description="Window length in seconds; null for raw points.")
    fn: Aggregate | None = Field(description="Aggregation applied per window; null when raw.")
    points: list[PointOut]
