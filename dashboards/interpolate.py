"""Turn a dashboard's InfluxQL into the statement Grafana sends, without Grafana.

Used to run every panel query against a real InfluxDB in the tests and to render the README
example. It mirrors what Grafana's InfluxDB datasource does before a query leaves the browser:

* ``$timeFilter`` → ``time >= <from>ms and time <= <to>ms``;
* ``$__interval`` / ``$__interval_ms`` → the range divided by the panel's data points, rounded
  to Grafana's steps (``rangeutil.roundInterval``) and not below the panel's ``interval``;
* a template variable in a regex (``=~ /^$stack$/``) → its value regex-escaped, several values
  (multi-select, "All") as ``(a|b)``;
* a panel's relative time (``timeFrom``: ``now/d``, ``now/M``, ``now/y``, ``now-6h``) → its own
  range ending at the dashboard's "now".

>>> day = 86_400 * NS_PER_S
>>> interpolate('SELECT mean("v") FROM m WHERE "stack" =~ /^$stack$/ AND $timeFilter '
...             'GROUP BY time($__interval)', {"stack": ["b1", "gt.1"]}, 0, day, 60_000)
'SELECT mean("v") FROM m WHERE "stack" =~ /^(b1|gt\\\\.1)$/ AND time >= 0ms and time <= \
86400000ms GROUP BY time(1m)'
>>> interval_ms(0, day, min_interval="10m"), interval_ms(0, 30 * day)
(600000, 1800000)
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from stream.model import NS_PER_MS, NS_PER_S

DEFAULT_DATA_POINTS = 1000
"""About the pixel width of a panel: Grafana asks for one point per pixel."""

# Grafana's rangeutil.roundInterval: (upper bound of the raw interval, rounded interval) in ms.
_ROUNDING = (
    (15, 10),
    (35, 20),
    (75, 50),
    (150, 100),
    (350, 200),
    (750, 500),
    (1_500, 1_000),
    (3_500, 2_000),
    (7_500, 5_000),
    (12_500, 10_000),
    (17_500, 15_000),
    (25_000, 20_000),
    (45_000, 30_000),
    (90_000, 60_000),
    (210_000, 120_000),
    (450_000, 300_000),
    (750_000, 600_000),
    (1_050_000, 900_000),
    (1_500_000, 1_200_000),
    (2_700_000, 1_800_000),
    (5_400_000, 3_600_000),
    (9_000_000, 7_200_000),
    (16_200_000, 10_800_000),
    (32_400_000, 21_600_000),
    (86_400_000, 43_200_000),
    (604_800_000, 86_400_000),
    (1_814_400_000, 604_800_000),
    (3_628_800_000, 2_592_000_000),
)
_UNITS_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d|w)$")


def parse_duration_ms(text: str) -> int:
    """``"10m"`` → 600000."""
    m = _DURATION.match(text.strip())
    if not m:
        raise ValueError(f"not a Grafana duration: {text!r}")
    return int(m.group(1)) * _UNITS_MS[m.group(2)]


def round_interval_ms(raw_ms: float) -> int:
    for bound, rounded in _ROUNDING:
        if raw_ms < bound:
            return rounded
    return 31_536_000_000


def interval_ms(
    start_ns: int,
    end_ns: int,
    *,
    data_points: int = DEFAULT_DATA_POINTS,
    min_interval: str | None = None,
) -> int:
    """``$__interval_ms`` of a panel showing ``[start_ns, end_ns]``."""
    raw = (end_ns - start_ns) / NS_PER_MS / data_points
    rounded = round_interval_ms(raw)
    if min_interval:
        rounded = max(rounded, parse_duration_ms(min_interval))
    return rounded


def format_interval(ms: int) -> str:
    """Grafana's ``secondsToHms``: the largest whole unit, truncated (``5400000`` → ``1h``)."""
    seconds = ms // 1000
    for unit, size in (("y", 31_536_000), ("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{ms}ms"


def _regex_escape(value: str) -> str:
    return re.sub(r"[\\^$*+?.()|\[\]{}/]", lambda m: "\\" + m.group(0), value)


def _format_variable(values: Sequence[str]) -> str:
    escaped = [_regex_escape(v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def interpolate(
    query: str,
    variables: Mapping[str, Sequence[str]],
    start_ns: int,
    end_ns: int,
    interval: int,
) -> str:
    """``query`` with macros and variables substituted (``interval`` in milliseconds).

    Raises ``KeyError`` for a variable not in ``variables``.
    """
    start_ms, end_ms = start_ns // NS_PER_MS, end_ns // NS_PER_MS
    out = query.replace("$timeFilter", f"time >= {start_ms}ms and time <= {end_ms}ms")
    out = out.replace("$__interval_ms", str(interval))
    out = out.replace("$__interval", format_interval(interval))

    def substitute(m: re.Match[str]) -> str:
        name = next(g for g in m.groups() if g)
        return _format_variable(variables[name])

    return re.sub(r"\$\{(\w+)\}|\$(\w+)|\[\[(\w+)\]\]", substitute, out)


def relative_start_ns(expr: str, now_ns: int, timezone: str) -> int:
    """Start of a relative range ending at ``now_ns``: ``now/d`` (local midnight), ``now/M``,
    ``now/y``, or ``now-<duration>``.

    >>> relative_start_ns("now/d", 1_767_268_800 * NS_PER_S, "Europe/Vienna") // NS_PER_S
    1767222000
    """
    zone = ZoneInfo("UTC" if timezone in ("browser", "utc") else timezone)
    now = datetime.fromtimestamp(now_ns / NS_PER_S, zone)
    if expr.startswith("now-"):
        return now_ns - parse_duration_ms(expr[4:]) * NS_PER_MS
    starts = {
        "now/d": now.replace(hour=0, minute=0, second=0, microsecond=0),
        "now/M": now.replace(day=1, hour=0, minute=0, second=0, microsecond=0),
        "now/y": now.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0),
    }
    if expr not in starts:
        raise ValueError(f"unsupported relative time {expr!r}")
    start = starts[expr]
    # Rebuild from the wall date: local midnight may have another UTC offset than now (DST).
    return int(datetime(start.year, start.month, start.day, tzinfo=zone).timestamp()) * NS_PER_S
