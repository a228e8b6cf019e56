"""The MID's small local SQLite stores (outbox, replay record), opened one way."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ..errors import BadInputError


def open_store(path: Path, schema: str, what: str, consequence: str) -> sqlite3.Connection:
    """Open (creating) the store at *path* with *schema*; every commit reaches the disk.

    ``synchronous=FULL``: a replay record or an undelivered result lost to a power cut
    would let a message run twice or lose its result.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute(schema)
    except sqlite3.DatabaseError as exc:
        raise BadInputError(
            f"MID {what} {str(path)!r} cannot be opened ({exc}): restore it or move it away "
            f"({consequence})"
        ) from exc
    return db
