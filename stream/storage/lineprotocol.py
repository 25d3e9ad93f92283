"""InfluxDB line protocol: one :class:`~stream.storage.base.Point` per line.

``measurement[,tag=value...] field=value[,field=value...] timestamp_ns``

Escaping follows the InfluxDB reference: commas and spaces in measurements; commas, equals
signs and spaces in tag keys, tag values and field keys; double quotes and backslashes inside
string field values. Floats are written with :func:`repr` (shortest exact round trip), integers
with an ``i`` suffix, booleans as ``true``/``false``. Tags are sorted by key, as InfluxDB
recommends for write performance.

Nothing is dropped silently. Points the protocol cannot carry faithfully raise
:class:`ValueError` (:func:`check_point`), and both storage backends refuse exactly the same
points, so a point accepted by one is accepted by the other:

* no fields, an empty measurement, tag key, tag value or field key (InfluxDB drops empty tags);
* a non-finite float, an integer or timestamp outside the 64-bit range InfluxDB stores;
* a newline or a lone surrogate in any text (a newline ends the line), any control character
  in names and tag values (InfluxDB strips some as whitespace, InfluxQL cannot quote others);
* in names and tag values, a backslash at the end or before a backslash, comma, equals sign,
  space or double quote: such a backslash is ambiguous (InfluxDB 1.x rejects a trailing one and
  keeps an escaped one doubled), so the value would not read back equal;
* a measurement starting with ``#`` (a comment line), a tag or field key named ``time``, a key
  used both as a tag and as a field (InfluxDB 3 refuses it, and InfluxQL could not tell them
  apart in a ``WHERE`` clause).

>>> from stream.storage.base import Point
>>> encode_point(Point("stack gas", {"sensor": "nox,1", "plant": "a=b"},
...                    {"value": 87.5, "n": 3, "ok": True, "note": 'say "hi"'}, 5))
'stack\\\\ gas,plant=a\\\\=b,sensor=nox\\\\,1 value=87.5,n=3i,ok=true,note="say \\\\"hi\\\\"" 5'
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from stream.storage.base import FieldValue, Point

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
#: InfluxDB reserves the two extreme int64 values; these are the storable timestamp bounds.
MIN_TS_NS = INT64_MIN + 2
MAX_TS_NS = INT64_MAX - 1

_MEASUREMENT_ESCAPES = str.maketrans({",": r"\,", " ": r"\ "})
_KEY_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})
_STRING_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"'})

# Text that line protocol cannot carry at all: newlines and lone surrogates (not UTF-8).
_BAD_TEXT = re.compile(r"[\n\ud800-\udfff]")
# Control characters in names and tag values: InfluxDB 1.x skips a leading tab as whitespace,
# InfluxQL reads NUL as the end of input and CR as a newline (not allowed in quoted names).
_BAD_NAME = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# A backslash that does not survive a write and read back (see module docstring).
_AMBIGUOUS_BACKSLASH = re.compile(r'\\(?:[\\,= "]|\Z)')


def check_point(p: Point) -> None:
    """Raise :class:`ValueError` if ``p`` cannot be stored faithfully (see module docstring)."""
    _check_series(p)
    _check_values(p)


def _check_series(p: Point) -> None:
    """The measurement and the tags."""
    _check_name(p.measurement, "measurement")
    if p.measurement.startswith("#"):
        raise ValueError(f"measurement {p.measurement!r} starts with '#' (a comment line)")
    for key, value in p.tags.items():
        _check_name(key, "tag key")
        _check_name(value, f"value of tag {key!r}")
        if key == "time":
            raise ValueError("tag key 'time' is reserved")


def _check_values(p: Point) -> None:
    """The fields and the timestamp."""
    if not p.fields:
        raise ValueError(f"point of {p.measurement!r} at {p.ts_ns} has no fields")
    if shared := p.tags.keys() & p.fields.keys():
        raise ValueError(f"keys used both as tag and as field: {sorted(shared)}")
    for key, field_value in p.fields.items():
        _check_name(key, "field key")
        if key == "time":
            raise ValueError("field key 'time' is reserved")
        _check_field_value(key, field_value)
    if isinstance(p.ts_ns, bool) or not isinstance(p.ts_ns, int):
        raise ValueError(f"timestamp must be integer nanoseconds, got {p.ts_ns!r}")
    if not MIN_TS_NS <= p.ts_ns <= MAX_TS_NS:
        raise ValueError(f"timestamp {p.ts_ns} is outside the storable range")


# Escaped ``measurement,tag=value...`` of the series seen so far: a plant writes the same few
# thousand series over and over, so each is checked and escaped once. Bounded: cleared when
# full. Keyed by the tags in their given order (another order only costs a second entry).
_PREFIXES: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}
_PREFIXES_MAX = 100_000
# The same, by the identity of the tags mapping: producers share one mapping per series
# (readings, anomaly scores), and looking it up by identity skips building the key above
# (a third of the cost of a line). The entry holds the mapping, so its id is not reused while
# cached; points are read-only, so a cached mapping does not change.
_BY_TAGS: dict[int, tuple[object, str, str]] = {}
_BY_TAGS_MAX = 50_000


def _series_prefix(p: Point) -> str:
    tags, measurement = p.tags, p.measurement
    hit = _BY_TAGS.get(id(tags))
    if hit is not None and hit[0] is tags and hit[1] == measurement:
        return hit[2]
    key = (measurement, tuple(tags.items()))
    try:
        prefix = _PREFIXES.get(key)
    except TypeError:  # an unhashable tag value: let the checks say what is wrong
        prefix = None
    if prefix is None:
        _check_series(p)
        head = measurement.translate(_MEASUREMENT_ESCAPES)
        escaped = "".join(
            f",{k.translate(_KEY_ESCAPES)}={v.translate(_KEY_ESCAPES)}"
            for k, v in sorted(tags.items())
        )
        if len(_PREFIXES) >= _PREFIXES_MAX:
            _PREFIXES.clear()
        _PREFIXES[key] = prefix = head + escaped
    if len(_BY_TAGS) >= _BY_TAGS_MAX:
        _BY_TAGS.clear()
    _BY_TAGS[id(tags)] = (tags, measurement, prefix)
    return prefix


# ``key=`` of the field keys that passed the checks (a handful in all: value, status, ...).
_FIELD_KEYS: dict[str, str] = {}
# Encoded string field values that passed the checks: the same few repeat on every point
# (a status, a detection kind, a model version), so each is checked and escaped once.
_STRINGS: dict[str, str] = {}
_STRINGS_MAX = 10_000
_isfinite = math.isfinite


def _field_key(key: str) -> str:
    _check_name(key, "field key")
    if key == "time":
        raise ValueError("field key 'time' is reserved")
    head = key.translate(_KEY_ESCAPES) + "="
    if len(_FIELD_KEYS) < _PREFIXES_MAX:
        _FIELD_KEYS[key] = head
    return head


def _string_field(key: str, value: str) -> str:
    _check_text(value, f"field {key!r}")
    text = _encode_value(value)
    if len(_STRINGS) >= _STRINGS_MAX:
        _STRINGS.clear()
    _STRINGS[value] = text
    return text


def _encode_fields(p: Point) -> str:
    """The field set, checked as :func:`_check_values` does, in one pass."""
    fields = p.fields
    if not fields or not p.tags.keys().isdisjoint(fields.keys()):
        _check_values(p)  # raises with the reason
    parts: list[str] = []
    append = parts.append
    keys, strings = _FIELD_KEYS, _STRINGS
    for key, value in fields.items():
        head = keys.get(key) if key.__class__ is str else None
        if head is None:
            head = _field_key(key)
        cls = value.__class__
        if cls is float:
            if not _isfinite(value):  # type: ignore[arg-type]
                raise ValueError(f"field {key!r}: non-finite float {value!r}")
            append(head + float.__repr__(value))
        elif cls is str and isinstance(value, str):
            text = strings.get(value)
            append(head + (text if text is not None else _string_field(key, value)))
        elif cls is bool:
            append(head + ("true" if value else "false"))
        else:
            _check_field_value(key, value)
            append(head + _encode_value(value))
    ts = p.ts_ns
    if ts.__class__ is not int or not MIN_TS_NS <= ts <= MAX_TS_NS:
        _check_values(p)  # raises with the reason
    return ",".join(parts)


def encode_point(p: Point) -> str:
    """One line of line protocol (without the newline); raises :class:`ValueError`."""
    prefix = _series_prefix(p)
    return f"{prefix} {_encode_fields(p)} {p.ts_ns}"


def encode_points(points: Iterable[Point]) -> bytes:
    """A UTF-8 request body, one line per point; raises :class:`ValueError` on the first bad one.

    >>> encode_points([Point("m", {}, {"v": 1.0}, 1), Point("m", {}, {"v": -2}, 2)])
    b'm v=1.0 1\\nm v=-2i 2\\n'
    """
    lines = []
    for i, p in enumerate(points):
        try:
            lines.append(encode_point(p))
        except ValueError as err:
            raise ValueError(f"point #{i}: {err}") from err
    return ("\n".join(lines) + "\n").encode() if lines else b""


# Names and tag values repeat on every point (a plant has a few hundred); checking each once
# takes the regular expressions off the hot path. Bounded: cleared when full.
_GOOD_NAMES: set[str] = set()
_GOOD_NAMES_MAX = 100_000


def _check_name(text: str, what: str) -> None:
    if isinstance(text, str) and text in _GOOD_NAMES:
        return
    if not isinstance(text, str):
        raise ValueError(f"{what} must be a string, got {text!r}")
    if not text:
        raise ValueError(f"{what} is empty")
    _check_text(text, what, _BAD_NAME)
    if _AMBIGUOUS_BACKSLASH.search(text):
        raise ValueError(
            f'{what} {text!r}: a backslash at the end or before \\ , = space or " '
            "does not round-trip through InfluxDB"
        )
    if len(_GOOD_NAMES) >= _GOOD_NAMES_MAX:
        _GOOD_NAMES.clear()
    _GOOD_NAMES.add(text)


def _check_text(text: str, what: str, bad_chars: re.Pattern[str] = _BAD_TEXT) -> None:
    if bad := bad_chars.search(text):
        raise ValueError(f"{what} {text!r} contains an unsupported character {bad.group()!r}")


def _check_field_value(key: str, value: FieldValue) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueError(f"field {key!r}: integer {value} does not fit in 64 bits")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"field {key!r}: non-finite float {value!r}")
    elif isinstance(value, str):
        _check_text(value, f"field {key!r}")
    else:
        raise ValueError(f"field {key!r}: unsupported type {type(value).__name__}")


def _encode_value(value: FieldValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{int(value)}i"
    if isinstance(value, float):
        return float.__repr__(value)
    return f'"{str.__str__(value).translate(_STRING_ESCAPES)}"'
