"""Stack detail: one stack's pollutants from the raw reading to the validated average.

Per limited pollutant (a row each): the measured values (at actual O2, as the analyser reports
them), the normalised and validated short-term averages against the short-term ELV with the
anomaly likelihood of the analyser on a right axis; today's running and projected daily
average against the daily ELV; the engine's stored daily average; and, where a PEMS soft
sensor predicts the pollutant, its prediction band. Compliance events, detector events and
readings with a status other than ``valid`` (maintenance, calibration, malfunction) are
annotations on every panel.

The running and projected daily averages are computed by the panel from the stored
short-term averages of the day, with the engine's formulas (``stream.compliance.forecast``):
running = mean of the valid validated averages so far; projected = (sum so far + latest ×
remaining) / expected, assuming every remaining period of a nominal day (24 hourly or 48
half-hourly averages; one more or less on DST days) is valid and equal to the latest.
"""

from __future__ import annotations

from dashboards.common import (
    duration,
    event_annotations,
    group_stacks,
    limit_groups,
    only,
    plant_variable,
    stack_variable,
)
from dashboards.facts import LABELS, StackFacts, timezone
from dashboards.grafana import (
    MG,
    ORANGE,
    PURPLE,
    Grid,
    Json,
    Target,
    dashboard,
    limit_line,
    override,
    prop,
    stat,
    table,
    timeseries,
)
from dashboards.influxql import VALID_STA, VARS, eq, number, one_of, select, where
from stream.plant import PlantConfig

UID = "stackwatch-stack"
TODAY = "now/d"


def _measured(facts: list[StackFacts], p: str) -> list[Target]:
    groups = group_stacks(
        (f.plant, f.stack, f.pollutants[p].sensors) for f in facts if p in f.pollutants
    )
    targets = []
    for (plant, sensors), stacks in groups.items():
        q = select(
            'mean("value") AS "measured"',
            "readings",
            where(*only(plant, stacks), one_of("sensor", sensors), VARS),
            every="$__interval",
            group_by=["sensor", "unit"],
            fill="none",
        )
        targets.append(Target(q, alias="$tag_sensor measured ($tag_unit)"))
    return targets


def _anomaly(facts: list[StackFacts], p: str) -> list[Target]:
    groups = group_stacks(
        (f.plant, f.stack, f.pollutants[p].sensors) for f in facts if p in f.pollutants
    )
    targets = []
    for (plant, sensors), stacks in groups.items():
        q = select(
            'max("score") AS "likelihood"',
            "anomaly_scores",
            where(*only(plant, stacks), one_of("sensor", sensors), VARS),
            every="$__interval",
            group_by=["sensor"],
            fill="none",
        )
        targets.append(Target(q, alias="$tag_sensor anomaly likelihood"))
    return targets


def _short_term(facts: list[StackFacts], p: str) -> Json:
    targets = _measured(facts, p)
    targets.append(
        Target(
            select(
                '"normalised" AS "normalised", "validated" AS "validated"',
                "compliance_sta",
                where(eq("pollutant", p), VALID_STA, VARS),
            ),
            alias="$col",
        )
    )
    for (plant, elv), stacks in limit_groups(facts, p, lambda pf: pf.short_term).items():
        name = f"short-term ELV {number(elv)}"
        q = select(
            f'"n_valid" * 0 + {number(elv)} AS "{name}"',
            "compliance_sta",
            where(eq("pollutant", p), *only(plant, stacks), VARS),
        )
        targets.append(Target(q, alias="$col"))
    targets.extend(_anomaly(facts, p))
    return timeseries(
        f"{LABELS[p]}: measured, normalised and validated",
        targets,
        description="Measured: the analyser's readings (all statuses, at the actual O2, in "
        "its unit). Normalised: the short-term average converted to mg/Nm³ dry at the "
        "reference O2. Validated: normalised minus the confidence interval, the value "
        "compared with the limits. Right axis: the detectors' anomaly likelihood.",
        unit=MG,
        overrides=[
            limit_line("ELV"),
            override(
                "^(normalised|validated)$",
                prop("custom.lineInterpolation", "stepAfter"),
                prop("custom.lineWidth", 2),
            ),
            override(
                "anomaly likelihood",
                prop("custom.axisPlacement", "right"),
                prop("unit", "percentunit"),
                prop("min", 0),
                prop("max", 1),
                prop("custom.fillOpacity", 15),
                prop("color", {"mode": "fixed", "fixedColor": PURPLE}),
            ),
        ],
    )


def _daily_today(facts: list[StackFacts], p: str) -> Json:
    items: list[tuple[str, str, tuple[float, int, int]]] = []
    for f in facts:
        daily = f.pollutants[p].daily if p in f.pollutants else None
        if daily is not None:
            items.append((f.plant, f.stack, (daily, f.sta_period_s, f.sta_per_day)))
    targets = []
    for (plant, (elv, period_s, n)), stacks in group_stacks(items).items():
        total = 'cumulative_sum(sum("validated"))'
        done = 'cumulative_sum(count("validated"))'
        fields = (
            f'{total} / {done} AS "running daily average", '
            f'({total} + last("validated") * ({n} - {done})) / {n} AS "projected daily average", '
            f'count("validated") * 0 + {number(elv)} AS "daily ELV {number(elv)}"'
        )
        q = select(
            fields,
            "compliance_sta",
            where(eq("pollutant", p), *only(plant, stacks), VALID_STA, VARS),
            every=duration(period_s),
            fill="none",
        )
        targets.append(Target(q, alias="$col"))
    return timeseries(
        f"{LABELS[p]}: today's daily average, running and projected",
        targets,
        description="From the day's validated short-term averages: running = their mean so "
        "far; projected = the daily mean if every remaining period of the day is valid and "
        "equal to the latest (the engine's pre-alarm forecast). Always today, in the plant's "
        "time zone.",
        unit=MG,
        min_=0,
        time_from=TODAY,
        overrides=[
            limit_line("ELV"),
            override("projected", prop("custom.lineStyle", {"fill": "dot", "dash": [2, 6]})),
        ],
    )


def _engine_daily(p: str) -> Json:
    q = select(
        'last("validated_mean") AS "validated daily average"',
        "compliance_daily",
        where(eq("pollutant", p), VARS),
    )
    return stat(
        f"{LABELS[p]}: validated daily average so far (engine)",
        [Target(q, alias="$col")],
        description="The live compliance engine's stored daily average of today "
        "(compliance_daily, complete = false until the day is over).",
        unit=MG,
        decimals=1,
        time_from=TODAY,
    )


def _pems(p: str) -> Json:
    band = select(
        'mean("prediction") AS "prediction", mean("lower") AS "lower", '
        'mean("upper") AS "upper", mean("measured") AS "measured"',
        "pems",
        where(eq("pollutant", p), VARS),
        every="$__interval",
        fill="none",
    )
    substitutes = select(
        'mean("prediction") AS "substitute"',
        "pems",
        where(eq("pollutant", p), '"substitute" = true', VARS),
        every="$__interval",
        fill="none",
    )
    return timeseries(
        f"{LABELS[p]}: PEMS prediction band",
        [Target(band, alias="$col"), Target(substitutes, alias="$col")],
        description="The soft sensor's prediction with its conformal interval (lower to "
        "upper) and the analyser's measured value. Substitute: predictions written while the "
        "analyser was silent or not valid (flagged; never used in compliance averages).",
        unit=MG,
        overrides=[
            override(
                "^upper$",
                prop("custom.fillBelowTo", "lower"),
                prop("custom.fillOpacity", 20),
                prop("custom.lineWidth", 0),
            ),
            override("^lower$", prop("custom.lineWidth", 0)),
            override(
                "^substitute$",
                prop("custom.drawStyle", "points"),
                prop("color", {"mode": "fixed", "fixedColor": ORANGE}),
            ),
        ],
    )


def _process() -> Json:
    q = select(
        'mean("value") AS "value"',
        "readings",
        where(one_of("quantity", ["o2", "h2o"]), VARS),
        every="$__interval",
        group_by=["sensor"],
        fill="none",
    )
    return timeseries(
        "O2 and H2O",
        [Target(q, alias="$tag_sensor")],
        description="Oxygen (normalisation to the reference O2) and water vapour (wet → dry).",
        unit="percent",
    )


def build(config: PlantConfig, facts: list[StackFacts], pollutants: list[str]) -> Json:
    grid = Grid()
    for p in pollutants:
        grid.row(LABELS[p])
        limited = [f.pollutants[p] for f in facts if p in f.pollutants]
        if any(pf.daily is not None for pf in limited):
            grid.add(_short_term(facts, p), 16, 9)
            grid.add(_daily_today(facts, p), 8, 9)
        else:
            grid.add(_short_term(facts, p), 24, 9)
        grid.add(_engine_daily(p), 8, 6)
        if any(pf.pems for pf in limited):
            grid.add(_pems(p), 16, 6)
    grid.row("Process and events")
    grid.add(_process(), 12, 8)
    events = select(
        '"sensor", "event", "kind", "active", "message"',
        "detection_events",
        where(VARS),
        tail="ORDER BY time DESC LIMIT 100",
    )
    grid.add(
        table(
            "Detector events of the stack",
            [Target(events, table=True)],
            description="Sensor faults, anomalies and suspected drift, newest first.",
            sort_by="Time",
        ),
        12,
        8,
    )
    return dashboard(
        uid=UID,
        title="StackWatch: stack detail",
        description="One stack's pollutants from raw readings to validated averages, with "
        "limits, anomaly scores, events and PEMS predictions. Generated by `stackwatch "
        "dashboards build` from the plant configuration.",
        panels=grid.panels,
        variables=[plant_variable(), stack_variable(multi=False)],
        timezone=timezone(config),
        annotations=event_annotations(),
    )
