"""Property tests: the decoder is total, accounts for every element, and loses nothing valid.

Together these generate 10 000 payloads per run (5 000 + 3 000 + 2 000 ``max_examples``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.decode import Decoded, Decoder
from collector.rejection import RejectReason, deadletter_message
from collector.settings import MqttSettings
from stream.model import NS_PER_MS, NS_PER_S, Status
from stream.plant import PlantConfig

PREFIX = "sw"
RANGES = {"nox": (0.0, 2000.0), "o2": (0.0, 25.0), "temp": (-40.0, 1200.0)}
TOPICS = [f"{PREFIX}/demo/b1/{sensor}" for sensor in RANGES]
MAX_READINGS = 8
RECEIVED = 1_717_243_200_000_000_000  # 2024-06-01T12:00:00Z
EARLIEST = 946_684_800_000_000_000  # 2000-01-01T00:00:00Z
LATEST = RECEIVED + 300 * NS_PER_S

CONFIG = PlantConfig.model_validate(
    {
        "plants": {
            "demo": {
                "stacks": {
                    "b1": {
                        "sensors": {
                            sensor: {
                                "quantity": "temperature" if sensor == "temp" else sensor,
                                "unit": "u",
                                "valid_range": list(bounds),
                            }
                            for sensor, bounds in RANGES.items()
                        }
                    }
                }
            }
        }
    }
)


def _decoder(max_payload_bytes: int) -> Decoder:
    return Decoder(
        CONFIG,
        MqttSettings.model_validate(
            {
                "topic_prefix": PREFIX,
                "max_payload_bytes": max_payload_bytes,
                "max_readings_per_message": MAX_READINGS,
                "earliest_year": 2000,
                "max_future_s": 300,
            }
        ),
    )


SMALL = _decoder(256)  # random bytes also hit the size limit
ROOMY = _decoder(1_048_576)

FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check_invariants(out: Decoded, topic: str, payload: bytes) -> None:
    """What holds for every message, however bad."""
    assert out.readings or out.rejections
    for rejection in out.rejections:
        assert isinstance(rejection.reason, RejectReason)
        assert rejection.detail.strip()
        dl_topic, body = deadletter_message(topic, payload, rejection, RECEIVED, "dl")
        assert dl_topic == f"dl/{rejection.reason.value}"
        assert orjson.loads(body)["reason"] == rejection.reason.value
    for reading in out.readings:
        low, high = RANGES[reading.sensor]
        assert low <= reading.value <= high
        assert EARLIEST <= reading.ts_ns <= LATEST


topics = st.one_of(
    st.text(max_size=40),
    st.sampled_from(TOPICS),
    st.lists(st.sampled_from([PREFIX, "demo", "b1", "nox", "o2", "", "x", "+"]), max_size=6).map(
        "/".join
    ),
)


@settings(FUZZ, max_examples=5000)
@given(topic=topics, payload=st.binary(max_size=300))
def test_arbitrary_bytes_and_topics_never_raise(topic: str, payload: bytes) -> None:
    out = SMALL.decode(topic, payload, RECEIVED)
    _check_invariants(out, topic, payload)


# --- arbitrary JSON ---------------------------------------------------------------------

KEYS = st.sampled_from(["ts", "value", "status"]) | st.text(max_size=6)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(
        ["valid", "maintenance", "2024-06-01T11:59:00Z", "2024-06-01T11:59:00", "20240601T11Z"]
    )
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=10,
)
# Small containers too, for fields whose checks must not assume a scalar (e.g. hashability).
field_values = scalars | st.lists(scalars, max_size=2) | st.dictionaries(KEYS, scalars, max_size=2)
# Objects close to a reading, so that the element checks run and not only the shape check.
ISO_SAMPLES = [
    "2024-06-01T11:59:00Z",
    "2024-06-01T11:59:00.123456789+02:00",
    "2024-06-01T11:59:00",  # naive
    "1999-12-31T23:59:59Z",  # absurd
    "20240601T1159Z",
    "2024-13-01T00:00:00Z",
]
reading_like = st.fixed_dictionaries(
    {
        "value": st.floats(min_value=-1, max_value=30)
        | st.integers(min_value=-1, max_value=3000)
        | field_values
    },
    optional={
        "ts": st.integers(min_value=EARLIEST // NS_PER_MS - 1, max_value=LATEST // NS_PER_MS + 1)
        | st.sampled_from(ISO_SAMPLES)
        | field_values,
        "status": st.sampled_from([s.value for s in Status]) | field_values,
    },
)
with_extra_key = st.builds(lambda d, k, v: {**d, k: v}, reading_like, KEYS, scalars)
documents = (
    json_values
    | reading_like
    | with_extra_key
    | st.lists(reading_like | with_extra_key | json_values, max_size=10)
)


@settings(FUZZ, max_examples=3000)
@given(topic=st.sampled_from(TOPICS), document=documents)
def test_arbitrary_json_never_raises_and_every_element_is_accounted(
    topic: str, document: Any
) -> None:
    payload = orjson.dumps(document)
    out = ROOMY.decode(topic, payload, RECEIVED)
    _check_invariants(out, topic, payload)
    if isinstance(document, list) and 0 < len(document) <= MAX_READINGS:
        # Exactly one outcome per element: rejections carry the indices of the others.
        rejected = [r.index for r in out.rejections]
        assert len(set(rejected)) == len(rejected)
        assert len(out.readings) + len(rejected) == len(document)
        assert all(isinstance(i, int) and 0 <= i < len(document) for i in rejected)
    else:
        # A single object, or a message refused as a whole.
        assert len(out.readings) + len(out.rejections) == 1
        assert all(r.index is None for r in out.rejections)


# --- valid payloads ---------------------------------------------------------------------


@st.composite
def timestamps(draw: st.DrawFn) -> tuple[Any, int]:
    """A ``ts`` in one of the accepted forms, with the nanoseconds it must decode to."""
    form = draw(st.sampled_from(["none", "ms-int", "ms-float", "iso"]))
    if form == "none":
        return None, RECEIVED
    if form == "ms-int":
        ms = draw(st.integers(min_value=EARLIEST // NS_PER_MS, max_value=LATEST // NS_PER_MS))
        return ms, ms * NS_PER_MS
    if form == "ms-float":
        # Microsecond resolution: at these magnitudes a double still holds every such decimal.
        us = draw(st.integers(min_value=EARLIEST // 1000, max_value=LATEST // 1000))
        text = f"{Decimal(us) / 1000}"
        return float(text), us * 1000
    ns = draw(st.integers(min_value=EARLIEST, max_value=LATEST))
    digits = draw(st.integers(min_value=0, max_value=9))
    minutes = draw(st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59))
    seconds, fraction = divmod(ns, NS_PER_S)
    local = datetime.fromtimestamp(seconds, tz=timezone(timedelta(minutes=minutes)))
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    kept = f"{fraction:09d}"[:digits]
    if digits:
        text += f".{kept}"
    if minutes == 0 and draw(st.booleans()):
        text += "Z"
    else:
        sign = "-" if minutes < 0 else "+"
        text += f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    expected = seconds * NS_PER_S + int(kept.ljust(9, "0"))
    return text, expected


@st.composite
def readings(draw: st.DrawFn, sensor: str) -> tuple[dict[str, Any], tuple[int, float, Status]]:
    """A valid reading object for ``sensor`` and the (ts_ns, value, status) it must give."""
    low, high = RANGES[sensor]
    value: int | float = draw(
        st.floats(min_value=low, max_value=high)
        | st.integers(min_value=int(low), max_value=int(high))
    )
    element: dict[str, Any] = {"value": value}
    ts, ts_ns = draw(timestamps())
    if ts is not None:
        element["ts"] = ts
    status = draw(st.none() | st.sampled_from(list(Status)))
    if status is not None:
        element["status"] = status.value
    return element, (ts_ns, float(value), status or Status.VALID)


@st.composite
def valid_messages(
    draw: st.DrawFn,
) -> tuple[str, bytes, list[tuple[int, float, Status]]]:
    sensor = draw(st.sampled_from(sorted(RANGES)))
    items = draw(st.lists(readings(sensor), min_size=1, max_size=4))
    if len(items) == 1 and draw(st.booleans()):
        document: Any = items[0][0]
    else:
        document = [element for element, _ in items]
    return f"{PREFIX}/demo/b1/{sensor}", orjson.dumps(document), [want for _, want in items]


@settings(FUZZ, max_examples=2000)
@given(message=valid_messages())
def test_valid_payloads_are_accepted_unchanged(
    message: tuple[str, bytes, list[tuple[int, float, Status]]],
) -> None:
    topic, payload, expected = message
    out = ROOMY.decode(topic, payload, RECEIVED)
    assert out.rejections == []
    assert [(r.ts_ns, r.value, r.status) for r in out.readings] == expected
    assert {r.sensor for r in out.readings} == {topic.rsplit("/", 1)[1]}


def test_reference_instants() -> None:
    # The constants above are the instants they claim to be.
    assert datetime(2024, 6, 1, 12, tzinfo=UTC).timestamp() * NS_PER_S == RECEIVED
    assert datetime(2000, 1, 1, tzinfo=UTC).timestamp() * NS_PER_S == EARLIEST
