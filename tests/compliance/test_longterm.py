"""Daily, monthly and yearly averages and the invalid-day rules (EN 17255-1; IED; C3, C4)."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.compliance.averaging import (
    StaBatch,
    confidence_interval,
    short_term_averages,
    validated,
)
from stream.compliance.longterm import (
    DailyRecord,
    daily_records,
    invalid_day_events,
    local_day_bounds_ns,
    monthly_averages,
    yearly_averages,
)
from stream.model import NS_PER_S

TZ = "Europe/Vienna"
ZONE = ZoneInfo(TZ)
HOUR = 3600 * NS_PER_S
CI = 50.0  # C3: 20 % of the NOx ELV 250

VALID, INVALID, EXCLUDED = 0, 1, 2


def day_start(day: date) -> int:
    return local_day_bounds_ns(day, TZ)[0]


def hourly_days(days: list[tuple[date, list[float], list[int]]]) -> StaBatch:
    """An hourly STA batch from (day, values, states) tuples, hour by hour from local midnight."""
    starts: list[int] = []
    means: list[float] = []
    states: list[int] = []
    for day, values, codes in days:
        s0 = day_start(day)
        starts += [s0 + h * HOUR for h in range(len(values))]
        means += values
        states += codes
    return StaBatch.from_counts(start_ns=starts, mean=means, state=states, period_s=3600)


def c3_day(
    day: date, n_invalid: int = 3, high: float = 330.0
) -> tuple[date, list[float], list[int]]:
    values = [math.nan] * n_invalid + [280.0] * (23 - n_invalid) + [high]
    return day, values, [INVALID] * n_invalid + [VALID] * (24 - n_invalid)


def records_of(batch: StaBatch, *, max_invalid: int = 3) -> list[DailyRecord]:
    return daily_records(
        batch, batch.mean, validated(batch.mean, CI), tz=TZ, max_invalid_sta_per_day=max_invalid
    )


# ---------------------------------------------------------------- C3 / C4


def test_c3_through_the_whole_chain() -> None:
    """C3 from minute readings: 3 hours in maintenance, 20 at 280, 1 at 330 → 282.38 / 232.38."""
    day = date(2026, 6, 15)
    start, end = local_day_bounds_ns(day, TZ)
    ts = start + np.arange(24 * 60, dtype=np.int64) * 60 * NS_PER_S
    hour = np.arange(24 * 60) // 60
    values = np.where(hour == 23, 330.0, 280.0)
    status = np.where(hour < 3, 1, 0).astype(np.int8)  # maintenance
    sta = short_term_averages(
        ts, values, status, start_ns=start, end_ns=end, period_s=3600, interval_s=60
    )
    ci = confidence_interval("lcp", "nox", 250.0)
    [rec] = daily_records(sta, sta.mean, validated(sta.mean, ci), tz=TZ, max_invalid_sta_per_day=3)
    assert rec.date == day
    assert (rec.n_valid_sta, rec.n_invalid_sta, rec.n_excluded_sta) == (21, 3, 0)
    assert round(rec.measured_mean or 0, 2) == 282.38
    assert round(rec.validated_mean or 0, 2) == 232.38
    assert rec.valid and not rec.invalid_day
    assert rec.valid_hours == 21.0


def test_c4_fourth_invalid_hour_invalidates_the_day_and_keeps_it_out_of_the_month() -> None:
    normal = [(date(2026, 6, d), [200.0] * 24, [VALID] * 24) for d in range(1, 11)]
    ok = hourly_days([*normal, c3_day(date(2026, 6, 11), n_invalid=3, high=900.0)])
    bad = hourly_days([*normal, c3_day(date(2026, 6, 11), n_invalid=4, high=900.0)])

    ok_rec, bad_rec = records_of(ok)[-1], records_of(bad)[-1]
    assert ok_rec.valid and not ok_rec.invalid_day
    assert bad_rec.invalid_day and not bad_rec.valid
    assert bad_rec.measured_mean is not None  # still shown to the operator

    [m_bad] = monthly_averages(bad, bad.mean, validated(bad.mean, CI), records_of(bad), tz=TZ)
    assert m_bad.validated_mean == pytest.approx(150.0)  # only the ten clean days
    assert m_bad.n_sta == 240
    [m_ok] = monthly_averages(ok, ok.mean, validated(ok.mean, CI), records_of(ok), tz=TZ)
    assert m_ok.n_sta == 261
    assert m_ok.validated_mean == pytest.approx((240 * 200 + 20 * 280 + 900) / 261 - CI)


def test_wi_and_de_invalid_day_thresholds() -> None:
    """WI: 5 discarded half-hours → valid day, 6 → invalid. DE 13./44. BImSchV: > 6."""
    day = date(2026, 6, 15)
    s0 = day_start(day)

    def half_hours(n_bad: int) -> StaBatch:
        return StaBatch.from_counts(
            start_ns=s0 + np.arange(48) * 1800 * NS_PER_S,
            mean=[math.nan] * n_bad + [30.0] * (48 - n_bad),
            state=[INVALID] * n_bad + [VALID] * (48 - n_bad),
            period_s=1800,
        )

    def is_invalid(n_bad: int, limit: int) -> bool:
        b = half_hours(n_bad)
        [rec] = daily_records(b, b.mean, b.mean - 3.0, tz=TZ, max_invalid_sta_per_day=limit)
        return rec.invalid_day

    assert [is_invalid(n, 5) for n in (5, 6)] == [False, True]
    assert [is_invalid(n, 6) for n in (6, 7)] == [False, True]


def test_c4_eleventh_invalid_day_raises_reliability_event() -> None:
    def recs(n_invalid: int, year: int = 2026) -> list[DailyRecord]:
        return [
            DailyRecord(date(year, 2, 1) + timedelta(days=i), False, 20.0, 1.0, 1.0, 20, 4, 0, True)
            for i in range(n_invalid)
        ]

    clean = DailyRecord(date(2026, 1, 5), True, 24.0, 1.0, 1.0, 24, 0, 0, False)
    assert invalid_day_events([clean, *recs(10)]) == []
    [event] = invalid_day_events(list(reversed(recs(11))))  # order of records does not matter
    assert (event.date, event.year, event.count) == (date(2026, 2, 11), 2026, 11)
    assert "reliability improvement required" in event.message
    assert [e.count for e in invalid_day_events(recs(13))] == [11, 12, 13]
    assert [e.count for e in invalid_day_events(recs(13), repeat=False)] == [11]
    # the counter restarts each calendar year
    assert invalid_day_events([*recs(6, 2025), *recs(6, 2026)]) == []
    assert invalid_day_events(recs(3), max_per_year=2)[0].count == 3
    with pytest.raises(ValueError, match="twice"):
        invalid_day_events([clean, clean])


# ---------------------------------------------------------------- daily rules and DST


def test_dst_days_have_23_and_25_hours() -> None:
    spring = [date(2026, 3, 28), date(2026, 3, 29), date(2026, 3, 30)]
    autumn = [date(2026, 10, 24), date(2026, 10, 25), date(2026, 10, 26)]
    for days, lengths in ((spring, [24, 23, 24]), (autumn, [24, 25, 24])):
        start = day_start(days[0])
        end = local_day_bounds_ns(days[-1], TZ)[1]
        n = (end - start) // HOUR
        batch = StaBatch.from_counts(
            start_ns=start + np.arange(n) * HOUR, mean=[100.0] * n, state=[VALID] * n, period_s=3600
        )
        recs = records_of(batch)
        assert [r.date for r in recs] == days
        assert [r.n_valid_sta for r in recs] == lengths
        assert [r.valid_hours for r in recs] == [float(x) for x in lengths]


def test_six_hour_rule_and_excluded_hours() -> None:
    day = date(2026, 6, 15)
    for n_valid, reportable in ((6, True), (5, False)):
        batch = hourly_days(
            [
                (
                    day,
                    [250.0] * n_valid + [999.0] * (24 - n_valid),
                    [VALID] * n_valid + [EXCLUDED] * (24 - n_valid),
                )
            ]
        )
        [rec] = records_of(batch)
        assert rec.valid is reportable
        assert not rec.invalid_day
        assert rec.n_excluded_sta == 24 - n_valid
        assert rec.measured_mean == 250.0  # excluded hours never enter
        assert rec.validated_mean == 200.0
    half_hours = StaBatch.from_counts(
        start_ns=day_start(day) + np.arange(12) * 1800 * NS_PER_S,
        mean=[1.0] * 12,
        state=[VALID] * 12,
        period_s=1800,
    )
    [rec] = daily_records(
        half_hours, half_hours.mean, half_hours.mean, tz=TZ, max_invalid_sta_per_day=5
    )
    assert rec.valid_hours == 6.0 and rec.valid


def test_valid_sta_without_a_normalised_value_counts_as_invalid() -> None:
    batch = hourly_days([(date(2026, 6, 15), [100.0] * 24, [VALID] * 24)])
    measured = batch.mean.copy()
    measured[:4] = np.nan  # e.g. the O2 analyser failed: no O2-corrected value
    [rec] = daily_records(batch, measured, measured - CI, tz=TZ, max_invalid_sta_per_day=3)
    assert (rec.n_valid_sta, rec.n_invalid_sta) == (20, 4)
    assert rec.invalid_day


def test_input_errors() -> None:
    batch = hourly_days([(date(2026, 6, 15), [1.0] * 24, [VALID] * 24)])
    with pytest.raises(ValueError, match="aligned"):
        daily_records(batch, batch.mean[:3], batch.mean, tz=TZ, max_invalid_sta_per_day=3)
    twice = StaBatch.concat([batch, batch])
    with pytest.raises(ValueError, match="duplicate"):
        daily_records(twice, twice.mean, twice.mean, tz=TZ, max_invalid_sta_per_day=3)
    with pytest.raises(ValueError, match="no DailyRecord"):
        monthly_averages(batch, batch.mean, batch.mean, [], tz=TZ)
    empty = StaBatch.from_counts(start_ns=[], mean=[], state=[], period_s=3600)
    assert daily_records(empty, [], [], tz=TZ, max_invalid_sta_per_day=3) == []
    assert monthly_averages(empty, [], [], [], tz=TZ) == []


# ---------------------------------------------------------------- monthly and yearly coverage


def test_monthly_coverage_ten_percent_dst_aware() -> None:
    """March 2026 in Vienna has 743 h: 74 valid hours < 74.3 h, 75 suffice; April: 72 of 720."""

    def month(first: date, n_valid: int) -> tuple[bool, float]:
        s0 = day_start(first)
        batch = StaBatch.from_counts(
            start_ns=s0 + np.arange(n_valid) * HOUR,
            mean=[100.0] * n_valid,
            state=[VALID] * n_valid,
            period_s=3600,
        )
        [m] = monthly_averages(batch, batch.mean, batch.mean, records_of(batch), tz=TZ)
        assert m.start == first
        return m.valid, m.coverage

    valid, coverage = month(date(2026, 3, 1), 74)
    assert not valid and coverage == pytest.approx(74 / 743)
    assert month(date(2026, 3, 1), 75)[0]
    valid, coverage = month(date(2026, 4, 1), 72)
    assert valid and coverage == pytest.approx(0.1)
    assert not month(date(2026, 4, 1), 71)[0]


def test_short_days_enter_the_month_unless_reportable_days_are_required() -> None:
    days = [(date(2026, 6, d), [100.0] * 24, [VALID] * 24) for d in range(1, 4)]
    days.append((date(2026, 6, 4), [400.0] * 4 + [0.0] * 20, [VALID] * 4 + [EXCLUDED] * 20))
    batch = hourly_days(days)
    recs = records_of(batch)
    assert not recs[-1].valid and not recs[-1].invalid_day
    [default] = monthly_averages(batch, batch.mean, batch.mean, recs, tz=TZ)
    assert default.n_sta == 76
    assert default.measured_mean == pytest.approx((72 * 100 + 4 * 400) / 76)
    [strict] = monthly_averages(
        batch, batch.mean, batch.mean, recs, tz=TZ, require_reportable_day=True
    )
    assert strict.n_sta == 72 and strict.measured_mean == 100.0


def test_yearly_average_spans_months_and_years() -> None:
    days = [
        (date(2025, 12, 31), [10.0] * 24, [VALID] * 24),
        (date(2026, 1, 1), [20.0] * 24, [VALID] * 24),
        (date(2026, 2, 1), [40.0] * 24, [VALID] * 24),
    ]
    batch = hourly_days(days)
    recs = records_of(batch)
    years = yearly_averages(batch, batch.mean, validated(batch.mean, 5.0), recs, tz=TZ)
    assert [(y.start, y.end) for y in years] == [
        (date(2025, 1, 1), date(2026, 1, 1)),
        (date(2026, 1, 1), date(2027, 1, 1)),
    ]
    assert years[0].validated_mean == 5.0 and years[1].validated_mean == 25.0
    assert not years[1].valid  # 48 h of 8760 h < 10 %
    assert years[1].coverage == pytest.approx(48 / 8760)
    assert yearly_averages(batch, batch.mean, batch.mean, recs, tz=TZ, min_coverage=0.005)[1].valid
    months = monthly_averages(batch, batch.mean, batch.mean, recs, tz=TZ)
    assert [m.start.month for m in months] == [12, 1, 2]
    assert [m.end for m in months] == [date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)]


# ---------------------------------------------------------------- properties vs. a plain reference


def local_date(ts_ns: int) -> date:
    return datetime.fromtimestamp(ts_ns // NS_PER_S, tz=ZONE).date()


@st.composite
def sta_batches(draw: st.DrawFn) -> tuple[StaBatch, np.ndarray, np.ndarray, int]:
    """Hourly or half-hourly STA around a DST change and a month end, with gaps."""
    period_s = draw(st.sampled_from([1800, 3600]))
    anchor = draw(st.sampled_from([date(2026, 3, 27), date(2026, 10, 23), date(2026, 1, 29)]))
    s0 = day_start(anchor)
    n_slots = 5 * 86_400 // period_s
    slots = draw(st.sets(st.integers(0, n_slots - 1), max_size=n_slots))
    starts = sorted(s0 + k * period_s * NS_PER_S for k in slots)
    n = len(starts)
    states = draw(
        st.lists(st.sampled_from([VALID] * 4 + [INVALID, EXCLUDED]), min_size=n, max_size=n)
    )
    values = draw(
        st.lists(
            st.one_of(st.floats(-50, 1000, allow_nan=False), st.just(math.nan)),
            min_size=n,
            max_size=n,
        )
    )
    measured = np.array(values, dtype=np.float64)
    batch = StaBatch.from_counts(start_ns=starts, mean=measured, state=states, period_s=period_s)
    return batch, measured, validated(measured, draw(st.floats(0, 100))), draw(st.integers(0, 8))


@dataclass
class RefDay:
    measured: list[float] = field(default_factory=list)
    validated: list[float] = field(default_factory=list)
    invalid: int = 0
    excluded: int = 0


def reference_days(batch: StaBatch, measured: np.ndarray, vald: np.ndarray) -> dict[date, RefDay]:
    out: dict[date, RefDay] = {}
    for i in range(len(batch)):
        day = out.setdefault(local_date(int(batch.start_ns[i])), RefDay())
        state = int(batch.state[i])
        if state == VALID and math.isfinite(measured[i]) and math.isfinite(vald[i]):
            day.measured.append(float(measured[i]))
            day.validated.append(float(vald[i]))
        elif state == EXCLUDED:
            day.excluded += 1
        else:
            day.invalid += 1
    return out


@settings(max_examples=60, deadline=None)
@given(sta_batches())
def test_daily_records_match_plain_reference(
    case: tuple[StaBatch, np.ndarray, np.ndarray, int],
) -> None:
    batch, measured, vald, max_invalid = case
    recs = daily_records(batch, measured, vald, tz=TZ, max_invalid_sta_per_day=max_invalid)
    ref = reference_days(batch, measured, vald)
    assert [r.date for r in recs] == sorted(ref)
    for r in recs:
        e = ref[r.date]
        n = len(e.measured)
        invalid_day = e.invalid > max_invalid
        assert (r.n_valid_sta, r.n_invalid_sta, r.n_excluded_sta) == (n, e.invalid, e.excluded)
        assert r.invalid_day == invalid_day
        assert r.valid == (not invalid_day and n * batch.period_s >= 6 * 3600)
        if n:
            assert r.measured_mean == pytest.approx(sum(e.measured) / n, rel=1e-9, abs=1e-9)
            assert r.validated_mean == pytest.approx(sum(e.validated) / n, rel=1e-9, abs=1e-9)
            assert r.validated_mean is not None and r.measured_mean is not None
            assert r.validated_mean <= r.measured_mean + 1e-9
        else:
            assert r.measured_mean is None and r.validated_mean is None


@settings(max_examples=60, deadline=None)
@given(sta_batches())
def test_monthly_averages_match_plain_reference(
    case: tuple[StaBatch, np.ndarray, np.ndarray, int],
) -> None:
    batch, measured, vald, max_invalid = case
    recs = daily_records(batch, measured, vald, tz=TZ, max_invalid_sta_per_day=max_invalid)
    invalid_days = {r.date for r in recs if r.invalid_day}
    months = monthly_averages(batch, measured, vald, recs, tz=TZ)
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i in range(len(batch)):
        d = local_date(int(batch.start_ns[i]))
        groups[(d.year, d.month)]
        if (
            int(batch.state[i]) == VALID
            and math.isfinite(measured[i])
            and math.isfinite(vald[i])
            and d not in invalid_days
        ):
            groups[(d.year, d.month)].append(i)
    assert [(m.start.year, m.start.month) for m in months] == sorted(groups)
    for m in months:
        idx = groups[(m.start.year, m.start.month)]
        first = datetime(m.start.year, m.start.month, 1, tzinfo=ZONE)
        nxt = datetime(m.end.year, m.end.month, 1, tzinfo=ZONE)
        length_s = int(nxt.timestamp() - first.timestamp())
        assert m.n_sta == len(idx)
        assert m.coverage == pytest.approx(len(idx) * batch.period_s / length_s)
        assert m.valid == (bool(idx) and len(idx) * batch.period_s >= Fraction(1, 10) * length_s)
        if idx:
            assert m.measured_mean == pytest.approx(
                sum(float(measured[i]) for i in idx) / len(idx), rel=1e-9, abs=1e-9
            )
            assert m.validated_mean == pytest.approx(
                sum(float(vald[i]) for i in idx) / len(idx), rel=1e-9, abs=1e-9
            )
        else:
            assert m.measured_mean is None


@settings(max_examples=60, deadline=None)
@given(sta_batches(), st.floats(-1e6, 1e6))
def test_invalid_and_excluded_sta_never_enter_the_means(
    case: tuple[StaBatch, np.ndarray, np.ndarray, int], junk: float
) -> None:
    """Whatever value an invalid or excluded STA carries, no mean changes."""
    batch, measured, vald, max_invalid = case
    not_valid = ~batch.valid_mask
    m2, v2 = measured.copy(), vald.copy()
    m2[not_valid] = junk
    v2[not_valid] = junk
    a = daily_records(batch, measured, vald, tz=TZ, max_invalid_sta_per_day=max_invalid)
    b = daily_records(batch, m2, v2, tz=TZ, max_invalid_sta_per_day=max_invalid)
    assert a == b
    assert monthly_averages(batch, measured, vald, a, tz=TZ) == monthly_averages(
        batch, m2, v2, b, tz=TZ
    )
