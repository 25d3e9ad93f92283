"""A hot-path fix for paho-mqtt's MQTT 5 ``Properties``, applied once on import.

paho decodes the properties of every MQTT 5 PUBLISH it receives into a new ``Properties``
object, whose constructor rebuilds three lookup tables (about thirty names and identifiers,
each with a list of packet types) every time. Profiling the collector at full rate showed that
constructor as 38 % of all CPU time. The tables are constants that paho only ever reads, so
every instance can share one copy; the constructor then only sets four references. Behaviour
is otherwise unchanged (``tests/collector/test_paho_speedups.py`` checks the tables and a
properties round trip against the original constructor).

The patch applies only to the paho versions it was checked on; with another version it does
nothing and logs why, so an upgrade can cost speed but never correctness.

>>> from paho.mqtt.packettypes import PacketTypes
>>> from paho.mqtt.properties import Properties
>>> patched(), Properties(PacketTypes.PUBLISH).names is Properties(PacketTypes.CONNECT).names
(True, True)
"""

from __future__ import annotations

from typing import Any

import paho.mqtt
import structlog
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

log = structlog.get_logger(__name__)

CHECKED_VERSIONS = frozenset({"2.1.0", "2.2.0"})
_ORIGINAL_INIT = Properties.__init__
_SHARED: dict[str, Any] = {}


def _shared_init(self: Properties, packetType: int) -> None:  # noqa: N803 - paho's name
    # object.__setattr__: Properties.__setattr__ validates property names on every set.
    set_attr = object.__setattr__
    set_attr(self, "packetType", packetType)
    set_attr(self, "types", _SHARED["types"])
    set_attr(self, "names", _SHARED["names"])
    set_attr(self, "properties", _SHARED["properties"])


def patched() -> bool:
    """Whether the shared-table constructor is in place."""
    return Properties.__init__ is _shared_init


def apply() -> bool:
    """Install the shared-table constructor (idempotent); False if this paho is unchecked."""
    if patched():
        return True
    version = getattr(paho.mqtt, "__version__", "?")
    if version not in CHECKED_VERSIONS:
        log.info("paho-mqtt speed-up not applied: unchecked version", version=version)
        return False
    template = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]  # paho's own
    _SHARED.update(types=template.types, names=template.names, properties=template.properties)
    Properties.__init__ = _shared_init  # type: ignore[method-assign]
    return True


apply()
