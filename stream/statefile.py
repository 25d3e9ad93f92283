"""Checkpoint files of the live models: a pickle behind a checked JSON header.

Layout::

    stackwatch-state\\n
    {"kind": "detection", "format": 1, "meta": {...}, "sha256": "..."}\\n
    <pickle>

:func:`load_state` unpickles only a file of the expected kind and format whose ``meta`` equals
what the caller expects (code version, configuration digest, River version) and whose payload
matches its checksum; anything else raises :class:`StateFileError` saying what differs, and
the caller starts fresh. The files are local artefacts written by this code; like every
pickle, never load one from an untrusted source.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "x.state"
>>> save_state(path, "detection", {"v": 1}, {"answer": 42})
>>> load_state(path, "detection", {"v": 1})
{'answer': 42}
>>> load_state(path, "detection", {"v": 2})
Traceback (most recent call last):
...
stream.statefile.StateFileError: ...x.state: saved for v=1, now v=2; starting afresh
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

MAGIC = b"stackwatch-state\n"
FORMAT = 1


class StateFileError(ValueError):
    """A checkpoint that cannot be used: missing, corrupt, or of another version/config."""


def save_state(path: Path, kind: str, meta: Mapping[str, Any], state: object) -> None:
    """Write ``state`` atomically (write, fsync, rename): a crash leaves the old file or the
    new one, never half of one."""
    payload = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
    header = {
        "kind": kind,
        "format": FORMAT,
        "meta": dict(meta),
        "sha256": hashlib.sha256(payload).hexdigest(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        f.write(MAGIC)
        f.write(json.dumps(header, sort_keys=True).encode() + b"\n")
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def load_state(path: Path, kind: str, meta: Mapping[str, Any]) -> Any:
    """The state saved at ``path`` if it is of ``kind`` and was saved with ``meta``."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise StateFileError(f"{path}: no checkpoint") from None
    except OSError as err:
        raise StateFileError(f"{path}: cannot read: {err.strerror or err}") from None
    end = data.find(b"\n", len(MAGIC))
    header: Any = None
    if data.startswith(MAGIC) and end >= 0:
        try:
            header = json.loads(data[len(MAGIC) : end])
        except ValueError:
            header = None
    if not isinstance(header, dict) or header.get("kind") != kind:
        raise StateFileError(f"{path}: not a {kind} checkpoint")
    if header.get("format") != FORMAT:
        raise StateFileError(f"{path}: checkpoint format {header.get('format')!r}")
    saved = header.get("meta", {})
    if saved != dict(meta):
        diff = ", ".join(
            f"saved for {k}={saved.get(k)}, now {k}={meta.get(k)}"
            for k in sorted(set(saved) | set(meta))
            if saved.get(k) != meta.get(k)
        )
        raise StateFileError(f"{path}: {diff}; starting afresh")
    payload = data[end + 1 :]
    if hashlib.sha256(payload).hexdigest() != header.get("sha256"):
        raise StateFileError(f"{path}: payload does not match its checksum (corrupt file)")
    return pickle.loads(payload)  # noqa: S301 - our own checksummed file, see the docstring
