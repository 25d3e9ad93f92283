"""US EPA 40 CFR Part 75 standard missing-data substitution (§75.32 PMA, §75.33 tiers).

Under the Acid Rain Program every unit operating hour needs a value. When the monitor has no
quality-assured (QA'd) value, the DAHS fills the hour with a substitute that is deliberately
**conservative**: the worse the monitor's track record (its percent monitor data availability,
PMA), the higher the substitute, up to the maximum potential concentration (MPC). That makes a
poorly kept monitor costlier than a well kept one (rules A5 [V], feature (b) #10, check C11).

Tiers of §75.33(b) for SO2 (rules A5 [V]); NOx and flow follow the same pattern with a longer
lookback (§75.33(c), A5 [K]):

==================  ==================  =====================================================
PMA                 gap                 substitute
==================  ==================  =====================================================
≥ 95.0 %            ≤ 24 h              average of the hour before and the hour after
≥ 95.0 %            > 24 h              greater of lookback P90 and that average
90.0 % – < 95.0 %   ≤ 8 h               average of the hour before and the hour after
90.0 % – < 95.0 %   > 8 h               greater of lookback P95 and that average
80.0 % – < 90.0 %   any                 lookback maximum
< 80.0 %            any                 maximum potential value (MPC, or max. potential flow)
==================  ==================  =====================================================

Substituted hours are returned as a :class:`Substitution` carrying the rule text, so the caller
can flag them and never mix them silently with measured hours (feature (b) #10).

Check C11 (PMA 96.3 %, before 150 ppm, after 170 ppm, lookback P90 180 ppm):

>>> lookback = [140.0] * 647 + [180.0] + [195.0] * 71 + [210.0]  # 720 QA'd hours
>>> substitute(pma=96.3, gap_hours=10, before=150, after=170, lookback=lookback,
...            max_potential=500).value
160.0
>>> substitute(pma=96.3, gap_hours=30, before=150, after=170, lookback=lookback,
...            max_potential=500).value
180.0
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
Pollutant = Literal["so2", "nox", "flow"]

LOOKBACK_HOURS: Final[dict[str, int]] = {"so2": 720, "nox": 2_160, "flow": 2_160}
"""QA'd monitor operating hours in the lookback (§75.33(b) SO2: 720; §75.33(c) NOx, flow:
2,160) [K]. §75.32/§75.33(a) use the same counts as the hours after certification before the
standard procedure applies [V]. The regulation bins the NOx/flow lookback by unit load range
(§75.33(c)) [K]: the caller passes the lookback of the matching load range."""

PMA_WINDOW_HOURS: Final = 8_760
"""Eq. 8 (cumulative) until 8,760 unit operating hours, then Eq. 9 over the last 8,760 (§75.32)
[V]."""

PMA_HIGH: Final = 95.0
"""PMA at or above which the mildest tier applies (§75.33(b)(1)) [V]."""
PMA_MID: Final = 90.0
"""Lower edge of the 90–95 % tier (§75.33(b)(2)) [V]."""
PMA_LOW: Final = 80.0
"""Lower edge of the lookback-maximum tier; below it the MPC (§75.33(b)(3),(4)) [V]."""

SHORT_GAP_HIGH_H: Final = 24
"""With PMA ≥ 95 %, gaps of at most this many hours get the before/after average [V]."""
SHORT_GAP_MID_H: Final = 8
"""With 90 % ≤ PMA < 95 %, gaps of at most this many hours get the before/after average [V]."""

PERCENTILE_HIGH: Final = 90
"""Percentile of the lookback for long gaps at PMA ≥ 95 % (§75.33(b)(1)(ii)) [V]."""
PERCENTILE_MID: Final = 95
"""Percentile of the lookback for long gaps at 90 % ≤ PMA < 95 % (§75.33(b)(2)(ii)) [V]."""


class Tier(StrEnum):
    """Which §75.33 tier produced a substitute (the ``tier`` of a :class:`Substitution`)."""

    AVERAGE = "average"  # before/after average, short gap at PMA ≥ 90 %
    P90_OR_AVERAGE = "p90_or_average"  # long gap at PMA ≥ 95 %
    P95_OR_AVERAGE = "p95_or_average"  # long gap at 90 % ≤ PMA < 95 %
    LOOKBACK_MAX = "lookback_max"  # 80 % ≤ PMA < 90 %
    MAX_POTENTIAL = "max_potential"  # PMA < 80 %


@dataclass(frozen=True)
class Substitution:
    """A substitute hourly value and why it was chosen.

    ``tier`` is the plain string value of a :class:`Tier` (it compares equal to the member);
    ``rule`` cites §75.33, the PMA band and the gap, with the numbers used, so an auditor can
    redo the choice from the record alone.
    """

    value: float
    tier: str
    rule: str


def percent_monitor_availability(qa_hours: int, operating_hours: int) -> float:
    """Percent monitor data availability, 40 CFR 75.32 Eq. 8 [V]: QA'd / operating hours × 100.

    ``qa_hours`` are the quality-assured monitor operating hours and ``operating_hours`` the unit
    operating hours since certification. Once 8,760 unit operating hours are complete, §75.32
    switches to Eq. 9, which is the same ratio over the last 8,760 unit operating hours: call
    this with the QA'd hours of that window and ``operating_hours=8760``, or use
    :func:`hourly_pma` for the whole hourly series.

    >>> percent_monitor_availability(963, 1000)
    96.3
    """
    if operating_hours <= 0:
        raise ValueError(f"operating_hours must be positive, got {operating_hours}")
    if not 0 <= qa_hours <= operating_hours:
        raise ValueError(f"qa_hours must be in [0, {operating_hours}], got {qa_hours}")
    return qa_hours * 100.0 / operating_hours


def hourly_pma(
    qa: Sequence[bool] | npt.NDArray[np.bool_], *, window: int = PMA_WINDOW_HOURS
) -> FloatArray:
    """PMA after each unit operating hour: Eq. 8 up to ``window`` hours, then Eq. 9 (§75.32) [V].

    ``qa`` holds one flag per **unit operating hour** in time order (non-operating hours are
    left out: they count neither way), True when the monitor recorded a QA'd value. Element
    ``k`` counts hours ``0..k``: it is the PMA recorded at the end of hour ``k``. Which
    element §75.33 applies to a missing hour (the PMA including that hour, or the one before
    it) is left to the caller [K]. Vectorised with a cumulative sum.

    >>> hourly_pma([True, True, False, True], window=3).tolist()
    [100.0, 100.0, 66.66666666666667, 66.66666666666667]
    """
    if window <= 0:
        raise ValueError(f"window must be positive, got {window}")
    flags = np.asarray(qa, dtype=bool)
    if flags.ndim != 1:
        raise ValueError("qa must be one-dimensional")
    cumulative = np.cumsum(flags, dtype=np.int64)
    in_window = cumulative.copy()
    in_window[window:] -= cumulative[:-window]
    hours = np.minimum(np.arange(1, flags.size + 1, dtype=np.int64), window)
    return in_window * 100.0 / hours


def nearest_rank_percentile(values: Sequence[float] | FloatArray, p: int) -> float:
    """The ``p``-th percentile by nearest rank: the smallest value ≥ ``p`` % of the values.

    §75.33 speaks of the "90th (95th) percentile hourly value" of the lookback without an
    interpolation rule here [K]; nearest rank (rank ``ceil(p·n/100)`` in the sorted values,
    computed in exact integers) always returns an hour that was actually recorded and never
    interpolates below it. For 720 hours the P90 is the 648th smallest value.

    >>> nearest_rank_percentile([10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0], 90)
    90.0
    >>> nearest_rank_percentile([10.0, 20.0, 30.0], 50)
    20.0
    """
    if not 0 < p <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {p}")
    data = np.asarray(values, dtype=np.float64)
    if data.ndim != 1 or data.size == 0:
        raise ValueError("percentile needs a non-empty one-dimensional series")
    if not np.all(np.isfinite(data)):
        raise ValueError("lookback values must be finite (QA'd hours only)")
    rank = -(-p * data.size // 100)  # ceil(p·n/100) without float rounding
    return float(np.partition(data, rank - 1)[rank - 1])


def _lookback(
    values: Sequence[float] | FloatArray, pollutant: Pollutant, hours: int | None
) -> FloatArray:
    """The most recent lookback hours (values are in time order, oldest first)."""
    length = LOOKBACK_HOURS[pollutant] if hours is None else hours
    if length <= 0:
        raise ValueError(f"lookback_hours must be positive, got {length}")
    data = np.asarray(values, dtype=np.float64)
    if data.ndim != 1 or data.size == 0:
        raise ValueError("this tier needs a non-empty lookback of QA'd hourly values")
    return data[-length:]


def _check_finite(**values: float) -> None:
    for name, value in values.items():
        if not np.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value}")


def substitute(
    *,
    pma: float,
    gap_hours: int,
    before: float,
    after: float,
    lookback: Sequence[float] | FloatArray,
    max_potential: float,
    pollutant: Pollutant = "so2",
    lookback_hours: int | None = None,
) -> Substitution:
    """Substitute value for each hour of a missing-data period (40 CFR 75.33; rules A5; C11).

    ``pma`` is the percent monitor data availability (§75.32) in %, ``gap_hours`` the length of
    the missing-data period in unit operating hours, ``before``/``after`` the QA'd hourly values
    of the unit operating hours just before and just after the gap, ``lookback`` the QA'd hourly
    values before the gap in time order (oldest first; only the last ``lookback_hours`` are used,
    default :data:`LOOKBACK_HOURS` of the pollutant [K]) and ``max_potential`` the maximum
    potential concentration (or flow). The lookback is only read by the tiers that need it.
    Percentiles are by nearest rank (:func:`nearest_rank_percentile`) [K].

    The substitute never falls below the before/after average while PMA ≥ 90 %, and it does
    not decrease as PMA falls through the bands provided the lookback maximum is at least that
    average and at most the MPC (the conservatism the rule intends; tested as properties).

    >>> substitute(pma=85.0, gap_hours=3, before=150, after=170, lookback=[100.0, 210.0],
    ...            max_potential=500).value
    210.0
    >>> substitute(pma=75.0, gap_hours=3, before=150, after=170, lookback=[],
    ...            max_potential=500).tier
    'max_potential'
    """
    _check_finite(pma=pma, before=before, after=after, max_potential=max_potential)
    if not 0.0 <= pma <= 100.0:
        raise ValueError(f"pma must be a percentage in [0, 100], got {pma}")
    if gap_hours < 1:
        raise ValueError(f"gap_hours must be at least 1, got {gap_hours}")
    if pollutant not in LOOKBACK_HOURS:
        raise ValueError(f"unknown pollutant {pollutant!r}")
    section = "40 CFR 75.33(b)" if pollutant == "so2" else "40 CFR 75.33(c)"
    where = f"{section} [{pollutant}]: PMA {pma:g} %"
    gap = f"gap {gap_hours} h"
    average = (before + after) / 2.0
    avg_text = f"average of hour before ({before:g}) and after ({after:g}) = {average:g}"

    if pma >= PMA_MID:
        high = pma >= PMA_HIGH
        band = f"≥ {PMA_HIGH:g} %" if high else f"in [{PMA_MID:g} %, {PMA_HIGH:g} %)"
        short_limit = SHORT_GAP_HIGH_H if high else SHORT_GAP_MID_H
        if gap_hours <= short_limit:
            return Substitution(
                value=average,
                tier=Tier.AVERAGE.value,
                rule=f"{where} {band}, {gap} ≤ {short_limit} h → {avg_text}",
            )
        p = PERCENTILE_HIGH if high else PERCENTILE_MID
        hours = _lookback(lookback, pollutant, lookback_hours)
        percentile = nearest_rank_percentile(hours, p)
        value = max(percentile, average)
        return Substitution(
            value=value,
            tier=(Tier.P90_OR_AVERAGE if high else Tier.P95_OR_AVERAGE).value,
            rule=(
                f"{where} {band}, {gap} > {short_limit} h → greater of the {p}th percentile "
                f"of the last {hours.size} QA'd hours ({percentile:g}) and the {avg_text} "
                f"→ {value:g}"
            ),
        )
    if pma >= PMA_LOW:
        hours = _lookback(lookback, pollutant, lookback_hours)
        if not np.all(np.isfinite(hours)):
            raise ValueError("lookback values must be finite (QA'd hours only)")
        value = float(hours.max())
        return Substitution(
            value=value,
            tier=Tier.LOOKBACK_MAX.value,
            rule=(
                f"{where} in [{PMA_LOW:g} %, {PMA_MID:g} %), {gap} → maximum of the last "
                f"{hours.size} QA'd hours = {value:g}"
            ),
        )
    return Substitution(
        value=float(max_potential),
        tier=Tier.MAX_POTENTIAL.value,
        rule=f"{where} < {PMA_LOW:g} %, {gap} → maximum potential value = {max_potential:g}",
    )
