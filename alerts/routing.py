"""The routing tree: which contacts hear about an alert, and how its notifications are grouped.

Like Alertmanager's ``route``: every alert enters at the root; a child whose matchers match
takes it, and the first matching child wins unless it sets ``continue: true`` (then later
siblings are tried too). An alert no child takes stays with the parent. A child inherits every
value it leaves unset from its parent; the root's unset values are the defaults below.

Grouping: alerts of one route with equal values of the ``group_by`` labels form one group and
share notifications (``["..."]`` groups by all labels, i.e. one group per alert). Timing, in
seconds in the configuration and integer ns in :class:`ResolvedRoute`: ``group_wait_s`` after a
group's first alert fires, its first notification; new alerts of the group at most every
``group_interval_s``; a reminder every ``repeat_interval_s`` while an alert stays firing and
unacknowledged; ``escalation`` levels notify further contacts ``after_s`` after an alert fired
if it is still unacknowledged. Resolved alerts are notified at once (when ``send_resolved``).

The configuration is validated completely at start-up, without network calls; every error
names its path (``route.routes[1].escalation[0].after_s: ...``).

>>> from alerts.model import Severity, State
>>> router = Router.from_mapping({
...     "receivers": ["ops"],
...     "routes": [{"matchers": ["severity=critical"], "receivers": ["oncall"]}],
... })
>>> alert = Alert("f", "limit_breach", {"plant": "demo", "stack": "b1", "pollutant": "nox"},
...               Severity.CRITICAL, State.FIRING, "", 0, 0, fired_ns=0)
>>> [(r.receivers, r.group_wait_ns // NS_PER_S) for r in router.routes_for(alert)]
[(('oncall',), 30)]
>>> router.routes_for(alert)[0].group(alert)[0]
'{}/{severity="critical"}:{plant="demo",pollutant="nox",stack="b1"}'
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from alerts.matchers import Matcher, alert_labels, format_matchers, matches
from alerts.model import Alert
from stream.model import NS_PER_S

__all__ = [
    "DEFAULT_GROUP_BY",
    "EscalationLevel",
    "ResolvedEscalation",
    "ResolvedRoute",
    "RouteConfig",
    "RouteConfigError",
    "Router",
]

DEFAULT_GROUP_BY = ("plant", "stack", "pollutant")
GROUP_BY_ALL = "..."

_DEFAULTS: dict[str, Any] = {
    "receivers": [],
    "group_by": list(DEFAULT_GROUP_BY),
    "group_wait_s": 30.0,
    "group_interval_s": 300.0,
    "repeat_interval_s": 4 * 3600.0,
    "send_resolved": True,
    "escalation": [],
}


class RouteConfigError(ValueError):
    """The routing configuration is invalid (never retryable: fix the configuration)."""

    retryable = False

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("invalid alert routing: " + "; ".join(self.problems))


class EscalationLevel(BaseModel):
    """Notify ``receivers`` when an alert is still firing, unacknowledged, ``after_s`` after it
    fired."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    after_s: float = Field(gt=0)
    receivers: list[str] = Field(min_length=1)


class RouteConfig(BaseModel):
    """One node of the routing tree; ``None`` means "inherit from the parent"."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_by_name=True, validate_by_alias=True
    )

    matchers: list[Matcher] = Field(default_factory=list)
    receivers: list[str] | None = None
    group_by: list[str] | None = None
    group_wait_s: float | None = Field(None, ge=0)
    group_interval_s: float | None = Field(None, gt=0)
    repeat_interval_s: float | None = Field(None, gt=0)
    send_resolved: bool | None = None
    continue_: bool = Field(False, alias="continue")
    escalation: list[EscalationLevel] | None = None
    routes: list[RouteConfig] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ResolvedEscalation:
    after_ns: int
    receivers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ResolvedRoute:
    """A route with its inherited values filled in; times in integer ns.

    ``key`` identifies the route in group keys: the chain of matchers from the root (plus
    ``#i`` when siblings have the same matchers), so reordering routes does not change it.
    ``path`` locates it in the configuration (``route.routes[0]``).
    ``group_by`` is None for ``["..."]`` (group by all labels).
    """

    key: str
    path: str
    matchers: tuple[Matcher, ...]
    receivers: tuple[str, ...]
    group_by: tuple[str, ...] | None
    group_wait_ns: int
    group_interval_ns: int
    repeat_interval_ns: int
    send_resolved: bool
    continue_: bool
    escalation: tuple[ResolvedEscalation, ...]

    def group(self, alert: Alert) -> tuple[str, dict[str, str]]:
        """The alert's group in this route: ``(group_key, group_labels)``.

        Only labels the alert has are group labels (an alert without ``pollutant`` groups with
        the other pollutant-less alerts of its plant and stack).
        """
        labels = alert_labels(alert)
        if self.group_by is None:
            chosen = dict(sorted(labels.items()))
        else:
            chosen = {k: labels[k] for k in sorted(self.group_by) if k in labels}
        body = ",".join(f'{k}="{v}"' for k, v in chosen.items())
        return f"{self.key}:{{{body}}}", chosen


@dataclass(frozen=True, slots=True)
class _Node:
    route: ResolvedRoute
    children: tuple[_Node, ...]


class Router:
    """Resolves alerts to routes. ``known_receivers``, when given, are the contact names that
    exist; a route naming another one is a configuration error."""

    def __init__(self, config: RouteConfig, known_receivers: Collection[str] | None = None) -> None:
        problems: list[str] = []
        if config.matchers:
            problems.append("route.matchers: the root route must match every alert (no matchers)")
        if config.continue_:
            problems.append("route.continue: not allowed on the root route")
        self._root = _resolve(
            config, dict(_DEFAULTS), "route", "{}", known=known_receivers, problems=problems
        )
        if problems:
            raise RouteConfigError(problems)

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], known_receivers: Collection[str] | None = None
    ) -> Router:
        """Validate a parsed YAML/JSON mapping; raises :class:`RouteConfigError`."""
        try:
            config = RouteConfig.model_validate(data)
        except ValidationError as err:
            raise RouteConfigError([_describe(e) for e in err.errors()]) from err
        return cls(config, known_receivers)

    def routes_for(self, alert: Alert) -> list[ResolvedRoute]:
        """The routes that take ``alert`` (at least one: the root takes what no child does)."""
        return _match(self._root, alert_labels(alert)) or [self._root.route]

    def routes(self) -> list[ResolvedRoute]:
        """Every route of the tree, depth first (for display and validation)."""
        out: list[ResolvedRoute] = []
        stack = [self._root]
        while stack:
            node = stack.pop()
            out.append(node.route)
            stack.extend(reversed(node.children))
        return out


def _match(node: _Node, labels: Mapping[str, str]) -> list[ResolvedRoute]:
    if not matches(node.route.matchers, labels):
        return []
    found: list[ResolvedRoute] = []
    for child in node.children:
        got = _match(child, labels)
        found.extend(got)
        if got and not child.route.continue_:
            break
    return found or [node.route]


def _resolve(
    config: RouteConfig,
    inherited: dict[str, Any],
    path: str,
    key: str,
    *,
    known: Collection[str] | None,
    problems: list[str],
) -> _Node:
    values = dict(inherited)
    for name in _DEFAULTS:
        own = getattr(config, name)
        if own is not None:
            values[name] = own
    receivers: list[str] = values["receivers"]
    group_by: list[str] = values["group_by"]
    escalation: list[EscalationLevel] = values["escalation"]
    if not receivers:
        problems.append(f"{path}.receivers: no receivers (set them here or on a parent)")
    if GROUP_BY_ALL in group_by and len(group_by) > 1:
        problems.append(f'{path}.group_by: "..." groups by all labels and must stand alone')
    if any(not g for g in group_by):
        problems.append(f"{path}.group_by: empty label name")
    if values["repeat_interval_s"] < values["group_interval_s"]:
        problems.append(
            f"{path}.repeat_interval_s: {values['repeat_interval_s']} is shorter than "
            f"group_interval_s {values['group_interval_s']}"
        )
    for i, level in enumerate(escalation):
        if not i and level.after_s < values["group_wait_s"]:
            problems.append(
                f"{path}.escalation[0].after_s: {level.after_s} is before group_wait_s "
                f"{values['group_wait_s']} (escalating before the first notification)"
            )
        if i and level.after_s <= escalation[i - 1].after_s:
            problems.append(
                f"{path}.escalation[{i}].after_s: must be later than the previous level's"
            )
    if known is not None:
        named = [(f"{path}.receivers", r) for r in receivers] + [
            (f"{path}.escalation[{i}].receivers", r)
            for i, level in enumerate(escalation)
            for r in level.receivers
        ]
        for where, name in named:
            if name not in known:
                problems.append(f"{where}: unknown receiver {name!r} (known: {sorted(known)})")
    route = ResolvedRoute(
        key=key,
        path=path,
        matchers=tuple(config.matchers),
        receivers=tuple(dict.fromkeys(receivers)),
        group_by=None if GROUP_BY_ALL in group_by else tuple(dict.fromkeys(group_by)),
        group_wait_ns=_ns(values["group_wait_s"]),
        group_interval_ns=_ns(values["group_interval_s"]),
        repeat_interval_ns=_ns(values["repeat_interval_s"]),
        send_resolved=values["send_resolved"],
        continue_=config.continue_,
        escalation=tuple(
            ResolvedEscalation(_ns(e.after_s), tuple(dict.fromkeys(e.receivers)))
            for e in escalation
        ),
    )
    seen: dict[str, int] = {}
    children = []
    for i, child in enumerate(config.routes):
        text = format_matchers(child.matchers)
        n = seen[text] = seen.get(text, -1) + 1
        child_key = f"{key}/{text}" + (f"#{n}" if n else "")
        children.append(
            _resolve(
                child, values, f"{path}.routes[{i}]", child_key, known=known, problems=problems
            )
        )
    return _Node(route, tuple(children))


def _ns(seconds: float) -> int:
    return round(seconds * NS_PER_S)


def _describe(error: Mapping[str, Any]) -> str:
    path = "route"
    for part in error.get("loc", ()):
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return f"{path}: {error.get('msg', 'invalid')}"
