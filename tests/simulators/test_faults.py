"""Fault injection: every kind changes the stream inside its window only (compared with the
same seed without faults), the labels are what was applied, process faults keep the stack
physically consistent, random and YAML schedules, and a property over arbitrary schedules."""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.faults import (
    PROCESS_KINDS,
    ExcursionCause,
    FaultEvent,
    FaultInjector,
    FaultKind,
    ScheduleError,
    load_schedule,
    parse_schedule,
    random_schedule,
)
from simulators.plant import PlantSimulator
from stream.model import NS_PER_S, Reading, Status
from stream.plant import PlantConfig

START_NS = 1_767_261_600 * NS_PER_S  # 2026-01-01T10:00:00Z: mid-morning load
RUN_S = 1500
W0, W1 = START_NS + 600 * NS_PER_S, START_NS + 1200 * NS_PER_S  # the fault window
ReadingKey = tuple[str, str, int]


def sensor(quantity: str, unit: str, hi: float, lo: float = 0.0, **extra: Any) -> dict[str, Any]:
    return {"quantity": quantity, "unit": unit, "valid_range": [lo, hi], **extra}


CONFIG = PlantConfig.model_validate(
    {
        "plants": {
            "p": {
                "timezone": "Europe/Vienna",
                "stacks": {
                    "b1": {  # a biomass boiler: every kind applies
                        "reference_o2": 6,
                        "sensors": {
                            "nox": sensor("nox", "mg/Nm3", 2000),
                            "co": sensor("co", "mg/Nm3", 5000),
                            "o2": sensor("o2", "%", 25),
                            "flow": sensor("flow", "Nm3/h", 200_000),
                            "load": sensor("load", "%", 120),
                            "pressure": sensor("pressure", "hPa", 1200, 800, interval_s=10),
                            "mode": sensor("mode", "-", 3),
                        },
                    },
                    "gt": {  # a gas turbine: no air shortage
                        "reference_o2": 15,
                        "sensors": {
                            "nox": sensor("nox", "mg/Nm3", 500),
                            "co": sensor("co", "mg/Nm3", 1000),
                        },
                    },
                },
            }
        }
    }
)
RANGES = {key: cfg.valid_range for key, cfg in CONFIG.sensors()}


def run(events: list[FaultEvent], seconds: int = RUN_S) -> tuple[list[Reading], FaultInjector]:
    injector = FaultInjector(PlantSimulator(CONFIG, seed=3, start_ns=START_NS), events)
    return list(injector.stream(START_NS + seconds * NS_PER_S)), injector


@pytest.fixture(scope="module")
def baseline() -> dict[ReadingKey, Reading]:
    readings, _ = run([])
    return {(r.stack, r.sensor, r.ts_ns): r for r in readings}


def by_key(readings: list[Reading]) -> dict[ReadingKey, Reading]:
    return {(r.stack, r.sensor, r.ts_ns): r for r in readings}


def changed(base: dict[ReadingKey, Reading], faulty: list[Reading]) -> set[ReadingKey]:
    """Readings that differ from the unfaulted run, or are missing from the faulty one."""
    out = by_key(faulty)
    return {k for k, r in base.items() if out.get(k) != r}


def values(
    readings: dict[ReadingKey, Reading], stack: str, name: str, t0: int, t1: int
) -> list[float]:
    return [
        r.value for (s, n, ts), r in readings.items() if (s, n) == (stack, name) and t0 <= ts < t1
    ]


def mean(readings: dict[ReadingKey, Reading], name: str, t0: int = W0, t1: int = W1) -> float:
    return statistics.mean(values(readings, "b1", name, t0, t1))


# --- every kind: inside its window, nowhere else, labelled -----------------------------------

SENSOR_CASES = [
    # kind, window end, magnitude
    (FaultKind.SPIKE, W0 + 2 * NS_PER_S, 300.0),  # two readings
    (FaultKind.DRIFT, W1, 40.0),
    (FaultKind.STUCK, W1, None),
    (FaultKind.DROPOUT, W1, None),
    (FaultKind.CALIBRATION_OFFSET, W1, -25.0),
    (FaultKind.NOISE_BURST, W1, 20.0),
    (FaultKind.MAINTENANCE, W1, None),
    (FaultKind.CALIBRATION, W1, 1600.0),
]


@pytest.mark.parametrize(("kind", "end_ns", "magnitude"), SENSOR_CASES)
def test_sensor_fault_changes_only_its_sensor_and_window(
    baseline: dict[ReadingKey, Reading], kind: FaultKind, end_ns: int, magnitude: float | None
) -> None:
    event = FaultEvent("p", "b1", "nox", kind, W0, end_ns, magnitude)
    faulty, injector = run([event])
    diff = changed(baseline, faulty)
    inside = {k for k in baseline if k[:2] == ("b1", "nox") and W0 <= k[2] < end_ns}
    assert diff <= inside  # nowhere else
    # ... and really inside: all of it, but a drift starts at 0 and noise may round to 0
    assert (
        len(diff) >= 0.9 * len(inside)
        if kind is not FaultKind.NOISE_BURST
        else len(diff) > 0.5 * len(inside)
    )
    assert [e.label() for e in injector.labels] == [event.label()]
    if magnitude is not None:
        assert injector.labels == [event]


def test_dropout_removes_exactly_the_window(baseline: dict[ReadingKey, Reading]) -> None:
    faulty, _ = run([FaultEvent("p", "b1", "o2", FaultKind.DROPOUT, W0, W1)])
    missing = baseline.keys() - by_key(faulty).keys()
    assert missing == {k for k in baseline if k[:2] == ("b1", "o2") and W0 <= k[2] < W1}
    assert len(missing) == 600


def test_offsets_have_their_size(baseline: dict[ReadingKey, Reading]) -> None:
    events = [
        FaultEvent("p", "b1", "nox", FaultKind.CALIBRATION_OFFSET, W0, W1, -25.0),
        FaultEvent("p", "b1", "co", FaultKind.DRIFT, W0, W1, 60.0),
        FaultEvent("p", "b1", "o2", FaultKind.SPIKE, W0, W0 + 3 * NS_PER_S, 5.0),
    ]
    faulty = by_key(run(events)[0])
    for t in range(W0, W1, 60 * NS_PER_S):
        assert faulty[("b1", "nox", t)].value == pytest.approx(
            baseline[("b1", "nox", t)].value - 25, abs=0.11
        )
        ramp = 60.0 * (t - W0) / (W1 - W0)
        assert faulty[("b1", "co", t)].value == pytest.approx(
            baseline[("b1", "co", t)].value + ramp, abs=0.11
        )
    spikes = [
        faulty[("b1", "o2", W0 + i * NS_PER_S)].value
        - baseline[("b1", "o2", W0 + i * NS_PER_S)].value
        for i in range(4)
    ]
    assert spikes == pytest.approx([5.0, 5.0, 5.0, 0.0], abs=0.011)


def test_stuck_repeats_the_last_value_before_the_window(
    baseline: dict[ReadingKey, Reading],
) -> None:
    faulty, _ = run([FaultEvent("p", "b1", "nox", FaultKind.STUCK, W0, W1)])
    frozen = set(values(by_key(faulty), "b1", "nox", W0, W1))
    assert frozen == {baseline[("b1", "nox", W0 - NS_PER_S)].value}


def test_noise_burst_is_many_sigma_and_centred(baseline: dict[ReadingKey, Reading]) -> None:
    faulty = by_key(run([FaultEvent("p", "b1", "nox", FaultKind.NOISE_BURST, W0, W1, 30.0)])[0])
    deltas = [
        faulty[k].value - baseline[k].value
        for k in baseline
        if k[:2] == ("b1", "nox") and W0 <= k[2] < W1
    ]
    assert 25 < statistics.stdev(deltas) < 35
    assert abs(statistics.mean(deltas)) < 5


def test_status_periods_set_the_status(baseline: dict[ReadingKey, Reading]) -> None:
    half = (W0 + W1) // 2
    events = [
        FaultEvent("p", "b1", "nox", FaultKind.MAINTENANCE, W0, W1),
        FaultEvent("p", "b1", "co", FaultKind.CALIBRATION, W0, W1),  # default span: 80 % range
    ]
    faulty = run(events)[0]
    for r in faulty:
        inside = W0 <= r.ts_ns < W1 and r.stack == "b1" and r.sensor in ("nox", "co")
        expected = {"nox": Status.MAINTENANCE, "co": Status.CALIBRATION}.get(r.sensor)
        assert r.status is (expected if inside else Status.VALID)
    out = by_key(faulty)
    assert values(out, "b1", "nox", W0, W1) == values(baseline, "b1", "nox", W0, W1)
    assert max(values(out, "b1", "co", W0, half)) < 5  # zero gas
    assert statistics.mean(values(out, "b1", "co", half, W1)) == pytest.approx(4000, abs=5)


# --- process faults: the whole stack, consistently ---------------------------------------------


@pytest.mark.parametrize("kind", [FaultKind.EXCURSION, FaultKind.STARTUP, FaultKind.SHUTDOWN])
def test_process_fault_changes_only_its_stack_and_window(
    baseline: dict[ReadingKey, Reading], kind: FaultKind
) -> None:
    faulty, _ = run([FaultEvent("p", "b1", "", kind, W0, W1)])
    diff = changed(baseline, faulty)
    assert diff
    assert all(k[0] == "b1" and W0 <= k[2] < W1 for k in diff)
    assert {k for k in baseline if k[0] == "b1" and k[2] >= W1} & diff == set()


def test_air_shortage_lowers_o2_and_raises_co(baseline: dict[ReadingKey, Reading]) -> None:
    event = FaultEvent("p", "b1", "", FaultKind.EXCURSION, W0, W1)  # default: O2 3.5 % lower
    faulty, injector = run([event])
    out = by_key(faulty)
    core = (W0 + 150 * NS_PER_S, W1 - 150 * NS_PER_S)  # after the ramp in, before the ramp out
    assert mean(out, "o2", *core) == pytest.approx(mean(baseline, "o2", *core) - 3.5, abs=0.1)
    assert mean(out, "co", *core) > 4 * mean(baseline, "co", *core)
    assert mean(out, "flow", *core) < mean(baseline, "flow", *core)  # less air
    assert mean(out, "load", *core) == mean(baseline, "load", *core)  # same firing
    assert [(e.sensor, e.cause) for e in injector.labels] == [("co", ExcursionCause.AIR_SHORTAGE)]
    assert injector.labels[0].start_ns == W0 and injector.labels[0].end_ns == W1


def test_reagent_failure_raises_nox_only(baseline: dict[ReadingKey, Reading]) -> None:
    event = FaultEvent("p", "b1", "nox", FaultKind.EXCURSION, W0, W1, 2.0)  # sensor: the cause
    faulty, injector = run([event])
    out = by_key(faulty)
    core = (W0 + 150 * NS_PER_S, W1 - 150 * NS_PER_S)
    assert mean(out, "nox", *core) == pytest.approx(2 * mean(baseline, "nox", *core), rel=0.03)
    assert values(out, "b1", "o2", W0, W1) == values(baseline, "b1", "o2", W0, W1)
    assert [(e.sensor, e.cause) for e in injector.labels] == [
        ("nox", ExcursionCause.REAGENT_FAILURE)
    ]


@pytest.mark.parametrize(("kind", "mode"), [(FaultKind.STARTUP, 1.0), (FaultKind.SHUTDOWN, 2.0)])
def test_startup_and_shutdown_set_the_mode(
    baseline: dict[ReadingKey, Reading], kind: FaultKind, mode: float
) -> None:
    faulty, injector = run([FaultEvent("p", "b1", "", kind, W0, W1)])
    out = by_key(faulty)
    for (stack, name, ts), r in out.items():
        if (stack, name) == ("b1", "mode"):
            assert r.value == (mode if W0 <= ts < W1 else 0.0)
    # The low-load half: the start of a start-up, the end of a shut-down.
    low = (W0, W0 + 300 * NS_PER_S) if kind is FaultKind.STARTUP else (W1 - 300 * NS_PER_S, W1)
    assert mean(out, "load", *low) < 0.6 * mean(baseline, "load", *low)
    assert mean(out, "o2", *low) > mean(baseline, "o2", *low) + 2
    assert mean(out, "co", *low) > 2 * mean(baseline, "co", *low)
    assert injector.labels == [FaultEvent("p", "b1", "", kind, W0, W1, 0.1)]


def test_labels_end_where_the_stream_stopped() -> None:
    event = FaultEvent("p", "b1", "nox", FaultKind.DRIFT, W0, W1)
    injector = FaultInjector(PlantSimulator(CONFIG, seed=3, start_ns=START_NS), [event])
    assert list(injector.stream(W0)) and injector.labels == []
    list(injector.stream(W0 + 60 * NS_PER_S))
    assert [(e.start_ns, e.end_ns) for e in injector.labels] == [(W0, W0 + 60 * NS_PER_S)]
    list(injector.stream(W1 + NS_PER_S))
    assert [(e.start_ns, e.end_ns) for e in injector.labels] == [(W0, W1)]
    with pytest.raises(ScheduleError, match="already past its start"):
        injector.add([FaultEvent("p", "b1", "co", FaultKind.SPIKE, W0, W0 + NS_PER_S)])


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (FaultEvent("x", "b1", "nox", FaultKind.SPIKE, W0, W1), "no plant 'x'"),
        (FaultEvent("p", "b9", "nox", FaultKind.SPIKE, W0, W1), "no stack 'b9'"),
        (FaultEvent("p", "b1", "hcl", FaultKind.SPIKE, W0, W1), "no sensor 'hcl'"),
        (FaultEvent("p", "b1", "", FaultKind.DRIFT, W0, W1), "drift needs a sensor"),
        (FaultEvent("p", "b1", "nox", FaultKind.STARTUP, W0, W1), "leave the sensor empty"),
        (FaultEvent("p", "b1", "o2", FaultKind.EXCURSION, W0, W1), "'o2' measures o2"),
        (
            FaultEvent(
                "p", "gt", "", FaultKind.EXCURSION, W0, W1, cause=ExcursionCause.AIR_SHORTAGE
            ),
            "not possible",
        ),
        (FaultEvent("p", "b1", "", FaultKind.SHUTDOWN, W0, W1, 1.5), r"must be in \(0, 1\]"),
    ],
)
def test_impossible_events_are_refused_with_a_reason(event: FaultEvent, reason: str) -> None:
    with pytest.raises(ScheduleError, match=reason):
        run([event], seconds=1)


def test_overlapping_events_are_refused() -> None:
    a = FaultEvent("p", "b1", "nox", FaultKind.DRIFT, W0, W1)
    b = FaultEvent("p", "b1", "nox", FaultKind.SPIKE, W1 - NS_PER_S, W1 + NS_PER_S)
    with pytest.raises(ScheduleError, match=r"spike on p/b1/nox .* overlaps drift on p/b1/nox"):
        run([a, b], seconds=1)
    # A sensor fault during a process fault is fine, as is one right after another.
    c = FaultEvent("p", "b1", "", FaultKind.EXCURSION, W0, W1)
    d = FaultEvent("p", "b1", "nox", FaultKind.DROPOUT, W1, W1 + NS_PER_S)
    assert run([a, c, d], seconds=1)[1].schedule[0].start_ns == W0


def test_the_gas_turbine_gets_a_reagent_failure_by_default() -> None:
    injector = run([FaultEvent("p", "gt", "", FaultKind.EXCURSION, W0, W1)], seconds=700)[1]
    assert [(e.stack, e.sensor, e.cause, e.magnitude) for e in injector.labels] == [
        ("gt", "nox", ExcursionCause.REAGENT_FAILURE, 2.0)
    ]


# --- random schedules ------------------------------------------------------------------------

DAYS_NS = 3 * 86_400 * NS_PER_S


def test_random_schedule_is_deterministic_spread_out_and_realistic() -> None:
    schedule = random_schedule(CONFIG, START_NS, START_NS + DAYS_NS, seed=4, per_sensor_day=3)
    assert schedule == random_schedule(
        CONFIG, START_NS, START_NS + DAYS_NS, seed=4, per_sensor_day=3
    )
    assert schedule != random_schedule(
        CONFIG, START_NS, START_NS + DAYS_NS, seed=5, per_sensor_day=3
    )
    # 3 per sensor-day over 8 fault-capable sensors and 3 days, some may find no slot.
    assert 55 <= len(schedule) <= 3 * 8 * 3 + 1
    assert {e.kind for e in schedule} == set(FaultKind)
    assert all(
        START_NS + 3600 * NS_PER_S <= e.start_ns < e.end_ns <= START_NS + DAYS_NS for e in schedule
    )
    assert all(e.sensor != "mode" for e in schedule)
    by_stack: dict[str, list[FaultEvent]] = {}
    for e in schedule:
        by_stack.setdefault(e.stack, []).append(e)
    for events in by_stack.values():
        for i, a in enumerate(events):
            for b in events[i + 1 :]:
                clash = not a.sensor or not b.sensor or a.sensor == b.sensor
                assert not clash or b.start_ns >= a.end_ns + 600 * NS_PER_S
    for e in schedule:
        if e.kind is FaultKind.SPIKE:
            assert (e.end_ns - e.start_ns) // NS_PER_S in (1, 2, 3)
        if e.kind in (FaultKind.SPIKE, FaultKind.DRIFT, FaultKind.CALIBRATION_OFFSET):
            lo, hi = RANGES[e.key]
            assert e.magnitude is not None and 0 < abs(e.magnitude) < hi - lo
    # Applied as is: the injector accepts it.
    FaultInjector(PlantSimulator(CONFIG, seed=3, start_ns=START_NS), schedule)


def test_random_schedule_kinds_and_rate() -> None:
    end = START_NS + DAYS_NS
    only = random_schedule(CONFIG, START_NS, end, seed=1, kinds=[FaultKind.STUCK])
    assert only and {e.kind for e in only} == {FaultKind.STUCK}
    assert random_schedule(CONFIG, START_NS, end, seed=1, per_sensor_day=0) == []
    assert random_schedule(CONFIG, START_NS, START_NS + 1800 * NS_PER_S, seed=1) == []  # warm-up
    with pytest.raises(ValueError, match="per_sensor_day"):
        random_schedule(CONFIG, START_NS, end, per_sensor_day=-1)


# --- YAML schedules ---------------------------------------------------------------------------


def test_yaml_schedule(tmp_path: Path) -> None:
    path = tmp_path / "faults.yaml"
    path.write_text(
        "- {plant: p, stack: b1, sensor: nox, kind: drift, start: '2026-01-01T10:10:00Z',"
        " duration: 10m, magnitude: 30}\n"
        "- {plant: p, stack: b1, kind: startup, start: 2026-01-01T11:00:00+01:00,"
        " end: '2026-01-01T10:30:00Z'}\n"
        "- {plant: p, stack: gt, kind: excursion, cause: reagent_failure,"
        " start: '2026-01-01T10:00:00Z', duration: 90}\n"
    )
    events = load_schedule(path, CONFIG)
    assert events == [
        FaultEvent("p", "b1", "", FaultKind.STARTUP, START_NS, START_NS + 1800 * NS_PER_S),
        FaultEvent(
            "p",
            "gt",
            "",
            FaultKind.EXCURSION,
            START_NS,
            START_NS + 90 * NS_PER_S,
            None,
            ExcursionCause.REAGENT_FAILURE,
        ),
        FaultEvent("p", "b1", "nox", FaultKind.DRIFT, W0, W1, 30.0),
    ]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"plant": "p"}, "expected a list of events, got dict"),
        (
            [
                {
                    "plant": "p",
                    "stack": "b1",
                    "sensor": "nox",
                    "kind": "spike",
                    "start": "2026-01-01T10:00:00Z",
                }
            ],
            "event 1: give either end or duration",
        ),
        (
            [
                {
                    "plant": "p",
                    "stack": "b1",
                    "sensor": "nox",
                    "kind": "spiky",
                    "start": "2026-01-01T10:00:00Z",
                    "duration": 1,
                }
            ],
            "event 1: kind: Input should be",
        ),
        (
            [
                {
                    "plant": "p",
                    "stack": "b1",
                    "sensor": "nox",
                    "kind": "spike",
                    "start": "2026-01-01T10:00:00",
                    "duration": 1,
                }
            ],
            "event 1: start: .*timezone",
        ),
        (
            [
                {
                    "plant": "p",
                    "stack": "b1",
                    "sensor": "nox",
                    "kind": "spike",
                    "start": "2026-01-01T10:00:00Z",
                    "duration": "soon",
                }
            ],
            "event 1: 'soon' is not a duration",
        ),
        (
            [
                {
                    "plant": "p",
                    "stack": "b1",
                    "sensor": "nox",
                    "kind": "spike",
                    "start": "2026-01-01T10:00:00Z",
                    "duration": 1,
                    "colour": "red",
                }
            ],
            "event 1: colour: Extra",
        ),
        (
            [
                {
                    "plant": "p",
                    "stack": "b1",
                    "sensor": "nox",
                    "kind": "spike",
                    "start": "2026-01-01T10:00:00Z",
                    "duration": 1,
                },
                {
                    "plant": "p",
                    "stack": "b1",
                    "sensor": "hcl",
                    "kind": "spike",
                    "start": "2026-01-01T10:00:00Z",
                    "duration": 1,
                },
            ],
            "event 2: .*no sensor 'hcl'",
        ),
        (
            [
                {
                    "plant": "p",
                    "stack": "b1",
                    "sensor": "nox",
                    "kind": "drift",
                    "start": "2026-01-01T10:00:00Z",
                    "duration": "1h",
                },
                {
                    "plant": "p",
                    "stack": "b1",
                    "sensor": "nox",
                    "kind": "spike",
                    "start": "2026-01-01T10:30:00Z",
                    "duration": 1,
                },
            ],
            "spike on p/b1/nox at 2026-01-01T10:30:00Z overlaps drift",
        ),
        (
            [
                {
                    "plant": "p",
                    "stack": "b1",
                    "sensor": "nox",
                    "kind": "spike",
                    "start": "2026-01-01T10:00:00Z",
                    "end": "2026-01-01T09:00:00Z",
                }
            ],
            "event 1: .*end must be after the start",
        ),
    ],
)
def test_yaml_errors_are_clear(data: Any, reason: str) -> None:
    with pytest.raises(ScheduleError, match=f"^faults.yaml: {reason}"):
        parse_schedule(data, CONFIG, source="faults.yaml")


def test_unreadable_yaml(tmp_path: Path) -> None:
    with pytest.raises(ScheduleError, match="cannot read"):
        load_schedule(tmp_path / "missing.yaml", CONFIG)
    (tmp_path / "bad.yaml").write_text("- [unclosed\n")
    with pytest.raises(ScheduleError, match="not valid YAML"):
        load_schedule(tmp_path / "bad.yaml", CONFIG)


# --- any schedule: valid range and time order -------------------------------------------------

SMALL = PlantConfig.model_validate(
    {
        "plants": {
            "p": {
                "stacks": {
                    "b1": {
                        "reference_o2": 6,
                        "sensors": {
                            "nox": sensor("nox", "mg/Nm3", 2000),
                            "co": sensor("co", "mg/Nm3", 300),
                            "o2": sensor("o2", "%", 25),
                            "mode": sensor("mode", "-", 3),
                            "p": sensor("pressure", "hPa", 1100, 900, interval_s=5),
                        },
                    }
                }
            }
        }
    }
)
SMALL_SENSORS = ["nox", "co", "o2", "p"]


@st.composite
def schedules(draw: Callable[..., Any]) -> list[FaultEvent]:
    """Back-to-back events (each after the previous one ended): never overlapping."""
    events, t = [], START_NS
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(list(FaultKind)))
        t += draw(st.integers(0, 60)) * NS_PER_S
        end = t + draw(st.integers(1, 120)) * NS_PER_S
        if kind in PROCESS_KINDS:
            name = (
                "" if kind is not FaultKind.EXCURSION else draw(st.sampled_from(["", "nox", "co"]))
            )
            magnitude = draw(st.none() | st.floats(0.01, 1.0))
        else:
            name = draw(st.sampled_from(SMALL_SENSORS))
            magnitude = draw(st.none() | st.floats(-1e6, 1e6))
        events.append(FaultEvent("p", "b1", name, kind, t, end, magnitude))
        t = end
    return events


@settings(max_examples=25, deadline=None)
@given(schedule=schedules(), seed=st.integers(0, 3))
def test_any_schedule_keeps_readings_valid_and_ordered(
    schedule: list[FaultEvent], seed: int
) -> None:
    injector = FaultInjector(PlantSimulator(SMALL, seed=seed, start_ns=START_NS), schedule)
    readings = list(injector.stream(START_NS + 600 * NS_PER_S))
    ranges = {key.sensor: cfg.valid_range for key, cfg in SMALL.sensors()}
    assert all(a.ts_ns <= b.ts_ns for a, b in itertools.pairwise(readings))
    for r in readings:
        lo, hi = ranges[r.sensor]
        assert lo <= r.value <= hi, r
    applied = {(e.kind, e.start_ns) for e in injector.labels}
    assert applied == {
        (e.kind, e.start_ns) for e in schedule if e.start_ns < START_NS + 600 * NS_PER_S
    }
