"""A compliance report as PDF (A4 portrait), drawn with matplotlib only.

Layout: a title page (plant, period, generation time, software version, regime of each stack,
an overview table with one row per stack and pollutant, the legend of day statuses), then per
stack and pollutant a page with the plot of the averages against the limits and the compliance
table with its totals, then the compliance events of the period (only if there are any). A
table too long for its page continues on the next one with its header repeated; with at most
31 days (monthly) or 25 hourly STA (daily, LCP), a section fits on one page.

* Monthly plot: validated daily means as bars (coloured by day status) with the measured means
  as ticks, against the daily ELV, the limit applied to it (LCP: 110 %), the monthly ELV if the
  permit has one and the validated monthly mean so far.
* Daily plot: validated short-term averages as bars (measured values as ticks), invalid and
  excluded periods marked on the time axis, against the configured short-term ELVs, the
  regime's short-term limit, the daily ELV and the validated daily mean.

Plots are vector graphics; text uses embedded TrueType fonts (``pdf.fonttype`` 42), so the PDF
is searchable and its text extractable. Figures are built without pyplot (no display, no global
figure registry), and rendering holds a lock because matplotlib's rc parameters are global.
"""

from __future__ import annotations

import io
import math
import textwrap
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.collections import LineCollection, PatchCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from api.reports.data import (
    DAY_STATUS_TEXT,
    ComplianceReportData,
    DayRow,
    EventRow,
    PollutantSection,
    StaRow,
)
from stream.compliance.types import Regime
from stream.model import NS_PER_S, datetime_from_ns
from stream.plant import POLLUTANT_LABELS

PAGE_W, PAGE_H = 8.27, 11.69  # A4 portrait, inches
MARGIN_X, MARGIN_TOP, MARGIN_BOTTOM = 0.6, 0.5, 0.6
ROW_H = 0.15  # table row height, inches
TABLE_FONT = 6.5
PLOT_H = 3.2

POLLUTANT_NAMES = POLLUTANT_LABELS
REGIME_TEXT = {
    Regime.LCP: "LCP, IED 2010/75/EU Annex V",
    Regime.WI: "waste incineration, IED 2010/75/EU Annex VI",
}
STATUS_LABEL = {
    "ok": "ok",
    "exceeded": "EXCEEDED",
    "invalid_day": "invalid day",
    "not_reportable": "not reportable",
    "incomplete": "incomplete",
    "no_data": "no data",
}
_COLOURS = {
    "ok": "#4c72b0",
    "exceeded": "#c44e52",
    "invalid_day": "#bbbbbb",
    "not_reportable": "#bbbbbb",
    "incomplete": "#a6c3e6",
    "no_data": "#ffffff",
}
_ROW_FILL = {
    "exceeded": "#f6d3d4",
    "invalid_day": "#fbe3c4",
    "not_reportable": "#fbe3c4",
    "incomplete": "#eeeeee",
    "no_data": "#eeeeee",
}
_UNIT = "mg/Nm³"
Align = Literal["left", "center", "right"]
_RENDER_LOCK = threading.Lock()


def pollutant_name(pollutant: str) -> str:
    """Display name: ``NOx``, ``SO2``, ``Dust``, ...

    >>> pollutant_name("nox"), pollutant_name("hcl"), pollutant_name("xyz")
    ('NOx', 'HCl', 'XYZ')
    """
    return POLLUTANT_NAMES.get(pollutant, pollutant.upper())


def to_pdf(data: ComplianceReportData) -> bytes:
    """The report as a PDF document (CPU-bound: about 0.1 s a page; call it off the event
    loop). Deterministic for the same data: the creation date is the generation time."""
    buffer = io.BytesIO()
    metadata = {
        "Title": f"{_title(data)}: {data.plant_name}, {data.label}",
        "Author": "StackWatch",
        "Subject": f"Emission compliance report of plant {data.plant} for {data.label}",
        "Creator": f"StackWatch {data.software_version}",
        "CreationDate": datetime_from_ns(data.generated_ns),
    }
    with (
        _RENDER_LOCK,
        matplotlib.rc_context({"pdf.fonttype": 3, "font.family": "DejaVu Sans"}),
        PdfPages(buffer, metadata=metadata) as pdf,
    ):
        flow = _Flow(pdf, _footer(data))
        _title_page(flow, data)
        for section in data.sections:
            flow.break_page()
            _section_page(flow, data, section)
        events = [(s, e) for s in data.sections for e in s.events]
        if events:
            flow.break_page()
            _events_pages(flow, data, events)
        flow.break_page()
    return buffer.getvalue()


# ------------------------------------------------------------------------------------ layout


@dataclass
class _Flow:
    """Places blocks top to bottom on A4 pages, starting a new page when one is full."""

    pdf: PdfPages
    footer: str
    fig: Figure | None = None
    top: float = 0.0  # inches from the page top to the next free position
    page: int = 0

    @property
    def free(self) -> float:
        return PAGE_H - MARGIN_BOTTOM - self.top

    def figure(self) -> Figure:
        if self.fig is None:
            self.page += 1
            self.fig = Figure(figsize=(PAGE_W, PAGE_H))
            self.fig.text(
                MARGIN_X / PAGE_W,
                0.35 / PAGE_H,
                f"{self.footer} · page {self.page}",
                fontsize=6,
                color="0.35",
            )
            self.top = MARGIN_TOP
        return self.fig

    def break_page(self) -> None:
        if self.fig is not None:
            self.pdf.savefig(self.fig)  # type: ignore[no-untyped-call]  # unannotated upstream
            self.fig = None

    def ensure(self, height: float) -> Figure:
        fig = self.figure()
        if height > self.free and self.top > MARGIN_TOP:
            self.break_page()
            fig = self.figure()
        return fig

    def text(self, line: str, size: float = 8, *, bold: bool = False, colour: str = "k") -> None:
        height = size * 1.45 / 72
        fig = self.ensure(height)
        fig.text(
            MARGIN_X / PAGE_W,
            1 - (self.top + size / 72) / PAGE_H,
            line,
            fontsize=size,
            weight="bold" if bold else "normal",
            color=colour,
        )
        self.top += height

    def paragraph(self, text: str, size: float = 7.5, width: int = 120) -> None:
        for line in textwrap.wrap(text, width) or [""]:
            self.text(line, size)

    def gap(self, height: float = 0.12) -> None:
        self.top += height

    def axes(self, height: float, *, bottom_pad: float = 0.95, left_pad: float = 0.55) -> Axes:
        """Plot axes in a block of ``height`` inches; ``bottom_pad`` leaves room below the
        axes for the x label and the legend."""
        fig = self.ensure(height)
        box = (
            (MARGIN_X + left_pad) / PAGE_W,
            1 - (self.top + height - bottom_pad) / PAGE_H,
            (PAGE_W - 2 * MARGIN_X - left_pad) / PAGE_W,
            (height - bottom_pad - 0.25) / PAGE_H,
        )
        self.top += height
        return fig.add_axes(box)

    def table(
        self,
        columns: Sequence[str],
        rows: Sequence[Sequence[str]],
        widths: Sequence[float],
        fills: Sequence[str | None] | None = None,
        aligns: Sequence[Align] | None = None,
    ) -> None:
        """A table (header + rows), split over pages with the header repeated."""
        if not rows:
            rows = [["–"] * len(columns)]
        start = 0
        while start < len(rows):
            self.figure()
            fit = int(self.free / ROW_H) - 1  # one row for the header
            if fit < 2 and self.top > MARGIN_TOP:
                self.break_page()
                continue
            chunk = rows[start : start + max(fit, 1)]
            chunk_fills = fills[start : start + len(chunk)] if fills else None
            self._draw_table(columns, chunk, widths, chunk_fills, aligns)
            start += len(chunk)
            if start < len(rows):
                self.break_page()

    def _draw_table(
        self,
        columns: Sequence[str],
        rows: Sequence[Sequence[str]],
        widths: Sequence[float],
        fills: Sequence[str | None] | None,
        aligns: Sequence[Align] | None,
    ) -> None:
        # Drawn from collections and plain texts: matplotlib.table lays out a patch per cell
        # on every draw, which made a monthly report take seconds.
        fig = self.figure()
        height = ROW_H * (len(rows) + 1)
        ax = fig.add_axes(
            (
                MARGIN_X / PAGE_W,
                1 - (self.top + height) / PAGE_H,
                (PAGE_W - 2 * MARGIN_X) / PAGE_W,
                height / PAGE_H,
            )
        )
        ax.axis("off")
        n = len(rows) + 1
        ax.set_xlim(0, 1)
        ax.set_ylim(n, 0)  # one unit per row, the header at the top
        total = sum(widths)
        edges = [0.0]
        for w in widths:
            edges.append(edges[-1] + w / total)
        boxes = [(0, "#dde4ee")] + [
            (i + 1, fill) for i, fill in enumerate(fills or []) if fill is not None
        ]
        ax.add_collection(
            PatchCollection(
                [Rectangle((0, r), 1, 1) for r, _ in boxes],
                facecolors=[colour for _, colour in boxes],
                edgecolors="none",
            )
        )
        grid = [((0.0, float(r)), (1.0, float(r))) for r in range(n + 1)]
        grid += [((x, 0.0), (x, float(n))) for x in edges]
        ax.add_collection(LineCollection(grid, linewidths=0.3, colors="0.6"))
        # Texts on the figure, not the axes: no clip path and transform per cell to set up.
        left, width = MARGIN_X / PAGE_W, (PAGE_W - 2 * MARGIN_X) / PAGE_W
        pad = 0.006
        for r, cells in enumerate([columns, *rows]):
            y = 1 - (self.top + (r + 0.5) * ROW_H) / PAGE_H
            for c, value in enumerate(cells):
                if not value:
                    continue
                align: Align = "center" if r == 0 or aligns is None else aligns[c]
                x = {
                    "left": edges[c] + pad,
                    "center": (edges[c] + edges[c + 1]) / 2,
                    "right": edges[c + 1] - pad,
                }[align]
                fig.text(
                    left + x * width,
                    y,
                    value,
                    ha=align,
                    va="center",
                    fontsize=TABLE_FONT,
                    fontweight="bold" if r == 0 else "normal",
                )
        self.top += height


# ------------------------------------------------------------------------------ formatting


def _num(x: float | None, digits: int = 1) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def _lim(x: float | None) -> str:
    return "–" if x is None else f"{x:g}"


def _yes(flag: bool | None) -> str:
    return "–" if flag is None else ("yes" if flag else "no")


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.1%}"


def _title(data: ComplianceReportData) -> str:
    return f"{data.kind.capitalize()} emission compliance report"


def _period_text(data: ComplianceReportData) -> str:
    if data.kind == "daily":
        return data.start.strftime("%A %d %B %Y")
    return data.start.strftime("%B %Y")


def _local(data: ComplianceReportData, ts_ns: int, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return datetime_from_ns(ts_ns).astimezone(ZoneInfo(data.timezone)).strftime(fmt)


def _footer(data: ComplianceReportData) -> str:
    generated = datetime_from_ns(data.generated_ns).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"StackWatch {data.software_version} · plant {data.plant} · {data.kind} report "
        f"{data.label} · generated {generated}"
    )


def _section_name(s: PollutantSection) -> str:
    return f"{s.stack} / {pollutant_name(s.pollutant)}"


# ------------------------------------------------------------------------------ title page


def _title_page(flow: _Flow, data: ComplianceReportData) -> None:
    flow.text(_title(data), 18, bold=True)
    flow.text(f"{data.plant_name}: {_period_text(data)}", 13)
    flow.gap(0.15)
    last_day = data.end - timedelta(days=1)
    state = "complete" if data.complete else "in progress: the period is not over"
    generated = datetime_from_ns(data.generated_ns)
    lines = [
        ("Plant", f"{data.plant_name} (id {data.plant})"),
        (
            "Period",
            f"{data.label}: {data.start.isoformat()} to {last_day.isoformat()}, local days "
            f"of {data.timezone} ({state})",
        ),
        (
            "Generated",
            f"{generated.strftime('%Y-%m-%d %H:%M:%S UTC')} "
            f"({_local(data, data.generated_ns, '%Y-%m-%d %H:%M %Z')})",
        ),
        ("Software", f"StackWatch {data.software_version}"),
        (
            "Values",
            f"{_UNIT} at 273.15 K, 101.3 kPa, dry gas and the stack's reference O2. Validated "
            "= measured minus the 95 % confidence interval (IED 2010/75/EU; EN 17255-1).",
        ),
    ]
    stacks: dict[str, PollutantSection] = {}
    for s in data.sections:
        stacks.setdefault(s.stack, s)
    for s in stacks.values():
        ref = "no O2 reference" if s.reference_o2 is None else f"reference O2 {s.reference_o2:g} %"
        lines.append(
            (
                f"Regime {s.stack}",
                f"{s.stack_name}: {REGIME_TEXT[s.regime]}; short-term averages of "
                f"{s.sta_period_s // 60} min; {ref}; a day with more than "
                f"{s.max_invalid_sta_per_day} invalid short-term averages is invalid",
            )
        )
    for key, value in lines:
        wrapped = textwrap.wrap(value, 105)
        flow.text(f"{key}:  {wrapped[0]}", 8.5)
        for more in wrapped[1:]:
            flow.text(f"      {more}", 8.5)
    flow.gap(0.2)
    flow.text("Overview", 11, bold=True)
    if data.kind == "monthly":
        columns = [
            "Stack",
            "Pollutant",
            "Daily limit",
            "Days exceeded",
            "Month mean",
            "Monthly ELV",
            "Invalid days (month / year)",
            "Availability",
        ]
        rows = [
            [
                s.stack,
                pollutant_name(s.pollutant),
                _lim(None if s.daily_limit is None else s.daily_limit.value),
                str(len(s.exceeded_days)),
                _num(None if s.month is None else s.month.validated_mean),
                _lim(s.limits.monthly),
                f"{s.invalid_days} / {s.invalid_days_year}",
                _pct(s.availability),
            ]
            for s in data.sections
        ]
        widths = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.6, 1.0]
        fills = [_ROW_FILL["exceeded"] if s.exceeded_days else None for s in data.sections]
    else:
        columns = [
            "Stack",
            "Pollutant",
            "Daily mean",
            "Daily limit",
            "Exceeded",
            "STA above limit",
            "Invalid STA",
            "Invalid day",
            "Availability",
        ]
        rows = []
        fills = []
        for s in data.sections:
            day = s.days[0] if s.days else None
            rows.append(
                [
                    s.stack,
                    pollutant_name(s.pollutant),
                    _num(None if day is None else day.validated_mean),
                    _lim(None if s.daily_limit is None else s.daily_limit.value),
                    _yes(None if day is None else day.exceeded),
                    str(s.sta_above_limit),
                    str(sum(1 for r in s.sta if r.state == "invalid")),
                    _yes(None if day is None else day.invalid_day),
                    _pct(s.availability),
                ]
            )
            fills.append(_ROW_FILL["exceeded"] if day and day.exceeded else None)
        widths = [1.0] * len(columns)
    flow.table(columns, rows, widths, fills)
    flow.gap(0.15)
    flow.paragraph(
        "Daily limit: the value a validated daily mean is judged against (LCP: 110 % of the "
        "daily ELV, IED Annex V Part 4; WI: the daily ELV, Annex VI Part 8). Availability: "
        "valid short-term averages / short-term periods due (over at generation time, without "
        "those with the plant not in normal operation). Invalid days per year: counted from "
        "1 January to the end of the period."
    )
    flow.gap(0.1)
    flow.text("Day status", 9, bold=True)
    for key, meaning in DAY_STATUS_TEXT.items():
        flow.text(f"{STATUS_LABEL[key]}: {meaning}", 7.5)
    flow.gap(0.1)
    n_events = sum(len(s.events) for s in data.sections)
    flow.text(
        f"Compliance events in the period: {n_events}"
        + (" (listed on the last page)" if n_events else ""),
        8.5,
    )


# -------------------------------------------------------------------------- section pages


def _section_page(flow: _Flow, data: ComplianceReportData, s: PollutantSection) -> None:
    flow.text(f"{_section_name(s)}: {s.stack_name}", 12, bold=True)
    ref = "" if s.reference_o2 is None else f" at {s.reference_o2:g} % O2"
    limit = (
        "no daily ELV"
        if s.daily_limit is None
        else f"daily ELV {_lim(s.limits.daily)} {_UNIT}, limit applied "
        f"{s.daily_limit.value:g} ({s.daily_limit.label})"
    )
    short = "" if s.sta_limit is None else f"; short-term limit {s.sta_limit.label}"
    monthly = "" if s.limits.monthly is None else f"; monthly ELV {s.limits.monthly:g}"
    flow.paragraph(
        f"{REGIME_TEXT[s.regime]}; values in {_UNIT}{ref}; confidence interval "
        f"{s.confidence_interval:g} {_UNIT} subtracted; {limit}{short}{monthly}."
    )
    flow.gap(0.05)
    ax = flow.axes(PLOT_H)
    if data.kind == "monthly":
        _monthly_plot(ax, data, s)
        _monthly_table(flow, s, complete=data.complete)
    else:
        _daily_plot(ax, data, s)
        _daily_table(flow, data, s)


def _hline(ax: Axes, y: float | None, label: str, style: str, colour: str) -> None:
    if y is not None:
        ax.axhline(y, linestyle=style, color=colour, linewidth=1.1, label=label, zorder=3)


def _finish(ax: Axes, values: Sequence[float], xlabel: str, extra: list[Patch | Line2D]) -> None:
    # Validated values can be negative (measured below the confidence interval): show them.
    top, bottom = max(values, default=0.0), min(values, default=0.0)
    ax.set_ylim(min(0.0, bottom * 1.12), top * 1.12 if top > 0 else 1.0)
    ax.set_ylabel(_UNIT, fontsize=7.5)
    ax.set_xlabel(xlabel, fontsize=7.5)
    ax.tick_params(labelsize=6.5)
    ax.grid(axis="y", linewidth=0.3, color="0.8")
    handles, _ = ax.get_legend_handles_labels()
    ax.legend(
        handles=[*extra, *handles],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.17),
        ncol=3,
        fontsize=6.5,
        frameon=False,
    )


def _monthly_plot(ax: Axes, data: ComplianceReportData, s: PollutantSection) -> None:
    n_days = (data.end - data.start).days
    x = [d.date.day for d in s.days]
    heights = [d.validated_mean if d.validated_mean is not None else 0.0 for d in s.days]
    colours = [_COLOURS[d.status] for d in s.days]
    ax.bar(x, heights, width=0.72, color=colours, edgecolor="#4c72b0", linewidth=0.4)
    measured = [(d.date.day, d.measured_mean) for d in s.days if d.measured_mean is not None]
    if measured:
        ax.plot(
            [m[0] for m in measured],
            [m[1] for m in measured],
            linestyle="none",
            marker="_",
            markersize=7,
            color="0.25",
            label="measured daily mean (before CI subtraction)",
        )
    _hline(ax, s.limits.daily, f"daily ELV {_lim(s.limits.daily)}", "-", "#c44e52")
    if s.daily_limit is not None and s.daily_limit.value != s.limits.daily:
        _hline(ax, s.daily_limit.value, f"limit applied: {s.daily_limit.label}", "--", "#c44e52")
    _hline(ax, s.limits.monthly, f"monthly ELV {_lim(s.limits.monthly)}", "-.", "#8172b2")
    month_mean = None if s.month is None else s.month.validated_mean
    if month_mean is not None:
        so_far = "" if data.complete else " so far"
        _hline(ax, month_mean, f"validated monthly mean{so_far}", ":", "#55a868")
    ax.set_xlim(0.4, n_days + 0.6)
    ax.set_xticks(range(1, n_days + 1))
    ax.set_title(
        f"{pollutant_name(s.pollutant)} validated daily means, {_period_text(data)}", fontsize=9
    )
    values = [
        v
        for v in (
            *heights,
            *(m[1] for m in measured),
            s.limits.daily,
            None if s.daily_limit is None else s.daily_limit.value,
            s.limits.monthly,
        )
        if v is not None
    ]
    legend: list[Patch | Line2D] = [
        Patch(facecolor=_COLOURS["ok"], label="validated daily mean"),
        Patch(facecolor=_COLOURS["exceeded"], label="above the limit applied"),
        Patch(facecolor=_COLOURS["invalid_day"], label="invalid / not reportable"),
        Patch(facecolor=_COLOURS["incomplete"], label="day not over"),
    ]
    _finish(ax, values, f"Day of the month (local days, {data.timezone})", legend)


def _short_term_lines(s: PollutantSection) -> dict[float, list[str]]:
    """Distinct short-term limit values with what they are (one line per value)."""
    lines: dict[float, list[str]] = {}
    for value, label in (
        (s.limits.half_hour, "half-hour ELV"),
        (s.limits.half_hour_b, "half-hour ELV (column B)"),
        (s.limits.hourly, "hourly ELV"),
        (None if s.sta_limit is None else s.sta_limit.value, "short-term limit applied"),
    ):
        if value is not None:
            lines.setdefault(value, []).append(label)
    return lines


def _daily_plot(ax: Axes, data: ComplianceReportData, s: PollutantSection) -> None:
    hours = (data.end_ns - data.start_ns) / (3600 * NS_PER_S)
    width = s.sta_period_s / 3600

    def x(row: StaRow) -> float:
        return (row.start_ns - data.start_ns) / (3600 * NS_PER_S) + width / 2

    valid = [r for r in s.sta if r.validated is not None]
    ax.bar(
        [x(r) for r in valid],
        [r.validated or 0.0 for r in valid],
        width=width * 0.85,
        color=[_COLOURS["exceeded"] if r.above_limit else _COLOURS["ok"] for r in valid],
    )
    measured = [(x(r), r.normalised) for r in valid if r.normalised is not None]
    if measured:
        ax.plot(
            [m[0] for m in measured],
            [m[1] for m in measured],
            linestyle="none",
            marker="_",
            markersize=6,
            color="0.25",
            label="measured (before CI subtraction)",
        )
    for state, colour, marker in (("invalid", "#c44e52", "x"), ("excluded", "0.5", "o")):
        rows = [r for r in s.sta if r.state == state]
        if rows:
            ax.plot(
                [x(r) for r in rows],
                [0.0] * len(rows),
                linestyle="none",
                marker=marker,
                markersize=4,
                color=colour,
                clip_on=False,
                label=f"{state} short-term average",
            )
    styles = ("-", "--", "-.")
    for i, (value, labels) in enumerate(sorted(_short_term_lines(s).items())):
        _hline(ax, value, f"{' = '.join(labels)} {value:g}", styles[i % 3], "#c44e52")
    _hline(ax, s.limits.daily, f"daily ELV {_lim(s.limits.daily)}", ":", "#8172b2")
    if s.daily_limit is not None and s.daily_limit.value != s.limits.daily:
        _hline(
            ax, s.daily_limit.value, f"daily limit applied {s.daily_limit.value:g}", "-.", "#8172b2"
        )
    day = s.days[0] if s.days else None
    if day is not None and day.validated_mean is not None:
        _hline(ax, day.validated_mean, "validated daily mean", ":", "#55a868")
    ax.set_xlim(0, hours)
    ax.set_xticks(range(0, math.ceil(hours) + 1, 3))
    ax.set_xticklabels([f"{h:02d}:00" for h in range(0, math.ceil(hours) + 1, 3)])
    ax.set_title(
        f"{pollutant_name(s.pollutant)} validated short-term averages "
        f"({s.sta_period_s // 60} min), {_period_text(data)}",
        fontsize=9,
    )
    values = [r.validated or 0.0 for r in valid] + [m[1] for m in measured]
    values += list(_short_term_lines(s)) + ([s.limits.daily] if s.limits.daily else [])
    values += [] if s.daily_limit is None else [s.daily_limit.value]
    legend: list[Patch | Line2D] = [
        Patch(facecolor=_COLOURS["ok"], label="validated short-term average"),
        Patch(facecolor=_COLOURS["exceeded"], label="above the short-term limit"),
    ]
    _finish(ax, values, f"Hours from local midnight ({data.timezone})", legend)


# ------------------------------------------------------------------------------- tables


def _day_cells(d: DayRow, limit: float | None) -> list[str]:
    return [
        d.date.strftime("%a %d %b"),
        _num(d.validated_mean),
        _num(d.measured_mean),
        _lim(limit),
        _yes(d.exceeded),
        _num(d.valid_hours, 1) if d.stored else "–",
        str(d.invalid_sta) if d.stored else "–",
        _yes(d.invalid_day) if d.stored else "–",
        STATUS_LABEL[d.status],
    ]


def _monthly_table(flow: _Flow, s: PollutantSection, *, complete: bool) -> None:
    limit = None if s.daily_limit is None else s.daily_limit.value
    flow.table(
        [
            "Day",
            "Validated mean",
            "Measured mean",
            "Limit",
            "Exceeded",
            "Valid hours",
            "Invalid STA",
            "Invalid day",
            "Status",
        ],
        [_day_cells(d, limit) for d in s.days],
        [1.1, 1.1, 1.1, 0.8, 0.8, 0.8, 0.8, 0.8, 1.1],
        [_ROW_FILL.get(d.status) for d in s.days],
    )
    flow.gap(0.1)
    m = s.month
    if m is None:
        month = "– (no complete day stored yet)"
    else:
        month = (
            f"{_num(m.validated_mean)} {_UNIT} ({'valid' if m.valid else 'not valid'}: "
            f"coverage {m.coverage:.1%}, {m.n_sta} STA)"
        )
    if s.limits.monthly is not None:
        verdict = {None: "not judged", True: "EXCEEDED", False: "complies"}[
            None if m is None else m.exceeded
        ]
        month += f"; monthly ELV {s.limits.monthly:g}: {verdict}"
    exceeded = s.exceeded_days
    _totals(
        flow,
        [
            (
                "Days above the daily limit",
                f"{len(exceeded)}"
                + (f" ({', '.join(d.strftime('%d %b') for d in exceeded)})" if exceeded else ""),
            ),
            ("Validated monthly mean" + ("" if complete else " so far"), month),
            ("Invalid days in the month", str(s.invalid_days)),
            (
                f"Invalid days in {s.days[0].date.year if s.days else ''} so far",
                f"{s.invalid_days_year} (more than {s.max_invalid_days_per_year} a year "
                "requires action: IED Annex V Part 3 pt 10)",
            ),
            ("Availability", _availability(s)),
        ],
    )


def _availability(s: PollutantSection) -> str:
    return (
        f"{_pct(s.availability)} ({s.valid_sta} valid of {s.expected_sta} short-term periods "
        f"due, {s.excluded_sta} excluded: plant not in normal operation)"
    )


def _totals(flow: _Flow, items: list[tuple[str, str]]) -> None:
    flow.table(
        ["Totals", ""],
        [[k, v] for k, v in items],
        [1.6, 5.0],
        aligns=["left", "left"],
    )


def _daily_table(flow: _Flow, data: ComplianceReportData, s: PollutantSection) -> None:
    limit = None if s.sta_limit is None else s.sta_limit.value
    rows = [
        [
            f"{_local(data, r.start_ns, '%H:%M')}–{_local(data, r.end_ns, '%H:%M')}",
            r.state,
            _num(r.validated),
            _num(r.normalised),
            _lim(limit),
            _yes(r.above_limit),
            str(r.n_valid),
        ]
        for r in s.sta
    ]
    fills = [
        _ROW_FILL["exceeded"] if r.above_limit else (None if r.state == "valid" else "#eeeeee")
        for r in s.sta
    ]
    flow.table(
        ["Period", "State", "Validated", "Measured", "Limit", "Above limit", "Valid readings"],
        rows,
        [1.2, 0.9, 1.0, 1.0, 0.8, 0.9, 1.0],
        fills,
    )
    flow.gap(0.1)
    day = s.days[0] if s.days else None
    daily = (
        "– (no stored result)"
        if day is None or not day.stored
        else f"{_num(day.validated_mean)} {_UNIT}; status {STATUS_LABEL[day.status]}"
    )
    limit_text = (
        "–" if s.daily_limit is None else f"{s.daily_limit.value:g} ({s.daily_limit.label})"
    )
    _totals(
        flow,
        [
            ("Validated daily mean", daily),
            ("Daily limit applied", limit_text),
            ("Daily limit exceeded", _yes(None if day is None else day.exceeded)),
            ("Valid hours", "–" if day is None else _num(day.valid_hours)),
            (
                "Short-term averages",
                f"{sum(1 for r in s.sta if r.state == 'valid')} valid, "
                f"{sum(1 for r in s.sta if r.state == 'invalid')} invalid, "
                f"{s.excluded_sta} excluded; {s.sta_above_limit} above the short-term limit",
            ),
            (
                "Invalid day",
                f"{_yes(None if day is None or not day.stored else day.invalid_day)} (more than "
                f"{s.max_invalid_sta_per_day} invalid short-term averages)",
            ),
            (
                f"Invalid days in {data.start.year} so far",
                f"{s.invalid_days_year} (more than {s.max_invalid_days_per_year} a year "
                "requires action)",
            ),
            ("Availability", _availability(s)),
        ],
    )


# ---------------------------------------------------------------------------------- events


def _events_pages(
    flow: _Flow,
    data: ComplianceReportData,
    events: Sequence[tuple[PollutantSection, EventRow]],
) -> None:
    flow.text("Compliance events of the period", 12, bold=True)
    flow.paragraph(
        "As stored by the live compliance engine (forecast pre-alarms are not listed). Times "
        f"are local ({data.timezone}); a day's events are stamped at its start."
    )
    flow.gap(0.05)
    rows: list[list[str]] = []
    fills: list[str | None] = []
    for s, event in events:
        wrapped = textwrap.wrap(event.message, 92) or [""]
        fill = _ROW_FILL["exceeded"] if "exceeded" in event.kind else None
        for i, line in enumerate(wrapped):
            head = i == 0
            rows.append(
                [
                    _local(data, event.ts_ns) if head else "",
                    _section_name(s) if head else "",
                    event.kind.replace("_", " ") if head else "",
                    line,
                ]
            )
            fills.append(fill)
    flow.table(
        ["Time", "Source", "Kind", "Message"],
        rows,
        [1.1, 1.0, 1.4, 5.0],
        fills,
        aligns=["center", "center", "center", "left"],
    )
