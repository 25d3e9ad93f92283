"""ISO-8601 / RFC 3339 timestamps to epoch nanoseconds, keeping all nine fractional digits.

Shared by the MQTT decoder and the replay-CSV reader so both accept exactly the same times.

>>> parse_iso_ns("2026-01-01T00:00:00.123456789Z")
1767225600123456789
>>> parse_iso_ns("2026-01-01T01:00:00+01:00")
1767225600000000000
>>> parse_iso_ns("2026-01-01T00:00:00")
Traceback (most recent call last):
...
stream.timeparse.NaiveTimestampError: '2026-01-01T00:00:00' has no UTC offset (add Z)
>>> format_iso_ns(1767225600123456789)
'2026-01-01T00:00:00.123456789Z'
>>> format_iso_ns(1767225600500000000)
'2026-01-01T00:00:00.5Z'
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from stream.model import NS_PER_S, ns_from_datetime

_NS_PER_MINUTE = 60 * NS_PER_S

# RFC 3339 (the ISO-8601 profile JSON publishers use), parsed by hand to keep nanoseconds.
_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:[.,](\d+))?"
    r"(?:([Zz])|([+-])(\d\d):(\d\d))?",
    re.ASCII,
)


class NaiveTimestampError(ValueError):
    """The time has no UTC offset, so the instant it names is unknown."""


def _preview(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")


def parse_iso_ns(text: str) -> int:
    """Epoch ns from an ISO-8601 string that must carry an offset.

    Raises :class:`NaiveTimestampError` without an offset and :class:`ValueError` when the text
    is not an ISO-8601 time. Digits beyond nanoseconds are cut; spellings other than RFC 3339
    (week dates, basic format) fall back to ``datetime.fromisoformat`` (microseconds).
    """
    match = _RFC3339.fullmatch(text)
    if match is None:
        return _parse_other(text)
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    if zulu is None and sign is None:
        raise NaiveTimestampError(f"{_preview(text)} has no UTC offset (add Z)")
    try:
        base = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=UTC
        )
    except ValueError as err:
        raise ValueError(f"{_preview(text)}: {err}") from None
    ts_ns = ns_from_datetime(base)
    if fraction:
        ts_ns += int(fraction[:9].ljust(9, "0"))
    if sign is not None:
        if int(off_h) > 23 or int(off_m) > 59:
            raise ValueError(f"{_preview(text)}: UTC offset out of range")
        offset_ns = (int(off_h) * 60 + int(off_m)) * _NS_PER_MINUTE
        ts_ns += -offset_ns if sign == "+" else offset_ns
    return ts_ns


def _parse_other(text: str) -> int:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{_preview(text)} is not an ISO-8601 time") from None
    if parsed.utcoffset() is None:
        raise NaiveTimestampError(f"{_preview(text)} has no UTC offset (add Z)")
    return ns_from_datetime(parsed)


def format_iso_ns(ts_ns: int) -> str:
    """RFC 3339 UTC text of epoch ns that :func:`parse_iso_ns` reads back exactly (the
    fraction keeps as many digits as it needs, up to nine)."""
    seconds, ns = divmod(ts_ns, NS_PER_S)
    base = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if ns == 0:
        return base + "Z"
    return f"{base}.{ns:09d}".rstrip("0") + "Z"
