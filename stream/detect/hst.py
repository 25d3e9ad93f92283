"""River's Half-Space Trees as a :class:`~stream.detect.protocol.Detector` over a stack's sensors.

HST is River's streaming isolation forest and the obvious off-the-shelf multivariate
detector; it is kept as an alternative to :class:`~stream.detect.multivariate.StackConsistency`
and compared with it in ``bench.detection``. The wrapper does two things:

* it passes each sensor's instrument range as HST's ``limits``: HST assumes features in
  [0, 1] and splits the given range at random, so unscaled readings would all fall into one
  leaf (the most common HST pitfall);
* it types the boundary to River (which ships no type annotations on these methods), so the
  rest of the package stays under ``mypy --strict``.

Scores are in [0, 1] (HST's normalised mass), 0.0 during HST's first window.

>>> det = HalfSpaceTreesDetector({"nox": (0.0, 500.0), "o2": (0.0, 25.0)}, seed=1)
>>> for i in range(600):
...     det.learn_one({"nox": 100.0 + i % 7, "o2": 8.0 + (i % 5) / 10})
>>> det.score_one({"nox": 103.0, "o2": 8.2}) < det.score_one({"nox": 450.0, "o2": 1.0})
True
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

from river.anomaly import HalfSpaceTrees


class HalfSpaceTreesDetector:
    """River ``HalfSpaceTrees`` with per-feature ``limits`` (a Detector).

    Parameters
    ----------
    limits
        ``{feature: (lo, hi)}``, e.g. the sensors' instrument ranges.
    n_trees, height, window_size
        HST's own parameters (River's defaults).
    seed
        Seed of the random trees.
    """

    def __init__(
        self,
        limits: Mapping[str, tuple[float, float]],
        n_trees: int = 10,
        height: int = 8,
        window_size: int = 250,
        seed: int = 42,
    ) -> None:
        if not limits or any(not lo < hi for lo, hi in limits.values()):
            raise ValueError("limits must map each feature to (lo, hi) with lo < hi")
        self.limits = dict(limits)
        self.n_trees = n_trees
        self.height = height
        self.window_size = window_size
        self.seed = seed
        river_limits: dict[Hashable, tuple[float, float]] = {k: v for k, v in limits.items()}
        self.model = HalfSpaceTrees(
            n_trees=n_trees, height=height, window_size=window_size, limits=river_limits, seed=seed
        )

    def score_one(self, x: dict[str, float]) -> float:
        return float(self.model.score_one(x))  # type: ignore[no-untyped-call]

    def learn_one(self, x: dict[str, float]) -> None:
        self.model.learn_one(x)  # type: ignore[no-untyped-call]

    def __repr__(self) -> str:
        return (
            f"HalfSpaceTreesDetector(limits={self.limits!r}, n_trees={self.n_trees}, "
            f"height={self.height}, window_size={self.window_size}, seed={self.seed})"
        )
