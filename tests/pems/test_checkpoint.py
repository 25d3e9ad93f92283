"""Checkpoints: a restored model continues exactly where the saved one was; bad files refused."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from stream.pems.checkpoint import (
    MAGIC,
    CheckpointError,
    load_model,
    read_header,
    save_model,
)
from stream.pems.model import PemsModel, river_version
from tests.pems.synthetic import linear_stream

FEATURES = ["load", "temp"]


@pytest.fixture(scope="module")
def model() -> PemsModel:
    xs, ys = linear_stream(1500, seed=1)
    m = PemsModel(FEATURES, "nox")
    m.fit(xs, ys)
    return m


def _rewrite_header(path: Path, **changes: object) -> None:
    data = path.read_bytes()
    end = data.index(b"\n", len(MAGIC))
    header = json.loads(data[len(MAGIC) : end]) | changes
    path.write_bytes(MAGIC + json.dumps(header).encode() + data[end:])


def test_round_trip_restores_predictions_versions_and_online_state(
    model: PemsModel, tmp_path: Path
) -> None:
    model = copy.deepcopy(model)  # the fixture is shared
    path = tmp_path / "nox.pems"
    xs, ys = linear_stream(300, seed=2)
    for x, y in zip(xs[:100], ys[:100], strict=True):  # some online updates before the save
        model.predict_one(x)
        model.learn_one(x, y)
    save_model(model, path)
    restored = load_model(path, features=FEATURES, target="nox")
    assert restored.model_version == model.model_version
    assert restored.model_version.endswith("-100")
    assert read_header(path)["model_version"] == model.model_version
    assert read_header(path)["river"] == river_version()
    # both go on identically: same predictions, intervals and versions while learning
    for x, y in zip(xs[100:], ys[100:], strict=True):
        assert restored.predict_one(x) == model.predict_one(x)
        restored.learn_one(x, y)
        model.learn_one(x, y)
    assert restored.model_version == model.model_version
    assert not list(tmp_path.glob("*.tmp"))


def test_another_river_version_is_refused(model: PemsModel, tmp_path: Path) -> None:
    path = tmp_path / "m.pems"
    save_model(model, path)
    _rewrite_header(path, river="0.19.0")
    with pytest.raises(CheckpointError, match=r"river 0\.19\.0.*installed river is"):
        load_model(path)


def test_another_format_is_refused(model: PemsModel, tmp_path: Path) -> None:
    path = tmp_path / "m.pems"
    save_model(model, path)
    _rewrite_header(path, format=99)
    with pytest.raises(CheckpointError, match="format 99"):
        load_model(path)


def test_a_schema_mismatch_is_refused(model: PemsModel, tmp_path: Path) -> None:
    path = tmp_path / "m.pems"
    save_model(model, path)
    with pytest.raises(CheckpointError, match=r"features \['load', 'temp'\] differ"):
        load_model(path, features=["temp", "load"])
    with pytest.raises(CheckpointError, match="target 'nox', not 'co'"):
        load_model(path, target="co")
    _rewrite_header(path, features=["load", "o2"])  # a header that lies about the payload
    with pytest.raises(CheckpointError, match="payload schema differs"):
        load_model(path)


def test_corrupt_and_foreign_files_are_refused(model: PemsModel, tmp_path: Path) -> None:
    path = tmp_path / "m.pems"
    save_model(model, path)
    data = path.read_bytes()
    path.write_bytes(data[:-10])  # truncated
    with pytest.raises(CheckpointError, match="checksum"):
        load_model(path)
    path.write_bytes(b"a,b\n1,2\n")
    with pytest.raises(CheckpointError, match="not a StackWatch PEMS model"):
        load_model(path)
    path.write_bytes(MAGIC + b"{not json\n")
    with pytest.raises(CheckpointError, match="unreadable checkpoint header"):
        load_model(path)
    with pytest.raises(CheckpointError, match="cannot read model"):
        load_model(tmp_path / "missing.pems")


def test_an_unfitted_model_is_not_saved(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="unfitted"):
        save_model(PemsModel(FEATURES, "nox"), tmp_path / "m.pems")
    assert not list(tmp_path.iterdir())
