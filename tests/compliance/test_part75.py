"""40 CFR Part 75 PMA and standard missing-data substitution (§75.32, §75.33; check C11).

Worked example C11 with exact numbers, every band and gap boundary, and Hypothesis properties
against plain-Python references (loops over lists) plus the conservatism the rule intends.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.compliance.part75 import (
    LOOKBACK_HOURS,
    PMA_WINDOW_HOURS,
    Substitution,
    Tier,
    hourly_pma,
    nearest_rank_percentile,
    percent_monitor_availability,
    substitute,
)

FAST = settings(max_examples=150, deadline=None)

BEFORE, AFTER, AVERAGE = 150.0, 170.0, 160.0
MPC = 500.0
# 720 QA'd hours built so that the nearest-rank P90 (648th smallest) is exactly 180 ppm, the
# P95 (684th smallest) 195 ppm and the maximum 210 ppm.
C11_LOOKBACK = [140.0] * 647 + [180.0] + [195.0] * 71 + [210.0]
P90, P95, LOOKBACK_MAX = 180.0, 195.0, 210.0


def sub(pma: float, gap_hours: int, **kwargs: object) -> Substitution:
    """The C11 situation with PMA and gap varied."""
    args: dict[str, object] = {
        "before": BEFORE,
        "after": AFTER,
        "lookback": C11_LOOKBACK,
        "max_potential": MPC,
    }
    args.update(kwargs)
    return substitute(pma=pma, gap_hours=gap_hours, **args)  # type: ignore[arg-type]


# --- plain-Python references ----------------------------------------------------------------


def ref_percentile(values: list[float], p: int) -> float:
    """Smallest recorded value that at least p % of the values do not exceed."""
    ordered = sorted(values)
    for candidate in ordered:
        at_or_below = 0
        for x in ordered:
            if x <= candidate:
                at_or_below += 1
        if at_or_below * 100 >= p * len(ordered):
            return candidate
    raise AssertionError("unreachable for a non-empty list")


def ref_substitute(
    pma: float, gap: int, before: float, after: float, lookback: list[float], mpc: float
) -> float:
    """§75.33(b) table written as a plain if-chain over a list (lookback ≤ 720 values)."""
    average = (before + after) / 2
    if pma >= 95.0:
        return average if gap <= 24 else max(ref_percentile(lookback, 90), average)
    if pma >= 90.0:
        return average if gap <= 8 else max(ref_percentile(lookback, 95), average)
    if pma >= 80.0:
        biggest = lookback[0]
        for x in lookback:
            biggest = max(biggest, x)
        return biggest
    return mpc


def ref_hourly_pma(qa: list[bool], window: int) -> list[float]:
    """Eq. 8 then Eq. 9, recounting the window for every hour."""
    out = []
    for k in range(len(qa)):
        first = max(0, k + 1 - window)
        qa_hours = sum(1 for flag in qa[first : k + 1] if flag)
        out.append(qa_hours * 100.0 / (k + 1 - first))
    return out


values = st.floats(min_value=0.0, max_value=1_000.0, allow_nan=False)
lookbacks = st.lists(values, min_size=1, max_size=120)
pmas = st.floats(min_value=0.0, max_value=100.0, allow_nan=False)
gaps = st.integers(min_value=1, max_value=100)


# --- PMA (§75.32) -------------------------------------------------------------------------------


def test_pma_equation_8() -> None:
    assert percent_monitor_availability(963, 1_000) == pytest.approx(96.3)
    assert percent_monitor_availability(0, 10) == 0.0
    assert percent_monitor_availability(8_760, 8_760) == 100.0


@pytest.mark.parametrize(("qa", "operating"), [(1, 0), (-1, 10), (11, 10)])
def test_pma_rejects_impossible_counts(qa: int, operating: int) -> None:
    with pytest.raises(ValueError, match="hours"):
        percent_monitor_availability(qa, operating)


def test_hourly_pma_switches_from_eq8_to_eq9_after_8760_hours() -> None:
    # 100 missing hours at the start, then QA'd hours only: Eq. 8 keeps them in the ratio,
    # Eq. 9 forgets them once they leave the last 8,760 operating hours.
    qa = np.ones(8_760 + 200, dtype=bool)
    qa[:100] = False
    pma = hourly_pma(qa)
    assert pma[99] == 0.0
    assert pma[199] == pytest.approx(50.0)  # Eq. 8: 100 of 200
    assert pma[8_759] == pytest.approx(8_660 * 100 / 8_760)  # last Eq. 8 hour = first Eq. 9
    assert pma[8_760 + 99] == 100.0  # the 100 missing hours have left the window
    assert PMA_WINDOW_HOURS == 8_760


def test_hourly_pma_rejects_bad_window() -> None:
    with pytest.raises(ValueError, match="window"):
        hourly_pma([True], window=0)


@FAST
@given(st.lists(st.booleans(), max_size=150), st.integers(min_value=1, max_value=40))
def test_hourly_pma_matches_reference(qa: list[bool], window: int) -> None:
    assert hourly_pma(qa, window=window).tolist() == pytest.approx(ref_hourly_pma(qa, window))


# --- percentile ---------------------------------------------------------------------------------


def test_c11_lookback_percentiles() -> None:
    assert len(C11_LOOKBACK) == LOOKBACK_HOURS["so2"] == 720
    assert nearest_rank_percentile(C11_LOOKBACK, 90) == P90
    assert nearest_rank_percentile(C11_LOOKBACK, 95) == P95
    assert nearest_rank_percentile(C11_LOOKBACK, 100) == LOOKBACK_MAX


def test_percentile_is_a_recorded_value_not_an_interpolation() -> None:
    # numpy's default linear interpolation would give 91.0 here; nearest rank gives 90.
    data = [float(v) for v in range(10, 101, 10)]
    assert nearest_rank_percentile(data, 90) == 90.0
    assert float(np.percentile(data, 90)) == pytest.approx(91.0)


@pytest.mark.parametrize(("data", "p"), [([], 90), ([1.0], 0), ([1.0], 101), ([math.nan], 90)])
def test_percentile_rejects_bad_input(data: list[float], p: int) -> None:
    with pytest.raises(ValueError):
        nearest_rank_percentile(data, p)


@FAST
@given(lookbacks, st.sampled_from([1, 50, 90, 95, 99, 100]))
def test_percentile_matches_reference(data: list[float], p: int) -> None:
    assert nearest_rank_percentile(data, p) == ref_percentile(data, p)


# --- C11 and the tier boundaries (§75.33(b)) ------------------------------------------------


def test_c11_short_gap_gets_before_after_average() -> None:
    result = sub(96.3, 10)
    assert result.value == 160.0
    assert result.tier == Tier.AVERAGE
    assert result.tier == "average"
    assert "75.33(b)" in result.rule
    assert "≥ 95 %" in result.rule


def test_c11_long_gap_gets_greater_of_p90_and_average() -> None:
    result = sub(96.3, 30)
    assert result.value == 180.0
    assert result.tier == Tier.P90_OR_AVERAGE
    assert "90th percentile" in result.rule
    assert "(180)" in result.rule


def test_c11_pma_85_gets_lookback_maximum() -> None:
    result = sub(85.0, 10)
    assert result.value == LOOKBACK_MAX
    assert result.tier == Tier.LOOKBACK_MAX


def test_c11_pma_75_gets_maximum_potential() -> None:
    result = sub(75.0, 10)
    assert result.value == MPC
    assert result.tier == Tier.MAX_POTENTIAL
    assert "< 80 %" in result.rule


def test_long_gap_average_wins_when_above_percentile() -> None:
    result = sub(96.3, 30, before=300.0, after=320.0)
    assert result.value == 310.0
    assert result.tier == Tier.P90_OR_AVERAGE


@pytest.mark.parametrize(
    ("pma", "gap", "expected", "tier"),
    [
        (95.0, 20, AVERAGE, Tier.AVERAGE),  # 95.0 belongs to the top band (gap ≤ 24)
        (94.99, 20, P95, Tier.P95_OR_AVERAGE),  # just below: 90–95 band, gap > 8
        (90.0, 20, P95, Tier.P95_OR_AVERAGE),  # 90.0 belongs to the 90–95 band
        (89.99, 20, LOOKBACK_MAX, Tier.LOOKBACK_MAX),
        (80.0, 20, LOOKBACK_MAX, Tier.LOOKBACK_MAX),  # 80.0 belongs to the 80–90 band
        (79.99, 20, MPC, Tier.MAX_POTENTIAL),
        (100.0, 24, AVERAGE, Tier.AVERAGE),  # gap 24 h is still short at PMA ≥ 95
        (100.0, 25, P90, Tier.P90_OR_AVERAGE),
        (92.0, 8, AVERAGE, Tier.AVERAGE),  # gap 8 h is still short at 90 ≤ PMA < 95
        (92.0, 9, P95, Tier.P95_OR_AVERAGE),
        (0.0, 1, MPC, Tier.MAX_POTENTIAL),
    ],
)
def test_band_and_gap_boundaries(pma: float, gap: int, expected: float, tier: Tier) -> None:
    result = sub(pma, gap)
    assert result.value == expected
    assert result.tier == tier


def test_only_the_most_recent_lookback_hours_are_used() -> None:
    old_spike = [999.0] * 500  # older than 720 QA'd hours: must not count for SO2
    assert sub(96.3, 30, lookback=old_spike + C11_LOOKBACK).value == P90
    assert sub(85.0, 30, lookback=old_spike + C11_LOOKBACK).value == LOOKBACK_MAX
    # NOx and flow look back 2,160 hours, so the same spike is inside their window
    assert sub(85.0, 30, lookback=old_spike + C11_LOOKBACK, pollutant="nox").value == 999.0
    assert "75.33(c)" in sub(85.0, 30, lookback=C11_LOOKBACK, pollutant="flow").rule
    # and the length is a parameter [K]
    assert sub(85.0, 30, lookback=[300.0, 1.0, 2.0], lookback_hours=2).value == 2.0


def test_tiers_without_lookback_do_not_need_one() -> None:
    assert sub(96.3, 10, lookback=[]).value == AVERAGE
    assert sub(50.0, 10, lookback=[]).value == MPC


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"pma": 100.1}, "pma"),
        ({"pma": -0.1}, "pma"),
        ({"pma": math.nan}, "pma"),
        ({"gap_hours": 0}, "gap_hours"),
        ({"before": math.inf}, "before"),
        ({"pma": 85.0, "lookback": []}, "lookback"),
        ({"pma": 85.0, "lookback": [1.0, math.nan]}, "finite"),
        ({"pma": 96.3, "gap_hours": 30, "lookback": []}, "lookback"),
        ({"pollutant": "co"}, "pollutant"),
        ({"pma": 85.0, "lookback_hours": 0}, "lookback_hours"),
    ],
)
def test_substitute_rejects_bad_input(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"pma": 96.3, "gap_hours": 10}
    args.update(kwargs)
    pma = args.pop("pma")
    gap = args.pop("gap_hours")
    with pytest.raises(ValueError, match=match):
        sub(pma, gap, **args)  # type: ignore[arg-type]


# --- properties -------------------------------------------------------------------------------


@FAST
@given(pmas, gaps, values, values, lookbacks, values)
def test_substitute_matches_reference(
    pma: float, gap: int, before: float, after: float, lookback: list[float], mpc: float
) -> None:
    result = substitute(
        pma=pma, gap_hours=gap, before=before, after=after, lookback=lookback, max_potential=mpc
    )
    assert result.value == ref_substitute(pma, gap, before, after, lookback, mpc)


@FAST
@given(st.floats(min_value=90.0, max_value=100.0), gaps, values, values, lookbacks, values)
def test_long_gaps_never_below_average_at_pma_90_or_more(
    pma: float, gap: int, before: float, after: float, lookback: list[float], mpc: float
) -> None:
    short_limit = 24 if pma >= 95.0 else 8
    gap = short_limit + gap  # beyond the short-gap limit of the band
    result = substitute(
        pma=pma, gap_hours=gap, before=before, after=after, lookback=lookback, max_potential=mpc
    )
    assert result.value >= (before + after) / 2


@st.composite
def conservative_cases(draw: st.DrawFn) -> tuple[list[float], float, float, float]:
    """A lookback, before/after values whose average ≤ the lookback maximum ≤ MPC."""
    lookback = draw(lookbacks)
    top = max(lookback)
    bounded = st.floats(min_value=0.0, max_value=top, allow_nan=False)
    before, after = draw(bounded), draw(bounded)
    mpc = top + draw(st.floats(min_value=0.0, max_value=1_000.0))
    return lookback, before, after, mpc


BAND_EDGES = [100.0, 95.0, 94.99, 90.0, 89.99, 80.0, 79.99, 0.0]


@FAST
@given(conservative_cases(), gaps, st.lists(pmas, max_size=6))
def test_substitute_never_decreases_as_pma_falls(
    case: tuple[list[float], float, float, float], gap: int, extra_pmas: list[float]
) -> None:
    lookback, before, after, mpc = case
    falling = sorted([*BAND_EDGES, *extra_pmas], reverse=True)
    results = [
        substitute(
            pma=pma,
            gap_hours=gap,
            before=before,
            after=after,
            lookback=lookback,
            max_potential=mpc,
        ).value
        for pma in falling
    ]
    assert all(a <= b for a, b in itertools.pairwise(results))
