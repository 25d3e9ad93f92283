"""Valid calibration range: is the AMS still used inside the range its QAL2 calibration covers?

EN 14181:2014 §6.5 (rules A4 [V], feature (b) #8, check C10): a QAL2 calibration function is
only valid up to the highest value seen during the calibration plus 10 %. Each ISO week
(Monday 00:00 – Sunday 24:00 local time) the share of valid short-term averages (STA) above
that threshold is computed; a **new QAL2** is required when more than 5 % are outside in more
than 5 weeks between two surveillance tests (QAL2/AST), or more than 40 % in a single week.
The German BEP 2023 Anhang B special class **S10** counts it: +1 for a week over 5 %, +6 for
a week over 40 %, so ``S10 >= 6`` means "new QAL2".

The module also holds the local-calendar helpers the compliance modules share (UTC offsets and
ISO week starts in an IANA zone, DST-aware), because weeks are where the calendar first bites.

Worked example C10 (range 0–450 → threshold 495; a week of 336 valid ½-h STA):

>>> threshold(450.0)
495.0
>>> week_increment(17 / 336), week_increment(135 / 336)
(1, 6)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final, overload
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from stream.model import NS_PER_S

IntArray = npt.NDArray[np.int64]

S_PER_DAY: Final = 86_400
NS_PER_DAY: Final = S_PER_DAY * NS_PER_S
NS_PER_HOUR: Final = 3_600 * NS_PER_S
EPOCH_DATE: Final = date(1970, 1, 1)

RANGE_MARGIN: Final = 0.10
"""The valid range ends 10 % above the upper calibration value (EN 14181:2014 §6.5) [V]."""
WEEK_LIMIT_LOW: Final = 0.05
"""A week with more than this share of STA outside adds 1 to S10 (BEP Anhang B) [V]."""
WEEK_LIMIT_HIGH: Final = 0.40
"""A week with more than this share of STA outside adds 6 to S10 (BEP Anhang B) [V]."""
MAX_WEEKS_OVER_LOW: Final = 5
"""More weeks than this over 5 % require a new QAL2 (EN 14181:2014 §6.5) [V]."""
S10_NEW_QAL2: Final = 6
"""S10 value at which a new QAL2 is required."""


# --- local calendar -------------------------------------------------------------------------


def _offset_s(zone: ZoneInfo, epoch_s: int) -> int:
    offset = datetime.fromtimestamp(epoch_s, tz=zone).utcoffset()
    if offset is None:  # pragma: no cover - ZoneInfo always knows its offset
        raise ValueError(f"time zone {zone.key} has no UTC offset at {epoch_s}")
    return int(offset.total_seconds())


def utc_offsets_ns(ts_ns: IntArray, tz: str) -> IntArray:
    """UTC offset (local − UTC, in ns) of the zone ``tz`` at each instant, vectorised.

    Computed once per UTC day touched: when the offset at the day's start and end differ,
    the transition second is found by bisection, so DST changes are exact to the second
    (tzdata transitions are whole seconds). Assumes at most one offset change per UTC day,
    true of current tzdata rules (a UTC day with two changes would be wrong between them).

    >>> ts = np.array([1_711_846_799, 1_711_846_800], dtype=np.int64) * NS_PER_S
    >>> (utc_offsets_ns(ts, "Europe/Berlin") // (3_600 * NS_PER_S)).tolist()  # 2024 DST start
    [1, 2]
    """
    zone = ZoneInfo(tz)
    ts = np.asarray(ts_ns, dtype=np.int64)
    if ts.size == 0:
        return np.zeros(ts.shape, dtype=np.int64)
    days, inverse = np.unique(ts // NS_PER_DAY, return_inverse=True)
    cache: dict[int, int] = {}

    def offset_at(epoch_s: int) -> int:
        if epoch_s not in cache:
            cache[epoch_s] = _offset_s(zone, epoch_s)
        return cache[epoch_s]

    before = np.empty(days.shape, dtype=np.int64)
    after = np.empty(days.shape, dtype=np.int64)
    change_ns = np.full(days.shape, np.iinfo(np.int64).max, dtype=np.int64)
    for i, day in enumerate(days.tolist()):
        lo = day * S_PER_DAY
        hi = lo + S_PER_DAY
        start, end = offset_at(lo), offset_at(hi)
        before[i] = start
        after[i] = end
        if start != end:
            while hi - lo > 1:  # invariant: offset(lo) == start != offset(hi)
                mid = (lo + hi) // 2
                if _offset_s(zone, mid) == start:
                    lo = mid
                else:
                    hi = mid
            change_ns[i] = hi * NS_PER_S
    inverse = inverse.reshape(ts.shape)
    offsets_s = np.where(ts >= change_ns[inverse], after[inverse], before[inverse])
    return offsets_s * NS_PER_S


def local_day_index(ts_ns: IntArray, tz: str) -> IntArray:
    """Local calendar date of each instant, as days since 1970-01-01 (DST-aware).

    >>> local_day_index(np.array([0], dtype=np.int64), "America/New_York").tolist()
    [-1]
    """
    ts = np.asarray(ts_ns, dtype=np.int64)
    return (ts + utc_offsets_ns(ts, tz)) // NS_PER_DAY


def local_midnight_ns(day: date, tz: str) -> int:
    """Epoch ns of 00:00 local time on ``day``.

    Resolved per PEP 495 with ``fold=0``: if 00:00 occurs twice the earlier instant; if it
    falls in a DST gap that starts at 00:00 (e.g. America/Santiago), the transition instant.

    >>> local_midnight_ns(date(2024, 3, 31), "Europe/Berlin") == 1_711_839_600 * NS_PER_S
    True
    """
    zone = ZoneInfo(tz)
    offset = datetime(day.year, day.month, day.day, tzinfo=zone).utcoffset()
    if offset is None:  # pragma: no cover - ZoneInfo always knows its offset
        raise ValueError(f"time zone {tz} has no UTC offset on {day}")
    wall_s = (day - EPOCH_DATE).days * S_PER_DAY
    return (wall_s - int(offset.total_seconds())) * NS_PER_S


@overload
def iso_week_start_ns(ts_ns: int, tz: str) -> int: ...
@overload
def iso_week_start_ns(ts_ns: IntArray, tz: str) -> IntArray: ...
def iso_week_start_ns(ts_ns: int | IntArray, tz: str) -> int | IntArray:
    """Monday 00:00 local time of the ISO week containing each instant (BEP Anhang B 1.6).

    The week of an instant is the week of its local date; its start is resolved as in
    :func:`local_midnight_ns`. A week is therefore 167, 168 or 169 h long around DST changes.

    >>> sunday_late = 1_711_918_800 * NS_PER_S  # 2024-03-31 23:00 CEST, DST started that day
    >>> start = iso_week_start_ns(sunday_late, "Europe/Berlin")
    >>> datetime.fromtimestamp(start // NS_PER_S, ZoneInfo("Europe/Berlin")).isoformat()
    '2024-03-25T00:00:00+01:00'
    >>> (sunday_late - start) / NS_PER_HOUR  # Monday 00:00 to Sunday 23:00 minus the lost hour
    166.0
    """
    ts = np.asarray(ts_ns, dtype=np.int64)
    days = local_day_index(ts, tz)
    mondays = days - (days + 3) % 7  # 1970-01-01 was a Thursday (ISO weekday index 3)
    unique, inverse = np.unique(mondays, return_inverse=True)
    starts = np.array(
        [local_midnight_ns(EPOCH_DATE + timedelta(days=d), tz) for d in unique.tolist()],
        dtype=np.int64,
    )
    out: IntArray = starts[inverse.reshape(ts.shape)]
    if isinstance(ts_ns, np.ndarray):
        return out
    return int(out)


# --- valid calibration range ----------------------------------------------------------------


def threshold(upper_calibration_value: float) -> float:
    """Upper end of the valid calibration range: 1.1 × the upper calibration value.

    EN 14181:2014 §6.5 (rules A4, check C10). Computed as ×11/10 so round numbers stay exact.

    >>> threshold(450.0)
    495.0
    """
    if not upper_calibration_value > 0:
        raise ValueError(f"upper calibration value must be positive, got {upper_calibration_value}")
    return upper_calibration_value * 11.0 / 10.0


def week_increment(fraction_outside: float) -> int:
    """S10 increment for one week: 0, +1 if more than 5 % outside, +6 if more than 40 %.

    BEP 2023 Anhang B 1.6, class S10 (rules A4, check C10). Exactly 5 % is not "more than".

    >>> week_increment(0.05), week_increment(0.0506), week_increment(0.40), week_increment(0.4018)
    (0, 1, 1, 6)
    """
    if fraction_outside > WEEK_LIMIT_HIGH:
        return 6
    if fraction_outside > WEEK_LIMIT_LOW:
        return 1
    return 0


@dataclass(frozen=True, slots=True)
class WeekResult:
    """Valid-calibration-range figures of one ISO week (EN 14181:2014 §6.5; BEP S10)."""

    week_start_ns: int
    n_valid: int
    n_outside: int
    fraction_outside: float
    increment: int


def weekly_results(
    sta_start_ns: IntArray,
    validated_or_normalised: npt.NDArray[np.float64],
    valid: npt.NDArray[np.bool_],
    upper_calibration_value: float,
    tz: str,
) -> list[WeekResult]:
    """Per-ISO-week share of valid STA above 1.1 × the upper calibration value (C10).

    EN 14181:2014 §6.5 judges the *normalised* STA (QAL2-calibrated, at the reference
    conditions the calibration range is stated in), counting only valid STA; pass those.
    An STA belongs to the week of its start instant in ``tz``. Every week holding at least
    one STA of the input is returned, in time order; a week without valid STA has
    ``n_valid == 0``, ``fraction_outside == 0.0`` and no increment. NaN values count as not
    valid. "Above" is strict: a value equal to the threshold is inside the range.

    >>> start = 1_704_668_400 * NS_PER_S  # Monday 2024-01-08 00:00 CET
    >>> ts = start + np.arange(336, dtype=np.int64) * 1_800 * NS_PER_S
    >>> values = np.where(np.arange(336) < 17, 500.0, 300.0)
    >>> [week] = weekly_results(ts, values, np.ones(336, bool), 450.0, "Europe/Berlin")
    >>> week.week_start_ns == start, week.n_outside, round(100 * week.fraction_outside, 2)
    (True, 17, 5.06)
    >>> week.increment
    1
    """
    ts = np.asarray(sta_start_ns, dtype=np.int64)
    values = np.asarray(validated_or_normalised, dtype=np.float64)
    ok = np.asarray(valid, dtype=np.bool_)
    if not ts.ndim == values.ndim == ok.ndim == 1 or not ts.size == values.size == ok.size:
        raise ValueError("sta_start_ns, values and valid must be 1-D arrays of equal length")
    if ts.size == 0:
        return []
    limit = threshold(upper_calibration_value)
    weeks, inverse = np.unique(iso_week_start_ns(ts, tz), return_inverse=True)
    usable = ok & np.isfinite(values)
    n_valid = np.bincount(inverse[usable], minlength=weeks.size)
    n_outside = np.bincount(inverse[usable & (values > limit)], minlength=weeks.size)
    results = []
    for week, nv, no in zip(weeks.tolist(), n_valid.tolist(), n_outside.tolist(), strict=True):
        fraction = no / nv if nv else 0.0
        results.append(WeekResult(week, nv, no, fraction, week_increment(fraction)))
    return results


class CalibrationRangeCounter:
    """The S10 counter between two surveillance tests (BEP Anhang B; EN 14181:2014 §6.5; C10).

    Feed one :class:`WeekResult` per completed week, in time order; :meth:`add` returns the
    event messages the week raises. :meth:`reset` starts a new count after a QAL2 or AST.

    Parameters
    ----------
    tz
        Zone used to print week dates in the messages (the weeks themselves are computed by
        :func:`weekly_results`).

    Examples
    --------
    >>> counter = CalibrationRangeCounter("Europe/Berlin")
    >>> week = WeekResult(1_704_668_400 * NS_PER_S, 336, 135, 135 / 336, 6)
    >>> weekly, qal2 = counter.add(week)
    >>> print(weekly)
    calibration range: week of 2024-01-08: 135/336 valid STA (40.18 %) outside → S10 +6 = 6
    >>> qal2.startswith("new QAL2 required: a week with more than 40 %")
    True
    >>> counter.s10, counter.new_qal2_required
    (6, True)
    """

    def __init__(self, tz: str = "UTC") -> None:
        self._zone = ZoneInfo(tz)
        self._s10 = 0
        self._weeks_over_low = 0
        self._weeks_over_high = 0
        self._last_week_ns: int | None = None

    @property
    def s10(self) -> int:
        """BEP class S10: sum of the weekly increments since the last QAL2/AST."""
        return self._s10

    @property
    def weeks_over_5pct(self) -> int:
        """Weeks with more than 5 % outside (weeks over 40 % included)."""
        return self._weeks_over_low

    @property
    def weeks_over_40pct(self) -> int:
        return self._weeks_over_high

    @property
    def new_qal2_required(self) -> bool:
        """More than 5 weeks over 5 %, or any week over 40 %, since the last QAL2/AST."""
        return self._weeks_over_low > MAX_WEEKS_OVER_LOW or self._weeks_over_high > 0

    def add(self, week: WeekResult) -> list[str]:
        """Count one week; weeks must come in strictly increasing order (no double counting)."""
        if self._last_week_ns is not None and week.week_start_ns <= self._last_week_ns:
            raise ValueError(
                f"week {week.week_start_ns} not after the last counted week {self._last_week_ns}"
            )
        if week.increment != week_increment(week.fraction_outside):
            raise ValueError(f"inconsistent week: {week}")
        self._last_week_ns = week.week_start_ns
        if week.increment == 0:
            return []
        was_required = self.new_qal2_required
        self._s10 += week.increment
        self._weeks_over_low += 1
        self._weeks_over_high += week.fraction_outside > WEEK_LIMIT_HIGH
        day = datetime.fromtimestamp(week.week_start_ns // NS_PER_S, UTC).astimezone(self._zone)
        events = [
            f"calibration range: week of {day.date().isoformat()}: {week.n_outside}/"
            f"{week.n_valid} valid STA ({100 * week.fraction_outside:.2f} %) outside → "
            f"S10 +{week.increment} = {self._s10}"
        ]
        if self.new_qal2_required and not was_required:
            reason = (
                "a week with more than 40 % of the STA"
                if self._weeks_over_high
                else f"{self._weeks_over_low} weeks with more than 5 % of the STA"
            )
            events.append(
                f"new QAL2 required: {reason} outside the valid calibration range "
                "(EN 14181:2014 §6.5)"
            )
        return events

    def reset(self) -> None:
        """Start a new count after a QAL2 or an AST (the range may have been extended)."""
        self._s10 = 0
        self._weeks_over_low = 0
        self._weeks_over_high = 0
