"""Plant configuration: valid files load, invalid ones name the file, the path and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.plant import ConfigError, Quantity, load_plant_config

VALID = """
plants:
  demo:
    name: Demo
    timezone: Europe/Vienna
    stacks:
      boiler1:
        reference_o2: 6
        sensors:
          nox: {quantity: nox, unit: mg/Nm3, valid_range: [0, 2000]}
          o2: {quantity: o2, unit: "%", valid_range: [0, 25], interval_s: 5}
        limits:
          nox: {daily: 200, half_hour: 400}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "plant.yaml"
    path.write_text(text)
    return path


def test_valid_file_loads(tmp_path: Path) -> None:
    cfg = load_plant_config(write(tmp_path, VALID))
    stack = cfg.plants["demo"].stacks["boiler1"]
    assert stack.reference_o2 == 6
    assert stack.sensors["o2"].interval_s == 5
    assert stack.limits[Quantity.NOX].daily == 200
    assert [k for k, _ in cfg.sensors()] == [("demo", "boiler1", "nox"), ("demo", "boiler1", "o2")]
    assert cfg.sensor("demo", "boiler1", "nox") is stack.sensors["nox"]
    assert cfg.sensor("demo", "nope", "nox") is None


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        # a range whose minimum is not below its maximum
        (
            "valid_range: [0, 2000]",
            "plants.demo.stacks.boiler1.sensors.nox.valid_range",
            "must be below maximum",
        ),
        # an unknown measured quantity
        ("quantity: nox,", "plants.demo.stacks.boiler1.sensors.nox.quantity", "Input should be"),
        # a typo in a key is refused rather than ignored
        ("reference_o2: 6", "plants.demo.stacks.boiler1.reference_o2x", "Extra inputs"),
        # an unknown time zone
        ("timezone: Europe/Vienna", "plants.demo.timezone", "unknown time zone"),
        # a limit for a pollutant no sensor measures
        (
            "nox: {daily: 200, half_hour: 400}",
            "plants.demo.stacks.boiler1",
            "limits.so2: no sensor of this stack measures it",
        ),
        # upper-case ids are not topic/tag safe
        ("  demo:", "plants.Demo", "String should match pattern"),
    ],
    ids=["range", "quantity", "extra-key", "timezone", "limit-unmeasured", "id-pattern"],
)
def test_invalid_file_names_file_path_and_problem(
    tmp_path: Path, change: str, path: str, message: str
) -> None:
    replacement = {
        "valid_range: [0, 2000]": "valid_range: [2000, 0]",
        "quantity: nox,": "quantity: noxx,",
        "reference_o2: 6": "reference_o2x: 6",
        "timezone: Europe/Vienna": "timezone: Mars/Olympus",
        "nox: {daily: 200, half_hour: 400}": "so2: {daily: 200}",
        "  demo:": "  Demo:",
    }[change]
    file = write(tmp_path, VALID.replace(change, replacement, 1))
    with pytest.raises(ConfigError) as info:
        load_plant_config(file)
    text = str(info.value)
    assert str(file) in text
    assert path in text
    assert message in text


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    file = write(tmp_path, "plants:\n  demo: [unclosed\n")
    with pytest.raises(ConfigError, match=r"plant.yaml: invalid YAML at line \d+"):
        load_plant_config(file)


def test_missing_file_and_wrong_top_level(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_plant_config(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="expected a mapping with a 'plants' key"):
        load_plant_config(write(tmp_path, "- just a list\n"))
