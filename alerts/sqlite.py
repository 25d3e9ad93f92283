"""The SQLite file shared by the alert stores (alerts, silences, notification log).

One connection per store, autocommit mode (stores open their own ``BEGIN IMMEDIATE``
transactions), WAL so readers never block the writer, usable from any thread behind the
store's own lock.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path


def open_db(path: str | Path, schema: str) -> sqlite3.Connection:
    """Open (creating the folder and file if missing) and apply ``schema`` (idempotent DDL)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.executescript(schema)
    return db
