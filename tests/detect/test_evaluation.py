"""The labelled synthetic streams, the event-based metrics, and the model-CI guard: on the
quick benchmark configuration every fault kind must keep F1 ≥ 0.8 and within the margin of
the committed baseline (``bench/baselines/detection.json``), at ≤ 1 false alarm per
sensor-day."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.detection import (
    MAX_FALSE_ALARMS_PER_SENSOR_DAY,
    QUICK_HOURS,
    SEED,
    TARGET_F1,
    config_name,
    load_baseline,
)
from stream.detect.evaluate import (
    FaultKind,
    FaultWindow,
    LabelledStream,
    evaluate,
    generate_stream,
    score_flags,
)
from stream.model import NS_PER_S


@pytest.mark.parametrize("kind", list(FaultKind))
def test_streams_are_seeded_and_labelled(kind: FaultKind) -> None:
    stream = generate_stream(kind, hours=6, seed=3)
    again = generate_stream(kind, hours=6, seed=3)
    np.testing.assert_array_equal(stream.values, again.values)
    assert stream.windows == again.windows
    assert stream.windows, "faults are injected"
    first_fault = (stream.windows[0].start_ns - int(stream.ts_ns[0])) / NS_PER_S
    assert first_fault >= stream.warmup_s
    for w in stream.windows:
        assert w.kind is kind and w.start_ns < w.end_ns <= int(stream.ts_ns[-1])
        j = stream.names.index(w.sensor)
        rows = (stream.ts_ns >= w.start_ns) & (stream.ts_ns < w.end_ns)
        inside = stream.values[rows, j]
        if kind is FaultKind.STUCK:
            assert np.all(inside == inside[0])
        if kind is FaultKind.DROPOUT:
            assert np.all(np.isnan(inside))
    faulty = set()
    for w in stream.windows:
        faulty.add(stream.names.index(w.sensor))
    quiet = [j for j in range(len(stream.names)) if j not in faulty]
    assert not np.isnan(stream.values[:, quiet]).any()


def toy(windows: list[tuple[int, int]]) -> LabelledStream:
    """A one-sensor stream of 1000 s with the given fault windows (in seconds)."""
    n = 1000
    return LabelledStream(
        kind=FaultKind.SPIKE,
        names=("x",),
        ts_ns=np.arange(n, dtype=np.int64) * NS_PER_S,
        values=np.zeros((n, 1)),
        windows=tuple(
            FaultWindow(FaultKind.SPIKE, "x", a * NS_PER_S, b * NS_PER_S) for a, b in windows
        ),
        valid_ranges=((0.0, 1.0),),
        interval_s=1.0,
        warmup_s=0.0,
    )


def flags_at(*seconds: int) -> np.ndarray:
    flags = np.zeros((1000, 1), dtype=bool)
    flags[list(seconds), 0] = True
    return flags


@pytest.mark.parametrize(
    ("windows", "flagged", "detected", "events", "true_events", "delay"),
    [
        # one window, flagged 3 s after its start: detected, one true event
        ([(100, 200)], [103, 104, 105], 1, 1, 1, 3.0),
        # a flag in the tolerance after the end is not a detection but not a false alarm
        ([(100, 200)], [230], 0, 1, 1, math.nan),
        # a flag after the tolerance is a false alarm
        ([(100, 200)], [300], 0, 1, 0, math.nan),
        # flags closer than the merge gap form one event; a later burst is a second one
        ([(100, 200)], [110, 150, 400, 420], 1, 2, 1, 10.0),
        # two windows, one found
        ([(100, 110), (500, 510)], [505], 1, 1, 1, 5.0),
    ],
)
def test_event_based_matching(
    windows: list[tuple[int, int]],
    flagged: list[int],
    detected: int,
    events: int,
    true_events: int,
    delay: float,
) -> None:
    m = score_flags(toy(windows), flags_at(*flagged), tolerance_s=60, merge_s=60)
    assert (m.detected, m.alarm_events, m.true_events) == (detected, events, true_events)
    assert m.false_alarms == events - true_events
    assert m.delay_median_s == pytest.approx(delay, nan_ok=True)
    assert m.recall == detected / len(windows)


def test_f1_of_nothing_flagged_is_zero_and_nothing_to_find_is_perfect() -> None:
    assert score_flags(toy([(100, 200)]), flags_at()).f1 == 0.0
    assert score_flags(toy([]), flags_at()).f1 == 1.0


def test_quality_does_not_regress() -> None:
    """Model CI: the quick configuration of ``python -m bench detection``."""
    baseline = load_baseline()
    expected = baseline["configs"][config_name(QUICK_HOURS, SEED)]
    margin = float(baseline["margin"])
    results = evaluate(QUICK_HOURS, SEED)
    assert {m.kind for m in results} == set(expected)
    report = {m.kind: m.summary() for m in results}
    for m in results:
        floor = max(TARGET_F1, float(expected[m.kind]["f1"]) - margin)
        assert m.f1 >= floor, (m.kind, report)
        assert m.false_alarms_per_sensor_day <= MAX_FALSE_ALARMS_PER_SENSOR_DAY, (m.kind, report)
    days = sum(m.sensor_days for m in results)
    assert sum(m.false_alarms for m in results) / days <= MAX_FALSE_ALARMS_PER_SENSOR_DAY
