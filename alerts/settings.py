"""Settings of the alerts pipeline: ``STACKWATCH_ALERTS_*`` plus an optional YAML file.

The file (``STACKWATCH_ALERTS_CONFIG``) has four optional sections::

    rules:            # overrides of the rule defaults (alerts.rules.DEFAULT_RULES)
      no_data: {for_s: 300}
    route:            # the routing tree (alerts.routing.RouteConfig)
      receivers: [officers]
      group_wait_s: 30
      escalation: [{after_s: 900, receivers: [plant-manager]}]
    receivers:        # contacts and their channels (alerts.notify.config.ReceiverConfig)
      - name: officers
        apprise: ["mailto://..."]
        webhooks: [{url: "https://...", secret: "..."}]
    inhibit_rules: [] # replaces alerts.inhibit.DEFAULT_INHIBIT_RULES when given

Receivers may instead come from ``STACKWATCH_ALERTS_RECEIVERS`` (JSON), which keeps their
secrets out of files. Without any configuration every alert goes to the built-in receiver
``default``: the MQTT alert topic ``<prefix>/alerts/<plant>/<stack>/<status>`` on the service's
broker, with the service's MQTT credentials. Everything is validated at start-up, without
network calls.

>>> cfg = load_alerts_config(None, topic_prefix="stackwatch")
>>> [r.name for r in cfg.receivers.receivers], cfg.route.receivers
(['default'], ['default'])
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter
from pydantic_settings import BaseSettings, SettingsConfigDict

from alerts.inhibit import DEFAULT_INHIBIT_RULES, InhibitRule
from alerts.notify.config import MqttAlertConfig, ReceiverConfig, ReceiversConfig
from alerts.routing import RouteConfig, RouteConfigError, Router
from alerts.rules import RulesConfig

DEFAULT_RECEIVER = "default"


class AlertsSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="STACKWATCH_ALERTS_", env_file=".env", env_ignore_empty=True, extra="ignore"
    )

    config: Path | None = Field(
        None, description="Alert rules, routes, receivers and inhibition (YAML)."
    )
    flush_interval_s: float = Field(
        1.0, gt=0, description="How often alerts are evaluated and notifications sent."
    )
    no_data_intervals: float = Field(
        3.0,
        ge=1,
        description="Sampling intervals without a reading before a sensor counts as silent "
        "(the no_data rule's for_s is the grace period after that).",
    )
    status_window_max_s: float = Field(
        8 * 3600.0,
        gt=0,
        description="Longest maintenance window a sensor status (calibration, maintenance) "
        "or plant mode (start-up, shut-down) opens.",
    )


class AlertsConfigError(ValueError):
    """The alerts configuration cannot be used; the message says where and why."""


class AlertsConfig(BaseModel):
    """The validated alerts configuration."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    rules: RulesConfig
    route: RouteConfig
    receivers: ReceiversConfig
    inhibit_rules: list[InhibitRule]
    router: Router


def _default_receiver(
    topic_prefix: str, username: str | None, password: SecretStr | None
) -> ReceiverConfig:
    topic = f"{topic_prefix}/alerts/{{plant}}/{{stack}}/{{status}}"
    mqtt = MqttAlertConfig(
        topic_template=topic,
        username=SecretStr(username) if username else None,
        password=password,
    )
    return ReceiverConfig(name=DEFAULT_RECEIVER, mqtt=mqtt)


_INHIBIT_RULES = TypeAdapter(list[InhibitRule])


@contextmanager
def _section(where: str, name: str) -> Iterator[None]:
    """Refusals raised inside name the file and the section they concern."""
    try:
        yield
    except (RouteConfigError, ValueError) as err:  # ValidationError is a ValueError
        raise AlertsConfigError(f"{where}: {name}: {err}") from None


def load_alerts_config(
    path: Path | None,
    *,
    topic_prefix: str,
    mqtt_username: str | None = None,
    mqtt_password: SecretStr | None = None,
) -> AlertsConfig:
    """Read and validate the alerts configuration (see the module docstring)."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as err:
            raise AlertsConfigError(f"{path}: cannot read: {err.strerror}") from None
        except UnicodeDecodeError as err:
            raise AlertsConfigError(
                f"{path}: not UTF-8 text: invalid byte at position {err.start}"
            ) from None
        except RecursionError:
            raise AlertsConfigError(f"{path}: invalid YAML: nested too deeply") from None
        except yaml.YAMLError as err:
            raise AlertsConfigError(f"{path}: invalid YAML: {err}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise AlertsConfigError(f"{path}: expected a mapping at the top level")
        data = loaded or {}
        unknown = set(data) - {"rules", "route", "receivers", "inhibit_rules"}
        if unknown:
            raise AlertsConfigError(f"{path}: unknown section(s) {sorted(map(str, unknown))}")
    where = str(path) if path else "alerts configuration"
    with _section(where, "rules"):
        rules = RulesConfig.model_validate(data.get("rules") or {})
    with _section(where, "receivers"):
        if "receivers" in data:
            receivers = ReceiversConfig(receivers=data["receivers"] or [])
        else:
            receivers = ReceiversConfig()
        if not receivers.receivers:
            receivers = receivers.model_copy(
                update={
                    "receivers": [_default_receiver(topic_prefix, mqtt_username, mqtt_password)]
                }
            )
    with _section(where, "route"):
        route = RouteConfig.model_validate(
            data.get("route") or {"receivers": [receivers.receivers[0].name]}
        )
        router = Router(route, known_receivers=[r.name for r in receivers.receivers])
    with _section(where, "inhibit_rules"):
        inhibit = (
            _INHIBIT_RULES.validate_python(data["inhibit_rules"] or [])
            if "inhibit_rules" in data
            else list(DEFAULT_INHIBIT_RULES)
        )
    return AlertsConfig(
        rules=rules, route=route, receivers=receivers, inhibit_rules=inhibit, router=router
    )
