"""``stackwatch pems fit`` / ``predict`` end to end on a slice of the real gas-turbine data.

Training: the first 2000 hours of 2011; test: the next 1000. The output is checked against the
Python API run on the same rows, which proves the row order as well as the values.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from stackwatch.pems_cli import pems_app
from stream.pems.checkpoint import load_model
from stream.pems.evaluate import GAS_TURBINE_FEATURES, run_test, score
from stream.pems.table import read_table

FEATURES = ",".join(GAS_TURBINE_FEATURES)
runner = CliRunner()


def cli(command: str, **options: object) -> Result:
    """Run ``stackwatch pems COMMAND --opt value ...`` (``True`` is a bare flag)."""
    args = [command]
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        args += [flag] if value is True else [flag, str(value)]
    return runner.invoke(pems_app, args)


def _slice(source: Path, dest: Path, start: int, stop: int, sep: str = ",") -> Path:
    with source.open(newline="") as f:
        rows = list(csv.reader(f))
    with dest.open("w", newline="") as f:
        csv.writer(f, delimiter=sep).writerows([rows[0], *rows[1 + start : 1 + stop]])
    return dest


@pytest.fixture(scope="module")
def files(gas_turbine: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("pems_cli")
    source = gas_turbine / "gt_2011.csv"
    train = _slice(source, d / "train.csv", 0, 2000)
    test = _slice(source, d / "test.csv", 2000, 3000)
    model = d / "nox.pems"
    result = cli("fit", input=train, target="NOX", features=FEATURES, model=model)
    assert result.exit_code == 0, result.output
    assert "on 2000 rows" in result.output
    return {"dir": d, "train": train, "test": test, "model": model}


def _read_output(path: Path) -> tuple[list[str], list[tuple[float, float, float]]]:
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], [(float(a), float(b), float(c)) for a, b, c in rows[1:]]


@pytest.mark.parametrize("learn", [False, True])
def test_predict_writes_one_ordered_row_per_input_row(files: dict[str, Path], learn: bool) -> None:
    out = files["dir"] / f"pred_{learn}.csv"
    options: dict[str, object] = {"model": files["model"], "input": files["test"], "output": out}
    result = cli("predict", **options, **({"learn": True} if learn else {}))
    assert result.exit_code == 0, result.output
    header, rows = _read_output(out)
    assert header == ["prediction", "lower", "upper"]
    assert len(rows) == 1000
    assert all(lo <= p <= hi and math.isfinite(lo) and math.isfinite(hi) for p, lo, hi in rows)
    # the same rows through the Python API, in order: identical numbers
    model = load_model(files["model"])
    table = read_table(files["test"], model.features, "NOX", require_target=True)
    xs, ys = table.complete()
    expected = run_test(model, xs, ys, learn=learn)
    assert rows == [(p.value, p.lower, p.upper) for p in expected]
    # and they are useful (hours 2000-3000 of 2011 hold a process change: frozen R² is low)
    scores = score(ys, expected)
    assert scores["r2"] > (0.6 if learn else 0.1)
    assert 0.8 <= scores["coverage"] <= 0.99
    assert f"model {model.model_version}" in result.output


def test_learn_checkpoint_continues_with_a_new_version(files: dict[str, Path]) -> None:
    out = files["dir"] / "pred_ckpt.csv"
    ckpt = files["dir"] / "nox_updated.pems"
    result = cli(
        "predict",
        model=files["model"],
        input=files["test"],
        output=out,
        learn=True,
        checkpoint=ckpt,
    )
    assert result.exit_code == 0, result.output
    before = load_model(files["model"]).model_version
    after = load_model(ckpt).model_version
    assert after == before.rsplit("-", 1)[0] + "-1000"
    assert f"learnt 1000, now {after}" in result.output


def test_separator_and_gaps_in_the_target(files: dict[str, Path]) -> None:
    test = _slice(files["dir"] / "test.csv", files["dir"] / "semi.csv", 0, 50, sep=";")
    text = test.read_text().splitlines()
    # blank the NOX cell of every other row: analyser gaps are predicted, not learnt
    blanked = [text[0]] + [
        line.rsplit(";", 1)[0] + ";" if i % 2 else line for i, line in enumerate(text[1:])
    ]
    test.write_text("\n".join(blanked) + "\n")
    out = files["dir"] / "semi_pred.csv"
    result = cli("predict", model=files["model"], input=test, output=out, sep=";", learn=True)
    assert result.exit_code == 0, result.output
    assert len(_read_output(out)[1]) == 50
    assert "learnt 25" in result.output


def test_clear_errors(files: dict[str, Path]) -> None:
    d = files["dir"]
    no_target = d / "no_target.csv"
    no_target.write_text(",".join(GAS_TURBINE_FEATURES) + "\n" + ",".join(["1"] * 9) + "\n")
    model, train, test = files["model"], files["train"], files["test"]
    fit = {"input": train, "target": "NOX", "features": "AT", "model": d / "y.pems"}
    cases: list[tuple[str, dict[str, object], str]] = [
        (
            "predict",
            {"model": model, "input": no_target, "output": d / "x.csv", "learn": True},
            "missing target column NOX",
        ),
        ("fit", fit | {"features": "AT,O2"}, "missing feature column(s) O2"),
        ("fit", fit | {"target": "SO2"}, "missing target column SO2"),
        ("fit", fit | {"features": " , "}, "--features needs at least one column"),
        (
            "predict",
            {"model": train, "input": test, "output": d / "x.csv"},
            "is not a StackWatch PEMS model",
        ),
        ("fit", fit | {"input": d / "absent.csv"}, "cannot read"),
        ("fit", fit | {"algorithm": "magic"}, "unknown PEMS algorithm"),
    ]
    for command, options, message in cases:
        result = cli(command, **options)
        assert result.exit_code == 2, (options, result.output)
        assert message in result.output, (message, result.output)
    # a malformed value names its line; no output file is left behind
    bad = d / "bad.csv"
    lines = files["test"].read_text().splitlines()
    lines[3] = "x" + lines[3]
    bad.write_text("\n".join(lines) + "\n")
    result = cli("predict", model=model, input=bad, output=d / "bad_pred.csv")
    assert result.exit_code == 2
    assert "bad.csv:4: AT=" in result.output
    assert not (d / "bad_pred.csv").exists()
    assert not (d / "x.csv").exists()
