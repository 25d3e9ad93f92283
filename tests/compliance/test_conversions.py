"""Unit-conversion chain: the worked examples C1, C2 and C7 and the algebra behind them.

Rules A2/A3 of shared/docs/emission-rules.md. The properties check that the conversions invert
where they should, are monotone in the right direction, and that the array path gives the
same numbers as the scalar path (the engine uses arrays, reviewers read scalars).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.compliance.conversions import (
    MOLAR_MASS_G_PER_MOL,
    MOLAR_VOLUME_STP_L,
    actual_to_standard,
    calibrate,
    dry_to_wet,
    molar_volume_l,
    no_mg_to_no2_mg,
    nox_as_no2_mg_nm3,
    o2_normalise,
    ppm_to_mg_nm3,
    wet_to_dry,
)

FAST = settings(max_examples=150, deadline=None)

concentrations = st.floats(min_value=-50.0, max_value=5_000.0, allow_nan=False)
positive_conc = st.floats(min_value=0.1, max_value=5_000.0)
h2o = st.floats(min_value=0.0, max_value=60.0)
o2 = st.floats(min_value=0.0, max_value=20.5)
o2_ref = st.sampled_from([3.0, 6.0, 11.0, 15.0])


def test_c1_wet_no_to_dry_nox_at_reference_o2() -> None:
    # C1: NO 120 ppm wet, H2O 18 %, O2 7.4 % wet, reference O2 6 %.
    no_dry = wet_to_dry(120.0, 18.0)
    o2_dry = wet_to_dry(7.4, 18.0)
    assert round(100.0 / 82.0, 5) == 1.21951
    assert round(no_dry, 2) == 146.34
    assert round(o2_dry, 3) == 9.024
    nox_dry = nox_as_no2_mg_nm3(no_dry)
    assert round(nox_dry, 2) == 300.37
    assert round((21 - 6) / (21 - o2_dry), 5) == 1.25255
    assert o2_normalise(nox_dry, o2_dry, 6.0) == pytest.approx(376.2, abs=0.1)


def test_c1_chain_on_arrays_matches_scalars() -> None:
    no = np.array([120.0, 120.0])
    out = o2_normalise(
        nox_as_no2_mg_nm3(wet_to_dry(no, 18.0)), wet_to_dry(np.array([7.4, 7.4]), 18.0), 6.0
    )
    assert isinstance(out, np.ndarray)
    assert out == pytest.approx([376.2, 376.2], abs=0.1)


@pytest.mark.parametrize(
    ("species", "vm", "expected"),
    [
        ("so2", MOLAR_VOLUME_STP_L, 285.82),  # C2 at 273.15 K / 101.325 kPa
        ("so2", molar_volume_l(273.15, 101.3), 285.75),  # C2 at the IED's 101.3 kPa
        ("co", MOLAR_VOLUME_STP_L, 124.97),
        ("hcl", MOLAR_VOLUME_STP_L, 162.67),
        ("nh3", MOLAR_VOLUME_STP_L, 75.98),
    ],
)
def test_c2_ppm_to_mg_nm3(species: str, vm: float, expected: float) -> None:
    assert round(ppm_to_mg_nm3(100.0, species, vm), 2) == expected


@pytest.mark.parametrize(
    ("species", "p_kpa", "factor"),
    [
        ("no2", 101.325, 2.0525),
        ("no2", 101.3, 2.0520),
        ("no", 101.325, 1.3387),
        ("so2", 101.325, 2.8582),
        ("so2", 101.3, 2.8575),
        ("co", 101.325, 1.2497),
        ("co", 101.3, 1.2494),
        ("nh3", 101.325, 0.7598),
        ("hcl", 101.325, 1.6267),
        ("hf", 101.325, 0.8926),
        ("co2", 101.325, 1.9635),
        ("n2o", 101.325, 1.9636),
        ("nox", 101.325, 2.0525),  # NOx is expressed as NO2
        ("NOx", 101.325, 2.0525),  # species names are case-insensitive
    ],
)
def test_a3_factor_table(species: str, p_kpa: float, factor: float) -> None:
    assert round(ppm_to_mg_nm3(1.0, species, molar_volume_l(273.15, p_kpa)), 4) == factor


def test_molar_volume() -> None:
    assert molar_volume_l() == MOLAR_VOLUME_STP_L == 22.414
    assert round(molar_volume_l(273.15, 101.3), 4) == 22.4195
    # ideal gas: doubling T doubles Vm, doubling p halves it
    assert molar_volume_l(546.3, 101.325) == pytest.approx(2 * 22.414)
    assert molar_volume_l(273.15, 202.65) == pytest.approx(22.414 / 2)
    with pytest.raises(ValueError, match="positive"):
        molar_volume_l(0.0, 101.3)


def test_molar_mass_table_is_the_a3_one_and_read_only() -> None:
    assert dict(MOLAR_MASS_G_PER_MOL) == {
        "no": 30.0061,
        "no2": 46.0055,
        "so2": 64.064,
        "co": 28.010,
        "nh3": 17.031,
        "hcl": 36.461,
        "hf": 20.006,
        "co2": 44.009,
        "n2o": 44.013,
    }
    with pytest.raises(TypeError):
        MOLAR_MASS_G_PER_MOL["so2"] = 65.0  # type: ignore[index]


def test_unknown_species_and_custom_factor_table() -> None:
    with pytest.raises(ValueError, match="unknown species 'dust'"):
        ppm_to_mg_nm3(1.0, "dust")
    # a regulator's real-gas table replaces the ideal-gas molar masses
    assert ppm_to_mg_nm3(100.0, "so2", 22.414, molar_masses={"so2": 65.68}) == pytest.approx(
        293.03, abs=0.01
    )


def test_nox_as_no2_equivalent_forms() -> None:
    # A3: (NO_ppm + NO2_ppm) × 2.0525 == NO_mg × 46.0055/30.0061 + NO2_mg
    no_ppm, no2_ppm = 180.0, 12.0
    direct = nox_as_no2_mg_nm3(no_ppm, no2_ppm)
    via_mg = no_mg_to_no2_mg(ppm_to_mg_nm3(no_ppm, "no")) + ppm_to_mg_nm3(no2_ppm, "no2")
    assert direct == pytest.approx(via_mg, rel=1e-12)
    assert round(direct / (no_ppm + no2_ppm), 4) == 2.0525
    assert round(no_mg_to_no2_mg(1.0), 6) == round(46.0055 / 30.0061, 6)


@pytest.mark.parametrize(
    ("o2_measured", "switch", "expected"),
    [
        (5.0, False, 93.75),  # C7: standard formula gives credit for O2 below the reference
        (5.0, True, 100.0),  # C7: DE 13. BImSchV §19 switch forces the factor to 1
        (9.0, False, 125.0),  # C7: above the reference the switch changes nothing
        (9.0, True, 125.0),
        (6.0, True, 100.0),  # at the reference: factor 1 either way
    ],
)
def test_c7_o2_restriction(o2_measured: float, switch: bool, expected: float) -> None:
    assert o2_normalise(100.0, o2_measured, 6.0, only_above_reference=switch) == expected


def test_c7_switch_elementwise_on_arrays() -> None:
    out = o2_normalise(np.full(3, 100.0), np.array([5.0, 6.0, 9.0]), 6.0, only_above_reference=True)
    assert out.tolist() == [100.0, 100.0, 125.0]


def test_domain_errors_raise_for_scalars() -> None:
    with pytest.raises(ValueError, match=r"H2O must be in \[0, 100\) %, got 100"):
        wet_to_dry(10.0, 100.0)
    with pytest.raises(ValueError, match="H2O"):
        wet_to_dry(10.0, -0.5)
    with pytest.raises(ValueError, match="H2O"):
        dry_to_wet(10.0, 120.0)
    with pytest.raises(ValueError, match="O2 must be below 21 %, got 21"):
        o2_normalise(10.0, 21.0, 6.0)
    with pytest.raises(ValueError, match="O2"):
        o2_normalise(10.0, 25.0, 6.0, only_above_reference=True)
    with pytest.raises(ValueError, match="positive"):
        actual_to_standard(10.0, 0.0, 101.3)
    with pytest.raises(ValueError, match="positive"):
        actual_to_standard(10.0, 300.0, -1.0)


def test_domain_errors_become_nan_in_arrays() -> None:
    assert np.isnan(
        wet_to_dry(np.array([10.0, 10.0, 10.0]), np.array([10.0, 100.0, -1.0]))[1:]
    ).all()
    dry = o2_normalise(np.array([10.0, 10.0]), np.array([21.0, 8.0]), 6.0)
    assert math.isnan(dry[0])
    assert dry[1] == pytest.approx(10.0 * 15 / 13)
    std = actual_to_standard(np.array([10.0, 10.0]), np.array([0.0, 273.15]), 101.3)
    assert math.isnan(std[0]) and std[1] == 10.0


def test_nan_propagates_without_raising() -> None:
    assert math.isnan(wet_to_dry(math.nan, 10.0))
    assert math.isnan(wet_to_dry(10.0, math.nan))
    assert math.isnan(o2_normalise(10.0, math.nan, 6.0, only_above_reference=True))


def test_actual_to_standard() -> None:
    # warm, low-pressure gas: the same mass in a larger volume, so the standard value is higher
    assert actual_to_standard(100.0, 273.15, 101.3) == 100.0
    assert actual_to_standard(100.0, 2 * 273.15, 101.3) == pytest.approx(200.0)
    assert actual_to_standard(100.0, 273.15, 101.325, p_ref_kpa=101.325) == pytest.approx(100.0)
    assert actual_to_standard(100.0, 273.15, 101.325) == pytest.approx(100.0 * 101.3 / 101.325)


def test_calibrate_is_the_qal2_line() -> None:
    assert calibrate(100.0, 2.0, 1.05) == 107.0
    assert calibrate(np.array([0.0, 10.0]), -1.0, 2.0).tolist() == [-1.0, 19.0]


def test_scalar_in_float_out_array_in_array_out() -> None:
    assert type(wet_to_dry(10.0, 5.0)) is float
    assert type(o2_normalise(10, 5, 6)) is float
    assert type(ppm_to_mg_nm3(np.float64(3.0), "co")) is float
    arr = wet_to_dry(np.array([10.0]), 5.0)
    assert isinstance(arr, np.ndarray) and arr.dtype == np.float64 and arr.shape == (1,)
    assert isinstance(wet_to_dry(10.0, np.array([5.0, 6.0])), np.ndarray)


# --- properties --------------------------------------------------------------------------


@FAST
@given(concentrations, h2o)
def test_dry_wet_round_trip(c: float, water: float) -> None:
    assert dry_to_wet(wet_to_dry(c, water), water) == pytest.approx(c, rel=1e-12, abs=1e-12)
    assert wet_to_dry(dry_to_wet(c, water), water) == pytest.approx(c, rel=1e-12, abs=1e-12)


@FAST
@given(concentrations, o2_ref, st.booleans())
def test_o2_normalise_identity_at_reference(c: float, ref: float, switch: bool) -> None:
    assert o2_normalise(c, ref, ref, only_above_reference=switch) == c


@FAST
@given(positive_conc, o2, o2, o2_ref, st.booleans())
def test_o2_normalise_monotone_in_measured_o2(
    c: float, a: float, b: float, ref: float, switch: bool
) -> None:
    low, high = sorted((a, b))
    # more dilution air measured → larger normalised value (never smaller)
    lo = o2_normalise(c, low, ref, only_above_reference=switch)
    hi = o2_normalise(c, high, ref, only_above_reference=switch)
    assert lo <= hi
    if switch:
        assert lo >= c  # the switch never gives credit below the reference


@FAST
@given(positive_conc, h2o, h2o)
def test_wet_to_dry_monotone_in_water(c: float, a: float, b: float) -> None:
    low, high = sorted((a, b))
    assert c <= wet_to_dry(c, low) <= wet_to_dry(c, high)


@FAST
@given(
    st.floats(min_value=0.0, max_value=1e4),
    st.floats(min_value=0.0, max_value=1e4),
    st.sampled_from(sorted(MOLAR_MASS_G_PER_MOL)),
)
def test_ppm_to_mg_is_linear_and_monotone(a: float, b: float, species: str) -> None:
    low, high = sorted((a, b))
    assert ppm_to_mg_nm3(low, species) <= ppm_to_mg_nm3(high, species)
    assert ppm_to_mg_nm3(a + b, species) == pytest.approx(
        ppm_to_mg_nm3(a, species) + ppm_to_mg_nm3(b, species), rel=1e-12, abs=1e-9
    )


Row = tuple[float, float, float, float, float]
rows = st.lists(
    st.tuples(
        st.floats(min_value=-100.0, max_value=5_000.0),  # concentration
        st.floats(min_value=-5.0, max_value=110.0),  # H2O %, some invalid
        st.floats(min_value=-1.0, max_value=25.0),  # O2 %, some invalid
        st.floats(min_value=-10.0, max_value=900.0),  # T in K, some invalid
        st.one_of(  # p in kPa, some invalid (no subnormal pressures: they overflow to inf)
            st.floats(min_value=-5.0, max_value=0.0), st.floats(min_value=0.5, max_value=130.0)
        ),
    ),
    min_size=1,
    max_size=40,
)


def _scalar_or_nan(fn: Callable[..., float], *args: float, **kwargs: bool) -> float:
    """The scalar path raises where the array path gives NaN: map the error to NaN."""
    try:
        return fn(*args, **kwargs)
    except ValueError:
        return math.nan


@FAST
@given(rows, o2_ref, st.booleans())
def test_vectorised_equals_scalar(rows_: list[Row], ref: float, switch: bool) -> None:
    c, w, ox, t, p = (np.array(col, dtype=np.float64) for col in zip(*rows_, strict=True))
    expected = {
        "dry": [_scalar_or_nan(wet_to_dry, r[0], r[1]) for r in rows_],
        "wet": [_scalar_or_nan(dry_to_wet, r[0], r[1]) for r in rows_],
        "o2": [
            _scalar_or_nan(o2_normalise, r[0], r[2], ref, only_above_reference=switch)
            for r in rows_
        ],
        "std": [_scalar_or_nan(actual_to_standard, r[0], r[3], r[4]) for r in rows_],
        "ppm": [ppm_to_mg_nm3(r[0], "so2") for r in rows_],
        "nox": [nox_as_no2_mg_nm3(r[0], r[1]) for r in rows_],
        "cal": [calibrate(r[0], 1.5, 0.98) for r in rows_],
    }
    actual = {
        "dry": wet_to_dry(c, w),
        "wet": dry_to_wet(c, w),
        "o2": o2_normalise(c, ox, ref, only_above_reference=switch),
        "std": actual_to_standard(c, t, p),
        "ppm": ppm_to_mg_nm3(c, "so2"),
        "nox": nox_as_no2_mg_nm3(c, w),
        "cal": calibrate(c, 1.5, 0.98),
    }
    for name, values in expected.items():
        np.testing.assert_array_equal(actual[name], np.array(values), err_msg=name)
