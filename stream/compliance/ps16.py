"""PEMS relative accuracy test (40 CFR 60 Appendix B, Performance Specification 16).

A predictive emission monitoring system (PEMS) replaces an analyser with a model, so it must
prove against a reference method (RM) that it tracks the real stack: a relative accuracy test
audit (RATA: 27 runs at three loads for certification, 9 runs at one load yearly) or a relative
accuracy audit (RAA, quarterly in the first year) [V]. The statistics for one set of paired
runs are here (rules A5, feature (b) #20, check C12):

- differences ``d = RM − PEMS``, their mean ``d̄`` and standard deviation ``S_d`` (n − 1);
- confidence coefficient ``cc = t(0.975, n−1) · S_d / √n`` [V];
- ``RA = (|d̄| + |cc|) / RM̄ × 100`` [V], judged in bands of the RM mean [K, PS-16 §13];
- bias t-test: biased when ``|d̄| > |cc|`` [V];
- Pearson correlation ``r ≥ 0.8`` [V];
- F-test ``F = S²_PEMS / S²_RM ≤ F(0.95; n−1, n−1)`` [V]: the PEMS may not scatter
  significantly more than the reference method (one-sided, PEMS variance in the numerator).

Check C12 (9 runs):

>>> rm = [52, 55, 49, 60, 58, 51, 54, 57, 53]
>>> pems = [50, 56, 47, 58, 59, 49, 52, 55, 54]
>>> result = relative_accuracy(rm, pems)
>>> round(result.ra_percent, 2), round(result.confidence_coefficient, 3), result.passed
(3.96, 1.153, True)
>>> round(result.f, 2), round(result.f_critical, 2)
(1.36, 3.44)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
from scipy import stats

Units = Literal["ppm", "percent_diluent"]

MIN_RUNS: Final = 3
"""Fewest paired runs accepted: below three, ``S_d`` and ``r`` carry no information."""
T_QUANTILE: Final = 0.975
"""Two-sided 95 % Student t quantile in the confidence coefficient (PS-16) [V]."""
F_QUANTILE: Final = 0.95
"""F-test confidence level (PS-16, 74 FR 18474 correction) [V]."""
R_MIN: Final = 0.8
"""Minimum Pearson correlation between PEMS and RM (PS-16) [V]."""


@dataclass(frozen=True)
class Ps16Limits:
    """Relative-accuracy acceptance limits of PS-16 §13 as rules A5 states them [K].

    Open point 4 of the rules: verify against the PS-16 text before relying on them, which is
    why they are a parameter. For pollutant PEMS (ppm) the band is chosen by the RM mean:
    RA ≤ 10 % above 100 ppm, RA ≤ 20 % from 10 to 100 ppm, and ``|d̄| ≤ 2 ppm`` below 10 ppm.
    For diluent PEMS (O2/CO2 in %) the alternative is ``|d̄| ≤ 1 %`` absolute; the RA limit that
    applies otherwise is taken as the > 100 ppm one (10 %), since diluent levels of a few percent
    are tens of thousands of ppm.
    """

    high_ppm: float = 100.0
    ra_high_percent: float = 10.0
    low_ppm: float = 10.0
    ra_mid_percent: float = 20.0
    abs_low_ppm: float = 2.0
    ra_diluent_percent: float = 10.0
    abs_diluent_percent: float = 1.0
    bias_fails: bool = True
    """PS-16 requires the bias t-test [V]; whether a biased PEMS fails outright or is corrected
    is [K]: by default a bias fails the audit."""


DEFAULT_LIMITS: Final = Ps16Limits()


@dataclass(frozen=True)
class RelativeAccuracy:
    """Statistics and verdict of one PS-16 relative accuracy test.

    ``criteria`` has one line per criterion, each ending in ``pass`` or ``FAIL``, with the
    numbers used; ``passed`` is true when every criterion passes. ``r`` and ``f`` are NaN when
    undefined (a constant series), which fails that criterion.
    """

    n: int
    mean_difference: float
    sd_difference: float
    confidence_coefficient: float
    rm_mean: float
    ra_percent: float
    bias: bool
    r: float
    f: float
    f_critical: float
    passed: bool
    criteria: list[str]


def _verdict(ok: bool) -> str:
    return "pass" if ok else "FAIL"


def _variance_ratio(var_pems: float, var_rm: float) -> float:
    """F = S²_PEMS / S²_RM; infinite for a constant RM against a varying PEMS, NaN if both are
    constant (the test says nothing then)."""
    if var_rm > 0.0:
        return var_pems / var_rm
    return math.inf if var_pems > 0.0 else math.nan


def _accuracy_criterion(
    ra: float, mean_diff: float, rm_mean: float, units: Units, limits: Ps16Limits
) -> tuple[bool, str]:
    """RA band check of PS-16 §13 [K] (see :class:`Ps16Limits`)."""
    if units == "percent_diluent":
        ok = ra <= limits.ra_diluent_percent or abs(mean_diff) <= limits.abs_diluent_percent
        text = (
            f"accuracy (diluent): RA {ra:.2f} % ≤ {limits.ra_diluent_percent:g} % or "
            f"|d̄| {abs(mean_diff):.3f} ≤ {limits.abs_diluent_percent:g} % absolute"
        )
        return ok, f"{text}: {_verdict(ok)}"
    if rm_mean > limits.high_ppm:
        ok = ra <= limits.ra_high_percent
        text = f"accuracy: RA {ra:.2f} % ≤ {limits.ra_high_percent:g} % (RM̄ {rm_mean:.2f} ppm"
        text += f" > {limits.high_ppm:g} ppm)"
    elif rm_mean >= limits.low_ppm:
        ok = ra <= limits.ra_mid_percent
        text = f"accuracy: RA {ra:.2f} % ≤ {limits.ra_mid_percent:g} % (RM̄ {rm_mean:.2f} ppm"
        text += f" in {limits.low_ppm:g}–{limits.high_ppm:g} ppm)"
    else:
        ok = abs(mean_diff) <= limits.abs_low_ppm
        text = f"accuracy: |d̄| {abs(mean_diff):.3f} ppm ≤ {limits.abs_low_ppm:g} ppm"
        text += f" (RM̄ {rm_mean:.2f} ppm < {limits.low_ppm:g} ppm)"
    return ok, f"{text}: {_verdict(ok)}"


def relative_accuracy(
    rm: Sequence[float],
    pems: Sequence[float],
    *,
    units: Units = "ppm",
    limits: Ps16Limits = DEFAULT_LIMITS,
) -> RelativeAccuracy:
    """Relative accuracy, bias, correlation and F-test of paired RM/PEMS runs (PS-16; C12).

    ``rm[i]`` and ``pems[i]`` are the reference-method and PEMS averages of run ``i`` (same
    units). ``units`` selects the ppm bands or the diluent criterion (:class:`Ps16Limits`).

    Raises ``ValueError`` for series of unequal length, fewer than :data:`MIN_RUNS` runs,
    non-finite values or a non-positive RM mean (RA is relative to it).

    >>> relative_accuracy([10, 20, 30], [10, 20, 30]).ra_percent
    0.0
    """
    ref = np.asarray(rm, dtype=np.float64)
    pred = np.asarray(pems, dtype=np.float64)
    if ref.ndim != 1 or ref.shape != pred.shape:
        raise ValueError(f"rm and pems must be paired 1-D series, got {ref.shape} {pred.shape}")
    n = int(ref.size)
    if n < MIN_RUNS:
        raise ValueError(f"need at least {MIN_RUNS} paired runs, got {n}")
    if not (np.all(np.isfinite(ref)) and np.all(np.isfinite(pred))):
        raise ValueError("rm and pems must be finite")
    rm_mean = float(ref.mean())
    if rm_mean <= 0.0:
        raise ValueError(f"the RM mean must be positive for a relative accuracy, got {rm_mean}")

    diff = ref - pred
    mean_diff = float(diff.mean())
    sd_diff = float(diff.std(ddof=1))
    t_value = float(stats.t.ppf(T_QUANTILE, n - 1))
    cc = t_value * sd_diff / math.sqrt(n)
    ra = (abs(mean_diff) + abs(cc)) / rm_mean * 100.0
    bias = abs(mean_diff) > abs(cc)

    var_rm = float(ref.var(ddof=1))
    var_pems = float(pred.var(ddof=1))
    r = float(np.corrcoef(ref, pred)[0, 1]) if var_rm > 0.0 and var_pems > 0.0 else math.nan
    f = _variance_ratio(var_pems, var_rm)
    f_critical = float(stats.f.ppf(F_QUANTILE, n - 1, n - 1))

    accuracy_ok, accuracy_text = _accuracy_criterion(ra, mean_diff, rm_mean, units, limits)
    bias_ok = not (bias and limits.bias_fails)
    r_ok = r >= R_MIN  # NaN compares false
    f_ok = f <= f_critical
    criteria = [
        accuracy_text,
        f"bias: |d̄| {abs(mean_diff):.3f} {'>' if bias else '≤'} |cc| {abs(cc):.3f}"
        f"{' (biased)' if bias else ''}: {_verdict(bias_ok)}",
        f"correlation: r {r:.3f} ≥ {R_MIN:g}: {_verdict(r_ok)}",
        f"F-test: F = S²_PEMS/S²_RM {f:.2f} ≤ F({F_QUANTILE:g}; {n - 1}, {n - 1}) "
        f"{f_critical:.2f}: {_verdict(f_ok)}",
    ]
    return RelativeAccuracy(
        n=n,
        mean_difference=mean_diff,
        sd_difference=sd_diff,
        confidence_coefficient=cc,
        rm_mean=rm_mean,
        ra_percent=ra,
        bias=bias,
        r=r,
        f=f,
        f_critical=f_critical,
        passed=accuracy_ok and bias_ok and r_ok and f_ok,
        criteria=criteria,
    )
