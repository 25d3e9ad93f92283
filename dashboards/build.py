"""Generate the Grafana dashboards from a plant configuration and keep ``generated/`` current.

``build_dashboards`` is pure (configuration in, JSON documents out), so the same input always
gives byte-identical files: ``check`` compares them with what is on disk, which is what CI
runs (``stackwatch dashboards build --check``).

>>> from stream.plant import load_plant_config
>>> docs = build_dashboards(load_plant_config(DEMO_CONFIG))
>>> sorted(docs)
['stackwatch-compliance.json', 'stackwatch-overview.json', 'stackwatch-sensors.json', \
'stackwatch-stack.json']
>>> docs["stackwatch-stack.json"]["templating"]["list"][1]["name"]
'stack'
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path

import simulators
from dashboards import compliance, overview, sensor_health, stack_detail
from dashboards.facts import StackFacts, pollutants, stack_facts
from dashboards.grafana import Json
from stream.plant import PlantConfig

GENERATED_DIR = Path(__file__).parent / "generated"
DEMO_CONFIG = Path(simulators.__file__).parent / "demo_plant.yaml"

Builder = Callable[[PlantConfig, list[StackFacts], list[str]], Json]
BUILDERS: dict[str, Builder] = {
    overview.UID: overview.build,
    stack_detail.UID: stack_detail.build,
    compliance.UID: compliance.build,
    sensor_health.UID: sensor_health.build,
}


def build_dashboards(config: PlantConfig) -> dict[str, Json]:
    """Every dashboard for ``config``, by file name (``<uid>.json``)."""
    facts = stack_facts(config)
    limited = pollutants(config)
    return {f"{uid}.json": build(config, facts, limited) for uid, build in BUILDERS.items()}


def render(document: Json) -> str:
    """The file text of a dashboard: stable key order, two-space indent, final newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def write(documents: Mapping[str, Json], out_dir: Path) -> list[Path]:
    """Write the dashboards and remove other ``*.json`` files from ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, document in documents.items():
        path = out_dir / name
        text = render(document)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        written.append(path)
    for stale in sorted(out_dir.glob("*.json")):
        if stale.name not in documents:
            stale.unlink()
    return written


def check(documents: Mapping[str, Json], out_dir: Path) -> list[str]:
    """What differs between ``documents`` and ``out_dir``, one line per file (empty: current)."""
    problems = []
    for name, document in documents.items():
        path = out_dir / name
        if not path.exists():
            problems.append(f"{path}: missing")
        elif path.read_text(encoding="utf-8") != render(document):
            problems.append(f"{path}: differs from the generator's output")
    for extra in sorted(out_dir.glob("*.json")):
        if extra.name not in documents:
            problems.append(f"{extra}: not produced by the generator")
    return problems
