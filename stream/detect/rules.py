"""Explicit fault rules: out of range, stuck (flat line), rate of change and dropout.

Some faults have a definition an operator already knows, needs no model to see, and should be
reported with that name: a value outside the instrument's range, an analyser repeating the
same value, a jump faster than the process can move, a sensor that fell silent. They fire at
full certainty (score 1.0) and keep working during the models' warm-up.

Stuck is the one rule that learns: a noisy analyser repeats a value by chance now and then,
a coarsely quantised one often. The rule tracks how often a reading equals the previous one
(``repeat_rate``, learnt from readings the filter lets through) and flags a run of ``n``
equal readings once ``repeat_rate ** (n - 1)`` falls below ``p``, i.e. when the run is too
long to be chance for *this* sensor (but never before ``min_run``).

Dropout needs time: the expected interval is configured or estimated (the median of the
first intervals seen), and a gap of ``max_missing`` intervals is reported when the next
reading arrives, or earlier by :meth:`FaultRules.overdue` on a clock tick.

>>> rules = FaultRules(valid_range=(0.0, 100.0), interval_s=1.0)
>>> [rules.check(i * 10**9, v) for i, v in enumerate([5.0, 150.0])]
[<Kind.NONE: 'none'>, <Kind.OUT_OF_RANGE: 'out_of_range'>]
>>> rules.overdue(10 * 10**9)
True
"""

from __future__ import annotations

import math

from stream.detect.protocol import Kind
from stream.model import NS_PER_S

# Enum members as module globals on the per-reading path: ``Kind.NONE`` is a lookup through
# the enum's metaclass, ~70 ns on Python 3.11.
_NONE, _DROPOUT, _STUCK, _RATE_OF_CHANGE, _OUT_OF_RANGE = (
    Kind.NONE,
    Kind.DROPOUT,
    Kind.STUCK,
    Kind.RATE_OF_CHANGE,
    Kind.OUT_OF_RANGE,
)

_INTERVAL_SAMPLES = 32


class FaultRules:
    """The four rules of one sensor, checked in time order.

    Parameters
    ----------
    valid_range
        ``(lo, hi)``: values outside are ``out_of_range``; ``None`` disables the rule.
    max_rate
        Largest plausible change per second (units/s); ``None`` disables the rule.
    interval_s
        Expected sampling interval; ``None`` estimates it from the first intervals.
    max_missing
        A gap of this many expected intervals without data is a ``dropout``.
    min_run, p, tolerance
        Stuck: at least ``min_run`` equal readings (``|Δ| ≤ tolerance``) whose chance is
        below ``p`` at the learnt repeat rate.
    """

    def __init__(
        self,
        *,
        valid_range: tuple[float, float] | None = None,
        max_rate: float | None = None,
        interval_s: float | None = None,
        max_missing: float = 5.0,
        min_run: int = 10,
        p: float = 1e-7,
        tolerance: float = 0.0,
        repeat_memory: int = 3600,
    ) -> None:
        if valid_range is not None and not valid_range[0] < valid_range[1]:
            raise ValueError("valid_range must be (lo, hi) with lo < hi")
        if max_rate is not None and max_rate <= 0:
            raise ValueError("max_rate must be positive")
        if interval_s is not None and interval_s <= 0:
            raise ValueError("interval_s must be positive")
        if max_missing < 1 or min_run < 2 or not 0 < p < 1 or tolerance < 0:
            raise ValueError("need max_missing ≥ 1, min_run ≥ 2, 0 < p < 1, tolerance ≥ 0")
        self.valid_range = valid_range
        self.max_rate = max_rate
        self.interval_s = interval_s
        self.max_missing = max_missing
        self.min_run = min_run
        self.p = p
        self.tolerance = tolerance
        self.repeat_memory = repeat_memory
        self._log_p = math.log(p)
        self.repeat_rate = 0.5  # prior until learnt
        self.run = 0  # equal readings in a row, counting the first
        self._learnt = 0
        self._last_ts: int | None = None
        self._last_value = math.nan
        self._repeated = False
        self._elapsed = 0
        self._gap_ns: int | None = None if interval_s is None else self._gap_from(interval_s)
        self._deltas: list[int] = []

    def _gap_from(self, interval_s: float) -> int:
        return round((self.max_missing + 0.5) * interval_s * NS_PER_S)

    @property
    def gap_ns(self) -> int | None:
        """Silence that counts as a dropout (None while the interval is still unknown)."""
        return self._gap_ns

    def check(self, ts_ns: int, value: float) -> Kind:
        """The rule a reading breaks (``Kind.NONE`` if none); updates the run and last reading."""
        last_ts, last_value = self._last_ts, self._last_value
        self._repeated = repeated = abs(value - last_value) <= self.tolerance
        self.run = self.run + 1 if repeated else 1
        self._last_ts, self._last_value = ts_ns, value
        if last_ts is None:
            self._elapsed = 0
            return self._range(value)
        self._elapsed = elapsed = ts_ns - last_ts
        gap = self._gap_ns
        if gap is not None and elapsed >= gap:
            return _DROPOUT
        kind = self._range(value)
        if kind is not _NONE:
            return kind
        if self.run >= self.min_run and self._stuck():
            return _STUCK
        rate = self.max_rate
        if rate is not None and elapsed > 0 and abs(value - last_value) * NS_PER_S > rate * elapsed:
            return _RATE_OF_CHANGE
        return _NONE

    def _range(self, value: float) -> Kind:
        bounds = self.valid_range
        if bounds is not None and not bounds[0] <= value <= bounds[1]:
            return _OUT_OF_RANGE
        return _NONE

    def _stuck(self) -> bool:
        rate = self.repeat_rate
        if rate >= 1.0:
            return False
        return rate <= 0.0 or (self.run - 1) * math.log(rate) <= self._log_p

    def overdue(self, now_ns: int) -> bool:
        """Whether the sensor has been silent for a dropout at ``now_ns``."""
        last, gap = self._last_ts, self._gap_ns
        return last is not None and gap is not None and now_ns - last >= gap

    def learn(self) -> None:
        """Learn from the reading just checked (call only if the filter lets it through):
        the repeat rate and, while it is unknown, the sampling interval."""
        self._learnt += 1
        rate = max(1.0 / self.repeat_memory, 1.0 / self._learnt)
        target = 1.0 if self._repeated else 0.0
        self.repeat_rate += rate * (target - self.repeat_rate)
        if self._gap_ns is None and self._elapsed > 0:
            self._deltas.append(self._elapsed)
            if len(self._deltas) >= _INTERVAL_SAMPLES:
                median = sorted(self._deltas)[len(self._deltas) // 2]
                self._gap_ns = self._gap_from(median / NS_PER_S)
                self._deltas = []

    def interrupt(self) -> None:
        """Forget the last reading: the sensor was out of service (maintenance, calibration)
        and its next reading neither continues a run nor counts the pause as a dropout."""
        self._last_ts = None
        self._last_value = math.nan
        self.run = 0

    @property
    def last_ts_ns(self) -> int | None:
        """Time of the last reading checked."""
        return self._last_ts

    def __repr__(self) -> str:
        return (
            f"FaultRules(valid_range={self.valid_range}, max_rate={self.max_rate}, "
            f"interval_s={self.interval_s}, max_missing={self.max_missing}, "
            f"min_run={self.min_run}, p={self.p}, tolerance={self.tolerance})"
        )
