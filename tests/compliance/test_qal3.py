"""QAL3 control charts (EN 14181; rules A4): check C8 and the CUSUM algebra against plain loops."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.compliance.qal3 import (
    CusumDrift,
    CusumPrecision,
    CusumState,
    Ewma,
    PrecisionState,
    Qal3Chart,
    Qal3Event,
    Shewhart,
)

FAST = settings(max_examples=150, deadline=None)

s_values = st.floats(min_value=0.05, max_value=20.0)
deviations = st.lists(st.floats(min_value=-30.0, max_value=30.0), max_size=60)


def test_c8_cusum_drift_out_of_control_at_check_4() -> None:
    # C8: s_AMS = 2.0 → k_x = 1.002, h_x = 5.70; span deviation +2.5 at each check.
    chart = CusumDrift(2.0)
    assert chart.k == pytest.approx(1.002)
    assert chart.h == pytest.approx(5.70)
    states = [chart.update(2.5) for _ in range(4)]
    assert [round(s.s_pos, 3) for s in states] == [1.498, 2.996, 4.494, 5.992]
    assert [s.out_of_control for s in states] == [False, False, False, True]
    assert [s.n_pos for s in states] == [1, 2, 3, 4]
    assert all(s.s_neg == 0.0 and s.n_neg == 0 for s in states)


def test_drift_is_symmetric_and_reset_clears() -> None:
    chart = CusumDrift(2.0)
    for _ in range(4):
        state = chart.update(-2.5)
    assert round(state.s_neg, 3) == 5.992 and state.out_of_control and state.n_neg == 4
    chart.reset()
    assert chart.state == CusumState(0.0, 0.0, 0, 0, out_of_control=False)
    # a deviation within ±k leaves both sums at zero: no drift is being accumulated
    assert chart.update(1.0) == CusumState(0.0, 0.0, 0, 0, out_of_control=False)


def test_drift_counter_restarts_when_sum_returns_to_zero() -> None:
    chart = CusumDrift(1.0)  # k = 0.501
    chart.update(1.0)
    chart.update(1.0)
    assert chart.state.n_pos == 2
    chart.update(-3.0)  # S⁺ back to 0
    assert chart.state.s_pos == 0.0 and chart.state.n_pos == 0
    assert chart.state.n_neg == 1


def test_custom_factors() -> None:
    chart = CusumDrift(2.0, k_factor=0.5, h_factor=4.0)
    assert (chart.k, chart.h) == (1.0, 8.0)
    precision = CusumPrecision(2.0, k_factor=2.0, h_factor=10.0)
    assert (precision.k, precision.h) == (8.0, 40.0)


def test_precision_limits_and_statistic() -> None:
    chart = CusumPrecision(2.0)  # k_s = 7.4, h_s = 27.6
    assert chart.k == pytest.approx(7.4) and chart.h == pytest.approx(27.6)
    assert chart.update(2.0) == PrecisionState(0.0, out_of_control=False)  # 4 < k_s
    assert chart.update(5.0).statistic == pytest.approx(17.6)
    state = chart.update(-5.0)
    assert state.statistic == pytest.approx(35.2) and state.out_of_control
    chart.reset()
    assert chart.state == PrecisionState(0.0, out_of_control=False)


@pytest.mark.parametrize(
    ("deviation", "zone"),
    [
        (0.0, "ok"),
        (4.0, "ok"),  # exactly on the warning limit is inside
        (-4.0, "ok"),
        (4.01, "warning"),
        (-5.9, "warning"),
        (6.0, "warning"),  # exactly on the action limit is inside
        (6.01, "action"),
        (-10.0, "action"),
    ],
)
def test_shewhart_zones(deviation: float, zone: str) -> None:
    assert Shewhart(2.0).check(deviation) == zone


def test_ewma_limit_and_reset() -> None:
    chart = Ewma(2.0, lam=0.2, L=3.0)
    assert chart.limit == pytest.approx(3.0 * 2.0 * math.sqrt(0.2 / 1.8))
    z, out = chart.update(10.0)
    assert z == pytest.approx(2.0) and not out
    z, out = chart.update(10.0)
    assert z == pytest.approx(3.6) and out
    chart.reset()
    assert chart.z == 0.0


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf])
def test_invalid_s_ams(bad: float) -> None:
    for make in (CusumDrift, CusumPrecision, Shewhart, Ewma, Qal3Chart):
        with pytest.raises(ValueError, match="s_AMS"):
            make(bad)


def test_invalid_deviation_and_parameters() -> None:
    with pytest.raises(ValueError, match="finite"):
        CusumDrift(1.0).update(math.nan)
    with pytest.raises(ValueError, match="lambda"):
        Ewma(1.0, lam=0.0)
    with pytest.raises(ValueError, match="warning < action"):
        Shewhart(1.0, warning=3.0, action=2.0)
    with pytest.raises(ValueError, match="point"):
        Qal3Chart(1.0).check("mid", 1.0, 0.0, ts_ns=0)  # type: ignore[arg-type]


# --- the combined chart -----------------------------------------------------------------------


def test_c8_via_chart_emits_one_drift_event_at_check_4() -> None:
    chart = Qal3Chart(s_ams_zero=0.5, s_ams_span=2.0)
    events = [chart.check("span", 452.5, 450.0, ts_ns=1_000 * i) for i in range(1, 8)]
    assert [len(e) for e in events] == [0, 0, 0, 1, 0, 0, 0]  # once, not while it stays out
    [event] = events[3]
    assert isinstance(event, Qal3Event)
    assert (event.ts_ns, event.point, event.kind) == (4_000, "span", "drift")
    assert event.statistic == pytest.approx(5.992) and event.limit == pytest.approx(5.70)
    assert "S+" in event.message and "adjust the AMS" in event.message
    assert chart.drift_state("zero") == CusumState(0.0, 0.0, 0, 0, out_of_control=False)
    # after the adjustment the chart is re-armed and a new excursion emits again
    chart.reset("span")
    again = [chart.check("span", 452.5, 450.0, ts_ns=i) for i in range(4)]
    assert [len(e) for e in again] == [0, 0, 0, 1]


def test_precision_out_of_control_skips_the_drift_test() -> None:
    chart = Qal3Chart(1.0)  # k_s = 1.85, h_s = 6.9; k_x = 0.501, h_x = 2.85
    [event] = chart.check("zero", 4.0, 0.0, ts_ns=10)  # d² = 16 → statistic 14.15 > 6.9
    assert event.kind == "precision" and event.point == "zero"
    assert event.statistic == pytest.approx(14.15) and event.limit == pytest.approx(6.9)
    assert "drift test skipped" in event.message
    assert chart.drift_state("zero").s_pos == 0.0  # drift sums untouched
    # still imprecise: no second event, drift still skipped
    assert chart.check("zero", 0.0, 0.0, ts_ns=20) == []
    assert chart.precision_state("zero").statistic == pytest.approx(12.3)
    assert chart.drift_state("zero").n_pos == 0
    # zero deviations bring the statistic down by k_s each check: back in control at 6.75
    for ts in (30, 40, 50):
        assert chart.check("zero", 0.0, 0.0, ts_ns=ts) == []
    assert not chart.precision_state("zero").out_of_control
    # the drift test runs again (a +1 deviation now accumulates)
    chart.check("zero", 1.0, 0.0, ts_ns=60)
    assert chart.drift_state("zero").s_pos == pytest.approx(0.499)


def test_reset_all_points() -> None:
    chart = Qal3Chart(1.0)
    chart.check("zero", 2.0, 0.0, ts_ns=1)
    chart.check("span", 2.0, 0.0, ts_ns=2)
    chart.reset()
    for point in ("zero", "span"):
        assert chart.drift_state(point).s_pos == 0.0
        assert chart.precision_state(point).statistic == 0.0


# --- properties against plain loops --------------------------------------------------------


def reference_cusum(s: float, ds: list[float]) -> list[tuple[float, float, int, int, bool]]:
    k, h = 0.501 * s, 2.85 * s
    sp = sn = 0.0
    npos = nneg = 0
    out = []
    for d in ds:
        sp = max(0.0, sp + d - k)
        sn = max(0.0, sn - d - k)
        npos = npos + 1 if sp > 0 else 0
        nneg = nneg + 1 if sn > 0 else 0
        out.append((sp, sn, npos, nneg, sp > h or sn > h))
    return out


@FAST
@given(s_values, deviations)
def test_cusum_drift_equals_plain_loop(s: float, ds: list[float]) -> None:
    chart = CusumDrift(s)
    got = [chart.update(d) for d in ds]
    expected = reference_cusum(s, ds)
    assert [(g.s_pos, g.s_neg, g.n_pos, g.n_neg, g.out_of_control) for g in got] == expected


@FAST
@given(s_values, deviations)
def test_cusum_precision_equals_plain_loop(s: float, ds: list[float]) -> None:
    chart = CusumPrecision(s)
    stat, expected = 0.0, []
    for d in ds:
        stat = max(0.0, stat + d * d - 1.85 * s**2)
        expected.append((stat, stat > 6.90 * s**2))
    assert [(p.statistic, p.out_of_control) for p in map(chart.update, ds)] == expected


@FAST
@given(s_values, deviations, st.floats(min_value=0.05, max_value=1.0))
def test_ewma_equals_plain_loop(s: float, ds: list[float], lam: float) -> None:
    chart = Ewma(s, lam=lam, L=3.0)
    limit = 3.0 * s * math.sqrt(lam / (2 - lam))
    z, expected = 0.0, []
    for d in ds:
        z = lam * d + (1 - lam) * z
        expected.append((z, abs(z) > limit))
    assert [chart.update(d) for d in ds] == expected


@dataclass
class _RefPoint:
    """Plain-Python model of one check point, written from the rule text (A4)."""

    s: float
    sp: float = 0.0
    sn: float = 0.0
    prec: float = 0.0
    drift_out: bool = False
    prec_out: bool = False
    events: list[tuple[int, str]] = field(default_factory=list)

    def check(self, ts: int, d: float) -> None:
        self.prec = max(0.0, self.prec + d * d - 1.85 * self.s**2)
        now_prec_out = self.prec > 6.90 * self.s**2
        if now_prec_out:
            if not self.prec_out:
                self.events.append((ts, "precision"))
            self.prec_out = True
            return  # drift test skipped
        self.prec_out = False
        self.sp = max(0.0, self.sp + d - 0.501 * self.s)
        self.sn = max(0.0, self.sn - d - 0.501 * self.s)
        now_drift_out = max(self.sp, self.sn) > 2.85 * self.s
        if now_drift_out and not self.drift_out:
            self.events.append((ts, "drift"))
        self.drift_out = now_drift_out


@FAST
@given(
    s_values,
    s_values,
    st.lists(
        st.tuples(st.sampled_from(["zero", "span"]), st.floats(min_value=-10.0, max_value=10.0)),
        max_size=60,
    ),
)
def test_chart_events_equal_plain_reference(
    s_zero: float, s_span: float, checks: list[tuple[str, float]]
) -> None:
    chart = Qal3Chart(s_zero, s_span)
    ref = {"zero": _RefPoint(s_zero), "span": _RefPoint(s_span)}
    got: list[tuple[int, str, str]] = []
    expected: list[tuple[int, str, str]] = []
    for ts, (point, d) in enumerate(checks):
        for event in chart.check(point, 100.0 + d, 100.0, ts_ns=ts):  # type: ignore[arg-type]
            got.append((event.ts_ns, event.point, event.kind))
        before = len(ref[point].events)
        ref[point].check(ts, (100.0 + d) - 100.0)
        expected.extend((t, point, kind) for t, kind in ref[point].events[before:])
    assert got == expected
