"""The interfaces of detection: a River-style :class:`Detector`, a time-aware :class:`Scorer`.

A :class:`Detector` is a pure learner over feature dicts, exactly River's anomaly API (so
River models such as ``HalfSpaceTrees`` fit as they are): ``score_one`` first, then
``learn_one`` if the filter allows it. It knows nothing of time or thresholds.

A :class:`Scorer` is the combined per-sensor pipeline: it is fed readings in time order and
returns a calibrated, decided :class:`Score` for each; because faults such as a dropout are
defined by *time* (no data for N intervals), it also has ``tick(now)``.

>>> from stream.detect.residual import RobustResidual
>>> isinstance(RobustResidual(), Detector)
True
>>> Score(0.2, False).kind
<Kind.NONE: 'none'>
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import NamedTuple, Protocol, runtime_checkable


@runtime_checkable
class Detector(Protocol):
    """An online anomaly detector over feature dicts (River's ``AnomalyDetector`` shape).

    Lifecycle: for each item call ``score_one(x)`` and then, unless a filter decides the item
    is anomalous and must not be learnt, ``learn_one(x)``. ``score_one`` never changes state;
    a higher score means more anomalous; the scale is specific to each detector (calibrate it
    with :class:`~stream.detect.likelihood.TailLikelihood`). Both accept the same keys every
    time; a detector that is not warmed up yet scores 0.0. Detectors are picklable (model
    checkpoints) and deterministic for a given seed.
    """

    def learn_one(self, x: dict[str, float]) -> None:
        """Update the model with one item."""
        ...

    def score_one(self, x: dict[str, float]) -> float:
        """How anomalous ``x`` is (finite, ≥ 0, higher = more anomalous)."""
        ...


class Kind(StrEnum):
    """Why a reading scored high: the component that produced the score.

    ``residual`` (a jump from the sensor's own forecast: a spike or the onset of a shift),
    ``consistency`` (the sensor disagrees with the other sensors of its stack: drift, offset,
    a frozen value in a moving process), ``drift`` (a drift event: the CUSUM on consistency
    residuals fired, or on forecast residuals for a sensor without a stack), and the explicit
    fault rules ``out_of_range``, ``stuck``, ``rate_of_change``, ``dropout``.
    """

    NONE = "none"
    RESIDUAL = "residual"
    CONSISTENCY = "consistency"
    DRIFT = "drift"
    OUT_OF_RANGE = "out_of_range"
    STUCK = "stuck"
    RATE_OF_CHANGE = "rate_of_change"
    DROPOUT = "dropout"


_NO_SENSORS: Mapping[str, Score] = MappingProxyType({})


class Score(NamedTuple):
    """The verdict on one time step.

    ``score`` is the anomaly likelihood in [0, 1] (rule faults and drift events score 1.0);
    ``is_anomaly`` is the filter's decision; ``kind`` names the component with the highest
    score (``none`` below the threshold and during warm-up); ``drift`` is true on the step a
    drift event is raised. A stack's score also names the ``sensor`` it comes from and carries
    every sensor's own score in ``sensors``.
    """

    score: float
    is_anomaly: bool
    kind: Kind = Kind.NONE
    drift: bool = False
    sensor: str | None = None
    sensors: Mapping[str, Score] = _NO_SENSORS  # read-only: shared by the scores without any


class Scorer(Protocol):
    """The time-aware combined detector of one sensor (see :mod:`stream.detect.pipeline`).

    Lifecycle: ``update`` once per reading, in non-decreasing time order (a reading older
    than the previous one raises ``ValueError``); a NaN value means "no reading" (a gap).
    ``tick(now)`` between readings reports an ongoing dropout without a reading; it never
    learns. The score of a reading depends only on that reading and the ones before it.
    """

    def update(self, ts_ns: int, value: float) -> Score:
        """Score one reading, decide, and learn from it unless it is anomalous."""
        ...

    def tick(self, now_ns: int) -> Score:
        """The verdict at ``now_ns`` when no reading has arrived (dropout or nothing)."""
        ...
