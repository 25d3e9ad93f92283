"""The normalisation chain on short-term averages of one stack (EN 17255-1 averaging chain).

For each short-term period: raw analyser average → QAL2 calibration ``a + b·x`` (EN 14181,
before normalisation) → mg/Nm³ (ppm × M / Vm; NOx as NO2) → dry (with H2O) → standard
T/p → reference O2 (IED Annex VI Part 7, optionally only above the reference: 13. BImSchV
§19). The STA of a pollutant is valid only when every input it needs is valid in that period.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from stream.compliance import conversions
from stream.compliance.averaging import PeriodTotals, StaBatch, align_down, short_term_averages
from stream.plant import Quantity, SensorConfig, StackConfig
from stream.series import SensorSeries

Floats = npt.NDArray[np.float64]

PERIPHERAL_ROLES = ("o2", "h2o", "temperature", "pressure", "flow")


def chain_inputs(stack: StackConfig) -> set[str]:
    """The sensors whose short-term averages the chain reads (the plant mode aside): the
    analysers of the limited pollutants and the stack's peripherals."""
    inputs = {sid for quantity in stack.limits for sid in stack.pollutant_sensors(quantity)}
    inputs.update(sid for role in PERIPHERAL_ROLES if (sid := stack.peripheral(role)))
    return inputs


def plant_mode(
    stack: StackConfig, data: Mapping[str, SensorSeries]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] | None:
    """The stack's plant-mode readings as the step function the averaging takes (times, whole
    mode codes), or None without a mode sensor or readings of it."""
    mode_id = stack.peripheral("mode")
    mode = data.get(mode_id) if mode_id else None
    return (mode.ts_ns, mode.values.astype(np.int64)) if mode is not None else None


@dataclass(frozen=True)
class PollutantSta:
    """Short-term averages of one pollutant through the chain, aligned with ``sta``.

    ``standard``: calibrated, mg/Nm³, dry, standard T/p, at the measured O2 (for mass flows).
    ``normalised``: additionally at the reference O2 (compared with the limits).
    ``state``: the pollutant analyser's state, downgraded to INVALID where a peripheral input
    (O2, H2O, T, p, a second NOx component) is missing in a period the analyser was valid.
    """

    sta: StaBatch
    standard: Floats
    normalised: Floats
    state: npt.NDArray[np.int8]  # 0 valid, 1 invalid, 2 excluded (averaging.STA_STATE_CODES)

    @property
    def valid(self) -> npt.NDArray[np.bool_]:
        return np.asarray(self.state == 0)


class StackChain:
    """Computes short-term averages of every sensor of a stack once and derives pollutants."""

    def __init__(
        self,
        stack: StackConfig,
        data: dict[str, SensorSeries],
        *,
        start_ns: int,
        end_ns: int,
        period_s: int,
        carried: Mapping[str, PeriodTotals] | None = None,
    ) -> None:
        """``carried``: per sensor, totals of readings of these periods that ``data`` no longer
        holds (aligned at the first period: ``align_down(start_ns, period_s)``)."""
        self.stack = stack
        self.period_s = period_s
        self._data = data
        # STA are epoch-aligned (averaging); where local midnight is not on a period boundary
        # (UTC+05:30, +05:45 zones) widen the range so every reading still falls in an STA.
        self._start_ns = align_down(start_ns, period_s)
        self._end_ns = -align_down(-end_ns, period_s)
        self._sta: dict[str, StaBatch] = {}
        self._carried = carried or {}
        self._mode = plant_mode(stack, data)

    def sta(self, sensor_id: str) -> StaBatch:
        if sensor_id not in self._sta:
            series = self._data.get(sensor_id) or SensorSeries.empty()
            cfg = self.stack.sensors[sensor_id]
            self._sta[sensor_id] = short_term_averages(
                series.ts_ns,
                series.values,
                series.status,
                start_ns=self._start_ns,
                end_ns=self._end_ns,
                period_s=self.period_s,
                interval_s=cfg.interval_s,
                min_valid_fraction=self.stack.compliance.min_valid_fraction,
                mode_ts_ns=None if self._mode is None else self._mode[0],
                mode_values=None if self._mode is None else self._mode[1],
                carried=self._carried.get(sensor_id),
            )
        return self._sta[sensor_id]

    def _valid_mean(self, sensor_id: str) -> tuple[Floats, npt.NDArray[np.bool_]]:
        sta = self.sta(sensor_id)
        valid = sta.state == 0
        return np.where(valid, sta.mean, np.nan), valid

    def _o2_dry(self) -> tuple[Floats, npt.NDArray[np.bool_]]:
        o2_id = self.stack.peripheral("o2")
        assert o2_id is not None  # the configuration guarantees it when normalising
        o2, ok = self._valid_mean(o2_id)
        if self.stack.sensors[o2_id].basis == "wet":
            h2o, h2o_ok = self._h2o()
            o2, ok = np.asarray(conversions.wet_to_dry(o2, h2o), np.float64), ok & h2o_ok
        return o2, ok

    def _h2o(self) -> tuple[Floats, npt.NDArray[np.bool_]]:
        h2o_id = self.stack.peripheral("h2o")
        assert h2o_id is not None
        return self._valid_mean(h2o_id)

    def _to_standard(self, sensor: SensorConfig, c: Floats) -> tuple[Floats, npt.NDArray[np.bool_]]:
        ok = np.ones(c.shape, bool)
        if sensor.basis == "wet":
            h2o, h2o_ok = self._h2o()
            c, ok = np.asarray(conversions.wet_to_dry(c, h2o), np.float64), ok & h2o_ok
        # A ppm value is a volume ratio: it does not depend on T/p, and ppm → mg/Nm³ above
        # already gives standard conditions, so only mass concentrations are converted.
        if sensor.conditions == "actual" and sensor.unit != "ppm":
            t_id, p_id = self.stack.peripheral("temperature"), self.stack.peripheral("pressure")
            assert t_id is not None and p_id is not None
            t, t_ok = self._valid_mean(t_id)
            p, p_ok = self._valid_mean(p_id)
            t_k = _kelvin(t, self.stack.sensors[t_id].unit)
            p_kpa = _kpa(p, self.stack.sensors[p_id].unit)
            c = conversions.actual_to_standard(c, t_k, p_kpa)
            ok &= t_ok & p_ok
        return c, ok

    def _component_mg(self, sensor_id: str, express_as: str) -> Floats:
        """Calibrated analyser STA in mg/Nm³ (``express_as`` the species for ppm)."""
        sensor = self.stack.sensors[sensor_id]
        c = self.sta(sensor_id).mean.astype(np.float64)
        if sensor.calibration is not None:
            c = conversions.calibrate(c, sensor.calibration.a, sensor.calibration.b)
        if sensor.unit == "ppm":
            vm = self.stack.compliance.molar_volume_l
            c = conversions.ppm_to_mg_nm3(c, express_as, vm)
        elif express_as == "nox" and sensor.quantity is Quantity.NO:
            c = conversions.no_mg_to_no2_mg(c)
        return np.asarray(c, np.float64)

    def pollutant(self, quantity: Quantity) -> PollutantSta:
        sources = self.stack.pollutant_sensors(quantity)
        primary = next(
            (s for s in sources if self.stack.sensors[s].quantity is quantity), None
        ) or next(s for s in sources if self.stack.sensors[s].quantity is Quantity.NO)
        sta = self.sta(primary)
        state = sta.state.astype(np.int8, copy=True)
        total = np.zeros(len(sta))
        ok = np.ones(len(sta), bool)
        express_as = quantity.value
        for sid in sources:
            c = self._component_mg(sid, express_as)
            c, std_ok = self._to_standard(self.stack.sensors[sid], c)
            total = total + c
            ok &= std_ok & (self.sta(sid).state == 0)
        if self.stack.reference_o2 is not None:
            o2, o2_ok = self._o2_dry()
            normalised = conversions.o2_normalise(
                total,
                o2,
                self.stack.reference_o2,
                only_above_reference=self.stack.compliance.o2_only_above_reference,
            )
            ok &= o2_ok & np.isfinite(normalised)
        else:
            normalised = total
        # A period the analyser got right but an input is missing for is INVALID (AMS).
        state[(state == 0) & ~ok] = 1
        standard = np.where(state == 0, total, np.nan)
        normalised = np.where(state == 0, normalised, np.nan)
        return PollutantSta(sta, standard, np.asarray(normalised, np.float64), state)

    def flow(self) -> Floats | None:
        flow_id = self.stack.peripheral("flow")
        if flow_id is None:
            return None
        return self._valid_mean(flow_id)[0]


def _kelvin(t: Floats, unit: str) -> Floats:
    return t if unit == "K" else t + 273.15


_KPA = {"kPa": 1.0, "hPa": 0.1, "mbar": 0.1, "Pa": 0.001}


def _kpa(p: Floats, unit: str) -> Floats:
    return p * _KPA[unit]
