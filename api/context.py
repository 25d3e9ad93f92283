"""What the API needs from the running service, passed in once at app creation.

The service builds one :class:`AppContext` and hands it to ``create_app``; routes reach it
through ``api.deps.ContextDep``. Keeping it a plain dataclass (no globals, no lifespan) lets
tests build an app around a real store and a fixed clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from alerts.runtime import AlertRuntime
from api.live import LiveHub
from api.settings import ApiSettings
from stream.detect.live import watched_sensors
from stream.plant import PlantConfig
from stream.storage.base import Store


@dataclass(frozen=True)
class ComponentHealth:
    """Health of one non-store component (MQTT client, writer, ...), as the service sees it.

    ``detail`` is a short human-readable state, e.g. ``connected to 127.0.0.1:1883``.
    """

    ok: bool
    detail: str = ""


class DetectionModels(Protocol):
    """What the sensor health endpoint reads of :class:`stream.detect.live.LiveDetection`."""

    def model_versions(self) -> dict[tuple[str, str], str]: ...

    def warm(self, plant: str, stack: str, sensor: str) -> bool: ...


class PemsModels(Protocol):
    """What the sensor health endpoint reads of :class:`stream.pems.live.LivePems`."""

    def model_versions(self) -> dict[tuple[str, str, str], str | None]: ...


@dataclass(frozen=True)
class ModelsInfo:
    """A snapshot of the running models, taken on the event loop for one request.

    ``detection``: model version by (plant, stack) of every watched stack; ``warm``: whether
    each watched sensor's statistical score is past its warm-up, by (plant, stack, sensor);
    ``pems``: model version of every soft sensor by (plant, stack, target), None until fitted.

    >>> ModelsInfo.of(PlantConfig.model_validate({"plants": {"p": {"stacks": {"s": {
    ...     "sensors": {"x": {"quantity": "o2", "unit": "%", "valid_range": [0, 25]}}}}}}}),
    ...     None, None)
    ModelsInfo(detection={}, warm={}, pems={})
    """

    detection: Mapping[tuple[str, str], str] = field(default_factory=dict)
    warm: Mapping[tuple[str, str, str], bool] = field(default_factory=dict)
    pems: Mapping[tuple[str, str, str], str | None] = field(default_factory=dict)

    @classmethod
    def of(
        cls, config: PlantConfig, detection: DetectionModels | None, pems: PemsModels | None
    ) -> ModelsInfo:
        """Read the models now (None: that stage is not running)."""
        versions: dict[tuple[str, str], str] = {}
        warm: dict[tuple[str, str, str], bool] = {}
        if detection is not None:
            versions = detection.model_versions()
            for plant, stack in versions:
                for sid in watched_sensors(config.plants[plant].stacks[stack]):
                    warm[(plant, stack, sid)] = detection.warm(plant, stack, sid)
        return cls(versions, warm, pems.model_versions() if pems is not None else {})


@dataclass
class AppContext:
    """Everything the routes use.

    ``store`` must be started by the service before the app serves requests and closed after.
    ``components`` is called on every health request and returns the current state of the
    other components; the key ``store`` is reserved (the API pings the store itself).
    ``demo`` opens every endpoint without a token. ``now_ns`` is the clock used for default
    time ranges (injected so tests can fix it). ``alerts`` serves the alert, silence and audit
    endpoints. ``models`` is called on the event loop by the sensor health endpoint.
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
    models: Callable[[], ModelsInfo] | None = None
    """The running detection and PEMS models (None: their versions and warm-up are unknown)."""
