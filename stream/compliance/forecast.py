"""Daily-average forecast and pre-alarm ("Tagesmittelwertprognose"; rules (b) #19, check C9).

German DAHS warn the operator during the day when the validated daily average is heading above
the daily ELV, while there is still time to act. The design is ours (the feature is common but
not specified anywhere we could verify):

* remaining allowance — the mean the rest of the day's STA may have so that the daily average
  stays within the ELV: ``(ELV·n_expected − sum_so_far) / (n_expected − n_done)``;
* projection — the daily mean if the rest of the day continues at the latest validated STA:
  ``(sum_so_far + latest·remaining) / n_expected``;
* pre-alarm when the projection exceeds the ELV or the latest STA exceeds the allowance (the
  two are the same condition in exact arithmetic; both are reported), or when the allowance
  is already negative (the ELV can no longer be met with non-negative values).

Assumption: every expected STA of the day will be valid; if some turn out invalid the daily mean
is taken over fewer values, so the forecast is a guide, not a verdict (the verdict is
:func:`stream.compliance.longterm.daily_records`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt

from stream.compliance.longterm import local_day_bounds_ns
from stream.model import NS_PER_S


@dataclass(frozen=True)
class Forecast:
    """Where the validated daily average is heading (C9)."""

    n_done: int
    n_expected: int
    validated_mean_so_far: float | None
    remaining_allowance: float | None
    projected_mean: float | None
    prealarm: bool
    reason: str


def daily_forecast(
    validated_so_far: Sequence[float] | npt.NDArray[np.float64],
    *,
    elv_daily: float,
    n_expected: int,
    latest: float | None = None,
) -> Forecast:
    """Forecast of today's validated daily average (design; check C9).

    Parameters
    ----------
    validated_so_far
        Today's validated STA of VALID periods so far (NaN entries are ignored).
    elv_daily
        The daily ELV the validated daily average is compared with.
    n_expected
        STA in the whole day (:func:`expected_sta_per_day`: 48 half-hours, 46/50 on DST days).
    latest
        The value the rest of the day is assumed to continue at; default the last value.

    When the day is complete (``n_done == n_expected``) the projection is the actual mean and
    there is no allowance. Without any value yet nothing is projected.

    >>> f = daily_forecast([240.0] * 32, elv_daily=250.0, n_expected=48)
    >>> f.remaining_allowance, f.projected_mean, f.prealarm
    (270.0, 240.0, False)
    >>> daily_forecast([240.0] * 32, elv_daily=250.0, n_expected=48, latest=275.0).prealarm
    True
    """
    values = np.asarray(validated_so_far, dtype=np.float64)
    values = values[np.isfinite(values)]
    n_done = int(values.size)
    if n_expected <= 0:
        raise ValueError(f"n_expected must be positive, got {n_expected}")
    if n_done > n_expected:
        raise ValueError(f"{n_done} values so far but only {n_expected} expected in the day")
    total = float(values.sum())
    mean = total / n_done if n_done else None
    if latest is None and n_done:
        latest = float(values[-1])

    if mean is not None and n_done == n_expected:
        over = mean > elv_daily
        reason = (
            f"day complete: validated daily mean {mean:.2f} "
            f"{'exceeds' if over else 'is within'} the ELV {elv_daily:g}"
        )
        return Forecast(n_done, n_expected, mean, None, mean, over, reason)

    remaining = n_expected - n_done
    allowance = (elv_daily * n_expected - total) / remaining
    if allowance < 0:
        reason = (
            f"ELV {elv_daily:g} can no longer be met: the remaining {remaining} values would "
            f"need a mean of {allowance:.2f} (< 0)"
        )
        projected = None if latest is None else (total + latest * remaining) / n_expected
        return Forecast(n_done, n_expected, mean, allowance, projected, True, reason)
    if latest is None:
        reason = f"no valid value yet; the day's values may average up to {allowance:.2f}"
        return Forecast(n_done, n_expected, mean, allowance, None, False, reason)

    projected = (total + latest * remaining) / n_expected
    causes = []
    if projected > elv_daily:
        causes.append(f"projected daily mean {projected:.2f} exceeds the ELV {elv_daily:g}")
    if latest > allowance:
        causes.append(f"latest value {latest:.2f} exceeds the remaining allowance {allowance:.2f}")
    if causes:
        reason = "; ".join(causes)
    else:
        reason = (
            f"projected daily mean {projected:.2f} within the ELV {elv_daily:g}; the remaining "
            f"{remaining} values may average up to {allowance:.2f}"
        )
    return Forecast(n_done, n_expected, mean, allowance, projected, bool(causes), reason)


def expected_sta_per_day(day: date, tz: str, period_s: int) -> int:
    """Number of epoch-aligned STA starting within a local calendar day (DST-aware).

    >>> [expected_sta_per_day(date(2026, 3, d), "Europe/Vienna", 1800) for d in (28, 29)]
    [48, 46]
    >>> expected_sta_per_day(date(2026, 10, 25), "Europe/Vienna", 3600)
    25
    """
    if period_s <= 0:
        raise ValueError(f"period_s must be positive, got {period_s}")
    start, end = local_day_bounds_ns(day, tz)
    period_ns = period_s * NS_PER_S
    return -(-end // period_ns) - -(-start // period_ns)
