"""The MQTT payload contract: what is accepted (exact nanoseconds) and why the rest is refused."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any, cast

import orjson
import pytest
import structlog
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from collector.decode import Decoded, Decoder
from collector.rejection import (
    DEADLETTER_PAYLOAD_LIMIT,
    Rejection,
    RejectionCounter,
    RejectReason,
    deadletter_message,
)
from collector.settings import MqttSettings
from stream.model import Status
from stream.plant import PlantConfig

PREFIX = "sw/test"  # two levels, so the prefix is not mistaken for a plant
NOX = f"{PREFIX}/demo/b1/nox"
O2 = f"{PREFIX}/demo/b1/o2"
MAX_BYTES = 256
MAX_READINGS = 4

# 2024-06-01T12:00:00Z, the receive time of every case.
RECEIVED = 1_717_243_200_000_000_000
S = 1_000_000_000
MINUTE_AGO = RECEIVED - 60 * S  # 2024-06-01T11:59:00Z
Y2000 = 946_684_800_000_000_000  # 2000-01-01T00:00:00Z, the configured earliest instant

CONFIG = PlantConfig.model_validate(
    {
        "plants": {
            "demo": {
                "stacks": {
                    "b1": {
                        "sensors": {
                            "nox": {"quantity": "nox", "unit": "mg/Nm3", "valid_range": [0, 2000]},
                            "o2": {"quantity": "o2", "unit": "%", "valid_range": [0, 25]},
                        }
                    }
                }
            }
        }
    }
)
SETTINGS = MqttSettings.model_validate(
    {
        "topic_prefix": PREFIX,
        "max_payload_bytes": MAX_BYTES,
        "max_readings_per_message": MAX_READINGS,
        "earliest_year": 2000,
        "max_future_s": 300,
    }
)


@pytest.fixture(scope="module")
def decoder() -> Decoder:
    return Decoder(CONFIG, SETTINGS)


def _json(value: Any) -> bytes:
    return orjson.dumps(value)


def _outcome(out: Decoded) -> tuple[list[tuple[int, float, Status]], list[tuple[str, int | None]]]:
    return (
        [(r.ts_ns, r.value, r.status) for r in out.readings],
        [(r.reason.value, r.index) for r in out.rejections],
    )


V = Status.VALID
R = RejectReason

# (topic, payload, accepted readings (ts_ns, value, status), rejections (reason, index))
CASES = [
    # --- accepted forms ---
    # Minimal object: no ts → receive time, no status → valid.
    pytest.param(NOX, b'{"value": 87.5}', [(RECEIVED, 87.5, V)], [], id="object-minimal"),
    # An int value is a number and becomes a float.
    pytest.param(NOX, b'{"value": 87}', [(RECEIVED, 87.0, V)], [], id="int-value"),
    # Whitespace around the document is fine JSON.
    pytest.param(NOX, b' \n{"value": 1}\n ', [(RECEIVED, 1.0, V)], [], id="whitespace"),
    # ISO with Z.
    pytest.param(
        NOX, b'{"ts": "2024-06-01T11:59:00Z", "value": 1}', [(MINUTE_AGO, 1.0, V)], [], id="iso-z"
    ),
    # ISO with +02:00 is converted to UTC.
    pytest.param(
        NOX,
        b'{"ts": "2024-06-01T13:59:00+02:00", "value": 1}',
        [(MINUTE_AGO, 1.0, V)],
        [],
        id="iso-plus-offset",
    ),
    # ISO with a negative, non-whole-hour offset.
    pytest.param(
        NOX,
        b'{"ts": "2024-06-01T06:29:00-05:30", "value": 1}',
        [(MINUTE_AGO, 1.0, V)],
        [],
        id="iso-minus-offset",
    ),
    # Nine fractional digits are kept to the nanosecond.
    pytest.param(
        NOX,
        b'{"ts": "2024-06-01T11:59:00.123456789Z", "value": 1}',
        [(MINUTE_AGO + 123_456_789, 1.0, V)],
        [],
        id="iso-nanoseconds",
    ),
    # Digits beyond the nanosecond are truncated, not rounded.
    pytest.param(
        NOX,
        b'{"ts": "2024-06-01T11:59:00.1234567899Z", "value": 1}',
        [(MINUTE_AGO + 123_456_789, 1.0, V)],
        [],
        id="iso-sub-nanosecond-truncated",
    ),
    # One fractional digit is tenths of a second; lower-case t/z and a space are RFC 3339.
    pytest.param(
        NOX,
        b'{"ts": "2024-06-01t11:59:00.5z", "value": 1}',
        [(MINUTE_AGO + S // 2, 1.0, V)],
        [],
        id="iso-lowercase-tenths",
    ),
    # Other ISO-8601 spellings (basic format) go through fromisoformat, microsecond precision.
    pytest.param(
        NOX,
        b'{"ts": "20240601T115900.1234567Z", "value": 1}',
        [(MINUTE_AGO + 123_456_000, 1.0, V)],
        [],
        id="iso-basic-format",
    ),
    # Epoch milliseconds as an int: exact.
    pytest.param(
        NOX, b'{"ts": 1717243140000, "value": 1}', [(MINUTE_AGO, 1.0, V)], [], id="epoch-ms-int"
    ),
    # Epoch milliseconds as a float: the written decimal, not its binary approximation.
    pytest.param(
        NOX,
        b'{"ts": 1717243140000.123, "value": 1}',
        [(MINUTE_AGO + 123_000, 1.0, V)],
        [],
        id="epoch-ms-float",
    ),
    # A float with nothing after the point is the same instant as the int.
    pytest.param(
        NOX,
        b'{"ts": 1717243140000.0, "value": 1}',
        [(MINUTE_AGO, 1.0, V)],
        [],
        id="epoch-ms-float-integral",
    ),
    # The earliest instant itself is allowed.
    pytest.param(NOX, b'{"ts": 946684800000, "value": 1}', [(Y2000, 1.0, V)], [], id="earliest"),
    # Exactly max_future_s ahead is allowed.
    pytest.param(
        NOX,
        _json({"ts": RECEIVED // 1_000_000 + 300_000, "value": 1}),
        [(RECEIVED + 300 * S, 1.0, V)],
        [],
        id="max-future",
    ),
    # Every status is accepted as given.
    *[
        pytest.param(
            NOX,
            _json({"value": 1, "status": status.value}),
            [(RECEIVED, 1.0, status)],
            [],
            id=f"status-{status.value}",
        )
        for status in Status
    ],
    # An array yields one reading per element, in order.
    pytest.param(
        NOX,
        b'[{"ts": 1717243140000, "value": 1}, {"value": 2, "status": "calibration"}]',
        [(MINUTE_AGO, 1.0, V), (RECEIVED, 2.0, Status.CALIBRATION)],
        [],
        id="array",
    ),
    # The valid_range bounds are inclusive.
    pytest.param(
        NOX,
        b'[{"value": 0}, {"value": 2000}, {"value": -0.0}]',
        [(RECEIVED, 0.0, V), (RECEIVED, 2000.0, V), (RECEIVED, 0.0, V)],
        [],
        id="range-bounds",
    ),
    # max_readings_per_message elements are allowed.
    pytest.param(
        NOX,
        _json([{"value": i} for i in range(MAX_READINGS)]),
        [(RECEIVED, float(i), V) for i in range(MAX_READINGS)],
        [],
        id="array-at-limit",
    ),
    # Exactly max_payload_bytes is allowed.
    pytest.param(
        NOX,
        b'{"value": 1}'.ljust(MAX_BYTES),
        [(RECEIVED, 1.0, V)],
        [],
        id="size-at-limit",
    ),
    # --- bad_topic ---
    # Another prefix.
    pytest.param("other/demo/b1/nox", b'{"value": 1}', [], [("bad_topic", None)], id="prefix"),
    # Only the first level of a two-level prefix.
    pytest.param("sw/demo/b1/nox", b'{"value": 1}', [], [("bad_topic", None)], id="half-prefix"),
    # Too few levels.
    pytest.param(f"{PREFIX}/demo/b1", b'{"value": 1}', [], [("bad_topic", None)], id="short"),
    # Too many levels.
    pytest.param(f"{NOX}/x", b'{"value": 1}', [], [("bad_topic", None)], id="long"),
    # An empty level.
    pytest.param(f"{PREFIX}/demo//nox", b'{"value": 1}', [], [("bad_topic", None)], id="empty"),
    # The empty topic.
    pytest.param("", b'{"value": 1}', [], [("bad_topic", None)], id="empty-topic"),
    # --- unknown_sensor ---
    # Right shape, sensor not configured.
    pytest.param(
        f"{PREFIX}/demo/b1/so2", b'{"value": 1}', [], [("unknown_sensor", None)], id="sensor"
    ),
    # Right shape, plant not configured.
    pytest.param(f"{PREFIX}/x/b1/nox", b'{"value": 1}', [], [("unknown_sensor", None)], id="plant"),
    # --- payload_too_large ---
    # One byte over max_payload_bytes, even though it is a valid reading.
    pytest.param(
        NOX,
        b'{"value": 1}'.ljust(MAX_BYTES + 1),
        [],
        [("payload_too_large", None)],
        id="too-large",
    ),
    # --- malformed_json ---
    # Truncated document.
    pytest.param(NOX, b'{"value": 1', [], [("malformed_json", None)], id="truncated"),
    # Empty payload.
    pytest.param(NOX, b"", [], [("malformed_json", None)], id="empty-payload"),
    # Not UTF-8.
    pytest.param(NOX, b'{"value": 1, "status": "\xff"}', [], [("malformed_json", None)], id="utf8"),
    # NaN and Infinity literals are not JSON.
    pytest.param(NOX, b'{"value": NaN}', [], [("malformed_json", None)], id="nan-literal"),
    pytest.param(NOX, b'{"value": -Infinity}', [], [("malformed_json", None)], id="inf-literal"),
    # A byte-order mark is not allowed.
    pytest.param(NOX, b'\xef\xbb\xbf{"value": 1}', [], [("malformed_json", None)], id="bom"),
    # A lone surrogate escape is not a valid string.
    pytest.param(
        NOX, b'{"value": 1, "status": "\\ud800"}', [], [("malformed_json", None)], id="surrogate"
    ),
    # --- invalid_payload: message shape ---
    # A bare number.
    pytest.param(NOX, b"42", [], [("invalid_payload", None)], id="scalar"),
    # null.
    pytest.param(NOX, b"null", [], [("invalid_payload", None)], id="null"),
    # An empty array carries no readings.
    pytest.param(NOX, b"[]", [], [("invalid_payload", None)], id="empty-array"),
    # More than max_readings_per_message elements: the whole message is refused.
    pytest.param(
        NOX,
        _json([{"value": i} for i in range(MAX_READINGS + 1)]),
        [],
        [("invalid_payload", None)],
        id="too-many",
    ),
    # --- invalid_payload: element ---
    # No value.
    pytest.param(NOX, b'{"ts": 1717243140000}', [], [("invalid_payload", None)], id="no-value"),
    # A typo in a key is not ignored.
    pytest.param(NOX, b'{"vaule": 1}', [], [("invalid_payload", None)], id="typo-key"),
    # An extra key next to a valid reading.
    pytest.param(
        NOX, b'{"value": 1, "unit": "ppm"}', [], [("invalid_payload", None)], id="extra-key"
    ),
    # A numeric string is not a number.
    pytest.param(NOX, b'{"value": "1.5"}', [], [("invalid_payload", None)], id="string-value"),
    # A boolean is not a number (although bool is an int in Python).
    pytest.param(NOX, b'{"value": true}', [], [("invalid_payload", None)], id="bool-value"),
    # null is not a number.
    pytest.param(NOX, b'{"value": null}', [], [("invalid_payload", None)], id="null-value"),
    # Status values are case-sensitive.
    pytest.param(
        NOX, b'{"value": 1, "status": "VALID"}', [], [("invalid_payload", None)], id="status-case"
    ),
    # An unknown status.
    pytest.param(
        NOX, b'{"value": 1, "status": "ok"}', [], [("invalid_payload", None)], id="status-unknown"
    ),
    # A null status (omit the key for valid).
    pytest.param(
        NOX, b'{"value": 1, "status": null}', [], [("invalid_payload", None)], id="status-null"
    ),
    # A non-string status.
    pytest.param(
        NOX, b'{"value": 1, "status": ["valid"]}', [], [("invalid_payload", None)], id="status-list"
    ),
    # A boolean ts.
    pytest.param(NOX, b'{"value": 1, "ts": true}', [], [("invalid_payload", None)], id="ts-bool"),
    # A null ts (omit the key for the receive time).
    pytest.param(NOX, b'{"value": 1, "ts": null}', [], [("invalid_payload", None)], id="ts-null"),
    # An object ts.
    pytest.param(NOX, b'{"value": 1, "ts": {}}', [], [("invalid_payload", None)], id="ts-object"),
    # Not a time at all.
    pytest.param(
        NOX, b'{"value": 1, "ts": "yesterday"}', [], [("invalid_payload", None)], id="ts-text"
    ),
    # Epoch milliseconds as a string are not ISO-8601.
    pytest.param(
        NOX, b'{"value": 1, "ts": "1717243140000"}', [], [("invalid_payload", None)], id="ts-digits"
    ),
    # ISO shape but an impossible date.
    pytest.param(
        NOX,
        b'{"value": 1, "ts": "2024-02-30T00:00:00Z"}',
        [],
        [("invalid_payload", None)],
        id="ts-feb-30",
    ),
    # ISO shape but an offset of 24 hours.
    pytest.param(
        NOX,
        b'{"value": 1, "ts": "2024-06-01T11:59:00+24:00"}',
        [],
        [("invalid_payload", None)],
        id="ts-offset-24h",
    ),
    # --- non_finite ---
    # 1e400 overflows a double.
    pytest.param(NOX, b'{"value": 1e400}', [], [("non_finite", None)], id="overflow"),
    # Negative overflow.
    pytest.param(NOX, b'{"value": -1e400}', [], [("non_finite", None)], id="neg-overflow"),
    # --- out_of_range ---
    # Just below the minimum.
    pytest.param(NOX, b'{"value": -0.001}', [], [("out_of_range", None)], id="below"),
    # Just above the maximum.
    pytest.param(NOX, b'{"value": 2000.000001}', [], [("out_of_range", None)], id="above"),
    # The range is per sensor: 30 is fine for NOx but not for O2.
    pytest.param(O2, b'{"value": 30}', [], [("out_of_range", None)], id="o2-range"),
    # The largest 64-bit integer.
    pytest.param(
        NOX, b'{"value": 18446744073709551615}', [], [("out_of_range", None)], id="big-int"
    ),
    # --- naive_timestamp ---
    # No offset.
    pytest.param(
        NOX,
        b'{"value": 1, "ts": "2024-06-01T11:59:00.5"}',
        [],
        [("naive_timestamp", None)],
        id="naive",
    ),
    # A date alone has no offset either.
    pytest.param(
        NOX, b'{"value": 1, "ts": "2024-06-01"}', [], [("naive_timestamp", None)], id="naive-date"
    ),
    # --- absurd_timestamp ---
    # Epoch seconds sent where milliseconds are expected: January 1970.
    pytest.param(
        NOX, b'{"value": 1, "ts": 1717243140}', [], [("absurd_timestamp", None)], id="seconds"
    ),
    # One second before earliest_year.
    pytest.param(
        NOX,
        b'{"value": 1, "ts": "1999-12-31T23:59:59Z"}',
        [],
        [("absurd_timestamp", None)],
        id="before-earliest",
    ),
    # One millisecond more than max_future_s ahead.
    pytest.param(
        NOX,
        _json({"ts": RECEIVED // 1_000_000 + 300_001, "value": 1}),
        [],
        [("absurd_timestamp", None)],
        id="future",
    ),
    # Negative epoch.
    pytest.param(NOX, b'{"value": 1, "ts": -1}', [], [("absurd_timestamp", None)], id="negative"),
    # A ts overflowing to infinity.
    pytest.param(NOX, b'{"value": 1, "ts": 1e400}', [], [("absurd_timestamp", None)], id="ts-inf"),
    # --- mixed arrays: each element judged on its own ---
    # Good, out of range, good, not an object, overflow.
    pytest.param(
        NOX,
        b'[{"value": 1}, {"value": 9999}, {"value": 2, "status": "maintenance"}, 7]',
        [(RECEIVED, 1.0, V), (RECEIVED, 2.0, Status.MAINTENANCE)],
        [("out_of_range", 1), ("invalid_payload", 3)],
        id="mixed",
    ),
    # An overflowing number only costs its own element.
    pytest.param(
        NOX,
        b'[{"value": 1e400}, {"ts": "2024-06-01T11:59:00Z", "value": 3}]',
        [(MINUTE_AGO, 3.0, V)],
        [("non_finite", 0)],
        id="mixed-overflow",
    ),
    # Several bad elements, each with its own reason.
    pytest.param(
        NOX,
        b'[{"value": 1, "ts": "2024-06-01T11:59:00"}, {"valu": 1}, {"value": 1, "ts": 5}]',
        [],
        [("naive_timestamp", 0), ("invalid_payload", 1), ("absurd_timestamp", 2)],
        id="mixed-all-bad",
    ),
]


@pytest.mark.parametrize(("topic", "payload", "readings", "rejections"), CASES)
def test_decode_case(
    decoder: Decoder,
    topic: str,
    payload: bytes,
    readings: list[tuple[int, float, Status]],
    rejections: list[tuple[str, int | None]],
) -> None:
    out = decoder.decode(topic, payload, RECEIVED)
    assert _outcome(out) == (readings, rejections)
    assert all(type(r.value) is float for r in out.readings)
    assert all(r.detail for r in out.rejections)


def test_integer_too_large_for_a_double_is_non_finite() -> None:
    roomy = Decoder(CONFIG, SETTINGS.model_copy(update={"max_payload_bytes": 4096}))
    payload = b'[{"value": 1' + b"0" * 400 + b'}, {"value": 5}]'
    out = roomy.decode(NOX, payload, RECEIVED)
    assert _outcome(out) == ([(RECEIVED, 5.0, V)], [("non_finite", 0)])


def test_case_table_covers_every_reason() -> None:
    expected = [cast(list[tuple[str, int | None]], case.values[3]) for case in CASES]
    covered = {reason for rejections in expected for reason, _ in rejections}
    assert covered == {reason.value for reason in RejectReason}


def test_reading_carries_sensor_identity_and_configured_unit(decoder: Decoder) -> None:
    out = decoder.decode(O2, b'{"value": 6.5}', RECEIVED)
    [reading] = out.readings
    assert (reading.plant, reading.stack, reading.sensor) == ("demo", "b1", "o2")
    assert (reading.quantity, reading.unit) == ("o2", "%")


@pytest.mark.parametrize(
    ("topic", "payload", "fragment"),
    [
        # The typo is named, with the keys that are allowed.
        (NOX, b'{"vaule": 1}', "'vaule'; allowed: ts, value, status"),
        # The offending value and the range are quoted.
        (NOX, b'{"value": 2500}', "2500 outside valid_range [0.0, 2000.0]"),
        # Seconds-for-milliseconds gets a hint.
        (NOX, b'{"value": 1, "ts": 1717243140}', "looks like epoch seconds"),
        # The allowed statuses are listed.
        (NOX, b'{"value": 1, "status": "ok"}', "valid, maintenance, malfunction, calibration"),
        # A future time says by how much is allowed.
        (NOX, b'{"value": 1, "ts": "2030-01-01T00:00:00Z"}', "more than 300 s after receipt"),
        # An unknown sensor is named.
        (f"{PREFIX}/demo/b1/so2", b"{}", "'demo/b1/so2'"),
        # A bad topic shows the expected shape.
        ("x/y", b"{}", "sw/test/<plant>/<stack>/<sensor>"),
        # The size and the limit are given.
        (NOX, b" " * 300, "300 bytes exceeds max_payload_bytes (256)"),
    ],
    ids=["typo", "range", "seconds", "status", "future", "sensor", "topic", "size"],
)
def test_rejection_detail_names_the_problem(
    decoder: Decoder, topic: str, payload: bytes, fragment: str
) -> None:
    [rejection] = decoder.decode(topic, payload, RECEIVED).rejections
    assert fragment in rejection.detail


def test_long_offending_values_are_truncated_in_the_detail(decoder: Decoder) -> None:
    [rejection] = decoder.decode(NOX, _json({"value": "x" * 200}), RECEIVED).rejections
    assert len(rejection.detail) < 150
    assert "(200 characters)" in rejection.detail


# --- rejection accounting ---------------------------------------------------------------


@pytest.fixture
def plain_structlog() -> Iterator[None]:
    """structlog's default configuration (no level filter), restored afterwards."""
    saved = structlog.get_config()
    structlog.reset_defaults()
    yield
    structlog.configure(**saved)


def _sample(registry: CollectorRegistry, reason: str) -> float | None:
    return registry.get_sample_value("stackwatch_rejected_readings_total", {"reason": reason})


@pytest.mark.usefixtures("plain_structlog")
def test_counter_counts_per_reason_and_warns_once_per_kind() -> None:
    registry = CollectorRegistry()
    counter = RejectionCounter(registry)
    with capture_logs() as logs:
        counter.record(Rejection(R.BAD_TOPIC, "first"), "a/b")
        counter.record(Rejection(R.BAD_TOPIC, "second"), "c/d")
        counter.record(Rejection(R.OUT_OF_RANGE, "third", 2), "sw/test/demo/b1/nox")
        counter.record(Rejection(R.BAD_TOPIC, "fourth"), "e/f")

    assert counter.counts() == {
        **{reason.value: 0 for reason in RejectReason},
        "bad_topic": 3,
        "out_of_range": 1,
    }
    assert _sample(registry, "bad_topic") == 3
    assert _sample(registry, "out_of_range") == 1
    assert _sample(registry, "non_finite") == 0  # every reason is exported from the start
    assert [(e["log_level"], e["reason"], e["detail"]) for e in logs] == [
        ("warning", "bad_topic", "first"),
        ("debug", "bad_topic", "second"),
        ("warning", "out_of_range", "third"),
        ("debug", "bad_topic", "fourth"),
    ]
    assert logs[2] == {
        "event": "payload rejected",
        "log_level": "warning",
        "reason": "out_of_range",
        "detail": "third",
        "topic": "sw/test/demo/b1/nox",
        "index": 2,
    }


@pytest.mark.usefixtures("plain_structlog")
def test_counters_sharing_a_registry_share_the_metric_not_the_counts() -> None:
    registry = CollectorRegistry()
    first, second = RejectionCounter(registry), RejectionCounter(registry)
    with capture_logs() as logs:
        first.record(Rejection(R.MALFORMED_JSON, "x"), "t")
        second.record(Rejection(R.MALFORMED_JSON, "y"), "t")

    assert first.counts()["malformed_json"] == 1
    assert second.counts()["malformed_json"] == 1
    assert _sample(registry, "malformed_json") == 2
    # Each instance warns about its own first occurrence.
    assert [e["log_level"] for e in logs] == ["warning", "warning"]


def test_default_registry_tolerates_several_counters() -> None:
    first, second = RejectionCounter(), RejectionCounter()
    first.record(Rejection(R.NAIVE_TIMESTAMP, "x"), "t")
    assert second.counts()["naive_timestamp"] == 0
    assert first.counts()["naive_timestamp"] == 1


# --- dead-letter messages ---------------------------------------------------------------

DEADLETTER = "sw/deadletter"


def test_deadletter_message_keeps_a_text_payload_as_text() -> None:
    payload = b'[{"value": 1}, {"value": 9999}]'
    rejection = Rejection(R.OUT_OF_RANGE, "'value' 9999 outside valid_range [0.0, 2000.0]", 1)
    topic, body = deadletter_message(NOX, payload, rejection, RECEIVED + 123, DEADLETTER)

    assert topic == "sw/deadletter/out_of_range"
    assert orjson.loads(body) == {
        "topic": NOX,
        "reason": "out_of_range",
        "detail": "'value' 9999 outside valid_range [0.0, 2000.0]",
        "index": 1,
        "received": "2024-06-01T12:00:00.000000123Z",
        "payload": payload.decode(),
        "truncated": False,
    }


def test_deadletter_message_encodes_a_binary_payload_in_base64() -> None:
    payload = b"\x00\xff\xfe{"
    rejection = Rejection(R.MALFORMED_JSON, "not UTF-8 JSON")
    topic, body = deadletter_message(NOX, payload, rejection, RECEIVED, DEADLETTER)

    assert topic == "sw/deadletter/malformed_json"
    message = orjson.loads(body)
    assert "payload" not in message
    assert base64.b64decode(message["payload_base64"]) == payload
    assert message["truncated"] is False
    assert message["index"] is None
    assert message["received"] == "2024-06-01T12:00:00.000000000Z"


def test_deadletter_message_truncates_text_on_a_character_boundary() -> None:
    # 1 + 2 * 40 000 bytes: the 64 KiB cut falls inside a two-byte "é".
    payload = ("a" + "é" * 40_000).encode()
    rejection = Rejection(R.PAYLOAD_TOO_LARGE, "too large")
    _, body = deadletter_message(NOX, payload, rejection, RECEIVED, DEADLETTER)

    message = orjson.loads(body)
    assert message["truncated"] is True
    assert message["payload"] == "a" + "é" * ((DEADLETTER_PAYLOAD_LIMIT - 1) // 2)


def test_deadletter_message_truncates_a_binary_payload() -> None:
    payload = b"\xff" * (DEADLETTER_PAYLOAD_LIMIT + 10)
    rejection = Rejection(R.PAYLOAD_TOO_LARGE, "too large")
    _, body = deadletter_message(NOX, payload, rejection, RECEIVED, DEADLETTER)

    message = orjson.loads(body)
    assert message["truncated"] is True
    assert base64.b64decode(message["payload_base64"]) == b"\xff" * DEADLETTER_PAYLOAD_LIMIT


def test_deadletter_message_survives_a_topic_that_is_not_valid_unicode() -> None:
    rejection = Rejection(R.BAD_TOPIC, "bad")
    _, body = deadletter_message("a/\ud800", b"{}", rejection, RECEIVED, DEADLETTER)
    assert orjson.loads(body)["topic"] == "a/\\ud800"
