"""Short-term averages (STA) with validity, and validated values: the EN 17255-1 averaging chain.

Field-level readings (each with an analyser status) are averaged over fixed periods aligned to
the Unix epoch (half-hour or hour: for 1800/3600 s that is the UTC clock boundary, which is also
the local boundary in every whole-hour-offset zone). Only readings that are *valid* and taken
while the plant is in *normal operation* enter a mean (EN 17255-1: raw data are valid only if the
connection is valid and the AMS is measuring; IED Annex V Part 4: start-up and shut-down
periods are excluded). The period is then classified (:class:`StaState`):

* ``EXCLUDED`` — the plant was not in normal operation for more than half of the period
  (time-weighted from the plant-mode step function);
* ``VALID`` — ``n_valid × interval_s ≥ min_valid_fraction × period_s`` (default 2/3, rules A1
  "STA validity threshold", [K], a parameter);
* ``INVALID`` — operating, but too little valid data (AMS malfunction, maintenance,
  calibration or data loss); these count for the invalid-day rules (IED Annex V Part 3 pt 10,
  Annex VI Part 8; see :mod:`stream.compliance.longterm`).

The validated value is the measured (normalised) STA minus the 95 % confidence interval
(IED Annex V Part 3 pt 10, Annex VI Part 8 pt 1.2 [K]; rules A2; check C3).

Everything is vectorised over NumPy arrays: one sort, a few ``bincount`` and ``searchsorted``
calls per batch, so the per-reading cost is a handful of array operations.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import numpy.typing as npt

from stream.compliance.types import OperatingMode, StaCounts, StaState
from stream.model import NS_PER_S, Status

Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]
Int8Array = npt.NDArray[np.int8]

STATUS_CODES: dict[str, int] = {
    Status.VALID.value: 0,
    Status.MAINTENANCE.value: 1,
    Status.MALFUNCTION.value: 2,
    Status.CALIBRATION.value: 3,
}
"""Integer code of each :class:`stream.model.Status` in the ``status`` arrays."""

STA_STATE_CODES: dict[StaState, int] = {
    StaState.VALID: 0,
    StaState.INVALID: 1,
    StaState.EXCLUDED: 2,
}
"""Integer code of each :class:`StaState` in :attr:`StaBatch.state`."""

_STATE_BY_CODE: tuple[StaState, ...] = (StaState.VALID, StaState.INVALID, StaState.EXCLUDED)
_VALID, _MAINTENANCE, _MALFUNCTION, _CALIBRATION, _OTHER_MODE = 0, 1, 2, 3, 4
_N_CATEGORIES = 5
_FRACTION_DENOMINATOR = 1_000_000  # parameters such as 2/3 or 0.05 are read as exact fractions

CI_FRACTION: dict[str, dict[str, float]] = {
    # IED Annex V Part 3 pt 9 (LCP) [K for the IED text, V through national copies].
    "lcp": {"co": 0.10, "so2": 0.20, "nox": 0.20, "dust": 0.30},
    # IED Annex VI Part 6 pt 1.3 (WI) [V via WID Annex III]; Hg 40 % is the DE 17. BImSchV value.
    "wi": {
        "co": 0.10,
        "so2": 0.20,
        "nox": 0.20,
        "dust": 0.30,
        "toc": 0.30,
        "hcl": 0.40,
        "hf": 0.40,
        "hg": 0.40,
    },
}
"""95 % confidence interval as a fraction of the daily ELV, per regime and pollutant (rules A2).

NH3 has no IED confidence interval (40 % is the DE 44. BImSchV value for medium combustion
plants); pass ``fraction=`` to :func:`confidence_interval` when a permit sets one.
"""


def exact_fraction(x: float) -> Fraction:
    """A float parameter (2/3, 0.05, 0.1 …) as the exact fraction it stands for.

    Threshold comparisons (``count ≤ 0.05·N``, ``n·interval ≥ 2/3·period``) are done in exact
    arithmetic so that a boundary case (C5: 400 of 8,000) never flips on a rounding error.

    >>> exact_fraction(2 / 3), exact_fraction(0.05)
    (Fraction(2, 3), Fraction(1, 20))
    """
    return Fraction(x).limit_denominator(_FRACTION_DENOMINATOR)


def required_valid_readings(period_s: int, interval_s: float, min_valid_fraction: float) -> int:
    """Smallest number of valid readings that makes an STA valid (EN 17255-1, [K] 2/3).

    ``n_valid × interval_s ≥ min_valid_fraction × period_s``, evaluated exactly.

    >>> required_valid_readings(1800, 10, 2 / 3)
    120
    >>> required_valid_readings(3600, 60, 2 / 3)
    40
    """
    if period_s <= 0:
        raise ValueError(f"period_s must be positive, got {period_s}")
    if not interval_s > 0:
        raise ValueError(f"interval_s must be positive, got {interval_s}")
    if not 0 < min_valid_fraction <= 1:
        raise ValueError(f"min_valid_fraction must be in (0, 1], got {min_valid_fraction}")
    needed = exact_fraction(min_valid_fraction) * period_s / exact_fraction(interval_s)
    return math.ceil(needed)


def status_codes(statuses: Iterable[str]) -> npt.NDArray[np.int8]:
    """Status strings (or :class:`Status` members) as the integer codes of :data:`STATUS_CODES`.

    >>> status_codes([Status.VALID, "maintenance", "calibration"]).tolist()
    [0, 1, 3]
    """
    try:
        return np.array([STATUS_CODES[s] for s in statuses], dtype=np.int8)
    except KeyError as exc:
        raise ValueError(f"unknown status {exc.args[0]!r}") from None


@dataclass(frozen=True, eq=False)
class StaBatch:
    """Short-term averages of consecutive periods, one array element per period, in order.

    ``state`` holds the integer codes of :data:`STA_STATE_CODES` (0 valid, 1 invalid,
    2 excluded); use :meth:`state_at`, :meth:`states` or the ``*_mask`` properties to read it
    as :class:`StaState`. ``mean`` is the mean of the valid readings taken in normal operation
    (NaN when there are none), whatever the state: only ``state`` says whether it may be used.
    The arrays are not copied; treat them as read-only. Equality is not defined (compare the
    arrays).

    >>> b = StaBatch.from_counts(
    ...     start_ns=[0, 1800 * 10**9], mean=[42.0, float("nan")], n_valid=[180, 0],
    ...     n_maintenance=[0, 180], state=[0, 1], period_s=1800)
    >>> len(b), b.state_at(1), b.counts(1).maintenance
    (2, <StaState.INVALID: 'invalid'>, 180)
    """

    start_ns: Int64Array
    mean: Float64Array
    n_valid: Int64Array
    n_maintenance: Int64Array
    n_malfunction: Int64Array
    n_calibration: Int64Array
    n_other_mode: Int64Array
    state: Int8Array
    period_s: int

    def __post_init__(self) -> None:
        if self.period_s <= 0:
            raise ValueError(f"period_s must be positive, got {self.period_s}")
        n = len(self.start_ns)
        arrays = (
            self.mean,
            self.n_valid,
            self.n_maintenance,
            self.n_malfunction,
            self.n_calibration,
            self.n_other_mode,
            self.state,
        )
        if any(a.ndim != 1 or len(a) != n for a in (self.start_ns, *arrays)):
            raise ValueError("all StaBatch arrays must be one-dimensional and of equal length")

    @classmethod
    def from_counts(
        cls,
        *,
        start_ns: Sequence[int] | Int64Array,
        mean: Sequence[float] | Float64Array,
        state: Sequence[int] | npt.NDArray[np.integer],
        period_s: int,
        n_valid: Sequence[int] | Int64Array | None = None,
        n_maintenance: Sequence[int] | Int64Array | None = None,
        n_malfunction: Sequence[int] | Int64Array | None = None,
        n_calibration: Sequence[int] | Int64Array | None = None,
        n_other_mode: Sequence[int] | Int64Array | None = None,
    ) -> StaBatch:
        """Build a batch from plain sequences (counts default to zero); for tests and replays."""
        starts = np.asarray(start_ns, dtype=np.int64)
        n = len(starts)

        def counts(a: Sequence[int] | Int64Array | None) -> Int64Array:
            return np.zeros(n, np.int64) if a is None else np.asarray(a, dtype=np.int64)

        codes = np.asarray(state, dtype=np.int8)
        if codes.size and (codes.min() < 0 or codes.max() >= len(_STATE_BY_CODE)):
            raise ValueError("state codes must be 0 (valid), 1 (invalid) or 2 (excluded)")
        return cls(
            start_ns=starts,
            mean=np.asarray(mean, dtype=np.float64),
            n_valid=counts(n_valid),
            n_maintenance=counts(n_maintenance),
            n_malfunction=counts(n_malfunction),
            n_calibration=counts(n_calibration),
            n_other_mode=counts(n_other_mode),
            state=codes,
            period_s=period_s,
        )

    @classmethod
    def concat(cls, batches: Sequence[StaBatch]) -> StaBatch:
        """Join batches of the same period length (e.g. computed range by range)."""
        if not batches:
            raise ValueError("concat needs at least one batch")
        period_s = batches[0].period_s
        if any(b.period_s != period_s for b in batches):
            raise ValueError("cannot concatenate batches of different period lengths")
        return cls(
            start_ns=np.concatenate([b.start_ns for b in batches]),
            mean=np.concatenate([b.mean for b in batches]),
            n_valid=np.concatenate([b.n_valid for b in batches]),
            n_maintenance=np.concatenate([b.n_maintenance for b in batches]),
            n_malfunction=np.concatenate([b.n_malfunction for b in batches]),
            n_calibration=np.concatenate([b.n_calibration for b in batches]),
            n_other_mode=np.concatenate([b.n_other_mode for b in batches]),
            state=np.concatenate([b.state for b in batches]),
            period_s=period_s,
        )

    def __len__(self) -> int:
        return len(self.start_ns)

    def counts(self, i: int) -> StaCounts:
        """Field-level data counts of period ``i``."""
        return StaCounts(
            valid=int(self.n_valid[i]),
            maintenance=int(self.n_maintenance[i]),
            malfunction=int(self.n_malfunction[i]),
            calibration=int(self.n_calibration[i]),
            other_mode=int(self.n_other_mode[i]),
        )

    def state_at(self, i: int) -> StaState:
        """State of period ``i``."""
        return _STATE_BY_CODE[int(self.state[i])]

    def states(self) -> list[StaState]:
        """States of all periods, in order."""
        return [_STATE_BY_CODE[c] for c in self.state.tolist()]

    @property
    def end_ns(self) -> Int64Array:
        """Exclusive end of each period."""
        return self.start_ns + np.int64(self.period_s * NS_PER_S)

    @property
    def valid_mask(self) -> npt.NDArray[np.bool_]:
        mask: npt.NDArray[np.bool_] = self.state == STA_STATE_CODES[StaState.VALID]
        return mask

    @property
    def invalid_mask(self) -> npt.NDArray[np.bool_]:
        mask: npt.NDArray[np.bool_] = self.state == STA_STATE_CODES[StaState.INVALID]
        return mask

    @property
    def excluded_mask(self) -> npt.NDArray[np.bool_]:
        mask: npt.NDArray[np.bool_] = self.state == STA_STATE_CODES[StaState.EXCLUDED]
        return mask


def short_term_averages(
    ts_ns: npt.ArrayLike,
    values: npt.ArrayLike,
    status: npt.ArrayLike,
    *,
    start_ns: int,
    end_ns: int,
    period_s: int,
    interval_s: float,
    min_valid_fraction: float = 2 / 3,
    mode_ts_ns: npt.ArrayLike | None = None,
    mode_values: npt.ArrayLike | None = None,
    carried: PeriodTotals | None = None,
) -> StaBatch:
    """Short-term averages of every aligned period in ``[start_ns, end_ns)`` (EN 17255-1; C3).

    Parameters
    ----------
    ts_ns, values, status
        Field-level readings: epoch ns, value, status code (:data:`STATUS_CODES`). Need not be
        sorted (they are sorted stably by time); readings outside the range are ignored; of
        readings with the same timestamp the last one wins (as in storage). A reading flagged
        valid whose value is not finite cannot be used and is counted as a malfunction.
    start_ns, end_ns
        Range to evaluate; both must lie on a period boundary (multiples of ``period_s`` since
        the epoch), else ``ValueError`` (see :func:`align_down`). Every period is returned, also
        those without readings (then ``INVALID`` — data loss — or ``EXCLUDED``).
    period_s
        STA length: 1800 (half-hour), 3600 (hour), 600 (10-min CO values, IED Annex VI).
    interval_s
        Nominal acquisition interval of the readings (EN 17255-1: at most 10 s).
    min_valid_fraction
        Share of the period valid data must cover (default 2/3, rules A1 [K]).
    mode_ts_ns, mode_values
        Plant operating mode (:class:`OperatingMode`) as a step function: the mode at ``t`` is
        the last value at or before ``t`` (last one wins on equal times); NORMAL before the
        first change and when none are given. Any value other than 0 (NORMAL), NaN included,
        counts as not in normal operation. Changes before ``start_ns`` matter (they set the
        mode at the start), so pass the history.
    carried
        Totals of readings no longer passed (earlier parts of the periods, see
        :class:`PeriodTotals`), aligned at ``start_ns``; added before the means and states.

    State rule: EXCLUDED if the plant was not in normal operation for more than half of the
    period (time-weighted); else VALID if ``n_valid × interval_s ≥ min_valid_fraction ×
    period_s`` (exactly, :func:`required_valid_readings`); else INVALID.

    Examples
    --------
    One hour at 60 s: 40 valid readings (2/3 of the hour) then 20 in maintenance.

    >>> ts = np.arange(60, dtype=np.int64) * 60 * NS_PER_S
    >>> st = np.array([0] * 40 + [1] * 20)
    >>> b = short_term_averages(ts, np.full(60, 100.0), st, start_ns=0, end_ns=3600 * NS_PER_S,
    ...                         period_s=3600, interval_s=60)
    >>> b.state_at(0), float(b.mean[0]), b.counts(0).maintenance
    (<StaState.VALID: 'valid'>, 100.0, 20)
    """
    period_ns = _period_ns(period_s)
    _check_range(start_ns, end_ns, period_ns)
    n_periods = (end_ns - start_ns) // period_ns
    required = required_valid_readings(period_s, interval_s, min_valid_fraction)
    steps = _ModeSteps.build(mode_ts_ns, mode_values, start_ns, end_ns)
    totals = _totals(
        ts_ns, values, status, steps, start_ns=start_ns, n_periods=n_periods, period_s=period_s
    )
    if carried is not None:
        totals = totals.plus(carried)
    counts, sums = totals.counts[:n_periods], totals.valid_sum[:n_periods]
    n_valid = counts[:, _VALID]
    mean = np.full(n_periods, np.nan)
    np.divide(sums, n_valid, out=mean, where=n_valid > 0)

    bounds = start_ns + np.arange(n_periods + 1, dtype=np.int64) * np.int64(period_ns)
    not_normal_ns = np.diff(steps.not_normal_time(bounds))
    state = np.where(
        2 * not_normal_ns > period_ns,
        STA_STATE_CODES[StaState.EXCLUDED],
        np.where(
            n_valid >= required,
            STA_STATE_CODES[StaState.VALID],
            STA_STATE_CODES[StaState.INVALID],
        ),
    ).astype(np.int8)
    return StaBatch(
        start_ns=bounds[:-1].copy(),
        mean=mean,
        n_valid=n_valid.copy(),
        n_maintenance=counts[:, _MAINTENANCE].copy(),
        n_malfunction=counts[:, _MALFUNCTION].copy(),
        n_calibration=counts[:, _CALIBRATION].copy(),
        n_other_mode=counts[:, _OTHER_MODE].copy(),
        state=state,
        period_s=period_s,
    )


@dataclass(frozen=True, eq=False)
class PeriodTotals:
    """What the readings of consecutive aligned periods add up to, one row per period from
    ``start_ns``: the sum of the values that enter the mean and the reading count per category
    (valid, maintenance, malfunction, calibration, other mode).

    Totals of disjoint sets of readings add up (:meth:`plus`), so the readings of a period that
    is still filling can be folded in part by part and dropped (live compliance keeps the totals
    of what has been settled instead of the readings); :func:`short_term_averages` then gives
    the same counts and states as from all the readings at once, and the same means up to
    floating-point rounding of the sum.

    >>> t = period_totals([0, 60 * NS_PER_S], [1.0, 3.0], [0, 1], start_ns=0,
    ...                   end_ns=3600 * NS_PER_S, period_s=1800)
    >>> float(t.valid_sum[0]), t.counts[0].tolist(), len(t)
    (1.0, [1, 1, 0, 0, 0], 2)
    """

    start_ns: int
    period_s: int
    valid_sum: Float64Array
    counts: Int64Array  # shape (periods, 5)

    def __len__(self) -> int:
        return len(self.valid_sum)

    def plus(self, other: PeriodTotals) -> PeriodTotals:
        """The totals of both sets of readings (aligned at the same start; the longer wins)."""
        if (other.start_ns, other.period_s) != (self.start_ns, self.period_s):
            raise ValueError("period totals must share their start and period length")
        a, b = (self, other) if len(self) >= len(other) else (other, self)
        sums, counts = a.valid_sum.copy(), a.counts.copy()
        sums[: len(b)] += b.valid_sum
        counts[: len(b)] += b.counts
        return PeriodTotals(self.start_ns, self.period_s, sums, counts)

    def before(self, ts_ns: int) -> PeriodTotals:
        """Only the periods that start before ``ts_ns``."""
        n = max(0, -(-(ts_ns - self.start_ns) // _period_ns(self.period_s)))
        return PeriodTotals(self.start_ns, self.period_s, self.valid_sum[:n], self.counts[:n])


def period_totals(
    ts_ns: npt.ArrayLike,
    values: npt.ArrayLike,
    status: npt.ArrayLike,
    *,
    start_ns: int,
    end_ns: int,
    period_s: int,
    mode_ts_ns: npt.ArrayLike | None = None,
    mode_values: npt.ArrayLike | None = None,
) -> PeriodTotals:
    """The :class:`PeriodTotals` of readings over the aligned periods of ``[start_ns, end_ns)``,
    by the rules of :func:`short_term_averages` (same arguments)."""
    period_ns = _period_ns(period_s)
    _check_range(start_ns, end_ns, period_ns)
    steps = _ModeSteps.build(mode_ts_ns, mode_values, start_ns, end_ns)
    n_periods = (end_ns - start_ns) // period_ns
    return _totals(
        ts_ns, values, status, steps, start_ns=start_ns, n_periods=n_periods, period_s=period_s
    )


def _totals(
    ts_ns: npt.ArrayLike,
    values: npt.ArrayLike,
    status: npt.ArrayLike,
    steps: _ModeSteps,
    *,
    start_ns: int,
    n_periods: int,
    period_s: int,
) -> PeriodTotals:
    """:func:`period_totals` with the plant-mode steps already built (they are built once
    per call of :func:`short_term_averages`, which also needs them for the time share)."""
    period_ns = period_s * NS_PER_S
    end_ns = start_ns + n_periods * period_ns
    ts = np.asarray(ts_ns, dtype=np.int64)
    vals = np.asarray(values, dtype=np.float64)
    codes = np.asarray(status)
    if not (ts.ndim == vals.ndim == codes.ndim == 1) or not len(ts) == len(vals) == len(codes):
        raise ValueError("ts_ns, values and status must be one-dimensional and of equal length")
    if codes.size and (codes.dtype.kind not in "iu" or codes.min() < 0 or codes.max() > 3):
        raise ValueError("status must hold the integer codes of STATUS_CODES (0..3)")

    inside = (ts >= start_ns) & (ts < end_ns)
    ts, vals, cat = ts[inside], vals[inside], codes[inside].astype(np.int64)
    if ts.size > 1 and bool(np.any(ts[1:] < ts[:-1])):
        order = np.argsort(ts, kind="stable")
        ts, vals, cat = ts[order], vals[order], cat[order]
    if ts.size > 1:
        last = np.ones(ts.size, dtype=np.bool_)
        last[:-1] = ts[1:] != ts[:-1]  # of equal timestamps keep the last (stable order)
        if not bool(last.all()):
            ts, vals, cat = ts[last], vals[last], cat[last]

    cat[(cat == _VALID) & ~np.isfinite(vals)] = _MALFUNCTION
    cat[~steps.normal_at(ts)] = _OTHER_MODE

    idx = (ts - start_ns) // period_ns
    counts = np.bincount(idx * _N_CATEGORIES + cat, minlength=n_periods * _N_CATEGORIES)
    valid = cat == _VALID
    return PeriodTotals(
        start_ns,
        period_s,
        np.bincount(idx[valid], weights=vals[valid], minlength=n_periods).astype(np.float64),
        counts.reshape(n_periods, _N_CATEGORIES).astype(np.int64),
    )


def ten_minute_averages(
    ts_ns: npt.ArrayLike,
    values: npt.ArrayLike,
    status: npt.ArrayLike,
    *,
    start_ns: int,
    end_ns: int,
    interval_s: float,
    min_valid_fraction: float = 2 / 3,
    mode_ts_ns: npt.ArrayLike | None = None,
    mode_values: npt.ArrayLike | None = None,
) -> StaBatch:
    """10-minute averages for the WI CO rule (IED Annex VI Part 3 CO 150 mg/Nm³; C6).

    Same rules as :func:`short_term_averages` with ``period_s=600``.
    """
    return short_term_averages(
        ts_ns,
        values,
        status,
        start_ns=start_ns,
        end_ns=end_ns,
        period_s=600,
        interval_s=interval_s,
        min_valid_fraction=min_valid_fraction,
        mode_ts_ns=mode_ts_ns,
        mode_values=mode_values,
    )


def align_down(ts_ns: int, period_s: int) -> int:
    """Start of the epoch-aligned period containing ``ts_ns`` (use it to build STA ranges).

    >>> align_down(5_399 * NS_PER_S, 1800) // NS_PER_S
    3600
    """
    period_ns = _period_ns(period_s)
    return (ts_ns // period_ns) * period_ns


def validated(measured: npt.ArrayLike, ci_abs: float | npt.ArrayLike) -> Float64Array:
    """Validated values: measured − confidence interval (IED Annex V Part 3 pt 10, Annex VI
    Part 8 pt 1.2 [K]; rules A2; check C3).

    The result is **not** clamped at 0: a validated value below zero is what the rule gives,
    and clamping would bias the long-term averages upwards (clamp for display only). NaN stays
    NaN. ``ci_abs`` (scalar or array, broadcast) must be ≥ 0.

    >>> validated(np.array([280.0, 330.0, 20.0, np.nan]), 50.0).tolist()
    [230.0, 280.0, -30.0, nan]
    """
    ci = np.asarray(ci_abs, dtype=np.float64)
    if np.any(~(ci >= 0)):
        raise ValueError("the confidence interval must be a non-negative number")
    result: Float64Array = np.asarray(measured, dtype=np.float64) - ci
    return result


def confidence_interval(
    regime: str,
    pollutant: str,
    elv: float,
    *,
    qal2_uncertainty: float | None = None,
    fraction: float | None = None,
) -> float:
    """Absolute 95 % confidence interval to subtract (IED Annex V Part 3 pt 9 / Annex VI Part 6
    pt 1.3 [K]; rules A2; check C3).

    Default: ``CI_FRACTION[regime][pollutant] × elv`` (the daily ELV). With
    ``qal2_uncertainty`` (German practice, 44. BImSchV Anl. 2 [V]) the QAL2 uncertainty is used,
    capped at ``fraction × ELV``: ``min(qal2, fraction × ELV)``. ``fraction`` overrides the
    table (e.g. a permit setting 40 % for NH3); a pair not in the table without an override is
    a ``ValueError``, never a silent zero.

    >>> confidence_interval("lcp", "nox", 250.0)
    50.0
    >>> confidence_interval("lcp", "nox", 250.0, qal2_uncertainty=31.5)
    31.5
    >>> confidence_interval("lcp", "nox", 250.0, qal2_uncertainty=80.0)
    50.0
    """
    if not elv > 0:
        raise ValueError(f"the ELV must be positive, got {elv}")
    if fraction is None:
        try:
            fraction = CI_FRACTION[str(regime)][pollutant]
        except KeyError:
            raise ValueError(
                f"no confidence interval for {pollutant!r} under regime {regime!r}; "
                "pass fraction= from the permit"
            ) from None
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    ci = fraction * elv
    if qal2_uncertainty is not None:
        if not qal2_uncertainty >= 0:
            raise ValueError(f"qal2_uncertainty must be >= 0, got {qal2_uncertainty}")
        ci = min(qal2_uncertainty, ci)
    return ci


def _period_ns(period_s: int) -> int:
    if isinstance(period_s, bool) or not isinstance(period_s, int) or period_s <= 0:
        raise ValueError(f"period_s must be a positive whole number of seconds, got {period_s!r}")
    return period_s * NS_PER_S


def _check_range(start_ns: int, end_ns: int, period_ns: int) -> None:
    if start_ns % period_ns or end_ns % period_ns:
        raise ValueError(
            f"start_ns and end_ns must lie on {period_ns // NS_PER_S} s period boundaries "
            "(use align_down)"
        )
    if end_ns < start_ns:
        raise ValueError("end_ns is before start_ns")


@dataclass(frozen=True)
class _ModeSteps:
    """The plant-mode step function, clipped to the evaluated range.

    ``times`` are sorted (stably, so the last of equal times wins a lookup) and clipped to
    ``[start, end]``, which keeps the mode in force at every instant of the range unchanged
    and keeps the nanosecond integrals far from int64 overflow.
    """

    times: Int64Array
    not_normal: npt.NDArray[np.bool_]
    cumulative: Int64Array  # not-normal ns from times[0] up to times[i]

    @classmethod
    def build(
        cls,
        mode_ts_ns: npt.ArrayLike | None,
        mode_values: npt.ArrayLike | None,
        start_ns: int,
        end_ns: int,
    ) -> _ModeSteps:
        if (mode_ts_ns is None) != (mode_values is None):
            raise ValueError("give both mode_ts_ns and mode_values, or neither")
        times = np.asarray([] if mode_ts_ns is None else mode_ts_ns, dtype=np.int64)
        modes = np.asarray([] if mode_values is None else mode_values, dtype=np.float64)
        if times.ndim != 1 or times.shape != modes.shape:
            raise ValueError("mode_ts_ns and mode_values must be one-dimensional, equal length")
        order = np.argsort(times, kind="stable")
        times = np.clip(times[order], start_ns, end_ns)
        not_normal = modes[order] != float(OperatingMode.NORMAL)
        widths = np.diff(times) * not_normal[:-1]
        cumulative = np.concatenate(([0], np.cumsum(widths))).astype(np.int64)
        return cls(times, not_normal, cumulative)

    def _index(self, t: Int64Array) -> npt.NDArray[np.intp]:
        return np.searchsorted(self.times, t, side="right") - 1

    def normal_at(self, t: Int64Array) -> npt.NDArray[np.bool_]:
        """Whether the plant was in normal operation at each instant."""
        if self.times.size == 0:
            return np.ones(t.shape, dtype=np.bool_)
        i = self._index(t)
        return (i < 0) | ~self.not_normal[np.maximum(i, 0)]

    def not_normal_time(self, t: Int64Array) -> Int64Array:
        """Cumulative not-normal time (ns) up to each instant (a monotone function of t)."""
        if self.times.size == 0:
            return np.zeros(t.shape, dtype=np.int64)
        i = self._index(t)
        j = np.maximum(i, 0)
        inside = self.cumulative[j] + (t - self.times[j]) * self.not_normal[j]
        return np.where(i < 0, 0, inside).astype(np.int64)
