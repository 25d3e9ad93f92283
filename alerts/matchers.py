"""Label matchers shared by routes, silences and inhibition rules (Alertmanager semantics).

A :class:`Matcher` tests one label: ``=`` and ``!=`` compare strings, ``=~`` and ``!~`` use a
regular expression that must match the *whole* value (as in Alertmanager, so ``nox`` does not
match ``nox2``). A label an alert does not have counts as the empty string, which lets
``sensor=""`` select alerts *without* a sensor label. Regexes are compiled when the matcher is
validated, so a bad pattern fails at start-up or at the API, never while dispatching.

Alerts are matched on their labels plus two implicit ones, ``rule`` and ``severity``
(:func:`alert_labels`).

>>> ms = [Matcher.parse("plant=demo"), Matcher.parse('rule=~"anomaly|no_data"')]
>>> matches(ms, {"plant": "demo", "rule": "no_data"})
True
>>> matches(ms, {"plant": "demo", "rule": "limit_breach"})
False
>>> str(Matcher.parse("sensor!~nox.*"))
'sensor!~"nox.*"'
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from enum import StrEnum
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from alerts.model import Alert, Labels

_LABEL = r"[A-Za-z_][A-Za-z0-9_]*"
_TEXT_FORM = re.compile(rf"^\s*({_LABEL})\s*(=~|!~|!=|=)\s*(.*?)\s*$")


class MatchOp(StrEnum):
    """How a matcher compares a label value."""

    EQ = "="
    NE = "!="
    RE = "=~"
    NRE = "!~"


class Matcher(BaseModel):
    """One label test. Accepts the text form ``label<op>value`` (value optionally quoted)
    wherever a matcher is validated, e.g. in YAML: ``matchers: ["plant=demo"]``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    label: str = Field(pattern=f"^{_LABEL}$")
    op: MatchOp = MatchOp.EQ
    value: str = ""

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: Any) -> Any:
        if isinstance(data, str):
            m = _TEXT_FORM.match(data)
            if m is None:
                raise ValueError(f"not a matcher (label<op>value): {data!r}")
            value = m.group(3)
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            return {"label": m.group(1), "op": m.group(2), "value": value}
        return data

    @model_validator(mode="after")
    def _check_regex(self) -> Matcher:
        if self.op in (MatchOp.RE, MatchOp.NRE):
            try:
                re.compile(self.value)
            except (re.error, RecursionError, OverflowError) as err:
                # Deeply nested groups and huge repeat counts fail outside re.error.
                raise ValueError(f"invalid regex {self.value!r}: {err}") from None
        return self

    @cached_property
    def predicate(self) -> Callable[[str], bool]:
        """The test of a label value, built once: matching runs for every alert every flush."""
        expected = self.value
        if self.op is MatchOp.EQ:
            return expected.__eq__
        if self.op is MatchOp.NE:
            return expected.__ne__
        full = re.compile(expected).fullmatch
        if self.op is MatchOp.RE:
            return lambda v: full(v) is not None
        return lambda v: full(v) is None

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """A matcher from its text form, e.g. ``plant=demo`` or ``rule=~"anomaly|no_data"``."""
        return cls.model_validate(text)

    def matches(self, labels: Labels) -> bool:
        return self.predicate(labels.get(self.label, ""))

    def __str__(self) -> str:
        return f'{self.label}{self.op.value}"{self.value}"'


def matches(matchers: Iterable[Matcher], labels: Labels) -> bool:
    """True when every matcher matches (an empty list matches everything)."""
    return all(m.matches(labels) for m in matchers)


def alert_labels(alert: Alert) -> dict[str, str]:
    """The labels an alert is matched and grouped on: its own plus ``rule`` and ``severity``."""
    return {**alert.labels, "rule": alert.rule, "severity": str(alert.severity)}


def format_matchers(matchers: Iterable[Matcher]) -> str:
    """``{plant="demo",rule=~"anomaly"}``: the canonical text of a matcher list."""
    return "{" + ",".join(str(m) for m in matchers) + "}"
