"""Offline validation of dashboard JSON: Grafana's schema plus the rules of our queries.

1. The JSON Schema generated from ``@grafana/schema`` (``schema/dashboard.schema.json``, see
   ``schema/generate.sh``): structure, types, required keys, no unknown keys.
2. What the schema leaves to the datasource plugin: every query targets the provisioned
   InfluxDB datasource in raw InfluxQL, is a single statement bounded by ``$timeFilter``,
   avoids what InfluxDB 2.x/3.x lack, and uses only defined variables and Grafana macros.
3. Layout: unique panel ids, panels inside the 24-column grid and not overlapping.

>>> doc = {"schemaVersion": 42, "time": {"from": "now-1h"}, "panels": [{"type": "stat",
...        "id": 1, "title": "x", "gridPos": {"x": 0, "y": 0, "w": 30, "h": "4"}, "targets": []}]}
>>> for problem in validate(doc):
...     print(problem)
panels.0: not a valid Panel: gridPos.h: '4' is not of type 'number'
time: 'to' is a required property
panel 1 'x': no queries
panel 1: wider than the 24-column grid
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError

from dashboards.grafana import DATASOURCE_UID, GRID_COLUMNS, SCHEMA_VERSION, Json

SCHEMA_PATH = Path(__file__).parent / "schema" / "dashboard.schema.json"
MACROS = frozenset({"timeFilter", "__interval", "__interval_ms"})
NO_QUERY_PANELS = frozenset({"row", "text"})
# Not in InfluxDB 3's InfluxQL or the 2.x v1 API (shared/docs/stack-facts.md §1, §2).
FORBIDDEN = re.compile(
    r"\b(INTO|SLIMIT|SOFFSET|SHOW\s+DATABASES|SHOW\s+SERIES|INTEGRAL|SAMPLE|HOLT_WINTERS"
    r"|EXPONENTIAL_MOVING_AVERAGE|DOUBLE_EXPONENTIAL_MOVING_AVERAGE|TRIPLE_EXPONENTIAL_DERIVATIVE"
    r"|KAUFMANS_EFFICIENCY_RATIO|KAUFMANS_ADAPTIVE_MOVING_AVERAGE|CHANDE_MOMENTUM_OSCILLATOR"
    r"|RELATIVE_STRENGTH_INDEX|CREATE|DROP|DELETE|ALTER|GRANT|REVOKE)\b",
    re.IGNORECASE,
)
VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]")


@cache
def schema() -> Json:
    loaded: Json = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return loaded


def _schema_problems(document: Json) -> Iterator[str]:
    validator = Draft7Validator(schema())
    for error in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path)):
        yield f"{_where(error)}: {_describe(error)}"


def _where(error: ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "(dashboard)"


def _describe(error: ValidationError) -> str:
    if error.validator == "anyOf" and error.context:
        # A panel is a Panel (branch 0) or a RowPanel (branch 1): report the branch its type
        # asks for, most specific reason first.
        is_row = isinstance(error.instance, dict) and error.instance.get("type") == "row"
        branch = [e for e in error.context if e.schema_path[0] == int(is_row)] or error.context
        worst = max(branch, key=lambda e: len(e.relative_path))
        where = ".".join(str(p) for p in worst.relative_path)
        return f"not a valid {'RowPanel' if is_row else 'Panel'}: {where}: {worst.message}"
    return error.message


def _queries(document: Json) -> Iterator[tuple[str, str]]:
    """``(where, query)`` of every panel target, annotation and template variable."""
    for panel in _all_panels(document):
        for target in panel.get("targets", []):
            yield f"panel {panel.get('id')} {target.get('refId')}", str(target.get("query", ""))
    for ann in document.get("annotations", {}).get("list", []):
        if "target" in ann and not ann.get("builtIn"):
            yield f"annotation {ann.get('name')!r}", str(ann["target"].get("query", ""))
    for var in document.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            yield f"variable {var.get('name')!r}", str(var.get("query", ""))


def _all_panels(document: Json) -> Iterator[Json]:
    for panel in document.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def _query_problems(document: Json) -> Iterator[str]:
    defined = {v.get("name") for v in document.get("templating", {}).get("list", [])}
    for where, query in _queries(document):
        if not query.strip():
            yield f"{where}: empty query"
            continue
        if "$timeFilter" not in query:
            yield f"{where}: not bounded by $timeFilter"
        if ";" in query:
            yield f"{where}: more than one statement"
        if m := FORBIDDEN.search(query):
            yield f"{where}: {m.group(0)!r} is not portable to InfluxDB 2.x/3.x"
        for m in VARIABLE.finditer(query):
            name = next(g for g in m.groups() if g)
            if name not in MACROS and name not in defined and not name.startswith("tag_"):
                yield f"{where}: unknown variable ${name}"


def _target_problems(panel: Json) -> Iterator[str]:
    name = f"panel {panel.get('id')} {panel.get('title', '')!r}"
    targets: list[Any] = panel.get("targets", [])
    if not targets:
        yield f"{name}: no queries"
    ref_ids = [t.get("refId") for t in targets]
    if len(set(ref_ids)) != len(ref_ids):
        yield f"{name}: duplicate refId"
    for t in targets:
        if t.get("datasource", {}).get("uid") != DATASOURCE_UID:
            yield f"{name} {t.get('refId')}: datasource is not {DATASOURCE_UID}"
        if t.get("rawQuery") is not True:
            yield f"{name} {t.get('refId')}: not a raw InfluxQL query"
        if t.get("resultFormat") not in ("time_series", "table"):
            yield f"{name} {t.get('refId')}: resultFormat {t.get('resultFormat')!r}"


def _layout_problems(document: Json) -> Iterator[str]:
    seen: dict[int, str] = {}
    cells: dict[tuple[int, int], int] = {}
    for panel in _all_panels(document):
        pid = panel.get("id")
        if not isinstance(pid, int):
            yield f"panel {panel.get('title')!r}: no integer id"
            continue
        if pid in seen:
            yield f"panel {pid}: id used twice"
        seen[pid] = str(panel.get("title"))
        pos = panel.get("gridPos") or {}
        x, y, w, h = (pos.get(k, 0) for k in ("x", "y", "w", "h"))
        if not all(isinstance(v, int) for v in (x, y, w, h)):
            continue  # reported by the schema check
        if x < 0 or w <= 0 or x + w > GRID_COLUMNS or h <= 0:
            continue  # reported by the schema check or below
        for cx in range(x, x + w):
            for cy in range(y, y + h):
                if (cx, cy) in cells:
                    yield f"panel {pid}: overlaps panel {cells[(cx, cy)]}"
                    break
                cells[(cx, cy)] = pid
            else:
                continue
            break


def validate(document: Json) -> list[str]:
    """Every problem found, one line each; an empty list means the dashboard is valid."""
    problems = list(_schema_problems(document))
    if document.get("schemaVersion") != SCHEMA_VERSION:
        problems.append(f"schemaVersion is {document.get('schemaVersion')}, not {SCHEMA_VERSION}")
    for panel in _all_panels(document):
        if panel.get("type") not in NO_QUERY_PANELS:
            problems.extend(_target_problems(panel))
        pos = panel.get("gridPos") or {}
        x, w = pos.get("x", 0), pos.get("w", 0)
        if isinstance(x, int) and isinstance(w, int) and x + w > GRID_COLUMNS:
            problems.append(f"panel {panel.get('id')}: wider than the 24-column grid")
    problems.extend(_query_problems(document))
    problems.extend(_layout_problems(document))
    return problems
