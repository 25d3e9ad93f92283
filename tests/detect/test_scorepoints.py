"""The sparse state fields of ``anomaly_scores`` points lose nothing: a reader carrying each
sensor's last state forward sees every point's full fields, and the state repeats in time."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from stream.detect.protocol import Kind, Score
from stream.detect.scorepoints import ScoreFields
from stream.storage.base import FieldValue

STATE = ("kind", "drift", "warm", "model_version")
REPEAT = 4


def full(s: Score, warm: bool, version: str) -> dict[str, FieldValue]:
    """Every field of the point, as it was before the state fields became sparse."""
    return {
        "score": s.score,
        "is_anomaly": s.is_anomaly,
        "kind": s.kind.value,
        "drift": s.drift,
        "warm": warm,
        "model_version": version,
    }


def scores() -> st.SearchStrategy[Score]:
    normal = st.floats(0, 0.99).map(lambda score: Score(score, False))
    flagged = st.tuples(
        st.sampled_from([k for k in Kind if k is not Kind.NONE]), st.booleans()
    ).map(lambda kd: Score(1.0, True, kd[0], kd[1]))
    return st.one_of(normal, normal, normal, flagged)


steps = st.lists(
    st.tuples(
        st.sampled_from(["nox", "co"]),
        st.integers(0, 2),  # time since the sensor's previous point
        scores(),
        st.booleans(),
        st.sampled_from(["det1-a", "det1-b"]),
    ),
    max_size=60,
)


@given(steps)
def test_carrying_the_state_forward_gives_every_field(
    sequence: list[tuple[str, int, Score, bool, str]],
) -> None:
    fields = ScoreFields(repeat_ns=REPEAT)
    now: dict[str, int] = {}
    seen: dict[str, dict[str, FieldValue]] = {}
    stated_at: dict[str, int] = {}
    for sensor, dt, s, warm, version in sequence:
        ts = now[sensor] = now.get(sensor, 0) + dt
        written = fields(sensor, s, warm, version, ts)
        assert {"score", "is_anomaly"} <= written.keys()
        if "kind" in written:
            assert set(STATE) <= written.keys()
            seen[sensor] = {k: written[k] for k in STATE}
            stated_at[sensor] = ts
        else:
            assert not (written.keys() & set(STATE))
            assert ts - stated_at[sensor] < REPEAT  # the state repeats at least every REPEAT
        # What a reader sees: kind none and no drift unless written; warm and version carried.
        read = {**seen[sensor], "kind": "none", "drift": False, **written}
        assert read == full(s, warm, version)


def test_a_flagged_run_and_its_end_carry_the_state() -> None:
    fields = ScoreFields(repeat_ns=60)
    stuck = Score(1.0, True, Kind.STUCK)
    written = [
        fields("co", s, True, "det1-a", ts)
        for ts, s in enumerate(
            [Score(0.1, False), stuck, stuck, Score(0.2, False), Score(0.1, False)]
        )
    ]
    assert [w.get("kind") for w in written] == ["none", "stuck", "stuck", "none", None]
    assert written[-1] == {"score": 0.1, "is_anomaly": False}


def test_sensors_are_independent() -> None:
    fields = ScoreFields(repeat_ns=60)
    assert "kind" in fields("nox", Score(0.1, False), True, "det1-a", 0)
    assert "kind" in fields("co", Score(0.1, False), True, "det1-a", 0)  # its own first point
    assert "kind" not in fields("nox", Score(0.1, False), True, "det1-a", 1)
    assert "kind" in fields("co", Score(0.1, False), False, "det1-a", 1)  # warm changed


def test_the_state_repeats_exactly_every_repeat_ns() -> None:
    fields = ScoreFields(repeat_ns=60)
    full_at = [
        ts for ts in range(0, 181, 10) if "kind" in fields("nox", Score(0.1, False), True, "v", ts)
    ]
    assert full_at == [0, 60, 120, 180]
