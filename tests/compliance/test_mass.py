"""Mass emissions (EN 17255-1; rules A1 "Mass emissions", feature (b) #17).

Unvalidated concentration × flow, negatives clamped to 0, NaN kept as missing; loads summed per
local hour, date and year, checked on DST days and against a plain loop.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.compliance.mass import MassTotals, mass_flow_kg_h, mass_kg, mass_totals
from stream.model import NS_PER_S

FAST = settings(max_examples=100, deadline=None)
BERLIN = "Europe/Berlin"
HOUR_NS = 3_600 * NS_PER_S
HALF_HOUR_NS = HOUR_NS // 2


def ns(text: str, tz: str = BERLIN) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).timestamp()) * NS_PER_S


def test_mass_flow_is_conc_times_flow() -> None:
    # 200 mg/Nm³ × 150 000 Nm³/h = 30 kg/h
    assert mass_flow_kg_h(200.0, 150_000.0) == pytest.approx(30.0)
    assert type(mass_flow_kg_h(200.0, 150_000.0)) is float


@pytest.mark.parametrize(
    ("conc", "flow", "expected"),
    [
        (-3.0, 150_000.0, 0.0),  # negative concentration STA → 0 (EN 17255-1)
        (200.0, -10.0, 0.0),  # negative flow STA → 0
        (-3.0, -10.0, 0.0),
        (0.0, 150_000.0, 0.0),
        (math.nan, 150_000.0, math.nan),  # missing stays missing
        (200.0, math.nan, math.nan),
        (-3.0, math.nan, math.nan),  # missing wins over clamping: no silent zero load
    ],
)
def test_negatives_clamp_nan_stays(conc: float, flow: float, expected: float) -> None:
    got = mass_flow_kg_h(conc, flow)
    assert (math.isnan(got) and math.isnan(expected)) or got == expected


def test_mass_flow_vectorised_equals_scalar() -> None:
    conc = np.array([200.0, -1.0, np.nan, 55.5])
    flow = np.array([1e5, 1e5, 1e5, -2.0])
    got = mass_flow_kg_h(conc, flow)
    assert isinstance(got, np.ndarray)
    np.testing.assert_array_equal(
        got, [mass_flow_kg_h(float(c), float(f)) for c, f in zip(conc, flow, strict=True)]
    )


def test_mass_kg_per_half_hour() -> None:
    ts = np.array([0, HALF_HOUR_NS, 2 * HALF_HOUR_NS], dtype=np.int64)
    kg = mass_kg(ts, np.array([200.0, -5.0, np.nan]), np.full(3, 150_000.0), 1_800)
    assert kg[0] == pytest.approx(15.0) and kg[1] == 0.0 and math.isnan(kg[2])


def test_mass_kg_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="equal-length"):
        mass_kg(np.zeros(2, np.int64), np.zeros(3), np.zeros(2), 1_800)
    with pytest.raises(ValueError, match="period_s"):
        mass_kg(np.zeros(2, np.int64), np.zeros(2), np.zeros(2), 0)


def test_totals_on_the_autumn_dst_day_have_25_hours() -> None:
    # 2024-10-27 in Berlin: 25 h, the hour 02:00–03:00 happens twice
    start = ns("2024-10-27T00:00")
    ts = start + np.arange(50, dtype=np.int64) * HALF_HOUR_NS
    totals = mass_totals(ts, np.ones(50), BERLIN)
    assert totals.daily_kg == {date(2024, 10, 27): 50.0}
    assert len(totals.hourly_kg) == 25
    assert set(totals.hourly_kg.values()) == {2.0}
    assert (totals.total_kg, totals.n_periods, totals.n_missing) == (50.0, 50, 0)


def test_totals_on_the_spring_dst_day_have_23_hours() -> None:
    start = ns("2024-03-31T00:00")
    ts = start + np.arange(48, dtype=np.int64) * HALF_HOUR_NS  # 24 h of STA: 23 h + next day
    totals = mass_totals(ts, np.ones(48), BERLIN)
    assert totals.daily_kg == {date(2024, 3, 31): 46.0, date(2024, 4, 1): 2.0}
    assert len(totals.hourly_kg) == 24


def test_totals_use_the_local_year_and_count_missing_periods() -> None:
    ts = np.array(
        [ns("2024-12-31T23:30"), ns("2025-01-01T00:00"), ns("2025-01-01T00:30")], dtype=np.int64
    )
    # 23:30 UTC on 31 Dec is 00:30 on 1 Jan in Berlin
    ts_utc_new_year = ns("2024-12-31T23:30", "UTC")
    totals = mass_totals(np.append(ts, ts_utc_new_year), np.array([1.0, np.nan, 2.0, 4.0]), BERLIN)
    assert totals.yearly_kg == {2024: 1.0, 2025: 6.0}
    assert totals.daily_kg == {date(2024, 12, 31): 1.0, date(2025, 1, 1): 6.0}
    assert totals.hourly_kg == {ns("2024-12-31T23:00"): 1.0, ns("2025-01-01T00:00"): 6.0}
    assert (totals.n_missing, totals.missing_daily) == (1, {date(2025, 1, 1): 1})


def test_half_hour_offset_zone_groups_by_local_hour() -> None:
    # Asia/Kolkata is UTC+05:30: local hours start at :30 UTC
    ts = np.array([ns("2024-06-01T10:00", "Asia/Kolkata"), ns("2024-06-01T10:45", "Asia/Kolkata")])
    totals = mass_totals(ts, np.array([1.0, 2.0]), "Asia/Kolkata")
    assert totals.hourly_kg == {ns("2024-06-01T10:00", "Asia/Kolkata"): 3.0}


def test_empty_and_all_missing() -> None:
    assert mass_totals(np.array([], np.int64), np.array([]), BERLIN) == MassTotals()
    totals = mass_totals(np.array([0, HOUR_NS], np.int64), np.array([np.nan, np.nan]), "UTC")
    assert totals.hourly_kg == {} and totals.total_kg == 0.0
    assert totals.missing_daily == {date(1970, 1, 1): 2}


# --- property against a plain loop -----------------------------------------------------------


@FAST
@given(
    st.integers(min_value=1_420_070_400 * NS_PER_S, max_value=1_900_000_000 * NS_PER_S),
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=400 * 24 * 2),  # half-hour index, > 1 year
            st.floats(min_value=-50.0, max_value=800.0) | st.just(math.nan),
            st.floats(min_value=-1e3, max_value=5e5) | st.just(math.nan),
        ),
        max_size=100,
    ),
    st.sampled_from(["UTC", BERLIN, "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]),
)
def test_totals_equal_plain_loop(base: int, rows: list[tuple[int, float, float]], tz: str) -> None:
    ts = np.array([base + i * HALF_HOUR_NS for i, _, _ in rows], dtype=np.int64)
    conc = np.array([c for _, c, _ in rows], dtype=np.float64)
    flow = np.array([f for _, _, f in rows], dtype=np.float64)
    totals = mass_totals(ts, mass_kg(ts, conc, flow, 1_800), tz)

    zone = ZoneInfo(tz)
    hourly: dict[int, float] = {}
    daily: dict[date, float] = {}
    yearly: dict[int, float] = {}
    missing = 0
    for t, c, f in zip(ts.tolist(), conc.tolist(), flow.tolist(), strict=True):
        if math.isnan(c) or math.isnan(f):
            missing += 1
            continue
        kg = max(c, 0.0) * max(f, 0.0) / 1e6 * 0.5
        local = datetime.fromtimestamp(t // NS_PER_S, zone)
        hour_start = t - (local.minute * 60 + local.second) * NS_PER_S - t % NS_PER_S
        hourly[hour_start] = hourly.get(hour_start, 0.0) + kg
        daily[local.date()] = daily.get(local.date(), 0.0) + kg
        yearly[local.year] = yearly.get(local.year, 0.0) + kg

    assert totals.n_periods == len(rows) and totals.n_missing == missing
    assert totals.hourly_kg == pytest.approx(hourly)
    assert totals.daily_kg == pytest.approx(daily)
    assert totals.yearly_kg == pytest.approx(yearly)
    assert totals.total_kg == pytest.approx(sum(yearly.values()))
    assert list(totals.hourly_kg) == sorted(totals.hourly_kg)  # time order
