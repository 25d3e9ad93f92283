"""Save and restore a :class:`~stream.pems.model.PemsModel` (its full online state).

River models pickle, but a pickle is tied to the River version that wrote it, and a model is
only meaningful for the feature schema it was trained on. A checkpoint is therefore::

    stackwatch-pems\\n
    {"format": 1, "river": "0.26.1", "features": [...], "target": "NOX", ...}\\n
    <pickle of the model>

and :func:`load_model` refuses, with a message saying what differs, a file of another format,
another River version, another schema than the caller expects, or whose payload does not
match the SHA-256 in its header (a truncated or altered file). Checkpoints are local artefacts
written by this code; like every pickle, never load one from an untrusted source.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stream.pems.model import PemsModel, river_version

MAGIC = b"stackwatch-pems\n"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: unreadable, corrupt, or of another version/schema."""


def save_model(model: PemsModel, path: Path) -> None:
    """Write ``model`` to ``path`` atomically (a crash never leaves half a checkpoint)."""
    if not model.fitted:
        raise CheckpointError("an unfitted model has nothing to checkpoint")
    payload = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    header = {
        "format": FORMAT_VERSION,
        "river": river_version(),
        "features": list(model.features),
        "target": model.target,
        "algorithm": model.algorithm,
        "model_version": model.model_version,
        "sha256": hashlib.sha256(payload).hexdigest(),
    }
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        f.write(MAGIC)
        f.write(json.dumps(header).encode() + b"\n")
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def read_header(path: Path) -> dict[str, Any]:
    """The header of the checkpoint at ``path`` (without unpickling anything)."""
    return _split(path)[0]


def load_model(
    path: Path, *, features: Sequence[str] | None = None, target: str | None = None
) -> PemsModel:
    """The model saved at ``path``; ``features``/``target``, if given, must match its schema."""
    header, payload = _split(path)
    if header.get("format") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {header.get('format')!r}, this version reads "
            f"{FORMAT_VERSION}; refit the model"
        )
    if header.get("river") != river_version():
        raise CheckpointError(
            f"{path}: written with river {header.get('river')}, installed river is "
            f"{river_version()}; pickled River models are tied to their version, refit the model"
        )
    if features is not None and list(features) != header.get("features"):
        raise CheckpointError(
            f"{path}: model features {header.get('features')} differ from {list(features)}"
        )
    if target is not None and target != header.get("target"):
        raise CheckpointError(f"{path}: model target {header.get('target')!r}, not {target!r}")
    if hashlib.sha256(payload).hexdigest() != header.get("sha256"):
        raise CheckpointError(f"{path}: payload does not match its checksum (corrupt file)")
    model = pickle.loads(payload)  # noqa: S301 - our own checksummed checkpoint, see docstring
    if not isinstance(model, PemsModel):
        raise CheckpointError(f"{path}: payload is a {type(model).__name__}, not a PemsModel")
    if list(model.features) != header.get("features") or model.target != header.get("target"):
        raise CheckpointError(f"{path}: payload schema differs from its header")
    return model


def _split(path: Path) -> tuple[dict[str, Any], bytes]:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise CheckpointError(f"cannot read model {path}: {err.strerror or err}") from None
    if not data.startswith(MAGIC):
        raise CheckpointError(f"{path} is not a StackWatch PEMS model")
    line_end = data.find(b"\n", len(MAGIC))
    try:
        header = json.loads(data[len(MAGIC) : line_end]) if line_end >= 0 else None
    except ValueError:  # includes UnicodeDecodeError
        header = None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: unreadable checkpoint header")
    return header, data[line_end + 1 :]
