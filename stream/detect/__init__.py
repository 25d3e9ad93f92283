"""Online anomaly detection per sensor and per stack: is this reading wrong or unusual?

Operators must learn within seconds that an analyser is stuck, spiking, drifting, silent or
has jumped to another level. No single model sees all of these, so several cheap,
complementary parts are combined, following River's split of *scoring* from *deciding*:

* detectors (:class:`~stream.detect.protocol.Detector`: ``learn_one``/``score_one`` on a dict,
  higher = more anomalous) produce raw scores: a robust forecast residual per sensor
  (:mod:`~stream.detect.residual`) for fast transients, and a cross-sensor consistency model per
  stack (:mod:`~stream.detect.multivariate`) for persistent faults a single series cannot tell
  from a process change;
* explicit fault rules (:mod:`~stream.detect.rules`): out of range, stuck, rate of change and
  dropout, which need no learning and explain themselves;
* a calibration layer (:mod:`~stream.detect.likelihood`) turns each raw score into an anomaly
  likelihood in [0, 1] from the tail of recent scores, so scores of different detectors and
  sensors are comparable and one threshold fits all; nothing is flagged during warm-up;
* a filter (:mod:`~stream.detect.filter`) decides "anomalous" and, by default, keeps anomalous
  readings out of every model so a fault is not learnt as normal;
* a two-sided CUSUM on the consistency residuals (:mod:`~stream.detect.drift`) raises "sensor
  drift suspected" and re-anchors the models to a level that has really moved.

River's Half-Space Trees are available as the same kind of detector
(:mod:`~stream.detect.hst`, not imported here so the service does not load River unless it
is used); ``bench.detection`` shows why the Gaussian consistency model is the default.

:mod:`~stream.detect.pipeline` combines them behind one time-aware call per time step
(:class:`~stream.detect.pipeline.StackDetector`), used alike by the live service and the
offline ``stackwatch detect``; :mod:`~stream.detect.evaluate` scores it on labelled synthetic
streams for ``make bench`` and the regression test.
"""

from stream.detect.pipeline import Context, SensorDetector, StackDetector
from stream.detect.protocol import Detector, Kind, Score, Scorer

__all__ = ["Context", "Detector", "Kind", "Score", "Scorer", "SensorDetector", "StackDetector"]
