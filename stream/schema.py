"""How readings map onto stored points (the ``readings`` measurement).

=============  =====================================================================
measurement    ``readings``
tags           ``plant``, ``stack``, ``sensor``, ``quantity`` (e.g. ``nox``), ``unit``
fields         ``value`` (float, as measured), ``status`` (string: valid, maintenance,
               malfunction, calibration)
timestamp      the reading's time (nanoseconds); same sensor + time overwrites
=============  =====================================================================
"""

from __future__ import annotations

from stream.model import Reading, Status
from stream.storage.base import LastValue, Point

READINGS = "readings"
_STATUS_VALUES = {status: status.value for status in Status}  # not the enum's slow property


def reading_to_point(r: Reading) -> Point:
    """The stored point of a reading.

    >>> reading_to_point(Reading("p", "s", "x", 5, 1.5, "o2", "%")).fields
    {'value': 1.5, 'status': 'valid'}
    """
    key = (r.plant, r.stack, r.sensor, r.quantity, r.unit)
    tags = _TAGS.get(key)
    if tags is None:
        if len(_TAGS) >= _TAGS_MAX:
            _TAGS.clear()
        tags = _TAGS[key] = {
            "plant": r.plant,
            "stack": r.stack,
            "sensor": r.sensor,
            "quantity": r.quantity,
            "unit": r.unit,
        }
    return Point(READINGS, tags, {"value": r.value, "status": _STATUS_VALUES[r.status]}, r.ts_ns)


# One tags mapping per sensor, shared by all its points (read-only): the line protocol finds
# its series by the mapping's identity. Bounded: cleared when full.
_TAGS: dict[tuple[str, str, str, str, str], dict[str, str]] = {}
_TAGS_MAX = 100_000


def reading_from_last(last: LastValue) -> Reading:
    """Rebuild a reading from a stored last value (inverse of :func:`reading_to_point`)."""
    t = last.tags
    return Reading(
        t["plant"],
        t["stack"],
        t["sensor"],
        last.ts_ns,
        float(last.fields["value"]),
        t.get("quantity", ""),
        t.get("unit", ""),
        Status(str(last.fields.get("status", "valid"))),
    )
