"""Compliance: validated daily and monthly averages against limits, invalid days, availability.

Default range: this month so far (the monthly average is stored at the local start of the
month). The invalid-day counter always covers the calendar year, the period of the IED rule
(more than 10 invalid days in a year).
"""

from __future__ import annotations

from dashboards.common import (
    compliance_events_table,
    limit_groups,
    only,
    plant_variable,
    stack_variable,
)
from dashboards.facts import LABELS, PollutantFacts, StackFacts, timezone
from dashboards.grafana import (
    GREEN,
    ORANGE,
    RED,
    Grid,
    Json,
    Target,
    bargauge,
    dashboard,
    limit_line,
    override,
    prop,
    stat,
    thresholds,
    timeseries,
)
from dashboards.influxql import VARS, eq, number, select, where
from stream.plant import PlantConfig

UID = "stackwatch-compliance"


def _criterion(pf: PollutantFacts) -> float | None:
    """The LCP daily criterion (110 % of the daily ELV) where it differs from the ELV."""
    return pf.daily_criterion if pf.daily_criterion != pf.daily else None


def _monthly_reference(pf: PollutantFacts) -> float | None:
    return pf.monthly if pf.monthly is not None else pf.daily


def _daily(facts: list[StackFacts], p: str) -> Json:
    targets = [
        Target(
            select(
                '"validated_mean" AS "validated daily average"',
                "compliance_daily",
                where(eq("pollutant", p), '"complete" = true', VARS),
                group_by=["stack"],
            ),
            alias="$tag_stack",
        ),
        Target(
            select(
                '"validated_mean" AS "running daily average"',
                "compliance_daily",
                where(eq("pollutant", p), '"complete" = false', VARS),
                group_by=["stack"],
            ),
            alias="$tag_stack today (running)",
        ),
    ]
    for label, pick in (("daily ELV", lambda pf: pf.daily), ("daily criterion", _criterion)):
        for (plant, value), stacks in limit_groups(facts, p, pick).items():
            name = f"{label} {number(value)}"
            q = select(
                f'"valid_sta" * 0 + {number(value)} AS "{name}"',
                "compliance_daily",
                where(eq("pollutant", p), *only(plant, stacks), VARS),
            )
            targets.append(Target(q, alias="$col"))
    return timeseries(
        f"{LABELS[p]}: validated daily averages",
        targets,
        description="Validated daily averages of finished days and the running average of "
        "today, against the daily ELV and, for large combustion plants, the daily criterion "
        "(110 % of the ELV, IED Annex V Part 4). A day is reportable with at least 6 h of "
        "valid short-term averages.",
        unit="suffix: mg/Nm³",
        min_=0,
        bars=True,
        overrides=[
            override("ELV|criterion", prop("custom.drawStyle", "line")),
            limit_line("ELV|criterion"),
            override("today", prop("color", {"mode": "fixed", "fixedColor": "blue"})),
        ],
    )


def _monthly(facts: list[StackFacts], p: str) -> Json:
    if not limit_groups(facts, p, _monthly_reference):
        q = select(
            'last("validated_mean") AS "monthly validated average"',
            "compliance_period",
            where(eq("period", "month"), eq("pollutant", p), VARS),
            group_by=["stack"],
        )
        return stat(
            f"{LABELS[p]}: monthly validated average so far",
            [Target(q, alias="$tag_stack")],
            description="The month's validated average so far (compliance_period, updated at "
            "the end of each day, invalid days left out); no daily or monthly ELV is "
            "configured to compare it with.",
            unit="suffix: mg/Nm³",
            decimals=1,
        )
    targets = []
    for (plant, elv), stacks in limit_groups(facts, p, _monthly_reference).items():
        q = select(
            f'last("validated_mean") / {number(elv)} * 100 AS "percent"',
            "compliance_period",
            where(eq("period", "month"), eq("pollutant", p), *only(plant, stacks), VARS),
            group_by=["stack"],
        )
        targets.append(Target(q, alias="$tag_stack"))
    return bargauge(
        f"{LABELS[p]}: monthly validated average so far, % of the ELV",
        targets,
        description="The month's validated average so far (compliance_period, updated at the "
        "end of each day, invalid days left out) as a percentage of the monthly ELV, or of the "
        "daily ELV where no monthly one is configured.",
        unit="percent",
        min_=0,
        max_=150,
    )


def build(config: PlantConfig, facts: list[StackFacts], pollutants: list[str]) -> Json:
    grid = Grid()
    grid.row("Summary")
    invalid = select(
        'sum("invalid_day_count") AS "invalid days"',
        "compliance_daily",
        where('"complete" = true', VARS),
        group_by=["stack", "pollutant"],
    )
    grid.add(
        stat(
            "Invalid days this year",
            [Target(invalid, alias="$tag_stack $tag_pollutant")],
            description="Finished days with too many invalid short-term averages, this "
            "calendar year. More than 10 in a year breaches the IED (Annex V Part 3 pt 10, "
            "Annex VI Part 8).",
            steps=thresholds((GREEN, None), (ORANGE, 1), (RED, 11)),
            decimals=0,
            time_from="now/y",
        ),
        8,
        7,
    )
    availability = select(
        'sum("valid_sta") * 100 / (sum("valid_sta") + sum("invalid_sta")) AS "availability"',
        "compliance_daily",
        where(VARS),
        group_by=["stack", "pollutant"],
    )
    grid.add(
        bargauge(
            "Valid short-term averages, % of those not excluded",
            [Target(availability, alias="$tag_stack $tag_pollutant")],
            description="Availability of the measuring system: valid / (valid + invalid) "
            "short-term averages in the time range; periods out of normal operation "
            "(excluded) do not count. Red below 90 %, orange below 95 %.",
            unit="percent",
            min_=0,
            max_=100,
            steps=thresholds((RED, None), (ORANGE, 90), (GREEN, 95)),
        ),
        8,
        7,
    )
    coverage = select(
        'last("coverage") * 100 AS "coverage"',
        "compliance_period",
        where(eq("period", "month"), VARS),
        group_by=["stack", "pollutant"],
    )
    grid.add(
        bargauge(
            "Monthly average coverage",
            [Target(coverage, alias="$tag_stack $tag_pollutant")],
            description="Share of the month covered by valid short-term averages outside "
            "invalid days. The monthly average is valid from 10 % (EN 17255-1; the plant's "
            "lta_min_coverage).",
            unit="percent",
            min_=0,
            max_=100,
            steps=thresholds((RED, None), (GREEN, 10)),
        ),
        8,
        7,
    )
    for p in pollutants:
        grid.row(LABELS[p])
        grid.add(_daily(facts, p), 16, 8)
        grid.add(_monthly(facts, p), 8, 8)
    grid.row("Events")
    grid.add(compliance_events_table(), 24, 8)
    return dashboard(
        uid=UID,
        title="StackWatch: compliance",
        description="Validated daily and monthly averages against the limits, invalid days and "
        "availability. Generated by `stackwatch dashboards build` from the plant "
        "configuration.",
        panels=grid.panels,
        variables=[plant_variable(), stack_variable(multi=True)],
        timezone=timezone(config),
        time_from="now/M",
        time_to="now",
        refresh="5m",
    )
