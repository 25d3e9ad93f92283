"""Backtest scoring: worked examples and a property against a plain per-window reference."""

from __future__ import annotations

import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from stackwatch.backtest import Window, score, to_json, to_table
from stream.model import NS_PER_S, SensorKey

S = NS_PER_S
DAY = 86_400 * S
NOX = SensorKey("p", "b1", "nox")
CO = SensorKey("p", "b1", "co")
O2 = SensorKey("p", "b1", "o2")
SPANS = {NOX: (0, DAY), CO: (0, DAY), O2: (0, DAY)}


def w(sensor: str, kind: str, start_s: int, end_s: int) -> Window:
    return Window("p", "b1", sensor, kind, start_s * S, end_s * S)


def test_each_kind_gets_recall_precision_f1_and_delay() -> None:
    labels = [
        w("nox", "drift", 1000, 2000),  # flagged 300 s in
        w("co", "stuck", 5000, 5300),  # missed
        w("co", "spike", 9000, 9001),  # flagged at once
    ]
    flags = {
        NOX: [1300 * S, 1310 * S, 1400 * S],  # one event (merged within 60 s)... and a second
        CO: [9000 * S, 40_000 * S],  # the spike, then a false alarm
    }
    bt = score(labels, flags, sensor_spans=SPANS)
    rows = {r.kind: r for r in bt.kinds}
    assert rows["drift"].detected == 1 and rows["drift"].delays_s == (300.0,)
    assert rows["drift"].true_events == 2  # 1300 (+1310 merged) and 1400 are two events
    assert rows["stuck"].detected == 0 and math.isnan(rows["stuck"].delay_median_s)
    assert rows["stuck"].recall == 0.0 and rows["stuck"].f1 == 0.0
    assert rows["spike"].recall == 1.0 and rows["spike"].delays_s == (0.0,)
    # One false alarm, counted against every kind's precision.
    assert rows["spike"].precision == 0.5
    assert rows["drift"].precision == 2 / 3
    assert bt.overall.windows == 3 and bt.overall.detected == 2
    assert bt.overall.false_alarms == 1
    assert bt.sensor_days == 3.0
    assert math.isclose(bt.false_alarms_per_sensor_day, 1 / 3)


def test_return_to_normal_within_tolerance_is_not_a_false_alarm() -> None:
    labels = [w("nox", "calibration_offset", 1000, 2000)]
    flags = {NOX: [1500 * S, 2050 * S, 2100 * S + 61 * S]}
    bt = score(labels, flags, sensor_spans=SPANS, tolerance_s=60, merge_s=30)
    assert bt.overall.true_events == 2  # in the window and 50 s after it
    assert bt.overall.false_alarms == 1  # 161 s after: too late to be the return


def test_flag_on_the_wrong_sensor_is_a_false_alarm() -> None:
    bt = score([w("nox", "spike", 1000, 1001)], {CO: [1000 * S]}, sensor_spans=SPANS)
    assert bt.overall.detected == 0 and bt.overall.false_alarms == 1


def test_process_excursion_explains_flags_on_every_sensor_of_the_stack() -> None:
    labels = [w("co", "excursion", 1000, 1600)]
    bt = score(labels, {CO: [1010 * S], O2: [1005 * S]}, sensor_spans=SPANS)
    assert bt.overall.false_alarms == 0 and bt.overall.true_events == 2


def test_context_kinds_are_listed_not_scored() -> None:
    labels = [
        Window("p", "b1", "", "startup", 0, 3600 * S),
        w("nox", "maintenance", 7200, 9000),
        w("nox", "spike", 20_000, 20_001),
    ]
    flags = {NOX: [100 * S, 7300 * S, 20_000 * S], CO: [200 * S]}
    bt = score(labels, flags, sensor_spans=SPANS)
    rows = {r.kind: r for r in bt.kinds}
    assert rows["startup"].context and rows["startup"].detected == 1
    assert rows["maintenance"].context and rows["maintenance"].detected == 1
    assert bt.overall.windows == 1  # only the spike is a fault to detect
    assert bt.overall.false_alarms == 0  # start-up and maintenance explain the rest
    doc = json.loads(to_json(bt))
    assert {r["kind"] for r in doc["kinds"]} == {"startup", "maintenance", "spike"}
    assert next(r for r in doc["kinds"] if r["kind"] == "startup")["precision"] is None
    table = to_table(bt)
    assert "startup (context)" in table and "false alarms: 0" in table


def test_nothing_flagged_and_nothing_labelled() -> None:
    bt = score([], {}, sensor_spans=SPANS)
    assert bt.kinds == () and bt.overall.false_alarms == 0
    assert json.loads(to_json(bt))["overall"]["recall"] is None


@settings(max_examples=200, deadline=None)
@given(
    windows=st.lists(
        st.tuples(st.sampled_from(["nox", "co"]), st.integers(0, 50), st.integers(1, 20)),
        max_size=6,
    ),
    flag_times=st.lists(st.tuples(st.sampled_from(["nox", "co"]), st.integers(0, 80)), max_size=30),
)
def test_detection_matches_a_plain_per_window_check(
    windows: list[tuple[str, int, int]], flag_times: list[tuple[str, int]]
) -> None:
    """Windows detected = windows holding a flag of their sensor; true + false = all events."""
    minute = 60
    labels = [w(sensor, "spike", a * minute, (a + n) * minute) for sensor, a, n in windows]
    flags: dict[SensorKey, list[int]] = {}
    for sensor, t in flag_times:
        flags.setdefault(SensorKey("p", "b1", sensor), []).append(t * minute * S)
    bt = score(labels, flags, sensor_spans=SPANS, tolerance_s=0, merge_s=30)
    expected_detected = sum(
        any(s == lab.sensor and lab.start_ns <= t * minute * S < lab.end_ns for s, t in flag_times)
        for lab in labels
    )
    assert bt.overall.detected == expected_detected
    # merge 30 s < one minute apart: every distinct flag time is its own event
    events = len({(s, t) for s, t in flag_times})
    assert bt.overall.true_events + bt.overall.false_alarms == events
