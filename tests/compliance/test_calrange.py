"""Valid calibration range and S10 counter (EN 14181:2014 §6.5, BEP Anhang B; check C10).

Also the local-calendar helpers: ISO weeks and UTC offsets across DST changes, checked against
plain ``datetime``/``zoneinfo`` arithmetic in zones with awkward rules.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.compliance.calrange import (
    CalibrationRangeCounter,
    WeekResult,
    iso_week_start_ns,
    local_day_index,
    local_midnight_ns,
    threshold,
    utc_offsets_ns,
    week_increment,
    weekly_results,
)
from stream.model import NS_PER_S

FAST = settings(max_examples=100, deadline=None)
BERLIN = "Europe/Berlin"
HALF_HOUR_NS = 1_800 * NS_PER_S
HOUR_NS = 3_600 * NS_PER_S
# zones with DST, half-hour offsets, a 30-min DST shift and DST changes at midnight
ZONES = [
    "UTC",
    BERLIN,
    "America/New_York",
    "Asia/Kolkata",
    "America/St_Johns",
    "Australia/Lord_Howe",
    "America/Santiago",
    "Pacific/Auckland",
]
# 2015-01-01 .. 2030-12-31 in ns
timestamps = st.integers(min_value=1_420_070_400 * NS_PER_S, max_value=1_924_905_600 * NS_PER_S)


def ns(text: str, tz: str = BERLIN) -> int:
    """Epoch ns of a local wall-clock time such as ``2024-01-08T00:00``."""
    local = datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz))
    return int(local.timestamp()) * NS_PER_S


def one_week(n_above: int, *, value_above: float = 500.0) -> tuple[np.ndarray, np.ndarray]:
    """336 half-hour STA starting Monday 2024-01-08 00:00 CET, ``n_above`` of them above 495."""
    ts = ns("2024-01-08T00:00") + np.arange(336, dtype=np.int64) * HALF_HOUR_NS
    values = np.where(np.arange(336) < n_above, value_above, 300.0)
    return ts, values


def test_c10_threshold() -> None:
    assert threshold(450.0) == 495.0  # range 0–450 → 495
    with pytest.raises(ValueError, match="positive"):
        threshold(0.0)


@pytest.mark.parametrize(
    ("n_above", "percent", "increment"),
    [
        (17, 5.06, 1),  # C10: 17 of 336 = 5.06 % → S10 +1
        (135, 40.18, 6),  # C10: 135 of 336 = 40.18 % → S10 +6
        (16, 4.76, 0),
        (134, 39.88, 1),
        (0, 0.0, 0),
    ],
)
def test_c10_weekly_share(n_above: int, percent: float, increment: int) -> None:
    ts, values = one_week(n_above)
    [week] = weekly_results(ts, values, np.ones(336, dtype=bool), 450.0, BERLIN)
    assert week.week_start_ns == ns("2024-01-08T00:00")
    assert (week.n_valid, week.n_outside) == (336, n_above)
    assert round(100 * week.fraction_outside, 2) == percent
    assert week.increment == increment


def test_value_on_threshold_is_inside_and_invalid_or_nan_sta_are_ignored() -> None:
    ts, values = one_week(17, value_above=495.0)
    [week] = weekly_results(ts, values, np.ones(336, dtype=bool), 450.0, BERLIN)
    assert week.n_outside == 0
    ts, values = one_week(17)
    valid = np.ones(336, dtype=bool)
    valid[:10] = False  # 10 of the 17 high values are invalid STA
    values[20] = np.nan  # a valid flag with no value is not a valid STA
    [week] = weekly_results(ts, values, valid, 450.0, BERLIN)
    assert (week.n_valid, week.n_outside, week.increment) == (325, 7, 0)


def test_weeks_are_local_monday_to_sunday() -> None:
    ts = np.array(
        [ns("2024-01-07T23:59:59"), ns("2024-01-08T00:00"), ns("2024-01-14T23:30")],
        dtype=np.int64,
    )
    weeks = weekly_results(ts, np.array([500.0, 1.0, 500.0]), np.ones(3, bool), 450.0, BERLIN)
    assert [w.week_start_ns for w in weeks] == [ns("2024-01-01T00:00"), ns("2024-01-08T00:00")]
    assert [(w.n_valid, w.n_outside) for w in weeks] == [(1, 1), (2, 1)]


def test_week_without_valid_sta_is_reported_empty() -> None:
    ts = np.array([ns("2024-01-08T10:00")], dtype=np.int64)
    [week] = weekly_results(ts, np.array([900.0]), np.zeros(1, bool), 450.0, BERLIN)
    assert week == WeekResult(ns("2024-01-08T00:00"), 0, 0, 0.0, 0)
    assert (
        weekly_results(np.array([], np.int64), np.array([]), np.array([], bool), 450.0, BERLIN)
        == []
    )


def test_weekly_results_rejects_mismatched_arrays() -> None:
    with pytest.raises(ValueError, match="equal length"):
        weekly_results(np.zeros(2, np.int64), np.zeros(3), np.ones(2, bool), 450.0, BERLIN)


def test_dst_weeks_have_167_and_169_hours() -> None:
    spring = iso_week_start_ns(ns("2024-04-01T12:00"), BERLIN) - iso_week_start_ns(
        ns("2024-03-31T12:00"), BERLIN
    )
    autumn = iso_week_start_ns(ns("2024-10-28T12:00"), BERLIN) - iso_week_start_ns(
        ns("2024-10-27T12:00"), BERLIN
    )
    assert (spring // HOUR_NS, autumn // HOUR_NS) == (167, 169)


def test_iso_week_start_scalar_and_array_kinds() -> None:
    t = ns("2024-03-31T23:00")  # Sunday night after the spring change
    assert iso_week_start_ns(t, BERLIN) == ns("2024-03-25T00:00")
    assert type(iso_week_start_ns(t, BERLIN)) is int
    out = iso_week_start_ns(np.array([t, t + HOUR_NS], dtype=np.int64), BERLIN)
    assert out.tolist() == [ns("2024-03-25T00:00"), ns("2024-04-01T00:00")]


def test_midnight_in_a_dst_gap_is_the_transition_instant() -> None:
    # Chile moved clocks from 2024-09-08 00:00 to 01:00 (−04 → −03): the day starts at 04:00 UTC
    start = local_midnight_ns(date(2024, 9, 8), "America/Santiago")
    assert start == int(datetime(2024, 9, 8, 4, tzinfo=UTC).timestamp()) * NS_PER_S
    offsets = utc_offsets_ns(
        np.array([start - NS_PER_S, start], dtype=np.int64), "America/Santiago"
    )
    assert (offsets // HOUR_NS).tolist() == [-4, -3]


# --- counter -----------------------------------------------------------------------------


def week(i: int, fraction: float) -> WeekResult:
    start = ns("2024-01-01T00:00") + i * 7 * 24 * HOUR_NS
    n_valid = 336
    return WeekResult(start, n_valid, round(fraction * n_valid), fraction, week_increment(fraction))


def test_c10_new_qal2_after_more_than_five_weeks_over_5pct() -> None:
    counter = CalibrationRangeCounter(BERLIN)
    for i in range(5):
        events = counter.add(week(i, 0.0506))
        assert len(events) == 1 and events[0].endswith(f"S10 +1 = {i + 1}")
    assert counter.add(week(5, 0.01)) == []  # a quiet week counts nothing
    assert (counter.s10, counter.weeks_over_5pct, counter.new_qal2_required) == (5, 5, False)
    events = counter.add(week(6, 0.10))
    assert counter.s10 == 6 and counter.weeks_over_5pct == 6 and counter.new_qal2_required
    assert events[1].startswith("new QAL2 required: 6 weeks with more than 5 %")
    assert len(counter.add(week(7, 0.2))) == 1  # the QAL2 event is not repeated
    counter.reset()
    assert (counter.s10, counter.weeks_over_5pct, counter.new_qal2_required) == (0, 0, False)


def test_c10_one_week_over_40pct_requires_new_qal2() -> None:
    counter = CalibrationRangeCounter(BERLIN)
    events = counter.add(week(0, 135 / 336))
    assert events[0] == (
        "calibration range: week of 2024-01-01: 135/336 valid STA (40.18 %) outside → S10 +6 = 6"
    )
    assert "more than 40 %" in events[1]
    assert (counter.s10, counter.weeks_over_40pct, counter.new_qal2_required) == (6, 1, True)


def test_counter_rejects_repeated_or_inconsistent_weeks() -> None:
    counter = CalibrationRangeCounter()
    counter.add(week(3, 0.1))
    with pytest.raises(ValueError, match="not after"):
        counter.add(week(3, 0.1))
    with pytest.raises(ValueError, match="inconsistent"):
        counter.add(WeekResult(week(4, 0.1).week_start_ns, 336, 34, 0.1, 6))


# --- properties against plain datetime references ----------------------------------------


def ref_offset_s(t_ns: int, tz: str) -> int:
    offset = datetime.fromtimestamp(t_ns // NS_PER_S, ZoneInfo(tz)).utcoffset()
    assert offset is not None
    return int(offset.total_seconds())


def ref_week_start(t_ns: int, tz: str) -> int:
    zone = ZoneInfo(tz)
    local = datetime.fromtimestamp(t_ns // NS_PER_S, zone)
    monday = local.date() - timedelta(days=local.weekday())
    midnight = datetime(monday.year, monday.month, monday.day, tzinfo=zone)
    return int(midnight.timestamp()) * NS_PER_S


@FAST
@given(st.lists(timestamps, min_size=1, max_size=30), st.sampled_from(ZONES))
def test_calendar_helpers_equal_datetime_reference(ts: list[int], tz: str) -> None:
    arr = np.array(ts, dtype=np.int64)
    assert (utc_offsets_ns(arr, tz) // NS_PER_S).tolist() == [ref_offset_s(t, tz) for t in ts]
    days = [datetime.fromtimestamp(t // NS_PER_S, ZoneInfo(tz)).date() for t in ts]
    assert local_day_index(arr, tz).tolist() == [(d - date(1970, 1, 1)).days for d in days]
    starts = iso_week_start_ns(arr, tz)
    assert starts.tolist() == [ref_week_start(t, tz) for t in ts]
    assert [iso_week_start_ns(t, tz) for t in ts] == starts.tolist()
    assert all(
        0 <= t - s < (7 * 24 + 1) * HOUR_NS for t, s in zip(ts, starts.tolist(), strict=True)
    )


def transition_days(tz: str, years: range) -> list[int]:
    """UTC-day start (epoch s) of every day whose offset changes, found with plain zoneinfo."""
    first = int(datetime(years.start, 1, 1, tzinfo=UTC).timestamp())
    last = int(datetime(years.stop, 1, 1, tzinfo=UTC).timestamp())
    return [
        day
        for day in range(first, last, 86_400)
        if ref_offset_s(day * NS_PER_S, tz) != ref_offset_s((day + 86_400) * NS_PER_S, tz)
    ]


@pytest.mark.parametrize("tz", [z for z in ZONES if z not in ("UTC", "Asia/Kolkata")])
def test_offsets_exact_to_the_second_around_transitions(tz: str) -> None:
    days = transition_days(tz, range(2024, 2026))
    assert len(days) == 4  # two changes a year in every zone with DST
    secs: list[int] = []
    for day in days:
        every_7_min = range(day, day + 86_400, 420)
        boundary = next(
            s
            for s in range(day, day + 86_400)
            if ref_offset_s(s * NS_PER_S, tz) != ref_offset_s(day * NS_PER_S, tz)
        )
        secs += [*every_7_min, boundary - 1, boundary, boundary + 1]
    arr = np.array(secs, dtype=np.int64) * NS_PER_S
    expected = [ref_offset_s(s * NS_PER_S, tz) for s in secs]
    assert (utc_offsets_ns(arr, tz) // NS_PER_S).tolist() == expected
    # one nanosecond before the change still has the old offset
    before = np.array([(s * NS_PER_S) - 1 for s in secs], dtype=np.int64)
    assert (utc_offsets_ns(before, tz) // NS_PER_S).tolist() == [
        ref_offset_s(s * NS_PER_S - 1, tz) for s in secs
    ]


@FAST
@given(
    timestamps,
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=60 * 24 * HOUR_NS),  # within ~2 months
            st.floats(min_value=0.0, max_value=1_000.0) | st.just(np.nan),
            st.booleans(),
        ),
        max_size=120,
    ),
    st.sampled_from([100.0, 450.0, 800.0]),
    st.sampled_from(ZONES),
)
def test_weekly_counter_equals_plain_grouping(
    base: int, offsets: list[tuple[int, float, bool]], upper: float, tz: str
) -> None:
    rows = [(base + dt, v, ok) for dt, v, ok in offsets]
    ts = np.array([r[0] for r in rows], dtype=np.int64)
    values = np.array([r[1] for r in rows], dtype=np.float64)
    valid = np.array([r[2] for r in rows], dtype=bool)
    got = weekly_results(ts, values, valid, upper, tz)

    groups: dict[int, list[tuple[float, bool]]] = {}
    for t, v, ok in rows:
        groups.setdefault(ref_week_start(t, tz), []).append((v, ok))
    expected = []
    for start in sorted(groups):
        usable = [v for v, ok in groups[start] if ok and not math.isnan(v)]
        outside = sum(1 for v in usable if v > {100.0: 110.0, 450.0: 495.0, 800.0: 880.0}[upper])
        fraction = outside / len(usable) if usable else 0.0
        inc = 6 if fraction > 0.40 else 1 if fraction > 0.05 else 0
        expected.append(WeekResult(start, len(usable), outside, fraction, inc))
    assert got == expected

    counter = CalibrationRangeCounter(tz)
    for w in got:
        counter.add(w)
    assert counter.s10 == sum(w.increment for w in expected)
    assert counter.new_qal2_required == (
        sum(1 for w in expected if w.increment) > 5 or any(w.increment == 6 for w in expected)
    )
