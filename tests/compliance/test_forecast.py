"""Daily-average forecast and pre-alarm (design; check C9) and expected STA per local day."""

from __future__ import annotations

import math
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.compliance.forecast import daily_forecast, expected_sta_per_day


def test_c9_remaining_allowance_is_270() -> None:
    """C9: 32 half-hours with validated mean 240, 48 expected, ELV 250 → allowance 270."""
    f = daily_forecast([240.0] * 32, elv_daily=250.0, n_expected=48)
    assert (f.n_done, f.n_expected) == (32, 48)
    assert f.validated_mean_so_far == 240.0
    assert f.remaining_allowance == 270.0
    assert f.projected_mean == 240.0  # continuing at the last value
    assert not f.prealarm
    assert "270.00" in f.reason


def test_c9_prealarm_when_the_latest_value_exceeds_the_allowance() -> None:
    values = [240.0] * 32
    at_limit = daily_forecast(values, elv_daily=250.0, n_expected=48, latest=270.0)
    assert at_limit.projected_mean == 250.0 and not at_limit.prealarm  # equal is within
    above = daily_forecast(values, elv_daily=250.0, n_expected=48, latest=275.0)
    assert above.prealarm
    assert above.projected_mean == pytest.approx((7680 + 275 * 16) / 48)
    assert "exceeds the remaining allowance 270.00" in above.reason
    assert "exceeds the ELV" in above.reason
    # the default "latest" is the last value of the day so far
    rising = daily_forecast([240.0] * 31 + [271.0], elv_daily=250.0, n_expected=48)
    assert rising.prealarm
    assert rising.remaining_allowance == pytest.approx((12000 - 240 * 31 - 271) / 16)


def test_allowance_already_negative() -> None:
    f = daily_forecast([320.0] * 40, elv_daily=250.0, n_expected=48, latest=0.0)
    assert f.remaining_allowance == pytest.approx(-100.0)
    assert f.prealarm
    assert "can no longer be met" in f.reason


def test_complete_day_projects_the_actual_mean() -> None:
    done = daily_forecast([240.0] * 24 + [262.0] * 24, elv_daily=250.0, n_expected=48)
    assert done.projected_mean == 251.0 and done.remaining_allowance is None
    assert done.prealarm and "day complete" in done.reason
    ok = daily_forecast([240.0] * 48, elv_daily=250.0, n_expected=48)
    assert not ok.prealarm and ok.projected_mean == 240.0


def test_no_value_yet_and_invalid_input() -> None:
    f = daily_forecast([], elv_daily=250.0, n_expected=48)
    assert (f.n_done, f.validated_mean_so_far, f.projected_mean) == (0, None, None)
    assert f.remaining_allowance == 250.0 and not f.prealarm
    nan_ignored = daily_forecast([240.0, math.nan, 260.0], elv_daily=250.0, n_expected=48)
    assert nan_ignored.n_done == 2 and nan_ignored.validated_mean_so_far == 250.0
    with pytest.raises(ValueError, match="expected"):
        daily_forecast([1.0] * 49, elv_daily=250.0, n_expected=48)
    with pytest.raises(ValueError, match="positive"):
        daily_forecast([], elv_daily=250.0, n_expected=0)


@pytest.mark.parametrize(
    ("day", "period_s", "expected"),
    [
        (date(2026, 3, 29), 1800, 46),
        (date(2026, 3, 29), 3600, 23),
        (date(2026, 10, 25), 1800, 50),
        (date(2026, 10, 25), 3600, 25),
        (date(2026, 6, 15), 1800, 48),
        (date(2026, 6, 15), 600, 144),
        (date(2026, 3, 29), 600, 138),
    ],
)
def test_expected_sta_per_day_in_vienna(day: date, period_s: int, expected: int) -> None:
    assert expected_sta_per_day(day, "Europe/Vienna", period_s) == expected


def test_expected_sta_in_a_half_hour_offset_zone() -> None:
    """India (+05:30): 24 epoch-aligned hours start within each local day (at hh:30)."""
    assert expected_sta_per_day(date(2026, 6, 15), "Asia/Kolkata", 3600) == 24
    with pytest.raises(ValueError, match="positive"):
        expected_sta_per_day(date(2026, 6, 15), "UTC", 0)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(-50, 600, allow_nan=False), max_size=47),
    st.floats(-50, 600, allow_nan=False),
    st.floats(10, 500),
)
def test_no_prealarm_means_continuing_at_latest_stays_within_the_elv(
    values: list[float], latest: float, elv: float
) -> None:
    f = daily_forecast(values, elv_daily=elv, n_expected=48, latest=latest)
    remaining = 48 - len(values)
    final_mean = (sum(values) + latest * remaining) / 48
    assert f.projected_mean == pytest.approx(final_mean, rel=1e-9, abs=1e-9)
    assert f.remaining_allowance is not None
    if not f.prealarm:
        assert final_mean <= elv * (1 + 1e-9)
        assert latest <= f.remaining_allowance * (1 + 1e-9) + 1e-9
    if final_mean > elv * (1 + 1e-9):
        assert f.prealarm
