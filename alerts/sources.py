"""Alert sources: what the pipeline found, turned into :class:`~alerts.model.Signal` s.

* :func:`compliance_signal` — compliance events (daily limit, forecast pre-alarm, invalid
  days, calibration range, QAL3) are one-off events: ``active=True``; their rule's
  ``resolve_after`` ends them.
* :class:`LimitBreaches` — the validated short-term averages (``compliance_sta`` points)
  against the stack's short-term ELV (half-hour, else hourly, else ten-minute): a level
  signal with value and threshold, so the lifecycle applies hysteresis. Each average is
  signalled once, in time order (re-evaluations of a day repeat older averages).
* :func:`detection_signal` — sensor faults (start and end), anomalies, drift.
* :class:`NoDataWatch` — a sensor silent for ``intervals`` of its sampling interval (by the
  receive clock: data may carry old timestamps in a replay) is "no data"; the rule's ``for``
  is the grace period before it fires.
* :func:`health_signal` — a service component (broker connection, store writes) failing.

>>> from stream.detect.events import DetectionEvent, EventType
>>> e = DetectionEvent(EventType.FAULT, "p", "s", "nox", 0, True, "stuck", 1.0, "v")
>>> s = detection_signal(e)
>>> s.rule, dict(s.labels), s.active
('sensor_fault', {'plant': 'p', 'stack': 's', 'sensor': 'nox', 'fault': 'stuck'}, True)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from alerts.model import RuleName, Severity, Signal
from stream.compliance.events import ComplianceEvent
from stream.compliance.points import STA
from stream.detect.events import DetectionEvent, EventType
from stream.model import NS_PER_S, Reading
from stream.plant import PlantConfig, Quantity
from stream.storage.base import Point

_DETECTION_RULE = {
    EventType.FAULT: RuleName.SENSOR_FAULT,
    EventType.ANOMALY: RuleName.ANOMALY,
    EventType.DRIFT: RuleName.SENSOR_DRIFT,
}


def compliance_signal(event: ComplianceEvent, now_ns: int) -> Signal:
    """A compliance event as a one-off signal (its ``ts_ns`` is the day or period it is about;
    the signal is stamped ``now_ns``, when it was found)."""
    return Signal(
        event.kind.value,
        {"plant": event.plant, "stack": event.stack, "pollutant": event.pollutant},
        True,
        now_ns,
        event.message,
        event.value,
        event.limit,
    )


def detection_signal(event: DetectionEvent) -> Signal:
    labels = {"plant": event.plant, "stack": event.stack, "sensor": event.sensor}
    if event.event is EventType.FAULT:
        labels["fault"] = event.kind  # a stuck and a dropped-out analyser are two alerts
    return Signal(
        _DETECTION_RULE[event.event].value,
        labels,
        event.active,
        event.ts_ns,
        event.message,
        event.score,
    )


def health_signal(component: str, ok: bool, detail: str, now_ns: int) -> Signal:
    state = "recovered" if ok else "failing"
    return Signal(
        RuleName.SERVICE_HEALTH.value,
        {"component": component},
        not ok,
        now_ns,
        f"StackWatch {component} {state}: {detail}",
    )


class LimitBreaches:
    """Validated short-term averages against the short-term ELV, as level signals."""

    def __init__(self, config: PlantConfig) -> None:
        self._limits: dict[tuple[str, str, str], float] = {}
        for plant_id, plant in config.plants.items():
            for stack_id, stack in plant.stacks.items():
                for quantity, limit in stack.limits.items():
                    elv = limit.half_hour or limit.hourly or limit.ten_minute
                    if elv is not None:
                        self._limits[(plant_id, stack_id, quantity.value)] = elv
        self._latest: dict[tuple[str, str, str], int] = {}

    def signals(self, points: Iterable[Point]) -> list[Signal]:
        """Signals of the valid averages in ``points`` newer than those already signalled."""
        fresh: list[tuple[int, tuple[str, str, str], float]] = []
        for p in points:
            if p.measurement != STA or "validated" not in p.fields:
                continue
            key = (p.tags["plant"], p.tags["stack"], p.tags["pollutant"])
            if key in self._limits and p.ts_ns > self._latest.get(key, -1):
                fresh.append((p.ts_ns, key, float(p.fields["validated"])))
        out = []
        for ts, key, value in sorted(fresh):
            if ts <= self._latest.get(key, -1):
                continue
            self._latest[key] = ts
            limit = self._limits[key]
            plant, stack, pollutant = key
            out.append(
                Signal(
                    RuleName.LIMIT_BREACH.value,
                    {"plant": plant, "stack": stack, "pollutant": pollutant},
                    value > limit,
                    ts,
                    f"{pollutant.upper()} {plant}/{stack}: validated short-term average "
                    f"{value:.1f} mg/Nm3 against the ELV {limit:g} mg/Nm3",
                    value,
                    limit,
                )
            )
        return out


class NoDataWatch:
    """Sensors that stopped reporting, by the receive clock."""

    def __init__(self, config: PlantConfig, *, intervals: float = 3.0, min_silence_s: float = 10.0):
        self._silence_ns: dict[tuple[str, str, str], int] = {}
        for key, sensor in config.sensors():
            if sensor.quantity is Quantity.MODE or sensor.check is not None:
                continue  # mode and check channels report on change or on schedule
            silence = max(intervals * sensor.interval_s, min_silence_s)
            self._silence_ns[(key.plant, key.stack, key.sensor)] = round(silence * NS_PER_S)
        self._seen: dict[tuple[str, str, str], int] = {}
        self._silent: set[tuple[str, str, str]] = set()

    def seen(self, readings: Sequence[Reading], now_ns: int) -> list[Signal]:
        """Record readings received at ``now_ns``; signals for silent sensors that are back."""
        back: list[Signal] = []
        for r in readings:
            key = (r.plant, r.stack, r.sensor)
            if key not in self._silence_ns:
                continue
            self._seen[key] = now_ns
            if key in self._silent:
                self._silent.discard(key)
                back.append(self._signal(key, False, now_ns))
        return back

    def check(self, now_ns: int) -> list[Signal]:
        """Signals for sensors that went silent (only sensors seen at least once since start:
        a sensor that never reported is a configuration question, not an outage)."""
        out = []
        for key, last in self._seen.items():
            if key not in self._silent and now_ns - last >= self._silence_ns[key]:
                self._silent.add(key)
                out.append(self._signal(key, True, now_ns))
        return out

    def _signal(self, key: tuple[str, str, str], active: bool, now_ns: int) -> Signal:
        plant, stack, sensor = key
        last = self._seen[key]
        silent_s = (now_ns - last) / NS_PER_S
        summary = (
            f"{stack}/{sensor}: no data for {silent_s:.0f} s"
            if active
            else f"{stack}/{sensor}: data again"
        )
        return Signal(
            RuleName.NO_DATA.value,
            {"plant": plant, "stack": stack, "sensor": sensor},
            active,
            now_ns,
            summary,
            severity=Severity.WARNING if active else None,
        )
