"""Reading PEMS training and test tables (CSV with a header row).

A PEMS table has one row per sample, in time order, with the process parameters as columns
and, for training or online learning, the pollutant. An empty target cell is an analyser gap:
such rows still get a prediction but are never learnt from (``ys`` holds ``None``). Missing
or non-numeric feature values are errors naming the line: a soft sensor that silently skipped
rows would misalign its output with its input.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


class TableError(ValueError):
    """A table that does not have the columns or values a PEMS model needs."""


@dataclass(frozen=True)
class Table:
    """Feature rows and their targets (``None`` where the target is absent or empty)."""

    xs: list[dict[str, float]]
    ys: list[float | None]

    def __len__(self) -> int:
        return len(self.xs)

    def complete(self) -> tuple[list[dict[str, float]], list[float]]:
        """Only the rows that have a target (for fitting)."""
        pairs = [(x, y) for x, y in zip(self.xs, self.ys, strict=True) if y is not None]
        return [x for x, _ in pairs], [y for _, y in pairs]


def _number(cell: str, column: str, line: int, path: Path) -> float:
    try:
        value = float(cell)
    except ValueError:
        raise TableError(f"{path}:{line}: {column}={cell!r} is not a number") from None
    if not math.isfinite(value):
        raise TableError(f"{path}:{line}: {column}={cell!r} is not finite")
    return value


def read_table(
    path: Path,
    features: Sequence[str],
    target: str | None,
    *,
    sep: str = ",",
    require_target: bool = False,
) -> Table:
    """Read ``features`` (and ``target`` if given) from the CSV at ``path``.

    ``require_target``: the target column must exist (it may still have empty cells).
    """
    try:
        f = path.open(newline="", encoding="utf-8")
    except OSError as err:
        raise TableError(f"cannot read {path}: {err.strerror or err}") from None
    with f:
        reader = csv.reader(f, delimiter=sep)
        header = next(reader, None)
        if header is None:
            raise TableError(f"{path} is empty (a header row is expected)")
        columns = {name.strip(): i for i, name in enumerate(header)}
        missing = [c for c in features if c not in columns]
        if missing:
            raise TableError(
                f"{path}: missing feature column(s) {', '.join(missing)}; "
                f"columns are {', '.join(columns)}"
            )
        has_target = target is not None and target in columns
        if require_target and not has_target:
            raise TableError(f"{path}: missing target column {target}")
        feature_index = [(c, columns[c]) for c in features]
        target_index = columns[target] if has_target and target is not None else None
        xs: list[dict[str, float]] = []
        ys: list[float | None] = []
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise TableError(f"{path}:{line}: {len(row)} cells, header has {len(header)}")
            xs.append({c: _number(row[i], c, line, path) for c, i in feature_index})
            cell = row[target_index].strip() if target_index is not None else ""
            ys.append(_number(cell, str(target), line, path) if cell else None)
    return Table(xs, ys)
