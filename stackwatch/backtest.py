"""Backtest: detection flags of a replay scored against the ground-truth labels of a recording.

The scoring is the one of :mod:`stream.detect.evaluate`, extended to recordings that mix fault
kinds, sensors and stacks:

* flags of a sensor closer than ``merge`` to each other form one *alarm event*;
* a labelled window ``[start, end)`` of a detectable kind counts as *detected* when its sensor
  is flagged inside it; the *delay* runs from the start to the first such flag;
* an alarm event is *explained* when it starts inside a window of its own sensor or up to
  ``tolerance`` after it (the return to normal is itself a change). Windows of an
  ``excursion``, ``startup`` or ``shutdown`` explain flags on every sensor of their stack:
  a process change moves all of them. Maintenance and calibration windows explain flags too
  (the status says so; detection does not score such readings);
* an explained event is a true event of the kind of that window; every other event is a
  false alarm.

Per kind: recall = detected / windows, precision = true events of the kind / (those + all
false alarms), so each row answers "if this were the only fault kind, how trustworthy would an
alarm be", as in the single-kind evaluation; F1 from the two. The ``all`` row uses every
detectable window and every event. Context kinds (maintenance, calibration, start-up,
shut-down) are listed with how many of their windows were flagged, not scored.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from stream.model import NS_PER_S, SensorKey

CONTEXT_KINDS = frozenset({"maintenance", "calibration", "startup", "shutdown"})
"""Labelled periods that are not faults to detect."""
STACK_WIDE_KINDS = frozenset({"excursion", "startup", "shutdown"})
"""Labels whose window explains flags on every sensor of the stack."""
SECONDS_PER_DAY = 86_400.0


class Label(Protocol):
    """One ground-truth window (``simulators.faults.FaultEvent`` fits)."""

    @property
    def plant(self) -> str: ...
    @property
    def stack(self) -> str: ...
    @property
    def sensor(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def start_ns(self) -> int: ...
    @property
    def end_ns(self) -> int: ...


class Window(NamedTuple):
    """A plain :class:`Label`."""

    plant: str
    stack: str
    sensor: str
    kind: str
    start_ns: int
    end_ns: int


@dataclass(frozen=True)
class KindScore:
    """Metrics of one fault kind (see the module docstring)."""

    kind: str
    windows: int
    detected: int
    true_events: int
    false_alarms: int
    delays_s: tuple[float, ...]
    context: bool = False

    @property
    def recall(self) -> float:
        return self.detected / self.windows if self.windows else math.nan

    @property
    def precision(self) -> float:
        events = self.true_events + self.false_alarms
        return self.true_events / events if events else math.nan

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        if math.isnan(p) or math.isnan(r) or p + r == 0:
            return math.nan if math.isnan(p) or math.isnan(r) else 0.0
        return 2 * p * r / (p + r)

    @property
    def delay_median_s(self) -> float:
        return statistics.median(self.delays_s) if self.delays_s else math.nan

    def as_dict(self) -> dict[str, object]:
        def num(x: float, digits: int = 4) -> float | None:
            return None if math.isnan(x) else round(x, digits)

        return {
            "kind": self.kind,
            "context": self.context,
            "windows": self.windows,
            "detected": self.detected,
            "recall": num(self.recall),
            "precision": None if self.context else num(self.precision),
            "f1": None if self.context else num(self.f1),
            "true_events": self.true_events,
            "false_alarms": None if self.context else self.false_alarms,
            "delay_median_s": num(self.delay_median_s, 1),
        }


@dataclass(frozen=True)
class Backtest:
    """Every kind's score plus the overall row and the false-alarm rate."""

    kinds: tuple[KindScore, ...]
    overall: KindScore
    sensor_days: float

    @property
    def false_alarms_per_sensor_day(self) -> float:
        return self.overall.false_alarms / self.sensor_days if self.sensor_days else math.nan


def _onsets(flags: Sequence[int], merge_ns: int) -> list[int]:
    """First flag of each run of flags closer than ``merge_ns``.

    >>> _onsets([1, 2, 3, 10, 11, 30], merge_ns=5)
    [1, 10, 30]
    """
    out: list[int] = []
    last: int | None = None
    for ts in flags:
        if last is None or ts - last > merge_ns:
            out.append(ts)
        last = ts
    return out


def score(
    labels: Iterable[Label],
    flags: Mapping[SensorKey, Sequence[int]],
    *,
    sensor_spans: Mapping[SensorKey, tuple[int, int]],
    tolerance_s: float = 60.0,
    merge_s: float = 60.0,
) -> Backtest:
    """Score per-sensor flag times against ``labels`` (see the module docstring).

    ``sensor_spans`` (first and last reading per sensor) give the sensor-days over which
    false alarms are counted.

    >>> s = NS_PER_S
    >>> key = SensorKey("p", "s", "nox")
    >>> labels = [Window("p", "s", "nox", "spike", 100 * s, 101 * s)]
    >>> flags = {key: [100 * s, 5000 * s]}
    >>> bt = score(labels, flags, sensor_spans={key: (0, 86_400 * s)})
    >>> [(k.kind, k.detected, k.true_events, k.false_alarms) for k in bt.kinds]
    [('spike', 1, 1, 1)]
    >>> bt.overall.precision, bt.false_alarms_per_sensor_day
    (0.5, 1.0)
    """
    tolerance = round(tolerance_s * NS_PER_S)
    merge = round(merge_s * NS_PER_S)
    labels = sorted(labels, key=lambda w: (w.start_ns, w.plant, w.stack, w.sensor))
    kinds = sorted({str(w.kind) for w in labels})
    windows: dict[str, int] = dict.fromkeys(kinds, 0)
    detected: dict[str, int] = dict.fromkeys(kinds, 0)
    true_events: dict[str, int] = dict.fromkeys(kinds, 0)
    delays: dict[str, list[float]] = {k: [] for k in kinds}
    by_sensor: dict[SensorKey, list[Label]] = {}
    by_stack: dict[tuple[str, str], list[Label]] = {}
    for w in labels:
        if w.sensor:
            by_sensor.setdefault(SensorKey(w.plant, w.stack, w.sensor), []).append(w)
        if not w.sensor or str(w.kind) in STACK_WIDE_KINDS:
            by_stack.setdefault((w.plant, w.stack), []).append(w)
    sorted_flags = {key: sorted(ts) for key, ts in flags.items()}

    for w in labels:
        kind = str(w.kind)
        windows[kind] += 1
        keys = (
            [SensorKey(w.plant, w.stack, w.sensor)]
            if w.sensor
            else [k for k in sorted_flags if (k.plant, k.stack) == (w.plant, w.stack)]
        )
        hits = [
            ts
            for key in keys
            for ts in sorted_flags.get(key, ())
            if w.start_ns <= ts < max(w.end_ns, w.start_ns + 1)
        ]
        if hits:
            detected[kind] += 1
            delays[kind].append((min(hits) - w.start_ns) / NS_PER_S)

    false_alarms = 0
    for key, ts in sorted_flags.items():
        explaining = by_sensor.get(key, []) + by_stack.get((key.plant, key.stack), [])
        for onset in _onsets(ts, merge):
            owner = next(
                (w for w in explaining if w.start_ns <= onset <= w.end_ns + tolerance), None
            )
            if owner is None:
                false_alarms += 1
            else:
                true_events[str(owner.kind)] += 1

    def row(kind: str) -> KindScore:
        context = kind in CONTEXT_KINDS
        return KindScore(
            kind,
            windows[kind],
            detected[kind],
            true_events[kind],
            0 if context else false_alarms,
            tuple(delays[kind]),
            context=context,
        )

    rows = tuple(row(k) for k in kinds)
    scored = [r for r in rows if not r.context]
    overall = KindScore(
        "all",
        sum(r.windows for r in scored),
        sum(r.detected for r in scored),
        sum(r.true_events for r in scored),
        false_alarms,
        tuple(d for r in scored for d in r.delays_s),
    )
    sensor_days = sum((b - a) / NS_PER_S for a, b in sensor_spans.values()) / SECONDS_PER_DAY
    return Backtest(rows, overall, sensor_days)


def _fmt(x: float, pattern: str = "{:.2f}") -> str:
    return "-" if math.isnan(x) else pattern.format(x)


def to_table(bt: Backtest) -> str:
    """The metrics as a plain-text table.

    >>> print(to_table(Backtest((), KindScore("all", 0, 0, 0, 0, ()), 0.0)).splitlines()[0])
    kind                      windows  detected  recall  precision    F1  delay_s  true  false
    """
    out = [
        f"{'kind':<24}{'windows':>9}{'detected':>10}{'recall':>8}{'precision':>11}"
        f"{'F1':>6}{'delay_s':>9}{'true':>6}{'false':>7}"
    ]
    for r in (*bt.kinds, bt.overall):
        name = f"{r.kind} (context)" if r.context else r.kind
        precision = "" if r.context else _fmt(r.precision)
        f1 = "" if r.context else _fmt(r.f1)
        false = "" if r.context else str(r.false_alarms)
        out.append(
            f"{name:<24}{r.windows:>9}{r.detected:>10}{_fmt(r.recall):>8}{precision:>11}"
            f"{f1:>6}{_fmt(r.delay_median_s, '{:.0f}'):>9}{r.true_events:>6}{false:>7}"
        )
    out.append(
        f"false alarms: {bt.overall.false_alarms} over {bt.sensor_days:.2f} sensor-days "
        f"({_fmt(bt.false_alarms_per_sensor_day)} per sensor-day)"
    )
    return "\n".join(out)


def to_json(bt: Backtest) -> str:
    return json.dumps(
        {
            "kinds": [r.as_dict() for r in bt.kinds],
            "overall": bt.overall.as_dict(),
            "sensor_days": round(bt.sensor_days, 4),
            "false_alarms_per_sensor_day": (
                None
                if math.isnan(bt.false_alarms_per_sensor_day)
                else round(bt.false_alarms_per_sensor_day, 4)
            ),
        },
        indent=2,
    )
