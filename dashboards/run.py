"""Run a dashboard's panel queries against InfluxDB the way Grafana would.

A :class:`View` is what a viewer picked: variable values, the time range (its end is "now"
for panels with a relative time of their own) and the dashboard's time zone. The InfluxDB
call is injected (``QueryFn``: one InfluxQL statement → the ``/query`` JSON with ``epoch=ns``),
so the same code serves the tests (the test server) and the README example (an HTTP client).

>>> view = View({"plant": ["demo"], "stack": ["gt1"]}, 0, 86_400 * NS_PER_S, "UTC")
>>> panel = {"interval": "10m", "targets": [{"refId": "A", "query":
...     'SELECT mean("value") FROM "readings" WHERE "stack" =~ /^$stack$/ AND $timeFilter '
...     'GROUP BY time($__interval)'}]}
>>> statement(panel, panel["targets"][0], view)
'SELECT mean("value") FROM "readings" WHERE "stack" =~ /^gt1$/ AND time >= 0ms and time <= \
86400000ms GROUP BY time(10m)'
>>> display_name("$tag_stack $col", "readings", "percent", {"stack": "gt1"})
'gt1 percent'
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dashboards.grafana import Json
from dashboards.interpolate import interpolate, interval_ms, relative_start_ns
from stream.model import NS_PER_S

QueryFn = Callable[[str], Json]


class QueryError(Exception):
    """InfluxDB refused a panel query (``results[0].error`` or a top-level ``error``)."""


@dataclass(frozen=True)
class View:
    variables: Mapping[str, Sequence[str]]
    start_ns: int
    end_ns: int
    timezone: str


@dataclass(frozen=True)
class Series:
    """One InfluxDB series of a result: ``values`` rows in ``columns`` order (time in ns)."""

    measurement: str
    columns: list[str]
    tags: dict[str, str]
    values: list[list[Any]]


def panel_range(panel: Json, view: View) -> tuple[int, int]:
    """The panel's time range: the view's, or its own relative one ending at the view's end."""
    relative = panel.get("timeFrom")
    if not relative:
        return view.start_ns, view.end_ns
    start = relative
    if not start.startswith("now"):
        start = f"now-{start}"
    return relative_start_ns(start, view.end_ns, view.timezone), view.end_ns


def statement(panel: Json, target: Json, view: View) -> str:
    start, end = panel_range(panel, view)
    interval = interval_ms(start, end, min_interval=panel.get("interval"))
    return interpolate(str(target["query"]), view.variables, start, end, interval)


def run_statement(query_fn: QueryFn, query: str) -> list[Series]:
    result = query_fn(query)
    if "error" in result:
        raise QueryError(f"{result['error']}: {query}")
    first = result["results"][0]
    if "error" in first:
        raise QueryError(f"{first['error']}: {query}")
    return [
        Series(s["name"], list(s["columns"]), dict(s.get("tags") or {}), list(s["values"]))
        for s in first.get("series", [])
    ]


def run_target(query_fn: QueryFn, panel: Json, target: Json, view: View) -> list[Series]:
    return run_statement(query_fn, statement(panel, target, view))


def display_name(alias: str, measurement: str, column: str, tags: Mapping[str, str]) -> str:
    """Grafana's InfluxDB alias patterns: ``$col``, ``$m``/``$measurement``, ``$tag_<key>``."""
    if not alias:
        suffix = " {" + ", ".join(f"{k}: {v}" for k, v in tags.items()) + "}" if tags else ""
        return f"{measurement}.{column}{suffix}"

    def substitute(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name == "col":
            return column
        if name in ("m", "measurement"):
            return measurement
        if name.startswith("tag_"):
            return tags.get(name[4:], "")
        return m.group(0)

    return re.sub(r"\$\{?(\w+)\}?|\[\[(\w+)\]\]", substitute, alias)


def points(series: Series, column: str) -> tuple[list[float], list[float]]:
    """``(seconds since epoch, values)`` of one column, nulls left out."""
    i = series.columns.index(column)
    xs, ys = [], []
    for row in series.values:
        if row[i] is not None and not isinstance(row[i], str):
            xs.append(row[0] / NS_PER_S)
            ys.append(float(row[i]))
    return xs, ys
