"""Live detection: the same :class:`~stream.detect.pipeline.StackDetector` as ``stackwatch
detect``, fed with stored readings, writing a score per reading and events on changes.

Per stack, the watched sensors (all but zero/span check channels, plant-mode channels and
``detection.exclude``) are grouped by sampling interval; each group is one stack detector, so
the consistency model sees only sensors that report at the same instants. Readings of one
batch are processed in time order, one time step (``ts``) at a time; a reading older than the
group's last step (a redelivery after a restart, or a late reading) is not scored again.

A reading whose status is not ``valid`` (maintenance, calibration, malfunction) is not scored:
it interrupts the sensor, so the pause is not a dropout and the first valid reading after it
re-anchors the forecast.

**Output** (measurement ``anomaly_scores``, tags ``plant``, ``stack``, ``sensor``): fields
``score`` (anomaly likelihood in [0, 1]) and ``is_anomaly`` on every point; ``kind`` (the
component that scored, ``none`` when normal), ``drift``, ``warm`` (the statistical scores are
calibrated) and ``model_version`` where they change, on flagged points and at least once a
minute (:mod:`stream.detect.scorepoints`). A silent sensor gets a ``dropout`` score at the
steps of its group. Changes become :class:`~stream.detect.events.DetectionEvent` s (stored
and passed to ``on_event``).

**State**: the detectors are checkpointed to ``state_path`` every ``checkpoint_s`` seconds and
on :meth:`LiveDetection.close`. :meth:`LiveDetection.start` restores them and replays from
the store the readings stored after the checkpoint (after a crash, those were stored and
acknowledged but their model updates were lost), so a restart continues the score stream
where it stopped, without a new warm-up. A checkpoint of another code version or another
detection configuration is refused (logged) and the detectors start afresh.

**Model version**: ``det<code>-<digest>``, the digest covering the code version and the
stack's detection-relevant configuration (sensors, ranges, intervals, rates, settings).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from stream import metrics
from stream.detect.events import DetectionEvent, EventType
from stream.detect.filter import AnomalyFilter
from stream.detect.pipeline import SensorDetector, StackDetector
from stream.detect.protocol import Kind, Score
from stream.detect.rules import FaultRules
from stream.detect.scorepoints import ScoreFields
from stream.model import NS_PER_S, Reading, Status
from stream.plant import PlantConfig, Quantity, StackConfig
from stream.schema import READINGS, reading_from_last
from stream.statefile import StateFileError, load_state, save_state
from stream.storage.base import Point, Store

log = structlog.get_logger(__name__)

SCORES = "anomaly_scores"
CODE_VERSION = 1
"""Bump when the detectors' behaviour or state layout changes (old checkpoints are refused)."""
RULE_KINDS = frozenset({Kind.OUT_OF_RANGE, Kind.STUCK, Kind.RATE_OF_CHANGE, Kind.DROPOUT})
CLEAR_AFTER = 10
"""Clean readings after which a sensor fault counts as cleared (no flapping on/off)."""
LATENESS_INTERVALS = 2.5
"""How long (in sampling intervals of data time) a step waits for its slowest sensor."""
_REPLAY_SPAN_NS = 7 * 86_400 * NS_PER_S

# Enum members as module globals on the per-reading path: ``Kind.NONE`` is a lookup through
# the enum's metaclass, ~70 ns on Python 3.11.
_DROPOUT, _VALID = Kind.DROPOUT, Status.VALID


def model_version(stack: StackConfig) -> str:
    """The detection model version of a stack (see the module docstring)."""
    relevant = {
        "code": CODE_VERSION,
        "detection": stack.detection.model_dump(mode="json"),
        "sensors": {
            sid: [s.quantity.value, list(s.valid_range), s.interval_s, s.max_rate]
            for sid, s in stack.sensors.items()
        },
    }
    digest = hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()
    return f"det{CODE_VERSION}-{digest[:10]}"


def watched_sensors(stack: StackConfig) -> list[str]:
    """The sensors the detectors watch (measurements, not check or mode channels)."""
    return [
        sid
        for sid, s in stack.sensors.items()
        if s.check is None
        and s.quantity is not Quantity.MODE
        and sid not in stack.detection.exclude
    ]


@dataclass
class _Group:
    """The sensors of one stack with one sampling interval, and their stack detector."""

    sensors: tuple[str, ...]
    detector: StackDetector
    lateness_ns: int
    last_ts: int | None = None
    """The last time step scored."""
    pending: dict[int, dict[str, Reading]] = field(default_factory=dict)
    """Readings of steps not scored yet, by time and sensor."""
    newest: int = -1

    def release(self) -> list[tuple[int, list[Reading]]]:
        """The pending steps that can be scored now, in time order: complete ones (every
        sensor reported), and incomplete ones once newer data is ``lateness_ns`` ahead (a
        silent sensor is then missing from the step, which its dropout rule counts)."""
        out: list[tuple[int, list[Reading]]] = []
        for ts in sorted(self.pending):
            step = self.pending[ts]
            if len(step) < len(self.sensors) and self.newest - ts < self.lateness_ns:
                break
            del self.pending[ts]
            self.last_ts = ts
            out.append((ts, list(step.values())))
        return out


@dataclass
class _Fault:
    kind: Kind | None = None
    clean: int = 0


@dataclass(frozen=True)
class _Step:
    """One scored time step of one group."""

    plant: str
    stack: str
    ts: int
    values: dict[str, float]
    scores: dict[str, Score]
    """Each sensor's score, by name."""


@dataclass
class _StackState:
    version: str
    groups: list[_Group]
    faults: dict[str, _Fault] = field(default_factory=dict)
    anomalous: dict[str, bool] = field(default_factory=dict)


def _build_stack(stack: StackConfig) -> list[_Group]:
    settings = stack.detection
    by_interval: dict[float, list[SensorDetector]] = {}
    for sid in watched_sensors(stack):
        s = stack.sensors[sid]
        warmup = max(30, round(settings.warmup_s / s.interval_s))
        detector = SensorDetector(
            sid,
            rules=FaultRules(
                valid_range=s.valid_range,
                max_rate=s.max_rate,
                interval_s=s.interval_s,
                max_missing=settings.max_missing,
            ),
            filter=AnomalyFilter(settings.threshold),
            warmup=warmup,
            window=max(8 * warmup, 600),
        )
        by_interval.setdefault(s.interval_s, []).append(detector)
    return [
        _Group(
            tuple(d.name for d in ds),
            StackDetector(ds),
            round(LATENESS_INTERVALS * interval * NS_PER_S),
        )
        for interval, ds in sorted(by_interval.items())
    ]


class LiveDetection:
    """Scores stored readings; see the module docstring.

    Parameters
    ----------
    config
        The plant configuration (stacks with ``detection.enabled``).
    store
        Where the readings are (read only to catch up after a restart).
    state_path
        The checkpoint file (None: no checkpoints).
    checkpoint_s
        Seconds (of ``clock``) between checkpoints.
    on_event
        Called with every event (e.g. the alerts pipeline); must not block.
    clock
        Monotonic seconds, for the checkpoint interval.
    """

    def __init__(
        self,
        config: PlantConfig,
        store: Store,
        *,
        state_path: Path | None = None,
        checkpoint_s: float = 300.0,
        on_event: Callable[[DetectionEvent], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._state_path = state_path
        self._checkpoint_s = checkpoint_s
        self._on_event = on_event
        self._clock = clock
        self._last_saved = clock()
        self.late = 0
        """Readings not scored because their step was already scored."""
        self._stacks: dict[tuple[str, str], _StackState] = {}
        self._tags: dict[tuple[str, str, tuple[str, ...]], list[dict[str, str]]] = {}
        self._fields = ScoreFields()  # keyed by the sensor's tags mapping (kept for good)
        for plant_id, plant in config.plants.items():
            for stack_id, stack in plant.stacks.items():
                if stack.detection.enabled and watched_sensors(stack):
                    self._stacks[(plant_id, stack_id)] = _StackState(
                        model_version(stack), _build_stack(stack)
                    )
        self._index()

    def _index(self) -> None:
        """Map each watched sensor to its group (after building or restoring the stacks)."""
        self._sensor_group = {
            (*key, sid): group
            for key, state in self._stacks.items()
            for group in state.groups
            for sid in group.sensors
        }

    def model_versions(self) -> dict[tuple[str, str], str]:
        """The model version of every watched stack, by (plant, stack)."""
        return {key: state.version for key, state in self._stacks.items()}

    def warm(self, plant: str, stack: str, sensor: str) -> bool:
        """Whether the sensor's statistical score is past its warm-up."""
        group = self._sensor_group[(plant, stack, sensor)]
        return group.detector.detectors[group.sensors.index(sensor)].warm

    # -- lifecycle -----------------------------------------------------------------------

    def _meta(self) -> dict[str, Any]:
        return {
            "code": CODE_VERSION,
            "stacks": {f"{p}/{s}": st.version for (p, s), st in sorted(self._stacks.items())},
        }

    async def start(self) -> None:
        """Restore the last checkpoint and catch up with readings stored after it."""
        if self._state_path is None:
            return
        try:
            saved: dict[tuple[str, str], _StackState] = load_state(
                self._state_path, "detection", self._meta()
            )
        except StateFileError as err:
            if self._state_path.exists():
                log.warning("detection checkpoint not used; models warm up afresh", reason=str(err))
            return
        self._stacks = saved
        self._index()
        replayed = 0
        for (plant, stack), state in saved.items():
            starts = [
                g.last_ts + 1 if g.last_ts is not None else min(g.pending)
                for g in state.groups
                if g.last_ts is not None or g.pending
            ]
            if not starts:
                continue
            since = min(starts)
            stored = await self._store.scan(
                READINGS, since, since + _REPLAY_SPAN_NS, {"plant": plant, "stack": stack}
            )
            self._process([reading_from_last(row) for row in stored], emit=False)
            replayed += len(stored)
        log.info("detection models restored", checkpoint=str(self._state_path), replayed=replayed)

    def save(self) -> None:
        """Write a checkpoint now."""
        if self._state_path is None:
            return
        started = time.perf_counter()
        save_state(self._state_path, "detection", self._meta(), self._stacks)
        self._last_saved = self._clock()
        log.debug("detection checkpoint written", seconds=round(time.perf_counter() - started, 3))

    def close(self) -> None:
        """Checkpoint on shutdown (after the last batch was processed)."""
        self.save()

    # -- scoring -------------------------------------------------------------------------

    async def add(self, readings: Sequence[Reading]) -> list[Point]:
        """Score newly stored readings; return the score and event points to store."""
        points = self._process(readings, emit=True)
        if self._state_path is not None and self._clock() - self._last_saved >= self._checkpoint_s:
            self.save()
        return points

    def _process(self, readings: Sequence[Reading], *, emit: bool) -> list[Point]:
        touched: dict[int, tuple[str, str, _Group]] = {}
        groups = self._sensor_group
        for r in readings:
            group = groups.get((r.plant, r.stack, r.sensor))
            if group is None:
                continue
            ts, sensor = r.ts_ns, r.sensor
            waiting = group.pending.get(ts)
            if (group.last_ts is not None and ts <= group.last_ts) or (
                waiting is not None and sensor in waiting
            ):
                if emit:  # a replay overlaps the restored state on purpose
                    self.late += 1
                    metrics.DETECTION_LATE.inc()
                continue
            if waiting is None:
                group.pending[ts] = {sensor: r}
            else:
                waiting[sensor] = r
            group.newest = max(group.newest, ts)
            if id(group) not in touched:
                touched[id(group)] = (r.plant, r.stack, group)
        points: list[Point] = []
        for plant, stack, group in touched.values():
            state = self._stacks[(plant, stack)]
            for ts, step_readings in group.release():
                values: dict[str, float] = {}
                for r in step_readings:
                    if r.status is _VALID and math.isfinite(r.value):
                        values[r.sensor] = r.value
                    else:
                        group.detector.detectors[group.sensors.index(r.sensor)].interrupt(ts)
                step = _Step(plant, stack, ts, values, group.detector.update_sensors(ts, values))
                if emit:
                    points += self._emit(step, state, group)
                else:
                    _track(step, state, None)
        return points

    def _emit(self, step: _Step, state: _StackState, group: _Group) -> list[Point]:
        points: list[Point] = []
        scores, values, ts = step.scores, step.values, step.ts
        detectors, version = group.detector.detectors, state.version
        for sensor_tags, sid, detector in zip(
            self._group_tags(step, group), group.sensors, detectors, strict=True
        ):
            s = scores.get(sid)
            if s is None:
                continue
            if sid not in values and s.kind is not _DROPOUT:
                continue
            fields = self._fields(id(sensor_tags), s, detector.warm, version, ts)
            points.append(Point(SCORES, sensor_tags, fields, ts))
        events: list[DetectionEvent] = []
        _track(step, state, events)
        for event in events:
            points.append(event.to_point())
            metrics.DETECTION_EVENTS.labels(event=event.event.value).inc()
            if self._on_event is not None:
                self._on_event(event)
        return points

    def _group_tags(self, step: _Step, group: _Group) -> list[dict[str, str]]:
        """The score points' tags of the group's sensors, in order: one mapping per sensor,
        shared by all its points (points are read-only)."""
        key = (step.plant, step.stack, group.sensors)
        tags = self._tags.get(key)
        if tags is None:
            tags = self._tags[key] = [
                {"plant": step.plant, "stack": step.stack, "sensor": sid} for sid in group.sensors
            ]
        return tags


def _track(step: _Step, state: _StackState, events: list[DetectionEvent] | None) -> None:
    """Update each sensor's fault/anomaly state; append the changes to ``events``."""

    def event(kind: EventType, sid: str, active: bool, s: Score) -> None:
        if events is not None:
            events.append(
                DetectionEvent(
                    kind,
                    step.plant,
                    step.stack,
                    sid,
                    step.ts,
                    active,
                    s.kind.value,
                    s.score,
                    state.version,
                )
            )

    for sid, s in step.scores.items():
        if sid not in step.values and s.kind is not _DROPOUT:
            continue
        fault = state.faults.get(sid)
        if fault is None:  # not setdefault: that would build a _Fault for every reading
            fault = state.faults[sid] = _Fault()
        if s.kind in RULE_KINDS:
            fault.clean = 0
            if fault.kind is None:
                fault.kind = s.kind
                event(EventType.FAULT, sid, True, s)
        elif fault.kind is not None:
            fault.clean += 1
            if fault.clean >= CLEAR_AFTER:
                event(EventType.FAULT, sid, False, Score(s.score, False, fault.kind))
                fault.kind, fault.clean = None, 0
        if s.drift:
            event(EventType.DRIFT, sid, True, s)
        statistical = s.is_anomaly and s.kind in (Kind.RESIDUAL, Kind.CONSISTENCY)
        if statistical and not state.anomalous.get(sid, False):
            event(EventType.ANOMALY, sid, True, s)
        state.anomalous[sid] = statistical
