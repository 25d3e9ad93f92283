"""Alert rules: how long a condition must hold, how urgent it is and how it ends.

Every :class:`~alerts.model.RuleName` has a professional default in :data:`DEFAULT_RULES`;
:class:`RulesConfig` merges per-rule overrides from the configuration on top of them and is
validated at start-up, so a misspelt rule name or an out-of-range ratio stops the service
before it runs rather than silently never alerting.

Two kinds of signal end differently (see :mod:`alerts.lifecycle`):

* **level** signals carry ``value`` and ``threshold``; a rule with a ``recovery_ratio`` clears
  them only once the value falls to ``threshold × recovery_ratio`` (hysteresis, so a value
  hovering at the limit does not flap);
* **event** signals (a drift event, an invalid day) occur and are gone; a rule with
  ``resolve_after_s`` resolves them that long after their last occurrence, otherwise only an
  explicit ``active=False`` signal does. Event rules have ``recovery_ratio=None``: the
  ``value``/``limit`` compliance events carry are for display (a calibration-range event
  compares a fraction with a count), and only ``active`` decides.

>>> rules = RulesConfig.model_validate({"limit_breach": {"for_s": 60}})
>>> cfg = rules.rule("limit_breach")
>>> cfg.for_s, cfg.severity.value, cfg.recovery_ratio
(60.0, 'critical', 0.95)
>>> RulesConfig.model_validate({"limit_breech": {"for_s": 60}})
Traceback (most recent call last):
...
pydantic_core._pydantic_core.ValidationError: 1 validation error for RulesConfig
...
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    RootModel,
    ValidationError,
    model_validator,
)

from alerts.model import RuleName, Severity

_MINUTE = 60.0
_HOUR = 3600.0
_DAY = 24 * _HOUR
_WEEK = 7 * _DAY

# Severity comes from YAML/env as a string; strict mode would demand an enum instance.
_SeverityField = Annotated[Severity, Field(strict=False)]


class RuleConfig(BaseModel):
    """Lifecycle settings of one alert rule (times in seconds).

    ``for_s``: how long the condition must hold before the alert fires (pending until then;
    a condition that clears earlier is dropped, never notified). ``severity``: the default
    (a signal may override it). ``recovery_ratio``: hysteresis for level signals: a breach
    is ``value > threshold``, and it clears only at ``value <= threshold × recovery_ratio``
    (in (0, 1]; 1 means no band); None makes the signal's ``active`` flag decide even when it
    carries a value. ``resolve_after_s``: an alert resolves by itself this long after the
    condition was last observed (one-off events); None: only an inactive signal (or the
    level falling below the recovery threshold) resolves it. ``enabled``: False ignores the
    rule's signals and resolves its open alerts.
    """

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    for_s: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    severity: _SeverityField
    recovery_ratio: float | None = Field(default=0.95, gt=0, le=1)
    resolve_after_s: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    enabled: bool = True


class RuleOverride(BaseModel):
    """Configured changes to one rule: only the fields given replace the default's."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    for_s: float | None = None
    severity: _SeverityField | None = None
    recovery_ratio: float | None = None
    resolve_after_s: float | None = None
    enabled: bool | None = None


def _rule(
    severity: Severity,
    *,
    for_s: float = 0.0,
    recovery_ratio: float | None = None,
    resolve_after_s: float | None = None,
) -> RuleConfig:
    return RuleConfig(
        severity=severity,
        for_s=for_s,
        recovery_ratio=recovery_ratio,
        resolve_after_s=resolve_after_s,
    )


DEFAULT_RULES: dict[RuleName, RuleConfig] = {
    # A validated short-term average is already averaged: over its ELV is a legal exceedance,
    # notify at once. Level signal; 5 % hysteresis so an average hovering at the ELV does not
    # flap; it stays open while the stack is down (no staleness timeout: last known = breach).
    RuleName.LIMIT_BREACH: _rule(Severity.CRITICAL, recovery_ratio=0.95),
    # A complete valid day over its daily ELV is reported once per day; it stays visible for
    # a day after the (re-)evaluation that reported it.
    RuleName.DAILY_LIMIT: _rule(Severity.CRITICAL, resolve_after_s=_DAY),
    # The projection is re-emitted on every evaluation while the day is at risk; one hour
    # without it means the projection came back under the ELV.
    RuleName.FORECAST: _rule(Severity.WARNING, resolve_after_s=_HOUR),
    # An invalid day is a daily fact: shown for a day, it needs a look, not a night call.
    RuleName.INVALID_DAY: _rule(Severity.WARNING, resolve_after_s=_DAY),
    # More than 10 invalid days a year obliges the operator to improve the AMS: it holds for
    # the rest of the year, so it stays open until the source clears it (active=False).
    RuleName.INVALID_DAYS_EXCEEDED: _rule(Severity.CRITICAL),
    # Calibration-range and QAL3 findings are weekly/periodic QA results: shown for a week,
    # a re-detection keeps them open.
    RuleName.CALIBRATION_RANGE: _rule(Severity.WARNING, resolve_after_s=_WEEK),
    RuleName.QAL3_DRIFT: _rule(Severity.WARNING, resolve_after_s=_WEEK),
    RuleName.QAL3_PRECISION: _rule(Severity.WARNING, resolve_after_s=_WEEK),
    # Single unusual readings are frequent and often benign: informational (a detector may
    # raise a strong one to warning), gone five minutes after the last flagged reading.
    RuleName.ANOMALY: _rule(Severity.INFO, resolve_after_s=5 * _MINUTE),
    # A fault that clears within 10 s (a glitch, one dropped frame) is not worth a message;
    # the fault rules report the end of a fault themselves (active=False).
    RuleName.SENSOR_FAULT: _rule(Severity.WARNING, for_s=10.0),
    # Drift is reported as events by the CUSUM; an hour without one means it stopped.
    RuleName.SENSOR_DRIFT: _rule(Severity.WARNING, resolve_after_s=_HOUR),
    # One minute of grace absorbs broker reconnects and batching; data returning clears it.
    RuleName.NO_DATA: _rule(Severity.WARNING, for_s=_MINUTE),
    # Broker or store unreachable stops monitoring altogether: critical, but only after 30 s
    # so a restart or a reconnect does not page anyone.
    RuleName.SERVICE_HEALTH: _rule(Severity.CRITICAL, for_s=30.0),
}


class RulesConfig(RootModel[dict[str, RuleOverride]]):
    """Per-rule overrides (rule name → changed fields), merged on :data:`DEFAULT_RULES`.

    Validation fails for unknown rule names and for merged settings out of range, naming the
    rule; ``RulesConfig()`` is the defaults.
    """

    model_config = ConfigDict(strict=True, frozen=True)

    root: dict[str, RuleOverride] = Field(default_factory=dict)
    _merged: dict[str, RuleConfig] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _merge(self) -> RulesConfig:
        known = {r.value for r in RuleName}
        unknown = sorted(set(self.root) - known)
        if unknown:
            raise ValueError(f"unknown alert rule(s) {unknown}; known rules: {sorted(known)}")
        merged: dict[str, RuleConfig] = {}
        for name, default in DEFAULT_RULES.items():
            override = self.root.get(name.value)
            if override is None:
                merged[name.value] = default
                continue
            data: dict[str, Any] = default.model_dump()
            data.update(override.model_dump(exclude_unset=True))
            try:
                merged[name.value] = RuleConfig.model_validate(data)
            except ValidationError as exc:
                raise ValueError(f"alert rule {name.value!r}: {exc}") from None
        self._merged = merged
        return self

    def rule(self, name: str) -> RuleConfig:
        """The effective settings of ``name``; ValueError for a rule that does not exist."""
        config = self._merged.get(name)
        if config is None:
            raise ValueError(f"unknown alert rule {name!r}")
        return config

    def get(self, name: str) -> RuleConfig | None:
        """Like :meth:`rule`, but None for an unknown name (e.g. a rule removed since)."""
        return self._merged.get(name)

    @property
    def rules(self) -> dict[str, RuleConfig]:
        """Every rule's effective settings (a copy)."""
        return dict(self._merged)
