"""The explicit fault rules: out of range, stuck, rate of change, dropout."""

from __future__ import annotations

import random

import pytest

from stream.detect.protocol import Kind
from stream.detect.rules import FaultRules
from stream.model import NS_PER_S


def feed(
    rules: FaultRules, values: list[float], interval_s: float = 1.0, start: int = 0
) -> list[Kind]:
    """Check (and learn from every clean reading) a series at a fixed interval."""
    kinds = []
    for i, v in enumerate(values, start=start):
        kind = rules.check(round(i * interval_s * NS_PER_S), v)
        if kind is Kind.NONE:
            rules.learn()
        kinds.append(kind)
    return kinds


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (50.0, Kind.NONE),  # inside
        (0.0, Kind.NONE),  # the bounds themselves are valid
        (100.0, Kind.NONE),
        (-0.1, Kind.OUT_OF_RANGE),  # below
        (100.5, Kind.OUT_OF_RANGE),  # above
    ],
)
def test_out_of_range(value: float, expected: Kind) -> None:
    rules = FaultRules(valid_range=(0.0, 100.0))
    assert rules.check(0, value) is expected


def test_rate_of_change_uses_elapsed_time() -> None:
    rules = FaultRules(max_rate=2.0)  # units per second
    assert rules.check(0, 10.0) is Kind.NONE
    assert rules.check(1 * NS_PER_S, 11.9) is Kind.NONE  # 1.9/s
    assert rules.check(2 * NS_PER_S, 14.0) is Kind.RATE_OF_CHANGE  # 2.1/s
    assert rules.check(12 * NS_PER_S, 30.0) is Kind.NONE  # 16 in 10 s = 1.6/s


def test_stuck_flags_a_frozen_noisy_signal_within_its_minimum_run() -> None:
    rng = random.Random(1)
    rules = FaultRules(min_run=10)
    noisy = [round(100 + rng.gauss(0, 1.5), 1) for _ in range(2000)]
    kinds = feed(rules, [*noisy, *[noisy[-1]] * 30])
    assert Kind.STUCK not in kinds[:2000]
    first = kinds.index(Kind.STUCK)
    # the run counts the last noisy reading, so the 9th repeat is the 10th equal reading
    assert first == 2000 + 8
    assert all(k is Kind.STUCK for k in kinds[first:])


def test_stuck_needs_a_longer_run_on_a_coarsely_quantised_signal() -> None:
    rng = random.Random(2)
    rules = FaultRules(min_run=10, p=1e-7)
    coarse = [float(round(rng.gauss(0, 0.4))) for _ in range(3000)]  # mostly 0, often repeats
    kinds = feed(rules, [*coarse, *[coarse[-1]] * 200])
    assert Kind.STUCK not in kinds[:3000]
    run = kinds.index(Kind.STUCK) - 3000
    assert run > 15  # a repeat is common here, so ten in a row is no evidence
    assert 0.3 < rules.repeat_rate < 0.9


def test_stuck_never_flags_before_min_run() -> None:
    rules = FaultRules(min_run=20)
    kinds = feed(rules, [1.0] * 19)
    assert Kind.STUCK not in kinds


def test_dropout_on_the_reading_after_a_gap_with_a_configured_interval() -> None:
    rules = FaultRules(interval_s=1.0, max_missing=5)
    assert rules.gap_ns == 5_500_000_000
    assert rules.check(0, 1.0) is Kind.NONE
    assert rules.check(5 * NS_PER_S, 1.1) is Kind.NONE  # 4 readings missing
    assert rules.check(11 * NS_PER_S, 1.2) is Kind.DROPOUT  # 5 missing


def test_dropout_by_tick_while_silent() -> None:
    rules = FaultRules(interval_s=2.0, max_missing=3)
    assert not rules.overdue(100 * NS_PER_S)  # no reading yet: nothing to be overdue from
    rules.check(0, 1.0)
    assert not rules.overdue(6 * NS_PER_S)
    assert rules.overdue(7 * NS_PER_S)


def test_interval_is_estimated_from_the_first_intervals() -> None:
    rules = FaultRules(max_missing=5)
    feed(rules, [float(i % 7) for i in range(20)], interval_s=10.0)
    assert rules.gap_ns is None  # not enough intervals yet: no dropout can be declared
    assert not rules.overdue(10_000 * NS_PER_S)
    feed(rules, [float(i % 7) for i in range(40)], interval_s=10.0, start=20)
    assert rules.gap_ns == 55 * NS_PER_S


def test_rules_validate_their_settings() -> None:
    with pytest.raises(ValueError, match="valid_range"):
        FaultRules(valid_range=(5.0, 1.0))
    with pytest.raises(ValueError, match="max_rate"):
        FaultRules(max_rate=0.0)
    with pytest.raises(ValueError, match="min_run"):
        FaultRules(min_run=1)
