"""``stackwatch pems``: fit a PEMS soft sensor on a CSV table and predict with intervals.

``fit`` trains one :class:`~stream.pems.model.PemsModel` (one pollutant of one stack) and
checkpoints it; ``predict`` writes ``prediction,lower,upper`` for every input row, in order,
and with ``--learn`` updates the model on each row's measured value after predicting it (rows
whose target cell is empty, i.e. analyser gaps, are predicted but not learnt). The model
version is reported on standard error; ``--checkpoint`` saves the updated state.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated

import typer

from stream.pems.algorithms import ALGORITHMS, DEFAULT_ALGORITHM
from stream.pems.checkpoint import CheckpointError, load_model, save_model
from stream.pems.model import PemsModel, PemsModelError
from stream.pems.table import TableError, read_table

pems_app = typer.Typer(
    name="pems",
    help="PEMS soft sensor: predict a pollutant from process parameters, with intervals.",
    no_args_is_help=True,
    add_completion=False,
)

OUTPUT_COLUMNS = ("prediction", "lower", "upper")


def _fail(message: str) -> typer.Exit:
    typer.secho(message, err=True, fg=typer.colors.RED)
    return typer.Exit(2)


def _feature_list(raw: str) -> list[str]:
    features = [f.strip() for f in raw.split(",") if f.strip()]
    if not features:
        raise _fail("--features needs at least one column name (comma-separated)")
    return features


@pems_app.command("fit")
def fit(  # noqa: PLR0917 - typer maps every parameter to an option
    input_path: Annotated[Path, typer.Option("--input", help="Training CSV (header row).")],
    target: Annotated[str, typer.Option("--target", help="Pollutant column, e.g. NOX.")],
    features: Annotated[
        str, typer.Option("--features", help="Process-parameter columns, comma-separated.")
    ],
    model_path: Annotated[Path, typer.Option("--model", help="Where to write the model.")],
    sep: Annotated[str, typer.Option("--sep", help="CSV field separator.")] = ",",
    algorithm: Annotated[
        str, typer.Option(help=f"One of: {', '.join(ALGORITHMS)}.")
    ] = DEFAULT_ALGORITHM,
    coverage: Annotated[float, typer.Option(help="Target interval coverage.")] = 0.9,
    window: Annotated[int, typer.Option(help="Online residuals kept for intervals.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of randomised algorithms.")] = 0,
) -> None:
    """Train a model on the rows of a CSV table, in order, and save it."""
    names = _feature_list(features)
    try:
        table = read_table(input_path, names, target, sep=sep, require_target=True)
        xs, ys = table.complete()
        model = PemsModel(
            names, target, algorithm=algorithm, coverage=coverage, window=window, seed=seed
        )
        model.fit(xs, ys)
        save_model(model, model_path)
    except (TableError, PemsModelError, CheckpointError) as err:
        raise _fail(str(err)) from None
    skipped = len(table) - len(xs)
    typer.echo(
        f"fitted {algorithm} for {target} on {len(xs)} rows"
        + (f" ({skipped} without {target} skipped)" if skipped else "")
        + f"; model version {model.model_version} -> {model_path}",
        err=True,
    )


@pems_app.command("predict")
def predict(  # noqa: PLR0917 - typer maps every parameter to an option
    model_path: Annotated[Path, typer.Option("--model", help="A model written by fit.")],
    input_path: Annotated[Path, typer.Option("--input", help="CSV with the model's features.")],
    output: Annotated[Path, typer.Option("--output", help="CSV to write: prediction,lower,upper.")],
    learn: Annotated[
        bool, typer.Option("--learn", help="Learn each row's target after predicting it.")
    ] = False,
    sep: Annotated[str, typer.Option("--sep", help="Input CSV field separator.")] = ",",
    checkpoint: Annotated[
        Path | None, typer.Option(help="Save the model state after the run (with --learn).")
    ] = None,
) -> None:
    """Predict every row of a CSV table, with its interval, in input order."""
    try:
        model = load_model(model_path)
        table = read_table(input_path, model.features, model.target, sep=sep, require_target=learn)
    except (CheckpointError, TableError) as err:
        raise _fail(str(err)) from None
    first_version = model.model_version
    learnt = 0
    tmp = output.with_name(output.name + ".tmp")
    try:
        with tmp.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(OUTPUT_COLUMNS)
            for x, y in zip(table.xs, table.ys, strict=True):
                p = model.predict_one(x)
                writer.writerow((repr(p.value), repr(p.lower), repr(p.upper)))
                if learn and y is not None:
                    model.learn_one(x, y)
                    learnt += 1
        tmp.replace(output)
        if checkpoint is not None:
            save_model(model, checkpoint)
    except OSError as err:
        raise _fail(f"cannot write {err.filename}: {err.strerror}") from None
    finally:
        tmp.unlink(missing_ok=True)
    typer.echo(
        f"predicted {len(table)} rows with model {first_version}"
        + (f"; learnt {learnt}, now {model.model_version}" if learn else "")
        + (f"; saved to {checkpoint}" if checkpoint is not None else ""),
        err=True,
    )
