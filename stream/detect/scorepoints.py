"""The fields of ``anomaly_scores`` points: the per-reading verdict on every point, the state
of the sensor's detection only where a reader could see it change.

Every scored reading's point carries ``score`` and ``is_anomaly``. The *state* fields —
``kind``, ``drift``, ``warm``, ``model_version`` — are written on a sensor's first point (in
this process), on every flagged point (``is_anomaly`` or ``drift``), whenever the state differs
from the last point that carried it, and at least every ``repeat_ns`` of data time. A point
without them therefore means ``kind`` ``none``, ``drift`` false, and ``warm`` and
``model_version`` as on the sensor's last point that has them.

Why: the state fields were five of the six fields of the point written for every reading, and
InfluxDB's write cost grows with the fields a batch holds — measured with one writer on this
machine, readings plus their score points with all six fields are stored at ~60 % of the rate
with two. The newest row (``Store.last``) and InfluxQL's ``last("warm")``, ``last("drift")``
over any range of ``repeat_ns`` or longer still give the current state.

>>> from stream.detect.protocol import Kind, Score
>>> fields = ScoreFields(repeat_ns=60)
>>> fields("nox", Score(0.1, False), True, "det1-x", 0)  # first point: the state
{'score': 0.1, 'is_anomaly': False, 'kind': 'none', 'drift': False, 'warm': True, \
'model_version': 'det1-x'}
>>> fields("nox", Score(0.2, False), True, "det1-x", 1)  # nothing changed
{'score': 0.2, 'is_anomaly': False}
>>> fields("nox", Score(1.0, True, Kind.STUCK), True, "det1-x", 2)["kind"]  # flagged
'stuck'
>>> fields("nox", Score(0.3, False), True, "det1-x", 3)["kind"]  # back to none: a change
'none'
>>> sorted(fields("nox", Score(0.3, False), True, "det1-x", 63))  # repeated after repeat_ns
['drift', 'is_anomaly', 'kind', 'model_version', 'score', 'warm']
"""

from __future__ import annotations

from collections.abc import Hashable

from stream.detect.protocol import Kind, Score
from stream.model import NS_PER_S
from stream.storage.base import FieldValue

REPEAT_NS = 60 * NS_PER_S
"""The state fields repeat at least once a minute of data time per sensor, so a dashboard's
``last()`` over a range of a minute or more finds them."""
_KIND_VALUES = {kind: kind.value for kind in Kind}  # a dict lookup, not the enum's property
_NONE = Kind.NONE  # a module global: the enum's class attribute costs ~70 ns on Python 3.11


class ScoreFields:
    """Builds the fields of each sensor's ``anomaly_scores`` points (see the module
    docstring). Call it with the sensor's key, its score, warm-up state, model version and
    the point's time, for one sensor's points in time order."""

    def __init__(self, repeat_ns: int = REPEAT_NS) -> None:
        self._repeat_ns = repeat_ns
        self._last: dict[Hashable, tuple[bool, str, int]] = {}  # warm, version, time

    def __call__(
        self, key: Hashable, s: Score, warm: bool, version: str, ts_ns: int
    ) -> dict[str, FieldValue]:
        flagged = s.is_anomaly or s.drift or s.kind is not _NONE
        last = self._last.get(key)
        # An entry means the sensor's last point was not flagged and carried (or implied)
        # this state: kind none, no drift, the same warm-up and version.
        if (
            last is not None
            and not flagged
            and last[0] == warm
            and last[1] == version
            and 0 <= ts_ns - last[2] < self._repeat_ns
        ):
            return {"score": s.score, "is_anomaly": False}
        if flagged:
            self._last.pop(key, None)  # the next point, back to normal, shows the change
        else:
            self._last[key] = (warm, version, ts_ns)
        return {
            "score": s.score,
            "is_anomaly": s.is_anomaly,
            "kind": _KIND_VALUES[s.kind],
            "drift": s.drift,
            "warm": warm,
            "model_version": version,
        }
