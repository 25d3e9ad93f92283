"""Short-term averages, validity and validated values (EN 17255-1; IED Annex V/VI; C3).

The vectorised :func:`short_term_averages` is checked against a plain loop reference on
Hypothesis-generated readings, statuses, plant modes and periods.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from datetime import date
from fractions import Fraction
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.compliance.averaging import (
    CI_FRACTION,
    STA_STATE_CODES,
    STATUS_CODES,
    PeriodTotals,
    StaBatch,
    align_down,
    confidence_interval,
    period_totals,
    required_valid_readings,
    short_term_averages,
    status_codes,
    ten_minute_averages,
    validated,
)
from stream.compliance.longterm import local_day_bounds_ns
from stream.compliance.types import OperatingMode, StaCounts, StaState
from stream.model import NS_PER_S, Status, datetime_from_ns

T0 = 1_767_225_600 * NS_PER_S  # 2026-01-01T00:00Z, aligned to every period used here
HOUR = 3600 * NS_PER_S
MIN = 60 * NS_PER_S


def minute_readings(
    n: int, value: float = 100.0, status: int = 0, start: int = T0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ts = start + np.arange(n, dtype=np.int64) * MIN
    return ts, np.full(n, value), np.full(n, status, dtype=np.int8)


# ---------------------------------------------------------------- worked examples and rules


def test_status_codes_match_the_reading_model() -> None:
    assert set(STATUS_CODES) == {s.value for s in Status}
    assert STATUS_CODES[Status.VALID] == 0
    assert status_codes([Status.MALFUNCTION, "valid"]).tolist() == [2, 0]
    with pytest.raises(ValueError, match="unknown status"):
        status_codes(["broken"])


def test_two_thirds_rule_at_the_exact_boundary() -> None:
    """Half-hour at 10 s: 120 valid readings (1200 s = 2/3 · 1800 s) is valid, 119 is not."""
    ts = T0 + np.arange(180, dtype=np.int64) * 10 * NS_PER_S
    vals = np.arange(180, dtype=np.float64)
    ok = np.array([0] * 120 + [1] * 60, dtype=np.int8)
    short = np.array([0] * 119 + [2] * 61, dtype=np.int8)
    kw: dict[str, Any] = {
        "start_ns": T0,
        "end_ns": T0 + 1800 * NS_PER_S,
        "period_s": 1800,
        "interval_s": 10,
    }
    a = short_term_averages(ts, vals, ok, **kw)
    b = short_term_averages(ts, vals, short, **kw)
    assert a.states() == [StaState.VALID]
    assert a.counts(0) == StaCounts(valid=120, maintenance=60)
    assert a.mean[0] == pytest.approx(np.mean(vals[:120]))
    assert b.states() == [StaState.INVALID]
    assert b.counts(0) == StaCounts(valid=119, malfunction=61)
    assert b.mean[0] == pytest.approx(np.mean(vals[:119]))  # reported, but the state forbids use
    assert required_valid_readings(1800, 10, 2 / 3) == 120


def test_validity_fraction_is_a_parameter() -> None:
    ts, vals, status = minute_readings(45)
    kw: dict[str, Any] = {"start_ns": T0, "end_ns": T0 + HOUR, "period_s": 3600, "interval_s": 60}
    assert short_term_averages(ts, vals, status, **kw).state_at(0) == StaState.VALID
    strict = short_term_averages(ts, vals, status, min_valid_fraction=0.8, **kw)
    assert strict.state_at(0) == StaState.INVALID


def test_plant_not_in_normal_operation_for_more_than_half_is_excluded() -> None:
    ts, vals, status = minute_readings(60)
    kw: dict[str, Any] = {"start_ns": T0, "end_ns": T0 + HOUR, "period_s": 3600, "interval_s": 60}
    startup = [OperatingMode.STARTUP, OperatingMode.NORMAL]
    over_half = short_term_averages(
        ts, vals, status, mode_ts_ns=[T0, T0 + 31 * MIN], mode_values=startup, **kw
    )
    assert over_half.states() == [StaState.EXCLUDED]
    assert over_half.counts(0) == StaCounts(valid=29, other_mode=31)
    # exactly half is not "more than half": the period is judged on its data, and 30 valid
    # minutes are less than 2/3 of the hour
    half = short_term_averages(
        ts, vals, status, mode_ts_ns=[T0, T0 + 30 * MIN], mode_values=startup, **kw
    )
    assert half.states() == [StaState.INVALID]
    assert half.counts(0) == StaCounts(valid=30, other_mode=30)


def test_mode_set_before_the_range_carries_into_it() -> None:
    ts, vals, status = minute_readings(120)
    batch = short_term_averages(
        ts,
        vals,
        status,
        start_ns=T0,
        end_ns=T0 + 2 * HOUR,
        period_s=3600,
        interval_s=60,
        mode_ts_ns=[T0 + HOUR, T0 - 5 * HOUR],  # unsorted on purpose
        mode_values=[OperatingMode.NORMAL, OperatingMode.SHUTDOWN],
    )
    assert batch.states() == [StaState.EXCLUDED, StaState.VALID]
    assert batch.counts(0).other_mode == 60


def test_periods_without_readings_are_invalid_data_loss() -> None:
    batch = short_term_averages(
        [], [], [], start_ns=T0, end_ns=T0 + 3 * HOUR, period_s=3600, interval_s=60
    )
    assert len(batch) == 3
    assert batch.states() == [StaState.INVALID] * 3
    assert np.isnan(batch.mean).all()
    assert batch.counts(1).total == 0
    assert (batch.start_ns == T0 + np.arange(3) * HOUR).all()
    assert (batch.end_ns - batch.start_ns == HOUR).all()


def test_duplicate_timestamps_last_one_wins_and_outside_readings_are_ignored() -> None:
    ts = np.array([T0 - 1, T0, T0 + MIN, T0, T0 + HOUR], dtype=np.int64)
    vals = np.array([1e6, 10.0, 20.0, 30.0, 1e6])
    status = np.array([0, 0, 0, 1, 0], dtype=np.int8)
    batch = short_term_averages(
        ts, vals, status, start_ns=T0, end_ns=T0 + HOUR, period_s=3600, interval_s=60
    )
    assert batch.counts(0) == StaCounts(valid=1, maintenance=1)
    assert batch.mean[0] == 20.0


def test_valid_flag_without_a_finite_value_counts_as_malfunction() -> None:
    ts, vals, status = minute_readings(60)
    vals[:5] = np.nan
    vals[5] = np.inf
    batch = short_term_averages(
        ts, vals, status, start_ns=T0, end_ns=T0 + HOUR, period_s=3600, interval_s=60
    )
    assert batch.counts(0) == StaCounts(valid=54, malfunction=6)
    assert batch.mean[0] == 100.0


def test_bad_input_is_refused() -> None:
    ts, vals, status = minute_readings(3)
    kw: dict[str, Any] = {"period_s": 3600, "interval_s": 60}
    with pytest.raises(ValueError, match="period boundaries"):
        short_term_averages(ts, vals, status, start_ns=T0 + 1, end_ns=T0 + HOUR, **kw)
    with pytest.raises(ValueError, match="integer codes"):
        short_term_averages(ts, vals, [0, 7, 0], start_ns=T0, end_ns=T0 + HOUR, **kw)
    with pytest.raises(ValueError, match="equal length"):
        short_term_averages(ts, vals[:2], status, start_ns=T0, end_ns=T0 + HOUR, **kw)
    with pytest.raises(ValueError, match="both"):
        short_term_averages(ts, vals, status, start_ns=T0, end_ns=T0 + HOUR, mode_ts_ns=[T0], **kw)
    with pytest.raises(ValueError, match="period_s"):
        short_term_averages(ts, vals, status, start_ns=T0, end_ns=T0, period_s=0, interval_s=60)
    with pytest.raises(ValueError, match="min_valid_fraction"):
        required_valid_readings(3600, 60, 0.0)
    assert align_down(T0 + HOUR + 5, 3600) == T0 + HOUR


def test_half_hours_follow_the_local_clock_on_dst_days() -> None:
    """Epoch alignment gives local :00/:30 periods in Vienna, 46 of them on 2026-03-29."""
    zone = ZoneInfo("Europe/Vienna")
    for day, expected in ((date(2026, 3, 29), 46), (date(2026, 10, 25), 50)):
        start, end = local_day_bounds_ns(day, "Europe/Vienna")
        batch = short_term_averages(
            [], [], [], start_ns=start, end_ns=end, period_s=1800, interval_s=10
        )
        assert len(batch) == expected
        local = [datetime_from_ns(int(s)).astimezone(zone) for s in batch.start_ns]
        assert {t.minute for t in local} == {0, 30}
        assert {t.date() for t in local} == {day}


def test_ten_minute_averages_are_600_s_periods() -> None:
    ts, vals, status = minute_readings(60)
    vals[:10] = 200.0
    batch = ten_minute_averages(ts, vals, status, start_ns=T0, end_ns=T0 + HOUR, interval_s=60)
    assert batch.period_s == 600
    assert batch.mean.tolist() == [200.0, 100.0, 100.0, 100.0, 100.0, 100.0]


def test_batch_helpers() -> None:
    batch = StaBatch.from_counts(
        start_ns=[T0, T0 + HOUR, T0 + 2 * HOUR],
        mean=[1.0, 2.0, 3.0],
        state=[0, 1, 2],
        period_s=3600,
    )
    assert batch.valid_mask.tolist() == [True, False, False]
    assert batch.invalid_mask.tolist() == [False, True, False]
    assert batch.excluded_mask.tolist() == [False, False, True]
    joined = StaBatch.concat([batch, batch])
    assert len(joined) == 6 and joined.states()[3:] == batch.states()
    with pytest.raises(ValueError, match="equal length"):
        StaBatch.from_counts(start_ns=[T0], mean=[1.0, 2.0], state=[0], period_s=3600)
    with pytest.raises(ValueError, match="state codes"):
        StaBatch.from_counts(start_ns=[T0], mean=[1.0], state=[5], period_s=3600)
    other = StaBatch.from_counts(start_ns=[T0], mean=[1.0], state=[0], period_s=1800)
    with pytest.raises(ValueError, match="different period"):
        StaBatch.concat([batch, other])


def test_c3_validated_values() -> None:
    """C3: NOx ELV 250, CI 20 % = 50: 20 hours at 280 and one at 330 → validated mean 232.38."""
    ci = confidence_interval("lcp", "nox", 250.0)
    assert ci == 50.0
    hours = np.array([np.nan] * 3 + [280.0] * 20 + [330.0])
    val = validated(hours, ci)
    assert round(float(np.nanmean(hours)), 2) == 282.38
    assert round(float(np.nanmean(val)), 2) == 232.38
    assert np.isnan(val[:3]).all()


def test_validated_is_not_clamped_and_refuses_negative_ci() -> None:
    assert validated([10.0], 50.0).tolist() == [-40.0]
    assert validated([10.0, 20.0], np.array([1.0, 2.0])).tolist() == [9.0, 18.0]
    with pytest.raises(ValueError, match="non-negative"):
        validated([10.0], -1.0)
    with pytest.raises(ValueError, match="non-negative"):
        validated([10.0], float("nan"))


def test_confidence_interval_table_and_sources() -> None:
    assert CI_FRACTION["lcp"] == {"co": 0.10, "so2": 0.20, "nox": 0.20, "dust": 0.30}
    assert CI_FRACTION["wi"]["hcl"] == 0.40 and CI_FRACTION["wi"]["toc"] == 0.30
    assert confidence_interval("wi", "dust", 10.0) == pytest.approx(3.0)
    assert confidence_interval("wi", "hg", 0.05) == pytest.approx(0.02)
    # DE practice: the QAL2 uncertainty, at most fraction × ELV
    assert confidence_interval("lcp", "so2", 200.0, qal2_uncertainty=12.0) == 12.0
    assert confidence_interval("lcp", "so2", 200.0, qal2_uncertainty=55.0) == pytest.approx(40.0)
    with pytest.raises(ValueError, match="no confidence interval"):
        confidence_interval("lcp", "hcl", 10.0)
    assert confidence_interval("wi", "nh3", 10.0, fraction=0.4) == pytest.approx(4.0)
    with pytest.raises(ValueError, match="positive"):
        confidence_interval("lcp", "nox", 0.0)
    with pytest.raises(ValueError, match="qal2"):
        confidence_interval("lcp", "nox", 250.0, qal2_uncertainty=-1.0)


def test_throughput_exceeds_200k_readings_per_second() -> None:
    """The engine requirement (≥ 200 000 readings/s on one core), on unsorted input."""
    n = 500_000
    rng = np.random.default_rng(7)
    ts = T0 + rng.permutation(n).astype(np.int64) * 10 * NS_PER_S
    vals = rng.normal(200.0, 20.0, n)
    status = rng.choice(4, n, p=[0.9, 0.04, 0.03, 0.03]).astype(np.int8)
    mode_ts = T0 + np.sort(rng.integers(0, n * 10, 100)) * NS_PER_S
    end = align_down(T0 + n * 10 * NS_PER_S, 1800) + 1800 * NS_PER_S
    began = time.perf_counter()
    batch = short_term_averages(
        ts,
        vals,
        status,
        start_ns=T0,
        end_ns=end,
        period_s=1800,
        interval_s=10,
        mode_ts_ns=mode_ts,
        mode_values=rng.integers(0, 4, 100),
    )
    elapsed = time.perf_counter() - began
    assert int(batch.n_valid.sum() + batch.n_other_mode.sum()) > 0
    assert n / elapsed > 200_000


# ---------------------------------------------------------------- plain-loop reference


@dataclass
class RefSta:
    counts: list[int]  # valid, maintenance, malfunction, calibration, other mode
    mean: float
    state: StaState


def reference_sta(
    readings: list[tuple[int, float, int]],
    modes: list[tuple[int, int]],
    start: int,
    end: int,
    period_s: int,
    interval_s: int,
    fraction: Fraction,
) -> list[RefSta]:
    latest: dict[int, tuple[float, int]] = {}
    for ts, v, s in readings:
        if start <= ts < end:
            latest[ts] = (v, s)
    ordered_modes = sorted(modes, key=lambda m: m[0])

    def mode_at(t: int) -> int:
        mode = 0
        for mt, mv in ordered_modes:
            if mt > t:
                break
            mode = mv
        return mode

    period = period_s * NS_PER_S
    out = []
    for p0 in range(start, end, period):
        p1 = p0 + period
        counts = [0] * 5
        total = 0.0
        for ts in sorted(latest):
            if not p0 <= ts < p1:
                continue
            v, s = latest[ts]
            if mode_at(ts) != 0:
                cat = 4
            elif s == 0 and not math.isfinite(v):
                cat = 2
            else:
                cat = s
            counts[cat] += 1
            if cat == 0:
                total += v
        cuts = sorted({p0, p1} | {mt for mt, _ in modes if p0 < mt < p1})
        not_normal = sum(b - a for a, b in pairwise(cuts) if mode_at(a) != 0)
        if 2 * not_normal > period:
            state = StaState.EXCLUDED
        elif counts[0] * interval_s >= fraction * period_s:
            state = StaState.VALID
        else:
            state = StaState.INVALID
        out.append(RefSta(counts, total / counts[0] if counts[0] else math.nan, state))
    return out


@dataclass
class Scenario:
    readings: list[tuple[int, float, int]]
    modes: list[tuple[int, int]]
    period_s: int
    interval_s: int
    n_periods: int
    fraction: Fraction

    @property
    def start(self) -> int:
        return T0

    @property
    def end(self) -> int:
        return T0 + self.n_periods * self.period_s * NS_PER_S

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ts = np.array([r[0] for r in self.readings], dtype=np.int64)
        vals = np.array([r[1] for r in self.readings], dtype=np.float64)
        status = np.array([r[2] for r in self.readings], dtype=np.int8)
        return ts, vals, status

    def compute(self, start: int | None = None, end: int | None = None) -> StaBatch:
        ts, vals, status = self.arrays()
        return short_term_averages(
            ts,
            vals,
            status,
            start_ns=self.start if start is None else start,
            end_ns=self.end if end is None else end,
            period_s=self.period_s,
            interval_s=self.interval_s,
            min_valid_fraction=float(self.fraction),
            mode_ts_ns=np.array([m[0] for m in self.modes], dtype=np.int64),
            mode_values=np.array([m[1] for m in self.modes], dtype=np.float64),
        )


@st.composite
def scenarios(draw: st.DrawFn, unique_times: bool = False) -> Scenario:
    period_s = draw(st.sampled_from([60, 120, 300]))
    interval_s = draw(st.sampled_from([5, 10, 15, 20]))
    n_periods = draw(st.integers(0, 5))
    span = period_s * NS_PER_S
    # times on a coarse grid (collisions → duplicates) plus some arbitrary nanoseconds
    offset = st.one_of(
        st.integers(-period_s, (n_periods + 1) * period_s).map(lambda s: s * NS_PER_S),
        st.integers(-span, (n_periods + 1) * span),
    )
    value = st.one_of(
        st.floats(-1e3, 1e4, allow_nan=False, allow_infinity=False), st.just(math.nan)
    )
    status = st.sampled_from([0, 0, 0, 0, 1, 2, 3])
    # a grid at the acquisition interval, thinned at a random density, so that valid, invalid
    # and excluded periods all occur; plus arbitrary extra readings (duplicates, odd times)
    rnd = random.Random(draw(st.integers(0, 2**32)))
    density = draw(st.sampled_from([0.3, 0.7, 0.9, 1.0]))
    readings = [
        (T0 + k * interval_s * NS_PER_S, rnd.uniform(0, 500), rnd.choice([0, 0, 0, 0, 0, 1, 2, 3]))
        for k in range(-period_s // interval_s, (n_periods + 1) * period_s // interval_s)
        if rnd.random() < density
    ]
    readings += draw(st.lists(st.tuples(offset.map(lambda o: T0 + o), value, status), max_size=30))
    readings = rnd.sample(readings, len(readings))
    if unique_times:
        seen: dict[int, tuple[int, float, int]] = {r[0]: r for r in readings}
        readings = list(seen.values())
    mode = st.sampled_from([0, 0, 1, 2, 3])
    modes = draw(st.lists(st.tuples(offset.map(lambda o: T0 + o), mode), max_size=4))
    fraction = draw(st.sampled_from([Fraction(2, 3), Fraction(1, 2), Fraction(3, 4), Fraction(1)]))
    return Scenario(readings, modes, period_s, interval_s, n_periods, fraction)


def assert_same_batch(a: StaBatch, b: StaBatch) -> None:
    assert a.period_s == b.period_s
    for field in (
        "start_ns",
        "n_valid",
        "n_maintenance",
        "n_malfunction",
        "n_calibration",
        "n_other_mode",
        "state",
    ):
        assert getattr(a, field).tolist() == getattr(b, field).tolist(), field
    np.testing.assert_array_equal(a.mean, b.mean)


@settings(max_examples=250, deadline=None)
@given(scenarios())
def test_matches_plain_loop_reference(sc: Scenario) -> None:
    batch = sc.compute()
    ref = reference_sta(
        sc.readings, sc.modes, sc.start, sc.end, sc.period_s, sc.interval_s, sc.fraction
    )
    assert len(batch) == len(ref)
    for i, r in enumerate(ref):
        c = batch.counts(i)
        assert [c.valid, c.maintenance, c.malfunction, c.calibration, c.other_mode] == r.counts
        assert batch.state_at(i) == r.state
        if math.isnan(r.mean):
            assert math.isnan(batch.mean[i])
        else:
            assert batch.mean[i] == pytest.approx(r.mean, rel=1e-12, abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(scenarios(unique_times=True), st.randoms(use_true_random=False))
def test_input_order_does_not_matter(sc: Scenario, rnd: random.Random) -> None:
    shuffled = Scenario(
        rnd.sample(sc.readings, len(sc.readings)),
        sc.modes,  # equal mode times are resolved by input order, like readings
        sc.period_s,
        sc.interval_s,
        sc.n_periods,
        sc.fraction,
    )
    assert_same_batch(sc.compute(), shuffled.compute())


@settings(max_examples=100, deadline=None)
@given(scenarios(), st.data())
def test_splitting_into_ranges_does_not_matter(sc: Scenario, data: st.DataObject) -> None:
    cut = T0 + data.draw(st.integers(0, sc.n_periods)) * sc.period_s * NS_PER_S
    parts = StaBatch.concat([sc.compute(end=cut), sc.compute(start=cut)])
    assert_same_batch(sc.compute(), parts)


@settings(max_examples=150, deadline=None)
@given(scenarios(), st.data())
def test_settled_totals_plus_the_rest_give_the_same_averages(
    sc: Scenario, data: st.DataObject
) -> None:
    """Live compliance folds the readings before a cut (any nanosecond) into totals, in
    several parts, and drops them: the averages over the rest plus the totals are those of
    all the readings (counts and states exactly; means to rounding of the sum)."""
    lo, hi = sc.start - sc.period_s * NS_PER_S, sc.end + sc.period_s * NS_PER_S
    cuts = sorted(data.draw(st.lists(st.integers(lo, hi), min_size=1, max_size=3)))
    ts, vals, status = sc.arrays()
    modes = (
        np.array([m[0] for m in sc.modes], dtype=np.int64),
        np.array([m[1] for m in sc.modes], dtype=np.float64),
    )
    carried: PeriodTotals | None = None
    for before, cut in zip([lo, *cuts], cuts, strict=False):
        part = (ts >= before) & (ts < cut)
        totals = period_totals(
            ts[part],
            vals[part],
            status[part],
            start_ns=sc.start,
            end_ns=sc.end,
            period_s=sc.period_s,
            mode_ts_ns=modes[0],
            mode_values=modes[1],
        )
        carried = totals if carried is None else carried.plus(totals)
    rest = ts >= cuts[-1]
    got = short_term_averages(
        ts[rest],
        vals[rest],
        status[rest],
        start_ns=sc.start,
        end_ns=sc.end,
        period_s=sc.period_s,
        interval_s=sc.interval_s,
        min_valid_fraction=float(sc.fraction),
        mode_ts_ns=modes[0],
        mode_values=modes[1],
        carried=carried,
    )
    want = sc.compute()
    for field in ("n_valid", "n_maintenance", "n_malfunction", "n_calibration", "n_other_mode"):
        assert getattr(got, field).tolist() == getattr(want, field).tolist(), field
    assert got.state.tolist() == want.state.tolist()
    np.testing.assert_allclose(got.mean, want.mean, rtol=1e-12, atol=1e-9)


def test_period_totals_refuse_other_alignment_and_keep_whole_periods() -> None:
    ts, vals, status = minute_readings(90)
    t = period_totals(ts, vals, status, start_ns=T0, end_ns=T0 + 2 * HOUR, period_s=3600)
    assert t.counts[:, 0].tolist() == [60, 30]
    assert len(t.before(T0 + HOUR)) == 1 and len(t.before(T0 + HOUR + 1)) == 2
    assert len(t.before(T0 - HOUR)) == 0
    other = period_totals(ts, vals, status, start_ns=T0, end_ns=T0 + HOUR, period_s=1800)
    with pytest.raises(ValueError, match="share their start and period"):
        t.plus(other)


@settings(max_examples=100, deadline=None)
@given(scenarios())
def test_state_codes_and_counts_are_consistent(sc: Scenario) -> None:
    batch = sc.compute()
    assert set(batch.state.tolist()) <= set(STA_STATE_CODES.values())
    ts, _, _ = sc.arrays()
    inside = {int(t) for t in ts if sc.start <= t < sc.end}
    assert sum(batch.counts(i).total for i in range(len(batch))) == len(inside)
    assert (np.isnan(batch.mean) == (batch.n_valid == 0)).all()


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.one_of(st.floats(-1e6, 1e6), st.just(math.nan)), max_size=30),
    st.floats(0, 1e4),
)
def test_validated_never_exceeds_measured(measured: list[float], ci: float) -> None:
    m = np.array(measured, dtype=np.float64)
    v = validated(m, ci)
    both = ~np.isnan(m)
    assert (v[both] <= m[both]).all()
    assert np.isnan(v[~both]).all()
