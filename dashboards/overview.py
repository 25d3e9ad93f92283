"""Plant overview: every stack's limited pollutants against their limits, events, availability.

Limits differ per stack and pollutant, so the values are shown as a percentage of their ELV
(one colour scale for all: orange from 80 %, red from 100 %).
"""

from __future__ import annotations

from dashboards.common import (
    availability_interval,
    availability_targets,
    compliance_events_table,
    detection_events_table,
    limit_groups,
    only,
    plant_variable,
    stack_variable,
)
from dashboards.facts import LABELS, StackFacts, timezone
from dashboards.grafana import (
    Grid,
    Json,
    Target,
    bargauge,
    dashboard,
    stat,
    thresholds,
    timeseries,
)
from dashboards.influxql import VALID_STA, VARS, eq, number, select, where
from stream.plant import PlantConfig

UID = "stackwatch-overview"


def _daily_percent(facts: list[StackFacts], pollutants: list[str]) -> list[Target]:
    targets = []
    for p in pollutants:
        for (plant, elv), stacks in limit_groups(facts, p, lambda pf: pf.daily).items():
            q = select(
                f'last("validated_mean") / {number(elv)} * 100 AS "percent"',
                "compliance_daily",
                where(eq("pollutant", p), *only(plant, stacks), VARS),
                group_by=["stack"],
            )
            targets.append(Target(q, alias=f"$tag_stack {LABELS[p]}"))
    return targets


def _short_term_percent(facts: list[StackFacts], pollutants: list[str]) -> list[Target]:
    targets = []
    for p in pollutants:
        for (plant, elv), stacks in limit_groups(facts, p, lambda pf: pf.short_term).items():
            q = select(
                f'mean("validated") / {number(elv)} * 100 AS "percent"',
                "compliance_sta",
                where(eq("pollutant", p), *only(plant, stacks), VALID_STA, VARS),
                every="$__interval",
                group_by=["stack"],
                fill="none",
            )
            targets.append(Target(q, alias=f"$tag_stack {LABELS[p]}"))
    return targets


def build(config: PlantConfig, facts: list[StackFacts], pollutants: list[str]) -> Json:
    grid = Grid()
    grid.row("Emissions against limits")
    daily = _daily_percent(facts, pollutants)
    short_term = _short_term_percent(facts, pollutants)
    min_period = min((f.sta_period_s for f in facts), default=3600)
    width = 24 if not (daily and short_term) else 10
    if daily:
        grid.add(
            bargauge(
                "Today's validated daily average, % of the daily ELV",
                daily,
                description="The live engine's validated daily average of the running day "
                "(compliance_daily; the mean of the day's valid, validated short-term averages so "
                "far) as a percentage of the stack's daily ELV from the plant configuration.",
                unit="percent",
                min_=0,
                max_=150,
            ),
            width,
            9,
        )
    if short_term:
        grid.add(
            timeseries(
                "Validated short-term averages, % of the short-term ELV",
                short_term,
                description="Validated half-hourly (WI) or hourly (LCP) averages (compliance_sta) "
                "as a percentage of the short-term ELV (half-hour, else hourly, else ten-minute).",
                unit="percent",
                min_=0,
                threshold_line=100,
                interval=f"{min_period // 60}m",
            ),
            24 if not daily else 14,
            9,
        )
    grid.row("Events and data")
    grid.add(
        stat(
            "Compliance events",
            [
                Target(
                    select('count("message") AS "events"', "compliance_events", where(VARS)),
                    alias="events",
                )
            ],
            description="Compliance events in the time range (each raises an alert).",
            steps=thresholds(("green", None), ("red", 1)),
        ),
        4,
        5,
    )
    grid.add(
        stat(
            "Sensor faults started",
            [
                Target(
                    select(
                        'count("message") AS "faults"',
                        "detection_events",
                        where(eq("event", "fault"), '"active" = true', VARS),
                    ),
                    alias="faults",
                )
            ],
            description="Sensor faults (out of range, stuck, rate of change, dropout) that "
            "started in the time range.",
            steps=thresholds(("green", None), ("orange", 1)),
        ),
        4,
        5,
    )
    grid.add(
        timeseries(
            "Data availability, % of expected readings",
            availability_targets(facts, per_sensor=False),
            description="Readings stored per interval as a percentage of those expected "
            "from each sensor's configured interval_s (all statuses; QAL3 check channels left "
            "out).",
            unit="percent",
            min_=0,
            max_=110,
            interval=availability_interval(facts),
        ),
        16,
        5,
    )
    grid.add(compliance_events_table(), 12, 9)
    grid.add(detection_events_table(), 12, 9)
    return dashboard(
        uid=UID,
        title="StackWatch: plant overview",
        description="Every stack's limited pollutants against their limits, events and data "
        "availability. Generated by `stackwatch dashboards build` from the plant configuration.",
        panels=grid.panels,
        variables=[plant_variable(), stack_variable(multi=True)],
        timezone=timezone(config),
    )
