"""Property tests: the configuration loaders are total and every refusal says where and what.

Hypothesis writes YAML files of three kinds - arbitrary text, arbitrary bytes (not always
UTF-8) and valid configurations with one field mutated (removed, retyped, given an absurd
value, or joined by an unknown key) - and loads them with :func:`load_plant_config` and
:func:`load_alerts_config`. Nothing but :class:`ConfigError` / :class:`AlertsConfigError` may
escape, and the message must name the file, a location in it and the problem.
"""

from __future__ import annotations

import copy
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.settings import AlertsConfigError, load_alerts_config
from stream.plant import ConfigError, PlantConfig, load_plant_config

PLANT: dict[str, Any] = {
    "plants": {
        "demo": {
            "name": "Demo",
            "timezone": "Europe/Vienna",
            "stacks": {
                "b1": {
                    "reference_o2": 6,
                    "sensors": {
                        "nox": {"quantity": "nox", "unit": "mg/Nm3", "valid_range": [0, 2000]},
                        "o2": {
                            "quantity": "o2",
                            "unit": "%",
                            "valid_range": [0, 25],
                            "interval_s": 5,
                        },
                        "load": {"quantity": "load", "unit": "MW", "valid_range": [0, 100]},
                    },
                    "limits": {"nox": {"daily": 200, "half_hour": 400}},
                    "detection": {"warmup_s": 600, "exclude": ["load"]},
                    "pems": [{"target": "nox", "features": ["load", "o2"]}],
                }
            },
        }
    }
}
ALERTS: dict[str, Any] = {
    "rules": {"no_data": {"for_s": 300}},
    "route": {
        "receivers": ["officers"],
        "group_wait_s": 30,
        "escalation": [{"after_s": 900, "receivers": ["officers"]}],
        "routes": [{"matchers": ["rule=sensor_fault"], "receivers": ["officers"]}],
    },
    "receivers": [{"name": "officers"}],
    "inhibit_rules": [
        {
            "source_matchers": ["rule=sensor_fault"],
            "target_matchers": ["rule=limit_exceeded"],
            "equal": ["plant", "stack"],
        }
    ],
}
# About 1 900 documents per run, ~10 s: a mutated document costs a YAML dump and load.
ARBITRARY = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PLANT_MUTATIONS = settings(ARBITRARY, max_examples=400)
ALERTS_MUTATIONS = settings(ARBITRARY, max_examples=300)


@pytest.fixture(scope="module")
def config_dir() -> Iterator[Path]:
    # Hypothesis reruns a test body many times; a function-scoped tmp_path would be shared.
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


def _paths(node: object, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every location inside a nested dict/list document (the root excluded)."""
    found: list[tuple[str | int, ...]] = []
    items: list[tuple[str | int, object]] = []
    if isinstance(node, dict):
        items = list(node.items())
    elif isinstance(node, list):
        items = list(enumerate(node))
    for key, child in items:
        found.append((*prefix, key))
        found.extend(_paths(child, (*prefix, key)))
    return found


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),  # nan and inf included: YAML writes them as .nan / .inf
    st.text(max_size=20),
    st.sampled_from(["nox", "UTC", "Mars/Olympus", "../etc/passwd", "", "rule=", "=x", "a\x00b"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> tuple[dict[str, Any], tuple[str | int, ...]]:
    """``base`` with one location removed, replaced or extended; and that location."""
    doc = copy.deepcopy(base)
    path = draw(st.sampled_from(_paths(doc)))
    parent: Any = doc
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    action = draw(st.sampled_from(["delete", "replace", "replace", "extra_key"]))
    if action == "delete":
        del parent[last]
        if isinstance(parent, list):
            path = path[:-1]  # the later elements moved: the list itself is what changed
    elif action == "replace":
        parent[last] = draw(VALUES)
    elif isinstance(parent[last], dict):
        parent[last][draw(st.text(min_size=1, max_size=8))] = draw(VALUES)
    else:
        parent[last] = draw(VALUES)
    return doc, path


def _write(directory: Path, content: str | bytes) -> Path:
    path = directory / "config.yaml"
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8", errors="surrogatepass")
    else:
        path.write_bytes(content)
    return path


_YAML_WHERE = re.compile(r"line \d+, column \d+|position \d+")


def _check_message(message: str, path: Path) -> None:
    """The message starts with the file, names a location inside it and says what is wrong."""
    assert message.startswith(f"{path}: "), message
    body = message[len(f"{path}: ") :]
    if body == "invalid YAML: nested too deeply":
        return  # the parser gives no position; the whole document is at fault
    if "invalid YAML" in body or "not UTF-8" in body:
        assert _YAML_WHERE.search(body), message
        return
    if body.startswith("expected a mapping"):
        return  # the location is the top level, and it says so
    problems = [line for line in body.splitlines()[1:] if line.startswith("  - ")]
    assert problems, message
    for line in problems:
        where, _, what = line[4:].partition(": ")
        assert where, message
        assert what.strip(), message


def _locations(message: str) -> list[tuple[str, ...]]:
    return [
        tuple(line[4:].partition(": ")[0].split("."))
        for line in message.splitlines()
        if line.startswith("  - ")
    ]


def _related(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def _load_plant(path: Path) -> PlantConfig | None:
    try:
        return load_plant_config(path)
    except ConfigError as err:
        _check_message(str(err), path)
        return None


@ARBITRARY
@given(text=st.text(max_size=300) | st.binary(max_size=300))
def test_plant_loader_total_on_arbitrary_input(config_dir: Path, text: str | bytes) -> None:
    _load_plant(_write(config_dir, text))


@PLANT_MUTATIONS
@given(st.data())
def test_plant_loader_names_the_mutated_location(config_dir: Path, data: st.DataObject) -> None:
    doc, mutated_at = data.draw(mutated(PLANT))
    path = _write(config_dir, yaml.safe_dump(doc, allow_unicode=True))
    try:
        load_plant_config(path)
    except ConfigError as err:
        message = str(err)
        _check_message(message, path)
        where = tuple(str(p) for p in mutated_at)
        if "invalid YAML" not in message and not message.endswith("at the top level"):
            # The refused location is the mutated one, one of its parents (e.g. a stack whose
            # limit lost its sensor) or inside it (e.g. a required key of a replaced mapping).
            assert any(_related(loc, where) for loc in _locations(message)), (where, message)


@pytest.mark.parametrize(
    "content",
    [
        "[" * 800,  # nesting deeper than the YAML parser's recursion
        "a: &x [*x]",  # a self-referencing alias
        "!!python/object/apply:os.system ['true']",  # unsafe tag
        "plants: {? [a, b] : c}",  # an unhashable key
        b"plants:\n  \xff\xfe: x\n",  # not UTF-8
        "\x00plants: {}",  # a control character
    ],
)
def test_hostile_documents_are_refused_with_a_reason(tmp_path: Path, content: str | bytes) -> None:
    path = _write(tmp_path, content)
    with pytest.raises(ConfigError) as plant_err:
        load_plant_config(path)
    _check_message(str(plant_err.value), path)
    with pytest.raises(AlertsConfigError) as alerts_err:
        load_alerts_config(path, topic_prefix="stackwatch")
    assert str(alerts_err.value).startswith(f"{path}: ")


def _load_alerts(path: Path) -> str | None:
    try:
        load_alerts_config(path, topic_prefix="stackwatch")
    except AlertsConfigError as err:
        message = str(err)
        assert message.startswith(f"{path}: "), message
        assert message[len(f"{path}: ") :].strip(), message
        return message
    return None


@ARBITRARY
@given(text=st.text(max_size=300) | st.binary(max_size=300))
def test_alerts_loader_total_on_arbitrary_input(config_dir: Path, text: str | bytes) -> None:
    _load_alerts(_write(config_dir, text))


@ALERTS_MUTATIONS
@given(st.data())
def test_alerts_loader_names_the_mutated_section(config_dir: Path, data: st.DataObject) -> None:
    doc, mutated_at = data.draw(mutated(ALERTS))
    message = _load_alerts(_write(config_dir, yaml.safe_dump(doc, allow_unicode=True)))
    if message is not None:
        # Each section is validated on its own, so a refusal names the section it is in.
        assert str(mutated_at[0]) in message, (mutated_at, message)


def test_the_unmutated_documents_are_valid(tmp_path: Path) -> None:
    path = _write(tmp_path, yaml.safe_dump(PLANT))
    assert load_plant_config(path).sensor("demo", "b1", "nox") is not None
    path.write_text(yaml.safe_dump(ALERTS))
    cfg = load_alerts_config(path, topic_prefix="stackwatch")
    assert [r.name for r in cfg.receivers.receivers] == ["officers"]
