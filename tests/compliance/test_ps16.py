"""PS-16 PEMS relative accuracy, bias, correlation and F-test (40 CFR 60 App. B; check C12).

Worked example C12 with exact numbers, one failing case per criterion (each failing alone),
the RM-mean bands, and Hypothesis properties against a plain-Python reference.
"""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from stream.compliance.ps16 import (
    Ps16Limits,
    RelativeAccuracy,
    relative_accuracy,
)

FAST = settings(max_examples=150, deadline=None)

C12_RM = [52.0, 55.0, 49.0, 60.0, 58.0, 51.0, 54.0, 57.0, 53.0]
C12_PEMS = [50.0, 56.0, 47.0, 58.0, 59.0, 49.0, 52.0, 55.0, 54.0]


def verdicts(result: RelativeAccuracy) -> list[bool]:
    """Pass/fail of accuracy, bias, correlation and F-test, in that order."""
    assert len(result.criteria) == 4
    return [line.endswith(": pass") for line in result.criteria]


# --- C12 ------------------------------------------------------------------------------------


def test_c12_worked_example() -> None:
    result = relative_accuracy(C12_RM, C12_PEMS)
    assert result.n == 9
    assert result.mean_difference == pytest.approx(1.000)  # d = RM − PEMS
    assert result.sd_difference == pytest.approx(1.500)
    assert result.confidence_coefficient == pytest.approx(1.153, abs=5e-4)  # 2.306·1.5/3
    assert result.rm_mean == pytest.approx(54.33, abs=5e-3)
    assert round(result.ra_percent, 2) == 3.96
    assert result.bias is False
    assert round(result.r, 3) == 0.935
    assert result.f == pytest.approx(17.0 / 12.5)  # S²_PEMS / S²_RM = 1.36
    assert result.f_critical == pytest.approx(3.44, abs=5e-3)
    assert result.passed is True
    assert verdicts(result) == [True, True, True, True]
    assert "10–100 ppm" in result.criteria[0]


# --- one failing case per criterion -------------------------------------------------------------

MID_RM = [20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0]
ALTERNATING = [1, -1, 1, -1, 1, -1, 1, -1, 0]


def scatter(rm: list[float], amplitude: float, offset: float = 0.0) -> list[float]:
    """PEMS = RM − offset ∓ amplitude, alternating, so d̄ = offset and S_d grows with it."""
    return [x - offset - amplitude * s for x, s in zip(rm, ALTERNATING, strict=True)]


def test_accuracy_fails_above_20_percent_in_mid_band() -> None:
    passing = relative_accuracy(MID_RM, scatter(MID_RM, 12.0))
    assert passing.ra_percent == pytest.approx(15.37, abs=5e-3)
    assert passing.passed
    result = relative_accuracy(MID_RM, scatter(MID_RM, 18.0))
    assert result.ra_percent == pytest.approx(23.06, abs=5e-3)
    assert verdicts(result) == [False, True, True, True]
    assert not result.passed


def test_accuracy_band_tightens_to_10_percent_above_100_ppm() -> None:
    # The same shape doubled: RA is unchanged (15.37 %) but RM̄ = 120 ppm > 100 ppm.
    rm = [2 * x for x in MID_RM]
    result = relative_accuracy(rm, scatter(rm, 24.0))
    assert result.ra_percent == pytest.approx(15.37, abs=5e-3)
    assert verdicts(result) == [False, True, True, True]
    assert "> 100 ppm" in result.criteria[0]


def test_accuracy_below_10_ppm_uses_2_ppm_mean_difference() -> None:
    rm = [1.0, 3.0, 5.0, 7.0, 9.0, 11.0, 13.0, 15.0, 17.0]  # RM̄ = 9 ppm
    failing = relative_accuracy(rm, [x - d for x, d in zip(rm, [5.5, -1] * 4 + [5], strict=True)])
    assert failing.mean_difference == pytest.approx(23 / 9)
    assert verdicts(failing) == [False, True, True, True]
    assert "< 10 ppm" in failing.criteria[0]
    # |d̄| = 1.556 ≤ 2 ppm passes although RA is far above 20 %
    passing = relative_accuracy(rm, [x - d for x, d in zip(rm, [4.5, -2] * 4 + [5], strict=True)])
    assert passing.ra_percent > 20.0
    assert verdicts(passing) == [True, True, True, True]


@pytest.mark.parametrize(
    ("rm", "band"), [([90.0, 100.0, 110.0], "10–100"), ([5.0, 10.0, 15.0], "10–100")]
)
def test_band_edges_belong_to_the_middle_band(rm: list[float], band: str) -> None:
    result = relative_accuracy(rm, [x + 0.5 * s for x, s in zip(rm, [1, -1, 0], strict=True)])
    assert band in result.criteria[0]


HIGH_RM = [500.0, 510.0, 490.0, 520.0, 480.0, 505.0, 495.0, 515.0, 485.0]


def test_bias_fails_when_mean_difference_exceeds_cc() -> None:
    pems = [x - 3.0 + 0.2 * (-1) ** i for i, x in enumerate(HIGH_RM)]  # reads ~3 ppm low
    result = relative_accuracy(HIGH_RM, pems)
    assert result.bias is True
    assert abs(result.mean_difference) > abs(result.confidence_coefficient)
    assert verdicts(result) == [True, False, True, True]
    assert not result.passed
    # whether a bias fails the audit is a [K] parameter
    lenient = relative_accuracy(HIGH_RM, pems, limits=Ps16Limits(bias_fails=False))
    assert lenient.bias is True
    assert lenient.passed


def test_correlation_fails_below_0_8() -> None:
    rm = [500.0, 501.0, 502.0, 503.0, 504.0, 505.0, 506.0, 507.0, 508.0]
    pems = [504.0, 500.0, 508.0, 502.0, 506.0, 501.0, 503.0, 507.0, 505.0]  # same values, shuffled
    result = relative_accuracy(rm, pems)
    assert result.r == pytest.approx(0.233, abs=5e-4)
    assert result.f == 1.0
    assert verdicts(result) == [True, True, False, True]


def test_f_test_fails_when_pems_scatters_much_more_than_rm() -> None:
    mean = sum(HIGH_RM) / len(HIGH_RM)
    pems = [mean + 2.5 * (x - mean) for x in HIGH_RM]  # variance × 6.25, r = 1, d̄ = 0
    result = relative_accuracy(HIGH_RM, pems)
    assert result.f == pytest.approx(6.25)
    assert result.f > result.f_critical
    assert verdicts(result) == [True, True, True, False]
    # F compares the PEMS variance to the RM variance, so swapping the roles passes it
    assert relative_accuracy(pems, HIGH_RM).f == pytest.approx(1 / 6.25)


def test_diluent_passes_on_1_percent_absolute_alternative() -> None:
    o2 = [3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0]
    lenient = Ps16Limits(bias_fails=False)
    close = relative_accuracy(
        o2,
        [x - 0.8 + 0.05 * (-1) ** i for i, x in enumerate(o2)],
        units="percent_diluent",
        limits=lenient,
    )
    assert close.ra_percent > 10.0
    assert close.passed
    assert "diluent" in close.criteria[0]
    far = relative_accuracy(
        o2,
        [x - 1.2 + 0.05 * (-1) ** i for i, x in enumerate(o2)],
        units="percent_diluent",
        limits=lenient,
    )
    assert verdicts(far) == [False, True, True, True]


def test_constant_series_make_r_and_f_undefined_and_fail() -> None:
    result = relative_accuracy([50.0, 50.0, 50.0], [50.0, 50.0, 50.0])
    assert result.ra_percent == 0.0
    assert math.isnan(result.r)
    assert math.isnan(result.f)
    assert verdicts(result) == [True, True, False, False]
    assert math.isinf(relative_accuracy([50.0, 50.0, 50.0], [49.0, 50.0, 51.0]).f)


@pytest.mark.parametrize(
    ("rm", "pems", "match"),
    [
        ([1.0, 2.0, 3.0], [1.0, 2.0], "paired"),
        ([1.0, 2.0], [1.0, 2.0], "at least 3"),
        ([1.0, 2.0, math.nan], [1.0, 2.0, 3.0], "finite"),
        ([-1.0, 0.0, 1.0], [1.0, 2.0, 3.0], "RM mean"),
    ],
)
def test_rejects_bad_input(rm: list[float], pems: list[float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        relative_accuracy(rm, pems)


# --- properties -------------------------------------------------------------------------------


def reference(rm: list[float], pems: list[float]) -> tuple[float, float, float, float, float]:
    """d̄, S_d, RA, r and F by loops over lists (the t quantile from scipy)."""
    n = len(rm)
    d = [a - b for a, b in zip(rm, pems, strict=True)]
    mean_d = sum(d) / n
    sd = math.sqrt(sum((x - mean_d) ** 2 for x in d) / (n - 1))
    cc = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    mean_rm = sum(rm) / n
    mean_p = sum(pems) / n
    ra = (abs(mean_d) + abs(cc)) / mean_rm * 100
    sxy = sum((a - mean_rm) * (b - mean_p) for a, b in zip(rm, pems, strict=True))
    sxx = sum((a - mean_rm) ** 2 for a in rm)
    syy = sum((b - mean_p) ** 2 for b in pems)
    return mean_d, sd, ra, sxy / math.sqrt(sxx * syy), syy / sxx


@st.composite
def paired_runs(draw: st.DrawFn) -> tuple[list[float], list[float]]:
    """3–27 paired runs with both series clearly varying (no degenerate variance)."""
    n = draw(st.integers(min_value=3, max_value=27))
    level = st.integers(min_value=1_000, max_value=100_000).map(lambda v: v / 100)
    rm = draw(st.lists(level, min_size=n, max_size=n, unique=True))
    pems = draw(st.lists(level, min_size=n, max_size=n, unique=True))
    return rm, pems


@FAST
@given(paired_runs())
def test_matches_reference(runs: tuple[list[float], list[float]]) -> None:
    rm, pems = runs
    result = relative_accuracy(rm, pems)
    mean_d, sd, ra, r, f = reference(rm, pems)
    assert result.mean_difference == pytest.approx(mean_d, abs=1e-9)
    assert result.sd_difference == pytest.approx(sd, rel=1e-9)
    assert result.ra_percent == pytest.approx(ra, rel=1e-9)
    assert result.r == pytest.approx(r, abs=1e-9)
    assert result.f == pytest.approx(f, rel=1e-9)
    assert result.f_critical == pytest.approx(float(stats.f.ppf(0.95, len(rm) - 1, len(rm) - 1)))
    assert result.bias == (abs(result.mean_difference) > abs(result.confidence_coefficient))


@FAST
@given(paired_runs(), st.randoms(use_true_random=False))
def test_ra_ignores_the_order_of_paired_runs(
    runs: tuple[list[float], list[float]], rnd: random.Random
) -> None:
    rm, pems = runs
    pairs = list(zip(rm, pems, strict=True))
    rnd.shuffle(pairs)
    shuffled = relative_accuracy([a for a, _ in pairs], [b for _, b in pairs])
    original = relative_accuracy(rm, pems)
    assert shuffled.ra_percent == pytest.approx(original.ra_percent, rel=1e-9)
    assert shuffled.r == pytest.approx(original.r, abs=1e-9)
    assert shuffled.f == pytest.approx(original.f, rel=1e-9)


@FAST
@given(paired_runs(), st.floats(min_value=0.01, max_value=100.0))
def test_ra_is_scale_invariant(runs: tuple[list[float], list[float]], k: float) -> None:
    rm, pems = runs
    scaled = relative_accuracy([k * x for x in rm], [k * x for x in pems])
    original = relative_accuracy(rm, pems)
    assert scaled.ra_percent == pytest.approx(original.ra_percent, rel=1e-9)
    assert scaled.f == pytest.approx(original.f, rel=1e-9)


@FAST
@given(paired_runs())
def test_identical_series_are_perfectly_accurate(runs: tuple[list[float], list[float]]) -> None:
    rm, _ = runs
    result = relative_accuracy(rm, rm)
    assert result.ra_percent == 0.0
    assert result.mean_difference == 0.0
    assert result.bias is False
    assert result.r == pytest.approx(1.0)
    assert result.f == 1.0
    assert result.passed
