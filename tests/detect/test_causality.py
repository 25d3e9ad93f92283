"""Causality: the verdict on row i depends only on rows ≤ i (appending or changing later rows
never changes it), for the detectors and for the offline CLI that runs them."""

from __future__ import annotations

import io

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from stackwatch.detect_cli import score_csv
from stream.detect.multivariate import StackConsistency
from stream.detect.pipeline import SensorDetector, StackDetector
from stream.detect.protocol import Score
from stream.detect.rules import FaultRules
from stream.model import NS_PER_S

NAMES = ("a", "b", "c")


def rows(n: int, seed: int) -> tuple[list[int], np.ndarray]:
    """Irregular times (jitter, gaps) and correlated values with spikes, freezes and NaNs."""
    rng = np.random.default_rng(seed)
    steps = rng.choice([1, 1, 1, 1, 2, 9], size=n) * NS_PER_S + rng.integers(0, 10**8, n)
    ts = np.cumsum(steps).tolist()
    load = np.cumsum(rng.normal(0, 0.2, n))
    values = load[:, None] * np.array([1.0, 2.0, -1.0]) + rng.normal(0, 0.3, (n, 3))
    values[rng.random((n, 3)) < 0.01] += 20.0
    values[rng.random((n, 3)) < 0.02] = np.nan
    return ts, values


def small_stack() -> StackDetector:
    return StackDetector(
        [SensorDetector(n, rules=FaultRules(), warmup=30, window=200) for n in NAMES],
        consistency=StackConsistency(NAMES, warmup=40, refresh=5),
    )


def verdicts(ts: list[int], values: np.ndarray) -> list[Score]:
    detector = small_stack()
    return [
        detector.update(t, dict(zip(NAMES, row, strict=True)))
        for t, row in zip(ts, values.tolist(), strict=True)
    ]


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(150, 400), st.data())
def test_later_rows_never_change_earlier_verdicts(seed: int, n: int, data: st.DataObject) -> None:
    ts, values = rows(n, seed)
    cut = data.draw(st.integers(1, n - 1), label="cut")
    full = verdicts(ts, values)
    assert verdicts(ts[:cut], values[:cut]) == full[:cut]
    changed = values.copy()
    changed[cut:] = np.random.default_rng(seed + 1).normal(50.0, 30.0, (n - cut, 3))
    assert verdicts(ts, changed)[:cut] == full[:cut]


def csv_text(ts: list[int], values: np.ndarray) -> str:
    lines = ["timestamp,a,b,c"]
    for t, row in zip(ts, values.tolist(), strict=True):
        cells = ["" if v != v else f"{v:.4f}" for v in row]
        lines.append(f"{t / NS_PER_S:.3f}," + ",".join(cells))
    return "\n".join(lines) + "\n"


def scored(text: str) -> list[str]:
    out = io.StringIO()
    score_csv(io.StringIO(text), out)
    return out.getvalue().splitlines()[1:]


@settings(max_examples=5, deadline=None)
@given(st.integers(0, 2**32 - 1), st.data())
def test_the_cli_is_causal(seed: int, data: st.DataObject) -> None:
    n = 1600  # past the CLI's default warm-up, so every component is live
    ts, values = rows(n, seed)
    cut = data.draw(st.integers(1000, n - 1), label="cut")
    full = scored(csv_text(ts, values))
    assert len(full) == n
    assert scored(csv_text(ts[:cut], values[:cut])) == full[:cut]
    changed = values.copy()
    changed[cut:] *= -3.0
    assert scored(csv_text(ts, changed))[:cut] == full[:cut]
