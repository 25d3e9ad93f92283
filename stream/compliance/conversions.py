"""Unit conversions from a measured concentration to the regulatory reference basis.

A DAHS turns an analyser reading into a value comparable with an emission limit value (ELV):
QAL2 calibration ``a + b·x`` on the averaged raw data (EN 14181), ppm → mg/Nm³, wet → dry,
actual → standard temperature/pressure and finally normalisation to the reference O2
(rules A3; EN 17255-1 averaging chain; IED 2010/75/EU Annex V Part 1/2 and Annex VI Part 7).
The ELVs apply at 273.15 K, 101.3 kPa, dry gas and the reference O2 of the permit.

Every function works elementwise on a ``float`` or on a ``float64`` NumPy array and returns the
same kind, so the engine can convert whole arrays of short-term averages at once while tests
and scalar code stay readable. Scalar inputs outside the physical domain raise
:class:`ValueError`; array elements outside it become NaN, so one bad reading never aborts a
batch (NaN is how the engine marks "no value").

Worked example C1 of the rules (NO 120 ppm wet, H2O 18 %, O2 7.4 % wet, reference O2 6 %):

>>> no_dry = wet_to_dry(120.0, 18.0)
>>> o2_dry = wet_to_dry(7.4, 18.0)
>>> round(no_dry, 2), round(o2_dry, 3)
(146.34, 9.024)
>>> nox = nox_as_no2_mg_nm3(no_dry)
>>> round(nox, 2)
300.37
>>> round(o2_normalise(nox, o2_dry, 6.0), 1)
376.2
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, overload

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
ArrayLike = float | FloatArray
"""A scalar or a float64 array; functions of this module return the same kind."""

MOLAR_MASS_G_PER_MOL: Final[Mapping[str, float]] = MappingProxyType(
    {
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
)
"""Molar masses in g/mol (rules A3). ``nox`` is looked up as ``no2`` (NOx is expressed as NO2)."""

T_STANDARD_K: Final = 273.15
P_STANDARD_KPA: Final = 101.325
"""Physical standard pressure at which :data:`MOLAR_VOLUME_STP_L` is defined."""
P_REFERENCE_IED_KPA: Final = 101.3
"""Reference pressure of the IED ELVs (Annex V Part 1/2: 273.15 K, 101.3 kPa, dry gas)."""
MOLAR_VOLUME_STP_L: Final = 22.414
"""Ideal-gas molar volume in L/mol at 273.15 K and 101.325 kPa (rules A3)."""
O2_AIR_PERCENT: Final = 21.0
"""O2 content of air used by the IED normalisation formula."""

_SPECIES_ALIASES: Final[Mapping[str, str]] = MappingProxyType({"nox": "no2"})


def _as_float_array(x: ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def _result(values: FloatArray) -> ArrayLike:
    """Return a Python float for a 0-d result, else the array (same kind as the inputs)."""
    if values.ndim == 0:
        return float(values)
    return values


def _reject(
    values: FloatArray, bad: npt.NDArray[np.bool_], what: str, *inputs: FloatArray
) -> FloatArray:
    """Apply the domain policy: ValueError for a scalar result, NaN for array elements.

    The message is only formatted when raising, so large arrays cost nothing extra.
    """
    if not bad.any():
        return values
    if values.ndim == 0:
        got = ", ".join(f"{float(x):g}" for x in inputs)
        raise ValueError(f"{what}, got {got}")
    out = np.array(values, dtype=np.float64, copy=True)
    out[np.broadcast_to(bad, out.shape)] = np.nan
    return out


def molar_volume_l(t_kelvin: float = T_STANDARD_K, p_kpa: float = P_STANDARD_KPA) -> float:
    """Ideal-gas molar volume ``Vm = R·T/p`` in L/mol (rules A3).

    Scaled from :data:`MOLAR_VOLUME_STP_L` so that the default arguments return that constant
    exactly; 101.3 kPa (the IED reference pressure) gives 22.4195 L/mol.

    >>> molar_volume_l()
    22.414
    >>> round(molar_volume_l(273.15, 101.3), 4)
    22.4195
    """
    if t_kelvin <= 0 or p_kpa <= 0:
        raise ValueError(
            f"temperature and pressure must be positive, got {t_kelvin} K, {p_kpa} kPa"
        )
    return MOLAR_VOLUME_STP_L * (t_kelvin / T_STANDARD_K) * (P_STANDARD_KPA / p_kpa)


def _molar_mass(species: str, molar_masses: Mapping[str, float]) -> float:
    key = species.strip().lower()
    key = _SPECIES_ALIASES.get(key, key)
    try:
        return molar_masses[key]
    except KeyError:
        known = ", ".join(sorted(molar_masses))
        raise ValueError(f"unknown species {species!r} (known: {known}, nox)") from None


@overload
def ppm_to_mg_nm3(
    ppm: float,
    species: str,
    molar_volume_l: float = ...,
    *,
    molar_masses: Mapping[str, float] = ...,
) -> float: ...
@overload
def ppm_to_mg_nm3(
    ppm: FloatArray,
    species: str,
    molar_volume_l: float = ...,
    *,
    molar_masses: Mapping[str, float] = ...,
) -> FloatArray: ...
def ppm_to_mg_nm3(
    ppm: ArrayLike,
    species: str,
    molar_volume_l: float = MOLAR_VOLUME_STP_L,
    *,
    molar_masses: Mapping[str, float] = MOLAR_MASS_G_PER_MOL,
) -> ArrayLike:
    """Volume fraction (ppm, µmol/mol) → mass concentration (mg/Nm³): ``ppm × M / Vm``.

    Rules A3 (and check C2). ``species`` is case-insensitive; ``nox`` is expressed as NO2.
    ``molar_masses`` replaces the factor table, for regulators that prescribe real-gas
    densities; the caller records which table it used. The molar volume must be the one of
    the reference conditions the result is stated at (22.414 L/mol at 101.325 kPa, 22.4195 at
    the IED's 101.3 kPa, see :func:`molar_volume_l`).

    >>> round(ppm_to_mg_nm3(100.0, "SO2"), 2)
    285.82
    >>> round(ppm_to_mg_nm3(100.0, "so2", molar_volume_l(273.15, 101.3)), 2)
    285.75
    >>> ppm_to_mg_nm3(np.array([100.0, 10.0]), "co").round(3).tolist()
    [124.967, 12.497]
    """
    if molar_volume_l <= 0:
        raise ValueError(f"molar volume must be positive, got {molar_volume_l}")
    factor = _molar_mass(species, molar_masses) / molar_volume_l
    return _result(_as_float_array(ppm) * factor)


@overload
def nox_as_no2_mg_nm3(
    no_ppm: float, no2_ppm: float = ..., molar_volume_l: float = ...
) -> float: ...
@overload
def nox_as_no2_mg_nm3(
    no_ppm: FloatArray, no2_ppm: ArrayLike = ..., molar_volume_l: float = ...
) -> FloatArray: ...
@overload
def nox_as_no2_mg_nm3(
    no_ppm: ArrayLike, no2_ppm: FloatArray, molar_volume_l: float = ...
) -> FloatArray: ...
def nox_as_no2_mg_nm3(
    no_ppm: ArrayLike, no2_ppm: ArrayLike = 0.0, molar_volume_l: float = MOLAR_VOLUME_STP_L
) -> ArrayLike:
    """NOx expressed as NO2: ``(NO_ppm + NO2_ppm) × M_NO2 / Vm`` (rules A3; 2.0525 at 22.414).

    Both NO and NO2 count with the NO2 molar mass, because the ELV is stated "as NO2".

    >>> round(nox_as_no2_mg_nm3(100.0), 2)
    205.25
    >>> round(nox_as_no2_mg_nm3(95.0, 5.0), 2)
    205.25
    """
    total_ppm = _as_float_array(no_ppm) + _as_float_array(no2_ppm)
    return ppm_to_mg_nm3(total_ppm, "no2", molar_volume_l)


@overload
def no_mg_to_no2_mg(no_mg: float) -> float: ...
@overload
def no_mg_to_no2_mg(no_mg: FloatArray) -> FloatArray: ...
def no_mg_to_no2_mg(no_mg: ArrayLike) -> ArrayLike:
    """NO mass concentration → the same moles stated as NO2: ``× 46.0055 / 30.0061`` (rules A3).

    For analysers that already report NO in mg/Nm³ (NOx = this + NO2 in mg/Nm³).

    >>> round(no_mg_to_no2_mg(100.0), 2)
    153.32
    """
    ratio = MOLAR_MASS_G_PER_MOL["no2"] / MOLAR_MASS_G_PER_MOL["no"]
    return _result(_as_float_array(no_mg) * ratio)


@overload
def wet_to_dry(c_wet: float, h2o_percent: float) -> float: ...
@overload
def wet_to_dry(c_wet: FloatArray, h2o_percent: ArrayLike) -> FloatArray: ...
@overload
def wet_to_dry(c_wet: ArrayLike, h2o_percent: FloatArray) -> FloatArray: ...
def wet_to_dry(c_wet: ArrayLike, h2o_percent: ArrayLike) -> ArrayLike:
    """Wet → dry basis: ``C_dry = C_wet × 100 / (100 − H2O%)`` (rules A3, check C1).

    Applies to any concentration measured in the wet gas, O2 included, and must come before
    the O2 normalisation (the IED's measured O2 is a dry value). H2O outside [0, 100) raises
    :class:`ValueError` for scalars and gives NaN for array elements; NaN propagates.

    >>> round(wet_to_dry(7.4, 18.0), 3)
    9.024
    >>> wet_to_dry(np.array([50.0, 50.0]), np.array([0.0, 100.0])).tolist()
    [50.0, nan]
    """
    c = _as_float_array(c_wet)
    h2o = _as_float_array(h2o_percent)
    bad = (h2o < 0.0) | (h2o >= 100.0)
    safe_h2o = np.where(bad, 0.0, h2o)
    out = _reject(c * (100.0 / (100.0 - safe_h2o)), bad, "H2O must be in [0, 100) %", h2o)
    return _result(out)


@overload
def dry_to_wet(c_dry: float, h2o_percent: float) -> float: ...
@overload
def dry_to_wet(c_dry: FloatArray, h2o_percent: ArrayLike) -> FloatArray: ...
@overload
def dry_to_wet(c_dry: ArrayLike, h2o_percent: FloatArray) -> FloatArray: ...
def dry_to_wet(c_dry: ArrayLike, h2o_percent: ArrayLike) -> ArrayLike:
    """Inverse of :func:`wet_to_dry`: ``C_wet = C_dry × (100 − H2O%) / 100`` (rules A3).

    Needed when a flow or a limit is stated wet; same domain policy as :func:`wet_to_dry`.

    >>> dry_to_wet(100.0, 20.0)
    80.0
    """
    c = _as_float_array(c_dry)
    h2o = _as_float_array(h2o_percent)
    bad = (h2o < 0.0) | (h2o >= 100.0)
    out = _reject(c * ((100.0 - h2o) / 100.0), bad, "H2O must be in [0, 100) %", h2o)
    return _result(out)


@overload
def actual_to_standard(
    c_act: float, t_kelvin: float, p_kpa: float, *, p_ref_kpa: float = ...
) -> float: ...
@overload
def actual_to_standard(
    c_act: FloatArray, t_kelvin: ArrayLike, p_kpa: ArrayLike, *, p_ref_kpa: float = ...
) -> FloatArray: ...
@overload
def actual_to_standard(
    c_act: ArrayLike, t_kelvin: FloatArray, p_kpa: ArrayLike, *, p_ref_kpa: float = ...
) -> FloatArray: ...
@overload
def actual_to_standard(
    c_act: ArrayLike, t_kelvin: ArrayLike, p_kpa: FloatArray, *, p_ref_kpa: float = ...
) -> FloatArray: ...
def actual_to_standard(
    c_act: ArrayLike,
    t_kelvin: ArrayLike,
    p_kpa: ArrayLike,
    *,
    p_ref_kpa: float = P_REFERENCE_IED_KPA,
) -> ArrayLike:
    """Mass concentration at actual T/p → standard: ``C × (T/273.15) × (p_ref/p)`` (rules A3).

    The gas expands when warm and at low pressure, so the same mass sits in a larger volume;
    referring it to 273.15 K and ``p_ref_kpa`` (101.3 kPa per the IED wording of A3) raises
    the concentration. Not needed for ppm values, which do not depend on T/p. Non-positive
    T or p raise :class:`ValueError` for scalars and give NaN for array elements.

    >>> actual_to_standard(100.0, 273.15, 101.3)
    100.0
    >>> round(actual_to_standard(100.0, 423.15, 98.0), 2)
    160.13
    """
    c = _as_float_array(c_act)
    t = _as_float_array(t_kelvin)
    p = _as_float_array(p_kpa)
    if p_ref_kpa <= 0:
        raise ValueError(f"reference pressure must be positive, got {p_ref_kpa}")
    bad = (t <= 0.0) | (p <= 0.0)
    safe_p = np.where(bad, 1.0, p)
    out = _reject(
        c * (t / T_STANDARD_K) * (p_ref_kpa / safe_p),
        bad,
        "temperature (K) and pressure (kPa) must be positive",
        t,
        p,
    )
    return _result(out)


@overload
def o2_normalise(
    c: float, o2_measured: float, o2_reference: float, *, only_above_reference: bool = ...
) -> float: ...
@overload
def o2_normalise(
    c: FloatArray,
    o2_measured: ArrayLike,
    o2_reference: ArrayLike,
    *,
    only_above_reference: bool = ...,
) -> FloatArray: ...
@overload
def o2_normalise(
    c: ArrayLike,
    o2_measured: FloatArray,
    o2_reference: ArrayLike,
    *,
    only_above_reference: bool = ...,
) -> FloatArray: ...
@overload
def o2_normalise(
    c: ArrayLike,
    o2_measured: ArrayLike,
    o2_reference: FloatArray,
    *,
    only_above_reference: bool = ...,
) -> FloatArray: ...
def o2_normalise(
    c: ArrayLike,
    o2_measured: ArrayLike,
    o2_reference: ArrayLike,
    *,
    only_above_reference: bool = False,
) -> ArrayLike:
    """Normalise to the reference O2: ``E_S = E_M × (21 − O_S) / (21 − O_M)``.

    IED 2010/75/EU Annex VI Part 7 [K] (same form as 40 CFR 60.284); rules A2, checks C1, C7.
    ``o2_measured`` is the dry O2 in % vol (convert it with :func:`wet_to_dry` first).
    ``only_above_reference`` is the per-permit DE 13. BImSchV §19 restriction: the factor is
    forced to 1 while ``O_M <= O_S`` so no credit is taken for O2 below the reference.
    ``O_M >= 21`` (or ``O_S >= 21``) raises :class:`ValueError` for scalars and gives NaN for
    array elements: the flue gas would be pure air and the factor undefined.

    >>> o2_normalise(100.0, 5.0, 6.0)
    93.75
    >>> o2_normalise(100.0, 5.0, 6.0, only_above_reference=True)
    100.0
    >>> o2_normalise(100.0, 9.0, 6.0, only_above_reference=True)
    125.0
    """
    conc = _as_float_array(c)
    o2_m = _as_float_array(o2_measured)
    o2_s = _as_float_array(o2_reference)
    bad = (o2_m >= O2_AIR_PERCENT) | (o2_s >= O2_AIR_PERCENT)
    safe_o2_m = np.where(bad, 0.0, o2_m)
    factor = (O2_AIR_PERCENT - o2_s) / (O2_AIR_PERCENT - safe_o2_m)
    if only_above_reference:
        factor = np.where(o2_m <= o2_s, 1.0, factor)
    out = _reject(conc * factor, bad, "measured and reference O2 must be below 21 %", o2_m, o2_s)
    return _result(out)


@overload
def calibrate(x: float, a: float, b: float) -> float: ...
@overload
def calibrate(x: FloatArray, a: float, b: float) -> FloatArray: ...
def calibrate(x: ArrayLike, a: float, b: float) -> ArrayLike:
    """QAL2 calibration function ``ŷ = a + b·x`` (EN 14181 QAL2; rules A4, A1 "averaging chain").

    Applied to the averaged raw AMS data (the STA in the analyser's own units and conditions)
    **before** any normalisation to standard conditions, because the QAL2 regression was
    fitted against the SRM on that basis.

    >>> calibrate(100.0, 2.0, 1.05)
    107.0
    """
    return _result(a + b * _as_float_array(x))
