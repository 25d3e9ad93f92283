"""Turn one MQTT message into readings and rejections; total over every possible input.

The contract (documented in the README):

* topic ``<prefix>/<plant>/<stack>/<sensor>``; the sensor must be in the plant configuration;
* payload a JSON object ``{"ts": ..., "value": number, "status": ...}`` or a non-empty array
  of such objects (at most ``max_readings_per_message``). Array elements are judged one by
  one: good ones are accepted, bad ones rejected with their index;
* ``value`` an int or float (booleans are not numbers), finite, inside ``valid_range``
  (bounds included); ints become floats. A number beyond the double range (``1e400``) is
  refused as NON_FINITE for its element only (orjson refuses the whole document, so such a
  document is re-parsed with the standard library on that error path);
* ``status`` one of ``valid``, ``maintenance``, ``malfunction``, ``calibration``; absent means
  ``valid``;
* ``ts`` absent means the receive time. An int or float is epoch **milliseconds**: ints are
  exact; floats are read at their shortest decimal form and rounded to the nanosecond (a
  double holds ~16 significant digits, so today's epoch ms as a float keep about 0.25 µs). A
  string is ISO-8601 with an explicit offset (``Z`` or ``±hh:mm``): RFC 3339 strings (also
  with ``t``/``z``, a space or a decimal comma) keep up to nine fractional digits, further
  digits are truncated; other ISO-8601 spellings accepted by :meth:`datetime.fromisoformat`
  (basic format, week dates) keep microseconds. A time before 1 January of ``earliest_year``
  (UTC) or more than ``max_future_s`` after receipt is absurd - typically epoch seconds sent
  as milliseconds;
* any other key is refused, so that a typo such as ``"vaule"`` is not silently ignored;
  ``null`` is not accepted for ``ts`` or ``status`` (omit the key instead).

Checks run in the order topic → sensor known → size → JSON → shape → per element (keys,
value type, finite, range, status, ts); the first failure decides the reason.

>>> from stream.plant import PlantConfig
>>> from collector.settings import MqttSettings
>>> cfg = PlantConfig.model_validate({"plants": {"demo": {"stacks": {"b1": {"sensors": {
...     "nox": {"quantity": "nox", "unit": "mg/Nm3", "valid_range": [0, 2000]}}}}}}})
>>> decoder = Decoder(cfg, MqttSettings.model_validate({"topic_prefix": "stackwatch"}))
>>> out = decoder.decode("stackwatch/demo/b1/nox",
...                      b'[{"ts": 1717243200000, "value": 87}, {"value": -5}]',
...                      received_ns=1_717_243_201_000_000_000)
>>> [(r.ts_ns, r.value, r.unit) for r in out.readings]
[(1717243200000000000, 87.0, 'mg/Nm3')]
>>> [(r.reason.value, r.index) for r in out.rejections]
[('out_of_range', 1)]
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal

import orjson

from collector.rejection import Rejection, RejectReason
from collector.settings import MqttSettings
from stream.model import NS_PER_MS, NS_PER_S, Reading, Status, new_reading, ns_from_datetime
from stream.plant import PlantConfig
from stream.timeparse import NaiveTimestampError, parse_iso_ns

_KEYS = frozenset({"ts", "value", "status"})
_STATUSES: dict[str, Status] = {s.value: s for s in Status}
_PREVIEW_CHARS = 60
_NS_PER_MINUTE = 60 * NS_PER_S


@dataclass(slots=True)
class Decoded:
    """What one message yielded: accepted readings and refusals (together never empty)."""

    readings: list[Reading] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Sensor:
    """What a reading needs from the configuration, resolved once per topic."""

    plant: str
    stack: str
    sensor: str
    quantity: str
    unit: str
    low: float
    high: float


class _ElementError(ValueError):
    """An element check failed; carries the rejection so the checks read top to bottom."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _preview(value: object) -> str:
    """A short, bounded description of a JSON value for rejection details.

    Containers are only described: ``repr`` of a deeply nested one could be huge or even
    exceed the recursion limit.
    """
    if isinstance(value, dict):
        return f"an object of {len(value)} key(s)"
    if isinstance(value, list):
        return f"an array of {len(value)} element(s)"
    if isinstance(value, str) and len(value) > _PREVIEW_CHARS:
        return f"{value[:_PREVIEW_CHARS]!r}... ({len(value)} characters)"
    text = repr(value)
    return text if len(text) <= _PREVIEW_CHARS else f"{text[:_PREVIEW_CHARS]}..."


class _Overflow:
    """Number hooks for :func:`json.loads` that mimic orjson and note overflow to infinity."""

    def __init__(self) -> None:
        self.seen = False

    def parse_float(self, text: str) -> float:
        number = float(text)
        if math.isinf(number):
            self.seen = True
        return number

    def parse_int(self, text: str) -> int | float:
        # orjson yields ints only within the 64-bit range and floats beyond it.
        if len(text) <= 21:
            number = int(text)
            if -(2**63) <= number < 2**64:
                return number
        return self.parse_float(text)


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _reparse_overflow(payload: bytes) -> object | None:
    """The document orjson refused, if it parses once numbers beyond a double are allowed.

    orjson refuses e.g. ``1e400`` outright; re-parsing with the standard library (on this
    error path only) lets such a value be rejected as NON_FINITE by itself, leaving the
    other elements of an array accepted. Returns None (malformed) when the standard library
    refuses it too or when no number overflowed. (The standard library also accepts lone
    surrogate escapes; in a re-parsed document they can only fail their own element, as no
    accepted field is an arbitrary string.)
    """
    hooks = _Overflow()
    try:
        document: object = json.loads(
            payload.decode("utf-8"),
            parse_float=hooks.parse_float,
            parse_int=hooks.parse_int,
            parse_constant=_refuse_constant,
        )
    except (ValueError, RecursionError):
        return None
    return document if hooks.seen else None


class Decoder:
    """Decodes messages for the sensors of one plant configuration.

    Construction resolves every sensor topic to its configuration, so the hot path is one
    dict lookup, one ``orjson.loads`` and a few type checks per reading.
    """

    def __init__(self, config: PlantConfig, settings: MqttSettings) -> None:
        self._prefix = settings.topic_prefix
        self._max_bytes = settings.max_payload_bytes
        self._max_readings = settings.max_readings_per_message
        self._earliest_ns = ns_from_datetime(datetime(settings.earliest_year, 1, 1, tzinfo=UTC))
        self._max_future_ns = round(settings.max_future_s * NS_PER_S)
        self._sensors: dict[str, _Sensor] = {
            f"{self._prefix}/{key.plant}/{key.stack}/{key.sensor}": _Sensor(
                plant=key.plant,
                stack=key.stack,
                sensor=key.sensor,
                quantity=sensor.quantity.value,
                unit=sensor.unit,
                low=sensor.valid_range[0],
                high=sensor.valid_range[1],
            )
            for key, sensor in config.sensors()
        }

    def decode(self, topic: str, payload: bytes, received_ns: int) -> Decoded:
        """Readings and rejections of one message; never raises."""
        out = Decoded()
        sensor = self._sensors.get(topic)
        if sensor is None:
            out.rejections.append(self._topic_rejection(topic))
            return out
        if len(payload) > self._max_bytes:
            out.rejections.append(
                Rejection(
                    RejectReason.PAYLOAD_TOO_LARGE,
                    f"payload of {len(payload)} bytes exceeds max_payload_bytes "
                    f"({self._max_bytes})",
                )
            )
            return out
        try:
            document: object = orjson.loads(payload)
        except orjson.JSONDecodeError as err:
            reparsed = _reparse_overflow(payload)
            if reparsed is None:
                out.rejections.append(
                    Rejection(RejectReason.MALFORMED_JSON, f"not UTF-8 JSON: {err}"[:200])
                )
                return out
            document = reparsed
        if type(document) is dict:
            self._element(sensor, document, None, received_ns, out)
        elif type(document) is list:
            self._array(sensor, document, received_ns, out)
        else:
            out.rejections.append(
                Rejection(
                    RejectReason.INVALID_PAYLOAD,
                    f"expected a JSON object or array, got {_preview(document)}",
                )
            )
        return out

    def _topic_rejection(self, topic: str) -> Rejection:
        shape = f"{self._prefix}/<plant>/<stack>/<sensor>"
        head = f"{self._prefix}/"
        levels = topic[len(head) :].split("/") if topic.startswith(head) else []
        if len(levels) != 3 or not all(levels):
            return Rejection(
                RejectReason.BAD_TOPIC, f"topic {_preview(topic)} does not match {shape}"
            )
        return Rejection(
            RejectReason.UNKNOWN_SENSOR,
            f"no sensor {_preview('/'.join(levels))} in the plant configuration",
        )

    def _array(self, sensor: _Sensor, items: list[object], received_ns: int, out: Decoded) -> None:
        if not items:
            out.rejections.append(
                Rejection(RejectReason.INVALID_PAYLOAD, "empty array: no readings")
            )
            return
        if len(items) > self._max_readings:
            out.rejections.append(
                Rejection(
                    RejectReason.INVALID_PAYLOAD,
                    f"array of {len(items)} readings exceeds max_readings_per_message "
                    f"({self._max_readings})",
                )
            )
            return
        for index, item in enumerate(items):
            if type(item) is dict:
                self._element(sensor, item, index, received_ns, out)
            else:
                out.rejections.append(
                    Rejection(
                        RejectReason.INVALID_PAYLOAD,
                        f"array element must be an object, got {_preview(item)}",
                        index,
                    )
                )

    def _element(
        self,
        sensor: _Sensor,
        element: dict[str, object],
        index: int | None,
        received_ns: int,
        out: Decoded,
    ) -> None:
        try:
            value = self._value(sensor, element)
            status = _status(element)
            ts_ns = self._timestamp(element, received_ns)
        except _ElementError as bad:
            out.rejections.append(Rejection(bad.reason, bad.detail, index))
            return
        out.readings.append(
            new_reading(
                sensor.plant,
                sensor.stack,
                sensor.sensor,
                ts_ns,
                value,
                sensor.quantity,
                sensor.unit,
                status,
            )
        )

    @staticmethod
    def _value(sensor: _Sensor, element: dict[str, object]) -> float:
        if not _KEYS.issuperset(element):
            unknown = ", ".join(_preview(k) for k in sorted(set(element) - _KEYS)[:5])
            raise _ElementError(
                RejectReason.INVALID_PAYLOAD,
                f"unknown key(s) {unknown}; allowed: ts, value, status",
            )
        if "value" not in element:
            raise _ElementError(RejectReason.INVALID_PAYLOAD, "missing 'value'")
        raw = element["value"]
        # ``type() is`` rather than isinstance: bool is an int subclass but not a number here.
        if type(raw) is float:
            value = raw
        elif type(raw) is int:
            value = float(raw)
        else:
            raise _ElementError(
                RejectReason.INVALID_PAYLOAD, f"'value' must be a number, got {_preview(raw)}"
            )
        if not math.isfinite(value):
            raise _ElementError(
                RejectReason.NON_FINITE, f"'value' is not finite: {_preview(value)}"
            )
        if not sensor.low <= value <= sensor.high:
            raise _ElementError(
                RejectReason.OUT_OF_RANGE,
                f"'value' {_preview(raw)} outside valid_range [{sensor.low}, {sensor.high}]",
            )
        return value

    def _timestamp(self, element: dict[str, object], received_ns: int) -> int:
        if "ts" not in element:
            return received_ns
        raw = element["ts"]
        if type(raw) is int:
            ts_ns = raw * NS_PER_MS
        elif type(raw) is float:
            if not math.isfinite(raw):
                raise _ElementError(RejectReason.ABSURD_TIMESTAMP, f"'ts' is not finite: {raw!r}")
            ts_ns = _ns_from_float_ms(raw)
        elif type(raw) is str:
            ts_ns = _ns_from_iso(raw)
        else:
            raise _ElementError(
                RejectReason.INVALID_PAYLOAD,
                f"'ts' must be an ISO-8601 string or epoch milliseconds, got {_preview(raw)}",
            )
        latest_ns = received_ns + self._max_future_ns
        if self._earliest_ns <= ts_ns <= latest_ns:
            return ts_ns
        if ts_ns > latest_ns:
            why = f"more than {self._max_future_ns / NS_PER_S:g} s after receipt"
        elif type(raw) is not str and self._earliest_ns <= ts_ns * 1000 <= latest_ns:
            why = "before earliest_year; it looks like epoch seconds, milliseconds are expected"
        else:
            why = "before earliest_year"
        raise _ElementError(RejectReason.ABSURD_TIMESTAMP, f"'ts' {_preview(raw)} is {why}")


def _status(element: dict[str, object]) -> Status:
    raw = element.get("status", Status.VALID.value)
    status = _STATUSES.get(raw) if type(raw) is str else None
    if status is None:
        raise _ElementError(
            RejectReason.INVALID_PAYLOAD,
            f"'status' must be one of {', '.join(_STATUSES)}, got {_preview(raw)}",
        )
    return status


def _ns_from_float_ms(ms: float) -> int:
    """Nanoseconds from float epoch ms, read at the float's shortest decimal form.

    ``repr`` recovers the number the publisher wrote (up to 17 significant digits), so
    ``1717243200000.123`` gives exactly ``...000123000`` ns instead of the binary
    approximation's ``...000123047``.
    """
    if ms.is_integer():
        return int(ms) * NS_PER_MS
    exact = Decimal(repr(ms)).scaleb(6)
    return int(exact.to_integral_value(rounding=ROUND_HALF_EVEN))


def _ns_from_iso(text: str) -> int:
    """Epoch ns from an ISO-8601 string that must carry an offset."""
    try:
        return parse_iso_ns(text)
    except NaiveTimestampError:
        raise _ElementError(
            RejectReason.NAIVE_TIMESTAMP, f"'ts' {_preview(text)} has no UTC offset (add Z)"
        ) from None
    except ValueError as err:
        raise _ElementError(RejectReason.INVALID_PAYLOAD, f"'ts' {err}") from None
