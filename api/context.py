"""What the API needs from the running service, passed in once at app creation.

The service builds one :class:`AppContext` and hands it to ``create_app``; routes reach it
through ``api.deps.ContextDep``. Keeping it a plain dataclass (no globals, no lifespan) lets
tests build an app around a real store and a fixed clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from alerts.runtime import AlertRuntime
from api.live import LiveHub
from api.settings import ApiSettings
from stream.plant import PlantConfig
from stream.storage.base import Store


@dataclass(frozen=True)
class ComponentHealth:
    """Health of one non-store component (MQTT client, writer, ...), as the service sees it.

    ``detail`` is a short human-readable state, e.g. ``connected to 127.0.0.1:1883``.
    """

    ok: bool
    detail: str = ""


@dataclass
class AppContext:
    """Everything the routes use.

    ``store`` must be started by the service before the app serves requests and closed after.
    ``components`` is called on every health request and returns the current state of the
    other components; the key ``store`` is reserved (the API pings the store itself).
    ``demo`` opens every endpoint without a token. ``now_ns`` is the clock used for default
    time ranges (injected so tests can fix it). ``alerts`` serves the alert, silence and audit
    endpoints.
    """

    config: PlantConfig
    store: Store
    settings: ApiSettings
    demo: bool
    components: Callable[[], Mapping[str, ComponentHealth]]
    now_ns: Callable[[], int] = field(default=time.time_ns)
    alerts: AlertRuntime | None = None
    """The alerts pipeline (None: the alert endpoints answer 503)."""
    live: LiveHub | None = None
    """The live event stream (None: ``/live`` answers 503)."""
