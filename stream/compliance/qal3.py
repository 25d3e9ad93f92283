"""QAL3 control charts: is the analyser still as good as it was at QAL1/QAL2?

EN 14181 QAL3 (rules A4, feature (b) #9): the operator checks the AMS at its zero and span
point at the maintenance interval and plots each deviation ``d = reading − reference`` on a
control chart whose limits come from ``s_AMS``, the standard deviation from the QAL1
performance data. EN 14181:2014 allows Shewhart, EWMA or built-in charts; EN 14181:2004 (still
built into analysers such as the ABB EL3000) specifies the CUSUM charts implemented here:

* drift: two one-sided sums with ``k_x = 0.501·s_AMS`` and ``h_x = 2.85·s_AMS`` [V];
* precision: a cumulative sum of squared deviations with ``k_s = 1.85·s²_AMS`` and
  ``h_s = 6.90·s²_AMS`` [V]; the exact variance estimator of the 2004 Annex is [K].

A drift out of control means "adjust the AMS"; a precision out of control means "find the
cause", and the drift test is skipped for that check (rules A4). The constants are keyword
parameters so a permit or a later reading of the standard can override them.

Worked example C8 (s_AMS = 2.0, span deviation +2.5 at every check):

>>> drift = CusumDrift(2.0)
>>> [(round(st.s_pos, 3), st.out_of_control) for st in (drift.update(2.5) for _ in range(4))]
[(1.498, False), (2.996, False), (4.494, False), (5.992, True)]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

CUSUM_DRIFT_K: float = 0.501
"""EN 14181:2004 drift reference value ``k_x`` as a multiple of s_AMS (rules A4) [V]."""
CUSUM_DRIFT_H: float = 2.85
"""EN 14181:2004 drift decision interval ``h_x`` as a multiple of s_AMS (rules A4) [V]."""
CUSUM_PRECISION_K: float = 1.85
"""EN 14181:2004 precision reference value ``k_s`` as a multiple of s²_AMS (rules A4) [V]."""
CUSUM_PRECISION_H: float = 6.90
"""EN 14181:2004 precision decision interval ``h_s`` as a multiple of s²_AMS (rules A4) [V]."""

Point = Literal["zero", "span"]
ShewhartZone = Literal["ok", "warning", "action"]


def _check_s_ams(s_ams: float) -> None:
    if not (math.isfinite(s_ams) and s_ams > 0):
        raise ValueError(f"s_AMS must be a positive finite number, got {s_ams}")


def _check_deviation(deviation: float) -> None:
    if not math.isfinite(deviation):
        raise ValueError(f"deviation must be finite, got {deviation}")


@dataclass(frozen=True, slots=True)
class CusumState:
    """State of the two one-sided drift sums after a check (EN 14181:2004 QAL3).

    ``n_pos``/``n_neg`` count the checks since the sum last left zero: they date the start
    of the drift, which tells the operator since when the AMS has been off.
    """

    s_pos: float
    s_neg: float
    n_pos: int
    n_neg: int
    out_of_control: bool


class CusumDrift:
    """Two-sided tabular CUSUM of zero or span deviations (EN 14181:2004 QAL3; rules A4; C8).

    ``S⁺ = max(0, S⁺ + d − k)``, ``S⁻ = max(0, S⁻ − d − k)`` with ``k = 0.501·s_AMS``; the AMS
    is out of control (adjustment needed) when either sum exceeds ``h = 2.85·s_AMS``. The
    state keeps accumulating until :meth:`reset`, which the operator triggers after adjusting
    the AMS.

    Parameters
    ----------
    s_ams
        Standard deviation of the AMS at this point, from QAL1 (same unit as ``d``).
    k_factor, h_factor
        Multiples of ``s_ams`` for ``k`` and ``h`` (defaults from EN 14181:2004).

    Examples
    --------
    >>> chart = CusumDrift(2.0)
    >>> chart.k, chart.h
    (1.002, 5.7)
    >>> chart.update(-3.0)
    CusumState(s_pos=0.0, s_neg=1.998, n_pos=0, n_neg=1, out_of_control=False)
    >>> chart.reset(); chart.state.s_neg
    0.0
    """

    def __init__(
        self,
        s_ams: float,
        *,
        k_factor: float = CUSUM_DRIFT_K,
        h_factor: float = CUSUM_DRIFT_H,
    ) -> None:
        _check_s_ams(s_ams)
        self.s_ams = s_ams
        self.k = k_factor * s_ams
        self.h = h_factor * s_ams
        self._state = CusumState(0.0, 0.0, 0, 0, out_of_control=False)

    @property
    def state(self) -> CusumState:
        return self._state

    def update(self, deviation: float) -> CusumState:
        """Add one check ``d = reading − reference`` and return the new state."""
        _check_deviation(deviation)
        prev = self._state
        s_pos = max(0.0, prev.s_pos + deviation - self.k)
        s_neg = max(0.0, prev.s_neg - deviation - self.k)
        n_pos = prev.n_pos + 1 if s_pos > 0.0 else 0
        n_neg = prev.n_neg + 1 if s_neg > 0.0 else 0
        self._state = CusumState(
            s_pos, s_neg, n_pos, n_neg, out_of_control=s_pos > self.h or s_neg > self.h
        )
        return self._state

    def reset(self) -> None:
        """Start afresh after an AMS adjustment (EN 14181 QAL3)."""
        self._state = CusumState(0.0, 0.0, 0, 0, out_of_control=False)


@dataclass(frozen=True, slots=True)
class PrecisionState:
    """Precision CUSUM statistic after a check and whether it exceeds ``h_s``."""

    statistic: float
    out_of_control: bool


class CusumPrecision:
    """One-sided CUSUM of squared deviations: has the AMS become noisier? (EN 14181:2004).

    ``statistic = max(0, previous + d² − k_s)`` with ``k_s = 1.85·s²_AMS``; out of control
    (decrease of precision) when it exceeds ``h_s = 6.90·s²_AMS`` (rules A4).

    Caveat [K]: the variance estimator of the EN 14181:2004 Annex was not verified. This uses
    ``d²``, the squared deviation from the reference value, so a large drift also raises the
    statistic; the standard may use a different single-check variance estimate. The factors are
    parameters so they can be aligned with the standard's text without touching callers.

    Examples
    --------
    >>> chart = CusumPrecision(1.0)
    >>> chart.update(2.0)
    PrecisionState(statistic=2.15, out_of_control=False)
    >>> chart.update(3.0).out_of_control
    True
    """

    def __init__(
        self,
        s_ams: float,
        *,
        k_factor: float = CUSUM_PRECISION_K,
        h_factor: float = CUSUM_PRECISION_H,
    ) -> None:
        _check_s_ams(s_ams)
        self.s_ams = s_ams
        self.k = k_factor * s_ams**2
        self.h = h_factor * s_ams**2
        self._state = PrecisionState(0.0, out_of_control=False)

    @property
    def state(self) -> PrecisionState:
        return self._state

    def update(self, deviation: float) -> PrecisionState:
        """Add one check ``d = reading − reference`` and return the new state."""
        _check_deviation(deviation)
        statistic = max(0.0, self._state.statistic + deviation * deviation - self.k)
        self._state = PrecisionState(statistic, out_of_control=statistic > self.h)
        return self._state

    def reset(self) -> None:
        """Start afresh once the cause of the imprecision has been removed."""
        self._state = PrecisionState(0.0, out_of_control=False)


class Shewhart:
    """Shewhart chart of single deviations: warning beyond ±2·s_AMS, action beyond ±3·s_AMS.

    EN 14181:2014 QAL3 permits Shewhart charts; the 2/3·s limits are the usual SPC convention
    [K] (rules A4). A deviation exactly on a limit is still inside it.

    >>> chart = Shewhart(2.0)
    >>> chart.check(4.0), chart.check(-4.1), chart.check(6.5)
    ('ok', 'warning', 'action')
    """

    def __init__(self, s_ams: float, *, warning: float = 2.0, action: float = 3.0) -> None:
        _check_s_ams(s_ams)
        if not 0 < warning < action:
            raise ValueError(f"need 0 < warning < action, got {warning}, {action}")
        self.s_ams = s_ams
        self.warning_limit = warning * s_ams
        self.action_limit = action * s_ams

    def check(self, deviation: float) -> ShewhartZone:
        """Classify one deviation ``d = reading − reference``."""
        _check_deviation(deviation)
        size = abs(deviation)
        if size > self.action_limit:
            return "action"
        if size > self.warning_limit:
            return "warning"
        return "ok"


class Ewma:
    """EWMA chart ``z_t = λ·d_t + (1 − λ)·z_{t−1}`` with limits ``±L·s·√(λ/(2 − λ))``.

    EN 14181:2014 QAL3 permits EWMA charts; λ = 0.2 and L = 3 are the usual defaults and the
    asymptotic limit is used [K] (rules A4). ``z_0 = 0`` (no deviation before the first check).

    >>> chart = Ewma(1.0)
    >>> round(chart.limit, 3)
    1.0
    >>> [(round(z, 2), out) for z, out in (chart.update(2.0) for _ in range(3))]
    [(0.4, False), (0.72, False), (0.98, False)]
    >>> chart.update(2.0)[1]
    True
    """

    def __init__(self, s_ams: float, lam: float = 0.2, L: float = 3.0) -> None:  # noqa: N803
        _check_s_ams(s_ams)
        if not 0 < lam <= 1:
            raise ValueError(f"lambda must be in (0, 1], got {lam}")
        if L <= 0:
            raise ValueError(f"L must be positive, got {L}")
        self.s_ams = s_ams
        self.lam = lam
        self.L = L
        self.limit = L * s_ams * math.sqrt(lam / (2.0 - lam))
        self.z = 0.0

    def update(self, deviation: float) -> tuple[float, bool]:
        """Add one check and return ``(z, out_of_control)``."""
        _check_deviation(deviation)
        self.z = self.lam * deviation + (1.0 - self.lam) * self.z
        return self.z, abs(self.z) > self.limit

    def reset(self) -> None:
        """Start afresh after an AMS adjustment."""
        self.z = 0.0


@dataclass(frozen=True, slots=True)
class Qal3Event:
    """A control chart went out of control at one check (EN 14181 QAL3)."""

    ts_ns: int
    point: str
    kind: Literal["drift", "precision"]
    statistic: float
    limit: float
    message: str


class _PointCharts:
    """Drift and precision CUSUM of one check point (zero or span)."""

    def __init__(self, s_ams: float) -> None:
        self.drift = CusumDrift(s_ams)
        self.precision = CusumPrecision(s_ams)

    def reset(self) -> None:
        self.drift.reset()
        self.precision.reset()


class Qal3Chart:
    """QAL3 CUSUM charts at the zero and span point of one analyser (EN 14181; rules A4; C8).

    Each :meth:`check` first updates the precision chart; if precision is out of control the
    drift test is skipped for that check (the drift sums stay as they were), otherwise the
    drift chart is updated. An event is emitted when a chart *goes* out of control, not again
    while it stays out; after it comes back in control (or after :meth:`reset`) a new
    excursion emits again.

    Parameters
    ----------
    s_ams_zero
        s_AMS at the zero point (QAL1).
    s_ams_span
        s_AMS at the span point; defaults to ``s_ams_zero``.

    Examples
    --------
    >>> chart = Qal3Chart(2.0)
    >>> [len(chart.check("span", 102.5, 100.0, ts_ns=i)) for i in range(1, 6)]
    [0, 0, 0, 1, 0]
    >>> chart.drift_state("span").out_of_control, chart.drift_state("zero").out_of_control
    (True, False)
    >>> chart.reset("span"); chart.drift_state("span").s_pos
    0.0
    """

    def __init__(self, s_ams_zero: float, s_ams_span: float | None = None) -> None:
        self._zero = _PointCharts(s_ams_zero)
        self._span = _PointCharts(s_ams_zero if s_ams_span is None else s_ams_span)

    def _point(self, point: str) -> _PointCharts:
        if point == "zero":
            return self._zero
        if point == "span":
            return self._span
        raise ValueError(f"point must be 'zero' or 'span', got {point!r}")

    def drift_state(self, point: Point) -> CusumState:
        return self._point(point).drift.state

    def precision_state(self, point: Point) -> PrecisionState:
        return self._point(point).precision.state

    def check(self, point: Point, reading: float, reference: float, ts_ns: int) -> list[Qal3Event]:
        """Record one zero or span check and return the events it raises (0, or 1)."""
        charts = self._point(point)
        deviation = reading - reference
        was_imprecise = charts.precision.state.out_of_control
        precision = charts.precision.update(deviation)
        if precision.out_of_control:
            if was_imprecise:
                return []
            return [
                Qal3Event(
                    ts_ns,
                    point,
                    "precision",
                    precision.statistic,
                    charts.precision.h,
                    f"QAL3 {point}: decrease of precision, CUSUM {precision.statistic:.4g} > "
                    f"h_s {charts.precision.h:.4g}; find the cause, drift test skipped "
                    "(EN 14181:2004)",
                )
            ]
        was_drifting = charts.drift.state.out_of_control
        drift = charts.drift.update(deviation)
        if not drift.out_of_control or was_drifting:
            return []
        direction, statistic = (
            ("+", drift.s_pos) if drift.s_pos >= drift.s_neg else ("-", drift.s_neg)
        )
        return [
            Qal3Event(
                ts_ns,
                point,
                "drift",
                statistic,
                charts.drift.h,
                f"QAL3 {point}: drift out of control, CUSUM S{direction} {statistic:.4g} > "
                f"h_x {charts.drift.h:.4g}; adjust the AMS (EN 14181:2004)",
            )
        ]

    def reset(self, point: Point | None = None) -> None:
        """Reset the charts of ``point`` (both points if None) after an AMS adjustment."""
        if point is None:
            self._zero.reset()
            self._span.reset()
        else:
            self._point(point).reset()
