"""Pieces shared by several dashboards: template variables, event tables and annotations,
and the per-stack query groups that carry numbers from the plant configuration.

Limits and intervals differ per stack but panels are filtered by the ``stack`` variable at
query time. A number from the configuration is therefore written into one query per group of
stacks that share it, restricted to those stacks (``"stack" =~ /^(boiler1|boiler2)$/``) and
to the selected ones; a group returns nothing when none of its stacks is selected.

>>> groups = group_stacks([("demo", "b1", 200.0), ("demo", "b2", 200.0), ("demo", "gt1", 50.0)])
>>> [(plant, value, stacks) for (plant, value), stacks in groups.items()]
[('demo', 200.0, ['b1', 'b2']), ('demo', 50.0, ['gt1'])]
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import TypeVar

from dashboards.facts import PollutantFacts, StackFacts
from dashboards.grafana import ORANGE, RED, Json, Target, annotation, query_variable, table
from dashboards.influxql import PLANT_VAR, STACK_VAR, VARS, eq, one_of, select, tag_values, where

K = TypeVar("K", bound=Hashable)


def group_stacks(items: Iterable[tuple[str, str, K]]) -> dict[tuple[str, K], list[str]]:
    """``(plant, stack, key)`` → ``{(plant, key): [stacks]}``, in first-seen order."""
    out: dict[tuple[str, K], list[str]] = {}
    for plant, stack, key in items:
        out.setdefault((plant, key), []).append(stack)
    return out


def limit_groups(
    facts: Iterable[StackFacts], pollutant: str, pick: Callable[[PollutantFacts], float | None]
) -> dict[tuple[str, float], list[str]]:
    """Stacks grouped by plant and the limit ``pick`` takes from their ``pollutant`` (stacks
    without that pollutant or limit are left out)."""
    items = []
    for f in facts:
        pf = f.pollutants.get(pollutant)
        value = None if pf is None else pick(pf)
        if value is not None:
            items.append((f.plant, f.stack, value))
    return group_stacks(items)


def only(plant: str, stacks: Iterable[str]) -> list[str]:
    """Conditions restricting a query to these stacks of ``plant``."""
    return [eq("plant", plant), one_of("stack", stacks)]


def plant_variable() -> Json:
    return query_variable(
        "plant",
        "Plant",
        tag_values("readings", "plant"),
        description="Plants with readings in the time range.",
    )


def stack_variable(*, multi: bool) -> Json:
    return query_variable(
        "stack",
        "Stack",
        tag_values("readings", "stack", PLANT_VAR),
        multi=multi,
        description="Stacks of the plant with readings in the time range.",
    )


def sensor_variable() -> Json:
    return query_variable(
        "sensor",
        "Sensor",
        tag_values("readings", "sensor", PLANT_VAR, STACK_VAR),
        multi=True,
        description="Sensors of the selected stacks with readings in the time range.",
    )


EVENT_LIMIT = 100


def compliance_events_table() -> Json:
    q = select(
        '"stack", "pollutant", "kind", "message", "value", "limit"',
        "compliance_events",
        where(VARS),
        tail=f"ORDER BY time DESC LIMIT {EVENT_LIMIT}",
    )
    return table(
        "Compliance events",
        [Target(q, table=True)],
        description="Invalid days, daily limit exceedances, daily-average pre-alarms, "
        "calibration-range and QAL3 events, newest first. They raise alerts; the alert "
        "state (acknowledged, silenced, resolved) is in the StackWatch API (GET /alerts).",
        sort_by="Time",
    )


def detection_events_table() -> Json:
    q = select(
        '"stack", "sensor", "event", "kind", "active", "message"',
        "detection_events",
        where(VARS),
        tail=f"ORDER BY time DESC LIMIT {EVENT_LIMIT}",
    )
    return table(
        "Detector events",
        [Target(q, table=True)],
        description="Sensor faults starting (active = true) and clearing, anomalies and "
        "suspected drift, newest first.",
        sort_by="Time",
    )


def event_annotations() -> list[Json]:
    """Compliance events, detector events and maintenance/calibration periods as markers."""
    return [
        annotation(
            "Compliance events",
            select('"message", "kind", "pollutant"', "compliance_events", where(VARS)),
            color=RED,
            text_column="message",
            tags_column="kind,pollutant",
        ),
        annotation(
            "Detector events",
            select('"message", "event", "sensor"', "detection_events", where(VARS)),
            color=ORANGE,
            text_column="message",
            tags_column="event,sensor",
        ),
        annotation(
            "Maintenance and calibration",
            select(
                'first("status") AS "status", count("value") AS "readings"',
                "readings",
                where("\"status\" <> 'valid'", VARS),
                every="15m",
                group_by=["sensor"],
                fill="none",
            ),
            color="blue",
            text_column="status",
            tags_column="sensor",
        ),
    ]


def availability_targets(
    facts: Iterable[StackFacts], *, per_sensor: bool, sensor_filter: str | None = None
) -> list[Target]:
    """Readings received per ``$__interval`` as a percentage of those expected from each
    sensor's ``interval_s`` (QAL3 check channels left out). Per stack, or per sensor."""
    targets = []
    for f in facts:
        if per_sensor:
            for interval_s, sensors in f.interval_groups:
                expected = f"($__interval_ms / 1000 / {interval_s:g})"
                conditions = [*only(f.plant, [f.stack]), one_of("sensor", sensors), *VARS]
                if sensor_filter:
                    conditions.append(sensor_filter)
                q = select(
                    f'count("value") * 100 / {expected} AS "availability"',
                    "readings",
                    where(conditions),
                    every="$__interval",
                    group_by=["stack", "sensor"],
                    fill="0",
                )
                targets.append(Target(q, alias="$tag_stack/$tag_sensor"))
        else:
            per_s = sum(len(sensors) / interval for interval, sensors in f.interval_groups)
            expected = f"($__interval_ms / 1000 * {per_s:.12g})"
            measuring = [s for _, group in f.interval_groups for s in group]
            q = select(
                f'count("value") * 100 / {expected} AS "availability"',
                "readings",
                where(*only(f.plant, [f.stack]), one_of("sensor", measuring), VARS),
                every="$__interval",
                group_by=["stack"],
                fill="0",
            )
            targets.append(Target(q, alias="$tag_stack"))
    return targets


def availability_interval(facts: Iterable[StackFacts]) -> str:
    """Minimum ``$__interval`` of availability panels: ten of the slowest sampling intervals
    (at least 10 minutes), so one missing reading does not read as a collapse."""
    slowest = max((i for f in facts for i, _ in f.interval_groups), default=1.0)
    return duration(max(600, round(10 * slowest)))


def duration(seconds: int) -> str:
    """Grafana duration string in the largest whole unit.

    >>> duration(600), duration(90), duration(3600), duration(86_400)
    ('10m', '90s', '1h', '1d')
    """
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
