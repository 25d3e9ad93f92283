"""Inhibition: an active alert mutes other alerts it explains (Alertmanager ``inhibit_rules``).

A rule inhibits a *target* alert while some other *source* alert is active (firing or
acknowledged), the source matches ``source_matchers``, the target ``target_matchers``, and both
have the same value for every label in ``equal`` (a missing label counts as empty on both
sides). An alert never inhibits itself. Muted sources still inhibit: silencing the cause does
not unmute its consequences.

The defaults remove the noise that follows one root cause:

* a sensor fault explains that sensor's anomalies and drift suspicion;
* a sensor that sends nothing (``no_data``) explains its missing anomaly alerts' noise;
* a plant- or stack-wide link loss (``no_data`` without a ``sensor`` label) explains every
  per-sensor ``no_data`` of that plant or stack (Grafana NoData storms);
* a service-health problem (broker or store down) explains ``no_data`` of its plant, or of
  every plant when it has no ``plant`` label.

>>> from alerts.model import Severity, State
>>> def alert(rule, **labels):
...     return Alert(rule + str(labels), rule, labels, Severity.WARNING, State.FIRING, "", 0, 0)
>>> fault = alert("sensor_fault", plant="p", stack="s", sensor="nox1")
>>> inhibitor = Inhibitor()
>>> inhibitor.inhibited_by(alert("anomaly", plant="p", stack="s", sensor="nox1"), [fault]).name
'sensor_fault inhibits anomaly/sensor_drift of the sensor'
>>> inhibitor.inhibited_by(alert("anomaly", plant="p", stack="s", sensor="o2"), [fault]) is None
True
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field

from alerts.matchers import Matcher, alert_labels, format_matchers, matches
from alerts.model import Alert


class InhibitRule(BaseModel):
    """One inhibition rule; matchers accept the text form (``rule=sensor_fault``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = ""
    source_matchers: tuple[Matcher, ...] = Field(min_length=1)
    target_matchers: tuple[Matcher, ...] = Field(min_length=1)
    equal: tuple[str, ...] = ()

    @property
    def description(self) -> str:
        """The name, or a text form of the rule (what a suppression record names)."""
        if self.name:
            return self.name
        eq = f" equal {list(self.equal)}" if self.equal else ""
        return (
            f"{format_matchers(self.source_matchers)} inhibits "
            f"{format_matchers(self.target_matchers)}{eq}"
        )

    def inhibits(self, source: Alert, target: Alert) -> bool:
        if source.fingerprint == target.fingerprint or not source.state.active:
            return False
        s, t = alert_labels(source), alert_labels(target)
        return (
            matches(self.target_matchers, t)
            and matches(self.source_matchers, s)
            and all(s.get(k, "") == t.get(k, "") for k in self.equal)
        )


def _rule(name: str, source: list[str], target: list[str], equal: list[str]) -> InhibitRule:
    return InhibitRule.model_validate(
        {"name": name, "source_matchers": source, "target_matchers": target, "equal": equal}
    )


DEFAULT_INHIBIT_RULES: tuple[InhibitRule, ...] = (
    _rule(
        "sensor_fault inhibits anomaly/sensor_drift of the sensor",
        ["rule=sensor_fault"],
        ["rule=~anomaly|sensor_drift"],
        ["plant", "stack", "sensor"],
    ),
    _rule(
        "no_data inhibits anomaly of the sensor",
        ["rule=no_data", "sensor=~.+"],
        ["rule=anomaly"],
        ["plant", "stack", "sensor"],
    ),
    _rule(
        "plant-wide no_data inhibits per-sensor no_data of the plant",
        ["rule=no_data", 'stack=""', 'sensor=""'],
        ["rule=no_data", "sensor=~.+"],
        ["plant"],
    ),
    _rule(
        "stack-wide no_data inhibits per-sensor no_data of the stack",
        ["rule=no_data", "stack=~.+", 'sensor=""'],
        ["rule=no_data", "sensor=~.+"],
        ["plant", "stack"],
    ),
    _rule(
        "service_health inhibits no_data of the plant",
        ["rule=service_health", "plant=~.+"],
        ["rule=no_data"],
        ["plant"],
    ),
    _rule(
        "service_health without a plant inhibits all no_data",
        ["rule=service_health", 'plant=""'],
        ["rule=no_data"],
        [],
    ),
)


class Inhibitor:
    """Applies inhibition rules (the defaults unless others are given)."""

    def __init__(self, rules: Iterable[InhibitRule] = DEFAULT_INHIBIT_RULES) -> None:
        self.rules = tuple(rules)

    def inhibited_by(self, alert: Alert, active_alerts: Iterable[Alert]) -> InhibitRule | None:
        """The first rule for which an alert of ``active_alerts`` inhibits ``alert``, or None.

        ``active_alerts`` may contain anything (``alert`` itself, resolved alerts): only other
        active alerts count as sources.
        """
        return self.prepare(active_alerts).inhibited_by(alert)

    def prepare(self, active_alerts: Iterable[Alert]) -> InhibitionIndex:
        """Index the sources once to test many targets against them (one flush)."""
        return InhibitionIndex(self.rules, active_alerts)


class InhibitionIndex:
    """The active sources of each rule keyed by their ``equal`` label values: testing a target
    costs one lookup per rule instead of a scan of every alert."""

    def __init__(self, rules: tuple[InhibitRule, ...], active_alerts: Iterable[Alert]) -> None:
        self._rules = rules
        self._sources: list[dict[tuple[str, ...], set[str]]] = [{} for _ in rules]
        for source in active_alerts:
            if not source.state.active:
                continue
            labels = alert_labels(source)
            for rule, index in zip(rules, self._sources, strict=True):
                if matches(rule.source_matchers, labels):
                    key = tuple(labels.get(k, "") for k in rule.equal)
                    index.setdefault(key, set()).add(source.fingerprint)

    def inhibited_by(self, alert: Alert) -> InhibitRule | None:
        labels = alert_labels(alert)
        for rule, index in zip(self._rules, self._sources, strict=True):
            if not matches(rule.target_matchers, labels):
                continue
            sources = index.get(tuple(labels.get(k, "") for k in rule.equal), set())
            if sources - {alert.fingerprint}:  # an alert never inhibits itself
                return rule
        return None
