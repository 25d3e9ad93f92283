"""Detection events: what the live detectors found that an operator or the alerts should hear of.

Scores are written for every reading; events only mark changes, so they can drive alerts and
dashboard annotations without flooding them:

* ``fault`` — a fault rule (out of range, stuck, rate of change, dropout) starts
  (``active=True``) or, after ``clear_after`` clean readings, ends (``active=False``);
* ``anomaly`` — a statistical anomaly starts (a reading is anomalous after one that was not);
* ``drift`` — "sensor drift suspected": the drift detector fired.

Stored in the ``detection_events`` measurement: tags ``plant``, ``stack``, ``sensor``,
``event``; fields ``kind`` (the detector component), ``active``, ``score``, ``message``,
``model_version``.

>>> e = DetectionEvent(EventType.FAULT, "demo", "gt1", "nox", 0, True, "stuck", 1.0, "det1-x")
>>> e.message
'gt1/nox: sensor fault (stuck)'
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from stream.storage.base import Point

EVENTS = "detection_events"


class EventType(StrEnum):
    FAULT = "fault"
    ANOMALY = "anomaly"
    DRIFT = "drift"


@dataclass(frozen=True, slots=True)
class DetectionEvent:
    event: EventType
    plant: str
    stack: str
    sensor: str
    ts_ns: int
    active: bool
    kind: str
    """The component that scored (``stuck``, ``dropout``, ``residual``, ``drift``, ...)."""
    score: float
    model_version: str

    @property
    def message(self) -> str:
        where = f"{self.stack}/{self.sensor}"
        if self.event is EventType.FAULT:
            state = "sensor fault" if self.active else "sensor fault cleared"
            return f"{where}: {state} ({self.kind})"
        if self.event is EventType.DRIFT:
            return f"{where}: sensor drift suspected"
        return f"{where}: anomalous reading ({self.kind}, likelihood {self.score:.6f})"

    def to_point(self) -> Point:
        return Point(
            EVENTS,
            {"plant": self.plant, "stack": self.stack, "sensor": self.sensor, "event": self.event},
            {
                "kind": self.kind,
                "active": self.active,
                "score": self.score,
                "message": self.message,
                "model_version": self.model_version,
            },
            self.ts_ns,
        )
