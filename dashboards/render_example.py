"""Render panels of a generated dashboard with matplotlib, from the data their queries return.

Grafana cannot run on the development machines, so the README shows what the stack detail
dashboard displays with this stand-in: the same panel queries (:mod:`dashboards.run`), laid out
on the dashboard's grid, with the panels' field overrides (right axis, fixed colours, dashed
ELV lines, the PEMS band) and the dashboard's annotations. It is a picture of the data, not of
Grafana's styling.

``tests/dashboards/test_queries.py`` renders it from the pipeline-populated test InfluxDB (set
``STACKWATCH_DASHBOARD_PNG=docs/dashboard-stack-detail.png`` to refresh the committed image:
``make dashboard-example``). Against any InfluxDB::

    python -m dashboards.render_example --influx-url http://127.0.0.1:8086 --database emissions \\
        --plant demo --stack gt1 --row NOx --start 2026-03-01T23:00:00Z \\
        --end 2026-03-02T13:00:00Z --out docs/dashboard-stack-detail.png
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from dashboards.build import GENERATED_DIR
from dashboards.grafana import Json
from dashboards.interpolate import interpolate
from dashboards.run import (
    QueryFn,
    Series,
    View,
    display_name,
    panel_range,
    points,
    run_statement,
    run_target,
)
from stream.model import NS_PER_S

ROW_HEIGHT_IN = 0.42
TITLE_IN = 0.7
WIDTH_IN = 16.0
COLORS = {"red": "#d62728", "orange": "#ff7f0e", "purple": "#9467bd", "blue": "#1f77b4"}


def row_panels(dashboard: Json, row_title: str) -> list[Json]:
    """The panels under the row titled ``row_title`` (up to the next row)."""
    out: list[Json] = []
    inside = False
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            inside = panel.get("title") == row_title
            continue
        if inside:
            out.append(panel)
    if not out:
        raise ValueError(f"no row {row_title!r} in dashboard {dashboard.get('uid')}")
    return out


def _props(panel: Json, name: str) -> dict[str, Any]:
    """Field config of the series ``name``: defaults, then matching overrides in order."""
    defaults = panel.get("fieldConfig", {}).get("defaults", {})
    props: dict[str, Any] = {"unit": defaults.get("unit"), **defaults.get("custom", {})}
    for ov in panel.get("fieldConfig", {}).get("overrides", []):
        if re.search(ov["matcher"]["options"], name):
            for p in ov["properties"]:
                props[p["id"].removeprefix("custom.")] = p["value"]
    return props


def _lines(
    query_fn: QueryFn, panel: Json, view: View
) -> Iterator[tuple[str, list[float], list[float]]]:
    for target in panel.get("targets", []):
        for series in run_target(query_fn, panel, target, view):
            for column in series.columns[1:]:
                name = display_name(
                    target.get("alias", ""), series.measurement, column, series.tags
                )
                xs, ys = points(series, column)
                if xs:
                    yield name, xs, ys


def _dates(seconds: Sequence[float]) -> list[float]:
    """Matplotlib date numbers (days since its default epoch, 1970-01-01 UTC) of epoch
    seconds."""
    return [x / 86_400 for x in seconds]


def _hour_ticks(start_s: float, end_s: float, zone: ZoneInfo) -> tuple[list[float], list[str]]:
    """Ticks on whole local hours, at most about eight, labelled ``HH:MM``."""
    span_h = (end_s - start_s) / 3600
    step = next(s for s in (1, 2, 3, 4, 6, 12, 24, 48, 168) if span_h / s <= 8)
    first = datetime.fromtimestamp(start_s, zone).replace(minute=0, second=0, microsecond=0)
    ticks, labels = [], []
    t = first.timestamp()
    while t <= end_s:
        local = datetime.fromtimestamp(t, zone)
        if t >= start_s and local.hour % step == 0:
            ticks.append(t / 86_400)
            labels.append(local.strftime("%H:%M" if step < 24 else "%d %b"))
        t += 3600
    return ticks, labels


def _unit_label(unit: str | None) -> str:
    if not unit:
        return ""
    return unit.removeprefix("suffix:").strip() if unit.startswith("suffix:") else unit


def _draw_timeseries(ax: Axes, query_fn: QueryFn, panel: Json, view: View) -> None:
    drawn = list(_lines(query_fn, panel, view))
    by_name = {name: (xs, ys) for name, xs, ys in drawn}
    right: Axes | None = None
    for name, xs, ys in drawn:
        props = _props(panel, name)
        target_ax = ax
        alpha = 1.0
        if props.get("axisPlacement") == "right":
            alpha = 0.45
            if right is None:
                right = ax.twinx()
                right.set_ylim(props.get("min", 0), props.get("max", 1))
                right.set_ylabel("anomaly likelihood")
            target_ax = right
        color_prop = props.get("color")
        color = COLORS.get(color_prop["fixedColor"]) if isinstance(color_prop, dict) else None
        dates = _dates(xs)
        style = "--" if isinstance(props.get("lineStyle"), dict) else "-"
        width = float(props.get("lineWidth", 1) or 0)
        below = props.get("fillBelowTo")
        if below and below in by_name:
            lo_x, lo_y = by_name[below]
            if len(lo_x) == len(xs):
                label = f"interval ({below} to {name})"
                target_ax.fill_between(dates, lo_y, ys, alpha=0.25, color=color, label=label)
                continue
        if props.get("drawStyle") == "points":
            target_ax.plot(dates, ys, "o", markersize=3, color=color, label=name)
        elif props.get("drawStyle") == "bars":
            target_ax.bar(dates, ys, width=0.6, color=color, label=name)
        elif width > 0:
            drawstyle = "steps-post" if props.get("lineInterpolation") == "stepAfter" else "default"
            target_ax.plot(
                dates,
                ys,
                style,
                lw=width,
                color=color,
                label=name,
                drawstyle=drawstyle,
                alpha=alpha,
            )
    ax.set_ylabel(_unit_label(panel.get("fieldConfig", {}).get("defaults", {}).get("unit")))
    handles, labels = ax.get_legend_handles_labels()
    if right is not None:
        h2, l2 = right.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    if handles:
        ax.legend(handles, labels, fontsize=7, loc="upper left", ncol=2)


def _draw_stat(ax: Axes, query_fn: QueryFn, panel: Json, view: View) -> None:
    ax.axis("off")
    texts = []
    unit = _unit_label(panel["fieldConfig"]["defaults"].get("unit"))
    for _name, _, ys in _lines(query_fn, panel, view):
        texts.append(f"{ys[-1]:.1f} {unit}")
    ax.text(0.5, 0.45, "\n".join(texts) or "No data", ha="center", va="center", fontsize=22)


def _annotations(query_fn: QueryFn, dashboard: Json, view: View) -> list[tuple[str, str, float]]:
    """``(name, colour, seconds)`` of every annotation event in the view."""
    out = []
    for ann in dashboard.get("annotations", {}).get("list", []):
        target = ann.get("target") or {}
        if ann.get("builtIn") or "query" not in target:
            continue
        query = interpolate(target["query"], view.variables, view.start_ns, view.end_ns, 60_000)
        series: Sequence[Series] = run_statement(query_fn, query)
        for s in series:
            for row in s.values:
                out.append((str(ann["name"]), str(ann["iconColor"]), row[0] / NS_PER_S))
    return out


def _legend_of_annotations(dashboard: Json) -> str:
    names = [
        f"{ann['iconColor']}: {ann['name'].lower()}"
        for ann in dashboard.get("annotations", {}).get("list", [])
        if not ann.get("builtIn")
    ]
    return "Annotations (vertical lines) - " + "; ".join(names)


def _rect(
    pos: Json, top: int, height: int, fig_h_in: float, right_axis: bool
) -> tuple[float, float, float, float]:
    """Figure coordinates of a panel at grid position ``pos``, leaving room for its title,
    tick labels and axis labels inside its grid cell."""
    unit_w, unit_h = 1 / 24, ROW_HEIGHT_IN / fig_h_in
    pad_l, pad_r = 0.75 / WIDTH_IN, (0.75 if right_axis else 0.2) / WIDTH_IN
    pad_t, pad_b = 0.4 / fig_h_in, 0.45 / fig_h_in
    bottom_of_grid = 1 - (TITLE_IN + height * ROW_HEIGHT_IN) / fig_h_in
    left = pos["x"] * unit_w + pad_l
    bottom = bottom_of_grid + (height - (pos["y"] - top) - pos["h"]) * unit_h + pad_b
    return (left, bottom, pos["w"] * unit_w - pad_l - pad_r, pos["h"] * unit_h - pad_t - pad_b)


def _has_right_axis(panel: Json) -> bool:
    return any(
        p["id"] == "custom.axisPlacement" and p["value"] == "right"
        for ov in panel.get("fieldConfig", {}).get("overrides", [])
        for p in ov["properties"]
    )


def render(
    query_fn: QueryFn,
    dashboard: Json,
    view: View,
    row_title: str,
    out: Path,
    *,
    title: str,
) -> Path:
    """Draw the panels of one row of ``dashboard`` for ``view`` into the PNG ``out``."""
    panels = row_panels(dashboard, row_title)
    top = min(p["gridPos"]["y"] for p in panels)
    height = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels) - top
    zone = ZoneInfo(view.timezone if view.timezone not in ("browser", "utc") else "UTC")
    events = _annotations(query_fn, dashboard, view)
    fig_h = height * ROW_HEIGHT_IN + TITLE_IN
    fig = Figure(figsize=(WIDTH_IN, fig_h))  # no pyplot: no global state, no display
    for panel in panels:
        ax = fig.add_axes(_rect(panel["gridPos"], top, height, fig_h, _has_right_axis(panel)))
        ax.set_title(panel["title"], fontsize=10, loc="left")
        if panel["type"] == "stat":
            _draw_stat(ax, query_fn, panel, view)
            continue
        _draw_timeseries(ax, query_fn, panel, view)
        start, end = panel_range(panel, view)
        lo, hi = _dates([start / NS_PER_S, end / NS_PER_S])
        ax.set_xlim(lo, hi)
        ax.set_xticks(*_hour_ticks(start / NS_PER_S, end / NS_PER_S, zone))
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        for _name, colour, seconds in events:
            if start / NS_PER_S <= seconds <= end / NS_PER_S:
                [when] = _dates([seconds])
                ax.axvline(when, color=COLORS.get(colour, colour), alpha=0.3, lw=0.8)
    fig.text(0.01, 1 - 0.15 / fig_h, title, fontsize=12, va="top")
    fig.text(0.01, 1 - 0.4 / fig_h, _legend_of_annotations(dashboard), fontsize=8, va="top")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    return out


def _http_query(url: str, database: str, token: str | None) -> QueryFn:
    headers = {"Authorization": f"Token {token}"} if token else {}
    client = httpx.Client(base_url=url, headers=headers, timeout=30)

    def query(q: str) -> Json:
        resp = client.post("/query", data={"db": database, "q": q, "epoch": "ns"})
        resp.raise_for_status()
        result: Json = resp.json()
        return result

    return query


def _ns(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp()) * NS_PER_S


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--influx-url", required=True)
    parser.add_argument("--database", default="emissions")
    parser.add_argument("--token", default=None, help="InfluxDB token (2.x/3.x).")
    parser.add_argument("--plant", required=True)
    parser.add_argument("--stack", required=True)
    parser.add_argument("--row", default="NOx", help="Row (pollutant) of the dashboard.")
    parser.add_argument("--start", required=True, help="ISO time with offset.")
    parser.add_argument("--end", required=True, help="ISO time with offset.")
    parser.add_argument("--out", type=Path, default=Path("docs/dashboard-stack-detail.png"))
    args = parser.parse_args(argv)
    dashboard = json.loads((GENERATED_DIR / "stackwatch-stack.json").read_text(encoding="utf-8"))
    view = View(
        {"plant": [args.plant], "stack": [args.stack]},
        _ns(args.start),
        _ns(args.end),
        dashboard["timezone"],
    )
    render(
        _http_query(args.influx_url, args.database, args.token),
        dashboard,
        view,
        args.row,
        args.out,
        title=f"{dashboard['title']}: {args.plant}/{args.stack}",
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
