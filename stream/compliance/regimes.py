"""Compliance criteria per regime: IED Annex V Part 4 (LCP) and Annex VI Part 8 (WI).

Each criterion becomes one :class:`CriterionResult` with the numbers behind the verdict, so an
environmental officer can check it by hand. Percentage rules are evaluated as *counts* against
an exact allowance (``count(v > limit) ≤ fraction·N``), never as interpolated percentiles,
which would be off by one at the boundary (checks C5, C6). Comparisons are strict: a value
equal to the limit complies. Evaluate one calendar year of operation per call.

Inputs are validated values (measured − CI, :func:`stream.compliance.averaging.validated`);
NaN entries in the arrays are ignored, so pass only validated values of VALID STA (the
engine puts NaN for the others).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import numpy.typing as npt

from stream.compliance.averaging import Float64Array, exact_fraction
from stream.compliance.longterm import DailyRecord, PeriodAverage
from stream.model import NS_PER_S


@dataclass(frozen=True)
class CriterionResult:
    """Outcome of one compliance criterion.

    ``n`` values were evaluated, ``count`` of them are above ``limit``, ``allowed`` may be
    (0 for "none may exceed"); ``worst`` is the highest value (None without values). For the
    rolling CO criterion ``n``/``count``/``allowed`` describe the worst 24 h window.
    """

    name: str
    description: str
    passed: bool
    n: int
    count: int
    allowed: float
    limit: float
    worst: float | None


def lcp_criteria(
    *,
    elv_monthly: float | None,
    elv_daily: float | None,
    elv_hourly_basis: float | None,
    monthly: Sequence[PeriodAverage],
    daily: Sequence[DailyRecord],
    hourly_validated: npt.ArrayLike,
    daily_factor: float = 1.10,
    hourly_factor: float = 2.0,
    hourly_fraction: float = 0.05,
) -> list[CriterionResult]:
    """LCP compliance over a calendar year (IED Annex V Part 4 pt 1 [K]; checks C3, C5).

    (a) no valid validated monthly average > ``elv_monthly``;
    (b) no valid validated daily average > ``daily_factor × elv_daily`` (110 %; 150 % for
    coal-only boilers < 50 MW);
    (c) ``count(hourly > hourly_factor × elv_hourly_basis) ≤ hourly_fraction × N`` (95 % of
    the validated hourly averages ≤ 200 % ELV).
    A criterion whose ELV is None is skipped (not listed). Start-up/shut-down periods are
    already excluded upstream (EXCLUDED STA).

    >>> hours = np.array([230.0] * 7600 + [510.0] * 400)
    >>> [c] = lcp_criteria(elv_monthly=None, elv_daily=None, elv_hourly_basis=250.0,
    ...                    monthly=[], daily=[], hourly_validated=hours)
    >>> c.passed, c.count, c.allowed, c.limit
    (True, 400, 400.0, 500.0)
    """
    results = []
    if elv_monthly is not None:
        values = [m.validated_mean for m in monthly if m.valid and m.validated_mean is not None]
        results.append(
            _count_rule(
                "lcp_monthly",
                "IED Annex V Part 4 (a): no validated monthly average above the ELV",
                values,
                elv_monthly,
                Fraction(0),
            )
        )
    if elv_daily is not None:
        results.append(
            _count_rule(
                "lcp_daily",
                f"IED Annex V Part 4 (b): no validated daily average above "
                f"{daily_factor:.0%} of the ELV",
                _valid_daily(daily),
                daily_factor * elv_daily,
                Fraction(0),
            )
        )
    if elv_hourly_basis is not None:
        results.append(
            _count_rule(
                "lcp_hourly",
                f"IED Annex V Part 4 (c): at most {hourly_fraction:.0%} of the validated hourly "
                f"averages above {hourly_factor:.0%} of the ELV",
                _finite(hourly_validated),
                hourly_factor * elv_hourly_basis,
                exact_fraction(hourly_fraction),
            )
        )
    return results


def wi_criteria(
    *,
    pollutant: str,
    elv_daily: float | None,
    elv_half_hour_a: float | None,
    elv_half_hour_b: float | None,
    daily: Sequence[DailyRecord],
    half_hourly_validated: npt.ArrayLike,
    co_ten_minute: tuple[npt.ArrayLike, npt.ArrayLike] | None = None,
    elv_co_ten_minute: float | None = None,
    co_daily_fraction: float = 0.03,
    half_hour_b_fraction: float = 0.03,
    ten_minute_fraction: float = 0.05,
    window_s: int = 86_400,
    ten_minute_period_s: int = 600,
) -> list[CriterionResult]:
    """WI compliance over a calendar year (IED Annex VI Part 8 pt 1.1 [V]; check C6).

    (a) no valid validated daily average > ``elv_daily``; for CO instead at most
    ``co_daily_fraction`` (3 %) of them (≥ 97 % ≤ ELV);
    (b) column A: no half-hour > ``elv_half_hour_a``; column B: ``count(> B) ≤
    half_hour_b_fraction × N`` (97 % ≤ B). The IED applies B "where relevant": pass only the
    column(s) the permit applies — each column given is listed and checked;
    (d) CO 10-min values (``co_ten_minute = (start_ns, values)``, NaN = not valid): in any
    ``window_s`` (24 h) window, ``count(> elv_co_ten_minute) ≤ ten_minute_fraction × n``
    (95 %) — see :func:`rolling_window_worst`. The IED lets all CO half-hours ≤ 100 in that
    period stand in for the 10-min rule; the permit's choice decides which ELV is passed here.

    >>> r = wi_criteria(pollutant="so2", elv_daily=None, elv_half_hour_a=200.0,
    ...                 elv_half_hour_b=50.0, daily=[],
    ...                 half_hourly_validated=np.array([40.0] * 15520 + [60.0] * 480))
    >>> [(c.name, c.passed, c.count, c.allowed) for c in r]
    [('wi_half_hour_a', True, 0, 0.0), ('wi_half_hour_b', True, 480, 480.0)]
    """
    results = []
    is_co = pollutant.lower() == "co"
    if elv_daily is not None:
        if is_co:
            results.append(
                _count_rule(
                    "wi_daily_co",
                    f"IED Annex VI Part 8: at least {1 - co_daily_fraction:.0%} of the validated "
                    "CO daily averages within the ELV",
                    _valid_daily(daily),
                    elv_daily,
                    exact_fraction(co_daily_fraction),
                )
            )
        else:
            results.append(
                _count_rule(
                    "wi_daily",
                    "IED Annex VI Part 8 (a): no validated daily average above the ELV",
                    _valid_daily(daily),
                    elv_daily,
                    Fraction(0),
                )
            )
    half_hours = _finite(half_hourly_validated)
    if elv_half_hour_a is not None:
        results.append(
            _count_rule(
                "wi_half_hour_a",
                "IED Annex VI Part 8 (b): no validated half-hourly average above column A",
                half_hours,
                elv_half_hour_a,
                Fraction(0),
            )
        )
    if elv_half_hour_b is not None:
        results.append(
            _count_rule(
                "wi_half_hour_b",
                f"IED Annex VI Part 8 (b): at least {1 - half_hour_b_fraction:.0%} of the "
                "validated half-hourly averages of the year within column B",
                half_hours,
                elv_half_hour_b,
                exact_fraction(half_hour_b_fraction),
            )
        )
    if co_ten_minute is not None and elv_co_ten_minute is not None:
        starts, values = co_ten_minute
        results.append(
            rolling_window_worst(
                starts,
                values,
                limit=elv_co_ten_minute,
                fraction=ten_minute_fraction,
                window_s=window_s,
                value_period_s=ten_minute_period_s,
            )
        )
    return results


def rolling_window_worst(
    start_ns: npt.ArrayLike,
    values: npt.ArrayLike,
    *,
    limit: float,
    fraction: float = 0.05,
    window_s: int = 86_400,
    value_period_s: int = 600,
) -> CriterionResult:
    """CO 10-min rule: ``count(> limit) ≤ fraction × n`` in every ``window_s`` window
    (IED Annex VI Part 8 (CO, 95 % of 10-min values in any 24 h) [V]; check C6).

    "Any 24-hour period" is read as every window ``[t, t + window_s)`` that lies inside the
    evaluated span ``[first start, last start + value_period_s)``; ``n`` counts the valid
    (finite) values in the window. The set of values in a window only changes when ``t`` or
    ``t + window_s`` crosses a value start, so it is enough (and exact) to test the windows
    starting at a value start and those ending at one (plus the one ending at the span end).
    Windows cut short by the start or end of the data are not evaluated, so seven late values
    of a single day are not judged as "7 of 7" (a span shorter than the window is evaluated as
    one window). Vectorised with ``searchsorted``/``cumsum``. The result reports the worst
    window (largest ``count − fraction·n``).

    >>> t = np.arange(144, dtype=np.int64) * 600 * NS_PER_S
    >>> v = np.array([120.0] * 136 + [160.0] * 8)
    >>> r = rolling_window_worst(t, v, limit=150.0)
    >>> r.passed, r.n, r.count, r.allowed
    (False, 144, 8, 7.2)
    """
    ts = np.asarray(start_ns, dtype=np.int64)
    vals = np.asarray(values, dtype=np.float64)
    if ts.shape != vals.shape or ts.ndim != 1:
        raise ValueError("start_ns and values must be one-dimensional and of equal length")
    if window_s <= 0 or value_period_s <= 0:
        raise ValueError("window_s and value_period_s must be positive")
    frac = exact_fraction(fraction)
    name = "wi_co_ten_minute"
    description = (
        f"IED Annex VI Part 8: at least {1 - fraction:.0%} of the CO 10-minute averages in "
        f"any {window_s / 3600:g} h period within the ELV"
    )
    finite = np.isfinite(vals)
    worst = float(vals[finite].max()) if finite.any() else None
    if ts.size == 0:
        return CriterionResult(name, description, True, 0, 0, 0.0, limit, None)

    order = np.argsort(ts, kind="stable")
    ts, vals, finite = ts[order], vals[order], finite[order]
    span_start = int(ts[0])
    span_end = int(ts[-1]) + value_period_s * NS_PER_S
    window_ns = window_s * NS_PER_S
    if span_end - span_start <= window_ns:
        candidates = np.array([span_start], dtype=np.int64)
        window_ns = span_end - span_start
    else:
        candidates = np.unique(np.concatenate((ts, ts - window_ns, [span_end - window_ns])))
        candidates = candidates[(candidates >= span_start) & (candidates <= span_end - window_ns)]

    cum_n = np.concatenate(([0], np.cumsum(finite)))
    cum_over = np.concatenate(([0], np.cumsum(finite & (vals > limit))))
    lo = np.searchsorted(ts, candidates, side="left")
    hi = np.searchsorted(ts, candidates + window_ns, side="left")
    n = cum_n[hi] - cum_n[lo]
    over = cum_over[hi] - cum_over[lo]
    # exact: over ≤ (num/den)·n  ⇔  over·den ≤ num·n
    margin = over * frac.denominator - frac.numerator * n
    k = int(np.argmax(margin))
    n_k, over_k = int(n[k]), int(over[k])
    return CriterionResult(
        name=name,
        description=description,
        passed=bool(margin[k] <= 0),
        n=n_k,
        count=over_k,
        allowed=float(frac * n_k),
        limit=limit,
        worst=worst,
    )


def overall(results: Iterable[CriterionResult]) -> bool:
    """True when every listed criterion passed (an empty list passes: nothing was required).

    >>> overall([])
    True
    """
    return all(r.passed for r in results)


def _valid_daily(daily: Sequence[DailyRecord]) -> list[float]:
    return [d.validated_mean for d in daily if d.valid and d.validated_mean is not None]


def _finite(values: npt.ArrayLike) -> Float64Array:
    arr = np.asarray(values, dtype=np.float64).ravel()
    result: Float64Array = arr[np.isfinite(arr)]
    return result


def _count_rule(
    name: str,
    description: str,
    values: Sequence[float] | Float64Array,
    limit: float,
    fraction: Fraction,
) -> CriterionResult:
    arr = np.asarray(values, dtype=np.float64)
    n = int(arr.size)
    count = int(np.count_nonzero(arr > limit))
    allowed = fraction * n
    return CriterionResult(
        name=name,
        description=description,
        passed=count <= allowed,
        n=n,
        count=count,
        allowed=float(allowed),
        limit=float(limit),
        worst=float(arr.max()) if n else None,
    )
