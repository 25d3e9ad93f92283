"""Regime criteria: IED Annex V Part 4 (LCP) and Annex VI Part 8 (WI); checks C3, C5, C6."""

from __future__ import annotations

from datetime import date, timedelta
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.compliance.averaging import short_term_averages, validated
from stream.compliance.longterm import (
    DailyRecord,
    PeriodAverage,
    daily_records,
    local_day_bounds_ns,
)
from stream.compliance.regimes import (
    CriterionResult,
    lcp_criteria,
    overall,
    rolling_window_worst,
    wi_criteria,
)
from stream.model import NS_PER_S

T0 = 1_767_225_600 * NS_PER_S  # 2026-01-01T00:00Z
TEN_MIN = 600 * NS_PER_S


def day(validated_mean: float | None, *, valid: bool = True, d: int = 0) -> DailyRecord:
    return DailyRecord(
        date=date(2026, 1, 1) + timedelta(days=d),
        valid=valid,
        valid_hours=24.0 if valid else 2.0,
        measured_mean=None if validated_mean is None else validated_mean + 50,
        validated_mean=validated_mean,
        n_valid_sta=24,
        n_invalid_sta=0,
        n_excluded_sta=0,
        invalid_day=False,
    )


def month(validated_mean: float | None, *, valid: bool = True) -> PeriodAverage:
    return PeriodAverage(
        date(2026, 1, 1), date(2026, 2, 1), validated_mean, validated_mean, 700, 0.94, valid
    )


def by_name(results: list[CriterionResult]) -> dict[str, CriterionResult]:
    return {r.name: r for r in results}


# ---------------------------------------------------------------- LCP


def hourly(n: int, n_over: int, over: float = 510.0, under: float = 240.0) -> np.ndarray:
    return np.array([under] * (n - n_over) + [over] * n_over)


@pytest.mark.parametrize(("n_over", "passed"), [(400, True), (401, False)])
def test_c5_hourly_200_percent_rule_is_a_count(n_over: int, passed: bool) -> None:
    """C5: N = 8,000, ELV 250: at most 400 hours above 500 mg/Nm³."""
    [c] = lcp_criteria(
        elv_monthly=None,
        elv_daily=None,
        elv_hourly_basis=250.0,
        monthly=[],
        daily=[],
        hourly_validated=hourly(8000, n_over),
    )
    assert c.name == "lcp_hourly"
    assert (c.passed, c.n, c.count, c.allowed, c.limit, c.worst) == (
        passed,
        8000,
        n_over,
        400.0,
        500.0,
        510.0,
    )


def test_c5_values_at_the_limit_comply_and_nan_hours_are_ignored() -> None:
    values = np.concatenate((hourly(8000, 400), [500.0] * 50, [np.nan] * 100))
    [c] = lcp_criteria(
        elv_monthly=None,
        elv_daily=None,
        elv_hourly_basis=250.0,
        monthly=[],
        daily=[],
        hourly_validated=values,
    )
    assert c.passed and c.n == 8050 and c.count == 400


def test_c3_validated_daily_average_passes_110_percent() -> None:
    """C3 through the chain: measured mean 282.38 is above the ELV, validated 232.38 ≤ 275."""
    d0 = date(2026, 6, 15)
    start, end = local_day_bounds_ns(d0, "Europe/Vienna")
    ts = start + np.arange(1440, dtype=np.int64) * 60 * NS_PER_S
    hour = np.arange(1440) // 60
    sta = short_term_averages(
        ts,
        np.where(hour == 23, 330.0, 280.0),
        np.where(hour < 3, 1, 0),
        start_ns=start,
        end_ns=end,
        period_s=3600,
        interval_s=60,
    )
    recs = daily_records(
        sta, sta.mean, validated(sta.mean, 50.0), tz="Europe/Vienna", max_invalid_sta_per_day=3
    )
    [c] = lcp_criteria(
        elv_monthly=None,
        elv_daily=250.0,
        elv_hourly_basis=None,
        monthly=[],
        daily=recs,
        hourly_validated=[],
    )
    assert c.name == "lcp_daily" and c.passed
    assert c.limit == pytest.approx(275.0)
    assert c.worst == pytest.approx(232.38, abs=0.005)
    # the naive check on measured values would have failed
    assert recs[0].measured_mean is not None and recs[0].measured_mean > 275.0


def test_lcp_daily_and_monthly_rules_use_valid_averages_only() -> None:
    daily = [day(270.0), day(280.0, valid=False), day(None, valid=False, d=2)]
    monthly = [month(249.0), month(300.0, valid=False), month(None, valid=False)]
    r = by_name(
        lcp_criteria(
            elv_monthly=250.0,
            elv_daily=250.0,
            elv_hourly_basis=250.0,
            monthly=monthly,
            daily=daily,
            hourly_validated=[],
        )
    )
    assert list(r) == ["lcp_monthly", "lcp_daily", "lcp_hourly"]
    assert r["lcp_monthly"].passed and r["lcp_monthly"].n == 1
    assert r["lcp_daily"].passed and r["lcp_daily"].n == 1 and r["lcp_daily"].worst == 270.0
    assert r["lcp_hourly"].passed and r["lcp_hourly"].n == 0 and r["lcp_hourly"].worst is None
    over = lcp_criteria(
        elv_monthly=250.0,
        elv_daily=250.0,
        elv_hourly_basis=None,
        monthly=[month(250.5)],
        daily=[day(276.0)],
        hourly_validated=[],
    )
    assert [c.passed for c in over] == [False, False]
    assert not overall(over)
    coal = lcp_criteria(
        elv_monthly=None,
        elv_daily=250.0,
        elv_hourly_basis=None,
        monthly=[],
        daily=[day(370.0)],
        hourly_validated=[],
        daily_factor=1.5,
    )
    assert coal[0].passed and coal[0].limit == pytest.approx(375.0)


def test_criteria_without_an_elv_are_not_listed() -> None:
    assert (
        lcp_criteria(
            elv_monthly=None,
            elv_daily=None,
            elv_hourly_basis=None,
            monthly=[month(1e9)],
            daily=[day(1e9)],
            hourly_validated=[1e9],
        )
        == []
    )
    assert overall([])


# ---------------------------------------------------------------- WI


@pytest.mark.parametrize(("n_over", "passed"), [(480, True), (481, False)])
def test_c6_half_hour_column_b(n_over: int, passed: bool) -> None:
    """C6: 16,000 valid half-hours, SO2 column B 50: at most 480 above."""
    values = np.array([45.0] * (16000 - n_over) + [55.0] * n_over)
    [c] = wi_criteria(
        pollutant="so2",
        elv_daily=None,
        elv_half_hour_a=None,
        elv_half_hour_b=50.0,
        daily=[],
        half_hourly_validated=values,
    )
    assert (c.name, c.passed, c.count, c.allowed) == ("wi_half_hour_b", passed, n_over, 480.0)


def test_c6_half_hour_column_a_single_exceedance_fails() -> None:
    values = np.array([45.0] * 15999 + [200.5])
    r = by_name(
        wi_criteria(
            pollutant="so2",
            elv_daily=50.0,
            elv_half_hour_a=200.0,
            elv_half_hour_b=50.0,
            daily=[day(49.0)],
            half_hourly_validated=values,
        )
    )
    assert r["wi_half_hour_a"].count == 1 and not r["wi_half_hour_a"].passed
    assert r["wi_half_hour_b"].passed  # one value above 50 of 16,000
    assert r["wi_daily"].passed
    assert not overall(r.values())


def test_wi_daily_rule_none_above_but_co_97_percent() -> None:
    days = [day(45.0, d=i) for i in range(97)] + [day(60.0, d=97 + i) for i in range(3)]
    [so2] = wi_criteria(
        pollutant="so2",
        elv_daily=50.0,
        elv_half_hour_a=None,
        elv_half_hour_b=None,
        daily=days,
        half_hourly_validated=[],
    )
    assert so2.name == "wi_daily" and not so2.passed and so2.count == 3
    [co] = wi_criteria(
        pollutant="CO",
        elv_daily=50.0,
        elv_half_hour_a=None,
        elv_half_hour_b=None,
        daily=days,
        half_hourly_validated=[],
    )
    assert co.name == "wi_daily_co" and co.passed and co.allowed == 3.0
    [co4] = wi_criteria(
        pollutant="co",
        elv_daily=50.0,
        elv_half_hour_a=None,
        elv_half_hour_b=None,
        daily=[*days[1:], day(61.0, d=200)],
        half_hourly_validated=[],
    )
    assert not co4.passed and co4.count == 4


@pytest.mark.parametrize(("n_over", "passed"), [(7, True), (8, False)])
def test_c6_co_ten_minute_values_in_24_hours(n_over: int, passed: bool) -> None:
    """C6: 144 ten-minute values in 24 h: at most 7 above 150 mg/Nm³ (95 %)."""
    starts = T0 + np.arange(144, dtype=np.int64) * TEN_MIN
    values = np.array([100.0] * (144 - n_over) + [160.0] * n_over)
    [c] = wi_criteria(
        pollutant="co",
        elv_daily=None,
        elv_half_hour_a=None,
        elv_half_hour_b=None,
        daily=[],
        half_hourly_validated=[],
        co_ten_minute=(starts, values),
        elv_co_ten_minute=150.0,
    )
    assert (c.name, c.passed, c.n, c.count, c.worst) == (
        "wi_co_ten_minute",
        passed,
        144,
        n_over,
        160.0,
    )
    assert c.allowed == pytest.approx(7.2)


def test_co_windows_roll_across_midnight_and_ignore_truncated_edges() -> None:
    starts = T0 + np.arange(3 * 144, dtype=np.int64) * TEN_MIN
    # 8 exceedances that no calendar day holds more than 4 of, but one 24 h window holds all
    values = np.full(3 * 144, 100.0)
    values[140:148] = 160.0
    assert not rolling_window_worst(starts, values, limit=150.0).passed
    values[140:148] = 100.0
    values[-7:] = 160.0  # 7 at the very end: judged in full windows, not as "7 of 7"
    r = rolling_window_worst(starts, values, limit=150.0)
    assert r.passed and r.n == 144 and r.count == 7
    values[-8:] = 160.0
    assert not rolling_window_worst(starts, values, limit=150.0).passed


def test_co_rolling_window_edge_cases() -> None:
    empty = rolling_window_worst([], [], limit=150.0)
    assert empty.passed and empty.n == 0 and empty.worst is None
    # shorter than a day: evaluated as one window; NaN values are not valid values
    starts = T0 + np.arange(21, dtype=np.int64) * TEN_MIN
    values = np.array([160.0] + [100.0] * 19 + [np.nan])
    r = rolling_window_worst(starts, values, limit=150.0)
    assert (r.passed, r.n, r.count, r.allowed) == (True, 20, 1, 1.0)
    values[1] = 160.0
    assert not rolling_window_worst(starts, values, limit=150.0).passed
    values[:2] = 100.0
    values[-2] = 160.0  # late in the span, still judged as 1 of the 20 values of the one window
    assert rolling_window_worst(starts, values, limit=150.0).passed
    with pytest.raises(ValueError, match="equal length"):
        rolling_window_worst(starts, values[:3], limit=150.0)


def brute_force_windows(
    slots: list[int], over: list[bool], window_slots: int, fraction: Fraction
) -> tuple[bool, int]:
    """Every window position on the 10-min grid inside the span; returns (passed, worst margin)."""
    first, last_end = min(slots), max(slots) + 1
    length = min(window_slots, last_end - first)
    margins = []
    for t in range(first, last_end - length + 1):
        inside = [o for s, o in zip(slots, over, strict=True) if t <= s < t + length]
        count = sum(inside)
        margins.append(count * fraction.denominator - fraction.numerator * len(inside))
    return max(margins) <= 0, max(margins)


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(st.integers(0, 60), st.booleans(), min_size=1, max_size=40),
    st.integers(1, 12),
    st.sampled_from([Fraction(1, 20), Fraction(1, 5), Fraction(1, 3)]),
)
def test_co_rolling_windows_match_brute_force(
    slot_over: dict[int, bool], window_slots: int, fraction: Fraction
) -> None:
    slots = sorted(slot_over)
    over = [slot_over[s] for s in slots]
    starts = T0 + np.array(slots, dtype=np.int64) * TEN_MIN
    values = np.where(over, 160.0, 100.0)
    r = rolling_window_worst(
        starts, values, limit=150.0, fraction=float(fraction), window_s=window_slots * 600
    )
    passed, worst_margin = brute_force_windows(slots, over, window_slots, fraction)
    assert r.passed == passed
    assert r.count * fraction.denominator - fraction.numerator * r.n == worst_margin
