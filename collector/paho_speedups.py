"""Hot-path fixes for paho-mqtt's receive path, applied once on import.

Profiling the collector at full rate (``python -m bench e2e``) showed paho spending most of
its time on bookkeeping that does not depend on the message:

* ``Properties.__init__`` (38 % of all CPU time): paho decodes the properties of every MQTT 5
  PUBLISH into a new ``Properties`` object whose constructor rebuilds three lookup tables
  (about thirty names and identifiers, each with a list of packet types). The tables are
  constants that paho only ever reads, so every instance now shares one copy.
* ``Properties.clear`` (run before every decode) scanned all thirty names; it now deletes the
  properties the instance actually holds, which is the same set.
* ``MQTTMatcher.iter_match`` split every topic to look for per-topic callbacks; with none
  registered (aiomqtt registers none) it now returns at once.

Behaviour is otherwise unchanged (``tests/collector/test_paho_speedups.py`` compares decoded
properties and matches with paho's own code).

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
from paho.mqtt.matcher import MQTTMatcher
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

log = structlog.get_logger(__name__)

CHECKED_VERSIONS = frozenset({"2.1.0", "2.2.0"})
_ORIGINAL_INIT = Properties.__init__
_ORIGINAL_CLEAR = Properties.clear
_ORIGINAL_ITER_MATCH = MQTTMatcher.iter_match
_SHARED: dict[str, Any] = {}
_PRIVATE = frozenset({"packetType", "types", "names", "properties"})


def _shared_init(self: Properties, packetType: int) -> None:  # noqa: N803 - paho's name
    # object.__setattr__: Properties.__setattr__ validates property names on every set.
    set_attr = object.__setattr__
    set_attr(self, "packetType", packetType)
    set_attr(self, "types", _SHARED["types"])
    set_attr(self, "names", _SHARED["names"])
    set_attr(self, "properties", _SHARED["properties"])


def _clear(self: Properties) -> None:
    # Property values are the only other attributes __setattr__ lets onto an instance.
    for name in [n for n in vars(self) if n not in _PRIVATE]:
        object.__delattr__(self, name)


def _iter_match(self: MQTTMatcher, topic: str) -> Any:
    root = self._root
    if not root._children and root._content is None:
        return iter(())
    return _ORIGINAL_ITER_MATCH(self, topic)  # type: ignore[no-untyped-call]


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
    Properties.clear = _clear  # type: ignore[method-assign]
    MQTTMatcher.iter_match = _iter_match  # type: ignore[method-assign]
    return True


apply()
