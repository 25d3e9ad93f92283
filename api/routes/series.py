"""``GET /series/{measurement}/{field}``: the time series of any stored numeric quantity.

Only the pairs of :data:`SERIES` are served (any other is 404), each identifying one stored
series by the tags the request names:

=====================  ==========================================  =====================
measurement            fields (unit)                               series named by
=====================  ==========================================  =====================
``readings``           ``value`` (the sensor's unit)               ``sensor``
``compliance_sta``     ``normalised``, ``validated`` (mg/Nm3),     ``pollutant`` (limited)
                       ``mass_kg`` (kg), ``n_valid`` (count)
``compliance_daily``   ``validated_mean``, ``measured_mean``       ``pollutant`` (limited)
                       (mg/Nm3), ``valid_hours`` (h)
``compliance_period``  ``validated_mean`` (mg/Nm3), ``coverage``   ``pollutant`` (limited)
                       (fraction)                                  and ``period``
``anomaly_scores``     ``score`` (likelihood, 0-1)                 ``sensor`` (watched)
``pems``               ``prediction``, ``lower``, ``upper``,       ``sensor`` (a PEMS
                       ``measured`` (the analyser's unit)          target)
=====================  ==========================================  =====================

``plant`` and ``stack`` are always required. Range, aggregation and bounds are those of
``/readings/{plant}/{stack}/{sensor}`` (the same parameters and checks: at most 31 days and
``STACKWATCH_API_MAX_POINTS`` rows).

>>> sorted(SERIES["compliance_sta"].fields)
['mass_kg', 'n_valid', 'normalised', 'validated']
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field

from api.deps import ContextDep
from api.routes.readings import (
    End,
    EveryParam,
    FnParam,
    Start,
    bounded_series,
    time_range,
)
from api.schemas import ErrorOut, PointOut
from stream.compliance.points import DAILY, PERIOD, STA
from stream.detect.live import SCORES, watched_sensors
from stream.model import datetime_from_ns
from stream.plant import PlantInfo, StackConfig
from stream.schema import READINGS
from stream.storage.base import Aggregate

PEMS = "pems"
"""``stream.pems.live.PEMS`` (not imported: that module pulls in river)."""

SensorSet = Literal["any", "watched", "pems"]


@dataclass(frozen=True)
class Stored:
    """The servable fields of one measurement and how a request names one of its series.

    ``fields`` maps each field to its unit; ``None`` is the unit of the named sensor.
    ``key`` is the tag naming the series within a stack: a sensor (of ``sensors``: any
    configured one, those the detection watches, or PEMS targets) or a limited pollutant;
    ``periodic`` series also need ``period`` (``month`` or ``year``).
    """

    fields: Mapping[str, str | None]
    key: Literal["sensor", "pollutant"]
    sensors: SensorSet = "any"
    periodic: bool = False


_CONC = "mg/Nm3"
SERIES: Mapping[str, Stored] = {
    READINGS: Stored({"value": None}, "sensor"),
    STA: Stored(
        {"normalised": _CONC, "validated": _CONC, "mass_kg": "kg", "n_valid": "count"},
        "pollutant",
    ),
    DAILY: Stored(
        {"validated_mean": _CONC, "measured_mean": _CONC, "valid_hours": "h"}, "pollutant"
    ),
    PERIOD: Stored({"validated_mean": _CONC, "coverage": "fraction"}, "pollutant", periodic=True),
    SCORES: Stored({"score": "likelihood"}, "sensor", sensors="watched"),
    PEMS: Stored(
        {"prediction": None, "lower": None, "upper": None, "measured": None},
        "sensor",
        sensors="pems",
    ),
}
"""The whitelist: measurement → servable numeric fields (see the module docstring)."""

router = APIRouter(prefix="/series", tags=["series"])

_PAIRS = ", ".join(f"`{m}.{f}`" for m, s in SERIES.items() for f in s.fields)


class StoredSeriesOut(BaseModel):
    """One field of one stored series over ``[start, end)``: raw points, or one row per
    non-empty window."""

    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "measurement": "compliance_sta",
                    "field": "validated",
                    "plant": "demo",
                    "stack": "boiler1",
                    "sensor": None,
                    "pollutant": "nox",
                    "period": None,
                    "unit": "mg/Nm3",
                    "start": "2024-01-01T00:00:00Z",
                    "end": "2024-01-01T03:00:00Z",
                    "every": None,
                    "fn": None,
                    "points": [
                        {"time": "2024-01-01T00:00:00Z", "value": 146.0},
                        {"time": "2024-01-01T01:00:00Z", "value": 151.3},
                    ],
                }
            ]
        },
    )

    measurement: str
    field: str
    plant: str
    stack: str
    sensor: str | None = Field(description="The sensor (sensor series), else null.")
    pollutant: str | None = Field(description="The pollutant (compliance series), else null.")
    period: Literal["month", "year"] | None = Field(description="`compliance_period` only.")
    unit: str
    start: datetime
    end: datetime
    every: int | None = Field(description="Window length in seconds; null for raw points.")
    fn: Aggregate | None = Field(description="Aggregation applied per window; null when raw.")
    points: list[PointOut]


def _not_found(message: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, message)


def _unprocessable(message: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, message)


def _sensor_unit(stack: StackConfig, where: str, sensor: str, sensors: SensorSet) -> str:
    """The unit of a sensor that has a series of this kind; 404 otherwise."""
    cfg = stack.sensors.get(sensor)
    if cfg is None:
        raise _not_found(f"sensor {where}/{sensor} is not configured")
    if sensors == "watched" and not (stack.detection.enabled and sensor in watched_sensors(stack)):
        raise _not_found(f"sensor {where}/{sensor} is not watched by the detection")
    if sensors == "pems" and all(p.target != sensor for p in stack.pems):
        raise _not_found(f"sensor {where}/{sensor} is not predicted by a PEMS model")
    return cfg.unit


def resolve(
    kind: Stored,
    field: str,
    info: PlantInfo,
    ids: tuple[str, str],
    tags: Mapping[str, str | None],
) -> tuple[dict[str, str], str]:
    """The tag filter of the one series a request names, and the field's unit.

    ``ids`` is (plant, stack); ``tags`` the request's ``sensor``, ``pollutant`` and
    ``period``. 404 for an unknown stack, sensor or pollutant; 422 for a missing or an
    inapplicable parameter.
    """
    plant, stack_id = ids
    stack = info.stacks.get(stack_id)
    where = f"{plant}/{stack_id}"
    if stack is None:
        raise _not_found(f"stack {where} is not configured")
    for name, value in tags.items():
        needed = name == kind.key or (name == "period" and kind.periodic)
        if needed and value is None:
            raise _unprocessable(f"{name} is required for this measurement")
        if not needed and value is not None:
            raise _unprocessable(f"{name} does not apply to this measurement")
    key = tags[kind.key]
    assert key is not None
    filters = {"plant": plant, "stack": stack_id, kind.key: key}
    if kind.periodic:
        filters["period"] = str(tags["period"])
    unit = kind.fields[field]
    if kind.key == "sensor":
        sensor_unit = _sensor_unit(stack, where, key, kind.sensors)
        return filters, unit if unit is not None else sensor_unit
    limit = next((lim for q, lim in stack.limits.items() if q.value == key), None)
    if limit is None:
        raise _not_found(f"pollutant {key!r} has no limit in {where}")
    return filters, unit if unit is not None else limit.unit


_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {
        "model": ErrorOut,
        "description": "Not a served measurement/field pair, or an unknown plant, stack, "
        "sensor or pollutant.",
    },
    422: {"model": ErrorOut, "description": "A parameter is invalid, missing or inapplicable."},
}

Tag = Annotated[str | None, Query(max_length=64)]


def _describe(key: Stored) -> str:
    if key.key == "pollutant":
        return "`pollutant` (limited)" + (", `period`" if key.periodic else "")
    return {"any": "`sensor`", "watched": "`sensor` (watched)", "pems": "`sensor` (PEMS target)"}[
        key.sensors
    ]


_TABLE = "\n".join(
    [
        "| measurement | fields (unit) | series named by |",
        "|---|---|---|",
        *(
            f"| `{m}` | "
            + ", ".join(f"`{f}` ({u or 'sensor unit'})" for f, u in s.fields.items())
            + f" | `plant`, `stack`, {_describe(s)} |"
            for m, s in SERIES.items()
        ),
    ]
)


@router.get(
    "/{measurement}/{field}",
    summary="Time series of any stored numeric quantity",
    responses=_RESPONSES,
    description=(
        "Values of `measurement.field` in `[start, end)` (at most 31 days), raw or aggregated "
        "per epoch-aligned window, of the one series the parameters name, e.g. "
        "`/series/compliance_sta/validated?plant=demo&stack=boiler1&pollutant=nox`. Windows "
        "without data are omitted; a window is labelled by its start. More rows than "
        "`STACKWATCH_API_MAX_POINTS` is refused with 422. Served pairs (others: 404):\n\n" + _TABLE
    ),
)
async def stored_series(
    *,
    measurement: Annotated[str, Path(max_length=64, description="A stored measurement.")],
    field: Annotated[str, Path(max_length=64, description=f"One of its fields: {_PAIRS}.")],
    ctx: ContextDep,
    plant: Annotated[str, Query(max_length=64, description="The plant.")],
    stack: Annotated[str, Query(max_length=64, description="The stack.")],
    sensor: Annotated[
        str | None,
        Query(
            max_length=64,
            description="The sensor: `readings`, `anomaly_scores`, `pems` (the analyser).",
        ),
    ] = None,
    pollutant: Annotated[
        str | None,
        Query(max_length=64, description="The limited pollutant: `compliance_*`."),
    ] = None,
    period: Annotated[
        Literal["month", "year"] | None, Query(description="`compliance_period` only.")
    ] = None,
    start: Start = None,
    end: End = None,
    every: EveryParam = None,
    fn: FnParam = Aggregate.MEAN,
) -> StoredSeriesOut:
    """See the description above (built from :data:`SERIES`)."""
    kind = SERIES.get(measurement)
    if kind is None or field not in kind.fields:
        raise _not_found(f"{measurement}.{field} is not a served series; one of {_PAIRS}")
    info = ctx.config.plants.get(plant)
    if info is None:
        raise _not_found(f"plant {plant!r} is not configured")
    tags = {"sensor": sensor, "pollutant": pollutant, "period": period}
    where, unit = resolve(kind, field, info, (plant, stack), tags)
    span = time_range(start, end, ctx.now_ns())
    rows = await bounded_series(
        ctx, measurement, field=field, where=where, span=span, every=every, fn=fn
    )
    return StoredSeriesOut(
        measurement=measurement,
        field=field,
        plant=plant,
        stack=stack,
        sensor=sensor,
        pollutant=pollutant,
        period=period,
        unit=unit,
        start=datetime_from_ns(span[0]),
        end=datetime_from_ns(span[1]),
        every=every,
        fn=fn if every is not None else None,
        points=[PointOut(time=datetime_from_ns(r.ts_ns), value=r.value) for r in rows],
    )
