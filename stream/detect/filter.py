"""The decision: is a calibrated score anomalous, and may the models learn from the reading?

Kept apart from scoring, as River's ``ThresholdFilter`` is: detectors say *how unusual*, the
filter says *anomalous or not*, so the threshold can change without touching a model.

Protection (on by default, River's ``protect_anomaly_detector``): a reading judged anomalous
is not learnt, by any model of the sensor, so a stuck value does not shrink the noise scale
and a spike does not move the level. The price is that a model never adapts to a real change
of level on its own; the drift detector (:mod:`stream.detect.drift`) re-anchors it when the
change is confirmed.

>>> f = AnomalyFilter(threshold=0.999)
>>> f.classify(0.9995), f.classify(0.99)
(True, False)
>>> f.learns(anomalous=True), AnomalyFilter(protect=False).learns(anomalous=True)
(False, True)
"""

from __future__ import annotations

DEFAULT_THRESHOLD = 1.0 - 1e-5
"""Likelihood at or above which a reading is anomalous: a tail probability of 1e-5, i.e. under
one chance reading per sensor-day at 1 Hz for each calibrated score."""


class AnomalyFilter:
    """Threshold on the anomaly likelihood, with protect-by-default learning."""

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, protect: bool = True) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError("threshold must be in (0, 1]")
        self.threshold = threshold
        self.protect = protect

    def classify(self, score: float) -> bool:
        """Whether a likelihood is anomalous."""
        return score >= self.threshold

    def learns(self, anomalous: bool) -> bool:
        """Whether the models may learn from a reading with this verdict."""
        return not (self.protect and anomalous)

    def __repr__(self) -> str:
        return f"AnomalyFilter(threshold={self.threshold!r}, protect={self.protect})"
