"""``GET /sensors/health``: per configured sensor, when it last reported, how completely, and
the state of its models (anomaly detection, PEMS).

From the store: the newest reading, score, fault and drift event of each sensor (``last``
queries, bounded by the store's look-back ``STACKWATCH_INFLUX_LOOKBACK_S``), the readings
stored in the last hour and day (a count per sensor and window) and the PEMS predictions of
the last hour (a scan, only when a selected sensor has a soft sensor). From the running
service (:attr:`api.context.AppContext.models`): the model versions and the warm-up state.

A sensor fault is active when the newest fault event of the sensor (within the look-back)
started one (``active``): a cleared fault is followed by an event with ``active`` false.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status

from api.context import ModelsInfo
from api.deps import ContextDep
from api.schemas import ErrorOut
from api.sensor_schemas import (
    DetectionHealthOut,
    PemsHealthOut,
    SensorHealthOut,
    SensorsHealthOut,
    share,
)
from stream.detect.events import EVENTS, EventType
from stream.detect.live import SCORES, watched_sensors
from stream.model import NS_PER_S, SensorKey, Status, datetime_from_ns
from stream.plant import PlantConfig, SensorConfig, StackConfig
from stream.schema import READINGS
from stream.storage.base import LastValue, Store

PEMS = "pems"
"""``stream.pems.live.PEMS`` (not imported: that module pulls in river)."""
HOUR_S = 3600
DAY_S = 86_400
DRIFT_WINDOW_S = DAY_S
"""A drift event this recent makes the sensor's drift state ``true``."""

router = APIRouter(prefix="/sensors", tags=["sensors"])


@dataclass(frozen=True)
class _Selected:
    key: SensorKey
    sensor: SensorConfig
    stack: StackConfig

    @property
    def watched(self) -> bool:
        return self.stack.detection.enabled and self.key.sensor in watched_sensors(self.stack)

    @property
    def pems_target(self) -> bool:
        return any(p.target == self.key.sensor for p in self.stack.pems)

    def tags(self) -> dict[str, str]:
        return {"plant": self.key.plant, "stack": self.key.stack, "sensor": self.key.sensor}


def select(
    config: PlantConfig, plant: str | None, stack: str | None, sensor: str | None
) -> list[_Selected]:
    """The configured sensors the filters select, in configuration order; 404 when a filter
    names nothing configured (within the other filters)."""
    if plant is not None and plant not in config.plants:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"plant {plant!r} is not configured")
    plants = {plant: config.plants[plant]} if plant is not None else config.plants
    stacks = [
        (pid, sid, s)
        for pid, p in plants.items()
        for sid, s in p.stacks.items()
        if stack is None or sid == stack
    ]
    if not stacks:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"stack {stack!r} is not configured")
    found = [
        _Selected(SensorKey(pid, sid, name), cfg, s)
        for pid, sid, s in stacks
        for name, cfg in s.sensors.items()
        if sensor is None or name == sensor
    ]
    if not found:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"sensor {sensor!r} is not configured")
    return found


def _status(row: LastValue | None) -> Status | None:
    text = None if row is None else row.fields.get("status")
    try:
        return None if text is None else Status(str(text))
    except ValueError:  # written by something else than the collector
        return None


def _by_sensor(rows: Sequence[LastValue]) -> dict[SensorKey, LastValue]:
    return {
        SensorKey(r.tags.get("plant", ""), r.tags.get("stack", ""), r.tags.get("sensor", "")): r
        for r in rows
    }


def _float(row: LastValue | None, name: str) -> float | None:
    v = None if row is None else row.fields.get(name)
    return float(v) if isinstance(v, float | int) and not isinstance(v, bool) else None


def availability(stored: int, window_s: int, interval_s: float) -> float:
    """Stored / expected readings in a window, at most 1.

    >>> availability(1800, 3600, 1.0), availability(400, 3600, 10.0)
    (0.5, 1.0)
    """
    return min(1.0, stored / (window_s / interval_s))


@dataclass
class _PemsCounts:
    checked: int = 0
    outside: int = 0
    substitutes: int = 0


def _pems_counts(rows: Sequence[LastValue]) -> dict[SensorKey, _PemsCounts]:
    counts: dict[SensorKey, _PemsCounts] = {}
    for row in rows:
        t = row.tags
        key = SensorKey(t.get("plant", ""), t.get("stack", ""), t.get("sensor", ""))
        c = counts.setdefault(key, _PemsCounts())
        if "outside" in row.fields:
            c.checked += 1
            c.outside += row.fields["outside"] is True
        if row.fields.get("substitute") is True:
            c.substitutes += 1
    return counts


def _detection(
    s: _Selected,
    models: ModelsInfo | None,
    last: Mapping[str, dict[SensorKey, LastValue]],
    now_ns: int,
) -> DetectionHealthOut:
    score = last["score"].get(s.key)
    fault = last["fault"].get(s.key)
    drift = last["drift"].get(s.key)
    active = fault is not None and fault.fields.get("active") is True
    anomalous = None if score is None else score.fields.get("is_anomaly") is True
    return DetectionHealthOut(
        model_version=(
            None if models is None else models.detection.get((s.key.plant, s.key.stack))
        ),
        warm=None if models is None else models.warm.get(s.key),
        last_score=_float(score, "score"),
        # A score point without ``kind`` is a normal one (stream.detect.scorepoints).
        last_kind=None if score is None else str(score.fields.get("kind", "none")),
        last_scored=None if score is None else datetime_from_ns(score.ts_ns),
        anomalous=anomalous,
        active_fault=str(fault.fields.get("kind", "")) if active and fault else None,
        fault_since=datetime_from_ns(fault.ts_ns) if active and fault else None,
        drift=drift is not None and drift.ts_ns >= now_ns - DRIFT_WINDOW_S * NS_PER_S,
        last_drift=None if drift is None else datetime_from_ns(drift.ts_ns),
    )


async def _counts(store: Store, selected: Sequence[_Selected], now_ns: int) -> list[list[int]]:
    """Readings stored per sensor in the last hour and the last day."""

    async def one(s: _Selected) -> list[int]:
        return list(
            await asyncio.gather(
                *(
                    store.count(READINGS, "value", now_ns - w * NS_PER_S, now_ns, s.tags())
                    for w in (HOUR_S, DAY_S)
                )
            )
        )

    return list(await asyncio.gather(*(one(s) for s in selected)))


_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No such plant, stack or sensor is configured."},
    422: {"model": ErrorOut, "description": "A parameter is invalid."},
}


@router.get("/health", summary="Health of every configured sensor", responses=_RESPONSES)
async def sensors_health(
    ctx: ContextDep,
    plant: Annotated[str | None, Query(max_length=64, description="Only this plant.")] = None,
    stack: Annotated[str | None, Query(max_length=64, description="Only this stack.")] = None,
    sensor: Annotated[str | None, Query(max_length=64, description="Only this sensor id.")] = None,
) -> SensorsHealthOut:
    """Per configured sensor: last seen and last status, availability over the last hour and
    24 h (stored readings / expected by the sampling interval, at most 1); for sensors the
    detection watches: the model version and warm-up, the newest anomaly score and its kind,
    the sensor fault in progress and whether drift was suspected in the last 24 h; for
    analysers with a PEMS soft sensor: its model version and the share of the last hour's
    measured values outside the prediction interval."""
    selected = select(ctx.config, plant, stack, sensor)
    now = ctx.now_ns()
    store = ctx.store
    filters = {"plant": plant, "stack": stack, "sensor": sensor}
    where = {k: v for k, v in filters.items() if v is not None}
    models = ctx.models() if ctx.models is not None else None
    fault, drift = EventType.FAULT.value, EventType.DRIFT.value
    readings, scores, faults, drifts, counts = await asyncio.gather(
        store.last(READINGS, where),
        store.last(SCORES, where),
        store.last(EVENTS, where | {"event": fault}),
        store.last(EVENTS, where | {"event": drift}),
        _counts(store, selected, now),
    )
    pems: dict[SensorKey, _PemsCounts] = {}
    if any(s.pems_target for s in selected):
        pems = _pems_counts(await store.scan(PEMS, now - HOUR_S * NS_PER_S, now, where))
    last = {"score": _by_sensor(scores), "fault": _by_sensor(faults), "drift": _by_sensor(drifts)}
    newest = _by_sensor(readings)
    out = []
    for s, (hour, day) in zip(selected, counts, strict=True):
        reading = newest.get(s.key)
        p = pems.get(s.key, _PemsCounts())
        out.append(
            SensorHealthOut(
                plant=s.key.plant,
                stack=s.key.stack,
                sensor=s.key.sensor,
                quantity=s.sensor.quantity.value,
                unit=s.sensor.unit,
                interval_s=s.sensor.interval_s,
                last_seen=None if reading is None else datetime_from_ns(reading.ts_ns),
                last_status=_status(reading),
                last_value=_float(reading, "value"),
                availability_1h=availability(hour, HOUR_S, s.sensor.interval_s),
                availability_24h=availability(day, DAY_S, s.sensor.interval_s),
                detection=_detection(s, models, last, now) if s.watched else None,
                pems=(
                    PemsHealthOut(
                        model_version=(None if models is None else models.pems.get(s.key)),
                        checked_1h=p.checked,
                        outside_1h=p.outside,
                        outside_share_1h=share(p.outside, p.checked),
                        substitutes_1h=p.substitutes,
                    )
                    if s.pems_target
                    else None
                ),
            )
        )
    return SensorsHealthOut(time=datetime_from_ns(now), sensors=out)
