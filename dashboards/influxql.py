"""InfluxQL pieces of the dashboard queries.

Only the subset that InfluxDB 1.x, 2.x (v1 API) and 3.x all run: ``SELECT`` with the common
aggregates, ``cumulative_sum``, arithmetic, ``GROUP BY time()``/tags, ``fill()``,
``ORDER BY time DESC``/``LIMIT`` and ``SHOW TAG VALUES``. Every statement is bounded by Grafana's
``$timeFilter`` (InfluxDB 3 Core refuses scans of more than about 72 h of files), and every
selected expression has an alias, so the columns of a result are known in advance.

Template variables are matched as regular expressions (``=~ /^$stack$/``): Grafana formats a
multi-value or "All" selection as ``(a|b)``.

>>> where(VARS, eq("pollutant", "nox"))
'"plant" =~ /^$plant$/ AND "stack" =~ /^$stack$/ AND "pollutant" = \\'nox\\' AND $timeFilter'
>>> number(9.1), number(400.0), number(1 / 3)
('9.1', '400', '0.333333333333')
"""

from __future__ import annotations

from collections.abc import Iterable

PLANT_VAR = '"plant" =~ /^$plant$/'
STACK_VAR = '"stack" =~ /^$stack$/'
SENSOR_VAR = '"sensor" =~ /^$sensor$/'
VARS = (PLANT_VAR, STACK_VAR)
TIME_FILTER = "$timeFilter"
VALID_STA = """"state" = 'valid'"""
"""Short-term averages that count: a period re-evaluated to invalid or excluded keeps its
earlier numbers in the store (points merge), so its state decides."""


def ident(name: str) -> str:
    """A double-quoted identifier."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def string(value: str) -> str:
    """A single-quoted string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def number(value: float) -> str:
    """A numeric literal without float noise (12 significant digits)."""
    return f"{value:.12g}"


def eq(tag: str, value: str) -> str:
    return f"{ident(tag)} = {string(value)}"


def one_of(tag: str, values: Iterable[str]) -> str:
    """``tag`` is one of ``values`` (an anchored regex of escaped literals)."""
    alternatives = "|".join(_regex_escape(v) for v in values)
    return f"{ident(tag)} =~ /^({alternatives})$/"


def _regex_escape(value: str) -> str:
    out = []
    for ch in value:
        if ch in r"\^$.|?*+()[]{}/":
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def where(*conditions: str | Iterable[str]) -> str:
    """``conditions`` joined with AND, ending with the dashboard's time filter."""
    flat: list[str] = []
    for c in conditions:
        if isinstance(c, str):
            flat.append(c)
        else:
            flat.extend(c)
    return " AND ".join([*flat, TIME_FILTER])


def select(
    fields: str,
    measurement: str,
    conditions: str,
    *,
    group_by: Iterable[str] = (),
    every: str | None = None,
    fill: str | None = None,
    tail: str = "",
) -> str:
    """``SELECT fields FROM measurement WHERE conditions [GROUP BY ...] [fill()] [tail]``.

    ``every`` is the ``GROUP BY time()`` interval (e.g. ``$__interval``), ``group_by`` tag keys.
    """
    groups = ([f"time({every})"] if every else []) + [ident(t) for t in group_by]
    # Built from the generator's constants and the plant configuration's ids, never from a
    # viewer's input (Grafana substitutes its variables later, regex-escaped).
    q = f"SELECT {fields} FROM {ident(measurement)} WHERE {conditions}"  # noqa: S608
    if groups:
        q += " GROUP BY " + ", ".join(groups)
    if fill:
        q += f" fill({fill})"
    if tail:
        q += f" {tail}"
    return q


def tag_values(measurement: str, key: str, *conditions: str) -> str:
    """A template-variable query: the values of tag ``key`` within the time range."""
    return f"SHOW TAG VALUES FROM {ident(measurement)} WITH KEY = {ident(key)} WHERE " + where(
        *conditions
    )
