"""Builders for Grafana dashboard JSON (schemaVersion 42, the last of the v1 dashboard API).

Plain dicts in the shape of ``@grafana/schema``'s ``Dashboard`` type; every panel queries the
provisioned InfluxDB datasource (uid ``stackwatch-influxdb``) with raw InfluxQL. A
:class:`Grid` places panels left to right in Grafana's 24-column grid and numbers them.

>>> grid = Grid()
>>> grid.row("Emissions")
>>> grid.add(stat("Events", [Target("SELECT count(x) AS n FROM m WHERE $timeFilter")]), 6, 4)
>>> [(p["type"], p["id"], p["gridPos"]) for p in grid.panels]
[('row', 1, {'h': 1, 'w': 24, 'x': 0, 'y': 0}), ('stat', 2, {'h': 4, 'w': 6, 'x': 0, 'y': 1})]
>>> grid.panels[1]["targets"][0]["refId"]
'A'
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

Json = dict[str, Any]

SCHEMA_VERSION = 42
DATASOURCE_UID = "stackwatch-influxdb"
DATASOURCE: Json = {"type": "influxdb", "uid": DATASOURCE_UID}
TAG = "stackwatch"
GRID_COLUMNS = 24

RED, ORANGE, GREEN, BLUE, PURPLE = "red", "orange", "green", "blue", "purple"
MG = "suffix: mg/Nm³"


@dataclass(frozen=True)
class Target:
    """One raw InfluxQL query of a panel. ``alias`` names the series in the legend (Grafana
    substitutes ``$col`` and ``$tag_<key>``); ``table`` asks for table-shaped results."""

    query: str
    alias: str = ""
    table: bool = False

    def to_json(self, ref_id: str) -> Json:
        out: Json = {
            "refId": ref_id,
            "datasource": DATASOURCE,
            "query": self.query,
            "rawQuery": True,
            "resultFormat": "table" if self.table else "time_series",
        }
        if self.alias:
            out["alias"] = self.alias
        return out


def ref_id(i: int) -> str:
    """A, B, ..., Z, AA, AB, ...

    >>> [ref_id(i) for i in (0, 25, 26, 27)]
    ['A', 'Z', 'AA', 'AB']
    """
    letters = string.ascii_uppercase
    out = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        out = letters[r] + out
    return out


def thresholds(*steps: tuple[str, float | None]) -> Json:
    """Absolute thresholds; the first step's value is ``None`` (minus infinity)."""
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for c, v in steps]}


PERCENT_OF_LIMIT = thresholds((GREEN, None), (ORANGE, 80), (RED, 100))


def prop(id_: str, value: Any) -> Json:
    return {"id": id_, "value": value}


def override(pattern: str, *properties: Json) -> Json:
    """Field overrides for the series whose display name matches the regex ``pattern``."""
    return {"matcher": {"id": "byRegexp", "options": pattern}, "properties": list(properties)}


def limit_line(pattern: str) -> Json:
    """Style of ELV series: red, dashed, no fill."""
    return override(
        pattern,
        prop("color", {"mode": "fixed", "fixedColor": RED}),
        prop("custom.lineStyle", {"fill": "dash", "dash": [10, 10]}),
        prop("custom.lineWidth", 2),
        prop("custom.fillOpacity", 0),
    )


def field_config(
    *,
    unit: str | None = None,
    min_: float | None = None,
    max_: float | None = None,
    steps: Json | None = None,
    custom: Json | None = None,
    overrides: Sequence[Json] = (),
    decimals: int | None = None,
) -> Json:
    defaults: Json = {"color": {"mode": "palette-classic" if steps is None else "thresholds"}}
    if unit is not None:
        defaults["unit"] = unit
    if min_ is not None:
        defaults["min"] = min_
    if max_ is not None:
        defaults["max"] = max_
    if decimals is not None:
        defaults["decimals"] = decimals
    defaults["thresholds"] = steps or thresholds((GREEN, None))
    if custom is not None:
        defaults["custom"] = custom
    return {"defaults": defaults, "overrides": list(overrides)}


def _panel(
    kind: str,
    title: str,
    *,
    targets: Sequence[Target],
    description: str,
    fields: Json,
    options: Json,
    **extra: Any,
) -> Json:
    panel: Json = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": [t.to_json(ref_id(i)) for i, t in enumerate(targets)],
        "fieldConfig": fields,
        "options": options,
    }
    panel.update({k: v for k, v in extra.items() if v is not None})
    return panel


def timeseries(
    title: str,
    targets: Sequence[Target],
    *,
    description: str = "",
    unit: str | None = None,
    min_: float | None = None,
    max_: float | None = None,
    overrides: Sequence[Json] = (),
    bars: bool = False,
    threshold_line: float | None = None,
    interval: str | None = None,
    time_from: str | None = None,
) -> Json:
    """A time series panel; ``threshold_line`` draws a red dashed line at that value."""
    custom: Json = {
        "drawStyle": "bars" if bars else "line",
        "lineWidth": 1,
        "fillOpacity": 60 if bars else 0,
        "showPoints": "auto",
        "pointSize": 4,
        "spanNulls": True,
        "axisPlacement": "auto",
        "thresholdsStyle": {"mode": "off" if threshold_line is None else "dashed"},
    }
    steps = None if threshold_line is None else thresholds((GREEN, None), (RED, threshold_line))
    fields = field_config(unit=unit, min_=min_, max_=max_, custom=custom, overrides=overrides)
    if steps is not None:
        fields["defaults"]["thresholds"] = steps
    options: Json = {
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True, "calcs": []},
        "tooltip": {"mode": "multi", "sort": "none"},
    }
    return _panel(
        "timeseries",
        title,
        targets=targets,
        description=description,
        fields=fields,
        options=options,
        interval=interval,
        timeFrom=time_from,
    )


def _reduce() -> Json:
    return {"calcs": ["lastNotNull"], "fields": "", "values": False}


def stat(
    title: str,
    targets: Sequence[Target],
    *,
    description: str = "",
    unit: str | None = None,
    steps: Json | None = None,
    decimals: int | None = None,
    time_from: str | None = None,
) -> Json:
    options: Json = {
        "reduceOptions": _reduce(),
        "colorMode": "value",
        "graphMode": "none",
        "justifyMode": "auto",
        "orientation": "auto",
        "textMode": "auto",
        "wideLayout": True,
        "showPercentChange": False,
    }
    fields = field_config(unit=unit, steps=steps or thresholds((BLUE, None)), decimals=decimals)
    return _panel(
        "stat",
        title,
        targets=targets,
        description=description,
        fields=fields,
        options=options,
        timeFrom=time_from,
    )


def bargauge(
    title: str,
    targets: Sequence[Target],
    *,
    description: str = "",
    unit: str | None = None,
    min_: float | None = None,
    max_: float | None = None,
    steps: Json | None = None,
) -> Json:
    options: Json = {
        "reduceOptions": _reduce(),
        "orientation": "horizontal",
        "displayMode": "gradient",
        "valueMode": "color",
        "namePlacement": "auto",
        "showUnfilled": True,
        "sizing": "auto",
        "minVizHeight": 16,
        "minVizWidth": 8,
        "maxVizHeight": 300,
    }
    fields = field_config(unit=unit, min_=min_, max_=max_, steps=steps or PERCENT_OF_LIMIT)
    return _panel(
        "bargauge",
        title,
        targets=targets,
        description=description,
        fields=fields,
        options=options,
    )


def table(
    title: str,
    targets: Sequence[Target],
    *,
    description: str = "",
    overrides: Sequence[Json] = (),
    merge: bool = False,
    sort_by: str | None = None,
) -> Json:
    """A table; ``merge`` joins the per-series frames of a ``GROUP BY tag`` into one table."""
    options: Json = {
        "showHeader": True,
        "cellHeight": "sm",
        "footer": {"show": False, "reducer": ["sum"], "countRows": False, "fields": ""},
    }
    if sort_by:
        options["sortBy"] = [{"displayName": sort_by, "desc": True}]
    fields = field_config(
        custom={"align": "auto", "cellOptions": {"type": "auto"}, "inspect": False},
        overrides=overrides,
    )
    transformations = [{"id": "merge", "options": {}}] if merge else None
    return _panel(
        "table",
        title,
        targets=targets,
        description=description,
        fields=fields,
        options=options,
        transformations=transformations,
    )


def text(title: str, content: str) -> Json:
    """A Markdown text panel (no query)."""
    return {
        "type": "text",
        "title": title,
        "options": {"mode": "markdown", "content": content},
    }


class Grid:
    """Places panels in rows of 24 columns, in the order they are added, and numbers them."""

    def __init__(self) -> None:
        self.panels: list[Json] = []
        self._x = 0
        self._y = 0
        self._line_h = 0

    def _newline(self) -> None:
        self._y += self._line_h
        self._x = 0
        self._line_h = 0

    def row(self, title: str) -> None:
        """A (non-collapsed) row header across the grid."""
        if self._x:
            self._newline()
        pos = {"h": 1, "w": GRID_COLUMNS, "x": 0, "y": self._y}
        self.panels.append(
            {
                "type": "row",
                "title": title,
                "collapsed": False,
                "panels": [],
                "gridPos": pos,
                "id": len(self.panels) + 1,
            }
        )
        self._y += 1

    def add(self, panel: Json, w: int, h: int) -> None:
        if not 0 < w <= GRID_COLUMNS:
            raise ValueError(f"panel width {w} outside 1..{GRID_COLUMNS}")
        if self._x + w > GRID_COLUMNS:
            self._newline()
        panel["gridPos"] = {"h": h, "w": w, "x": self._x, "y": self._y}
        panel["id"] = len(self.panels) + 1
        self.panels.append(panel)
        self._x += w
        self._line_h = max(self._line_h, h)


def query_variable(
    name: str, label: str, query: str, *, multi: bool = False, description: str = ""
) -> Json:
    """A query variable refreshed with the time range; ``multi`` adds multi-select and "All"."""
    variable: Json = {
        "type": "query",
        "name": name,
        "label": label,
        "description": description,
        "datasource": DATASOURCE,
        "query": query,
        "refresh": 2,
        "sort": 1,
        "multi": multi,
        "includeAll": multi,
        "options": [],
        "hide": 0,
        "skipUrlSync": False,
    }
    if multi:
        variable["current"] = {"selected": True, "text": ["All"], "value": ["$__all"]}
    return variable


def annotation(name: str, query: str, *, color: str, text_column: str, tags_column: str) -> Json:
    """An InfluxQL annotation query (Grafana's InfluxDB annotation target)."""
    return {
        "name": name,
        "datasource": DATASOURCE,
        "enable": True,
        "hide": False,
        "iconColor": color,
        "target": {
            "refId": "Anno",
            "query": query,
            "rawQuery": True,
            "fromAnnotations": True,
            "textColumn": text_column,
            "tagsColumn": tags_column,
            "titleColumn": "",
            "timeEndColumn": "",
        },
    }


BUILTIN_ANNOTATION: Json = {
    "builtIn": 1,
    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
    "enable": True,
    "hide": True,
    "iconColor": "rgba(0, 211, 255, 1)",
    "name": "Annotations & Alerts",
    "type": "dashboard",
}


def links() -> list[Json]:
    """Links to the other StackWatch dashboards, keeping time range and variables."""
    return [
        {
            "title": "StackWatch",
            "type": "dashboards",
            "tags": [TAG],
            "asDropdown": True,
            "includeVars": True,
            "keepTime": True,
            "targetBlank": False,
            "icon": "external link",
            "tooltip": "",
        }
    ]


def dashboard(
    *,
    uid: str,
    title: str,
    description: str,
    panels: list[Json],
    variables: list[Json],
    timezone: str,
    time_from: str = "now-24h",
    time_to: str = "now",
    annotations: Sequence[Json] = (),
    refresh: str = "1m",
) -> Json:
    return {
        "id": None,
        "uid": uid,
        "title": title,
        "description": description,
        "tags": [TAG],
        "editable": False,
        "graphTooltip": 1,
        "timezone": timezone,
        "weekStart": "monday",
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "refresh": refresh,
        "schemaVersion": SCHEMA_VERSION,
        "time": {"from": time_from, "to": time_to},
        "timepicker": {"refresh_intervals": ["30s", "1m", "5m", "15m", "1h"]},
        "templating": {"list": variables},
        "annotations": {"list": [BUILTIN_ANNOTATION, *annotations]},
        "links": links(),
        "panels": panels,
    }
