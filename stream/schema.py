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
    return Point(
        READINGS,
        {
            "plant": r.plant,
            "stack": r.stack,
            "sensor": r.sensor,
            "quantity": r.quantity,
            "unit": r.unit,
        },
        {"value": r.value, "status": _STATUS_VALUES[r.status]},
        r.ts_ns,
    )


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
