"""Replay protection: an ECC message id executes at most once (SQLite in ``work_dir``).

An id is remembered until its notarization has expired; after that a copy of the message
fails the freshness check anyway, so the entry is pruned.
"""

from __future__ import annotations

import datetime as _dt
import threading
from pathlib import Path

from trustcircle.errors import VerificationError

from ._store import open_store

REPLAY_FILE = "replay.sqlite3"


class ReplayError(VerificationError):
    """The message id was executed before: refused in every firewall mode."""


class ReplayStore:
    """Message ids already executed, each with the time until which it must be kept."""

    def __init__(self, work_dir: Path) -> None:
        self.path = Path(work_dir) / REPLAY_FILE
        self._lock = threading.Lock()
        self._db = open_store(
            self.path,
            "CREATE TABLE IF NOT EXISTS executed "
            "(sys_id TEXT PRIMARY KEY, keep_until INTEGER NOT NULL)",
            "replay store",
            "the MID then forgets which messages it has executed",
        )

    def claim(self, sys_id: str, keep_until: _dt.datetime) -> None:
        """Record *sys_id* as executed; :class:`VerificationError` if it already was."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO executed (sys_id, keep_until) VALUES (?, ?)",
                (sys_id, int(keep_until.timestamp())),
            )
        if cursor.rowcount != 1:
            raise ReplayError(f"message {sys_id} was already executed (replay)")

    def prune(self, now: _dt.datetime) -> int:
        """Forget ids whose keep-until time has passed; return how many."""
        with self._lock:
            cursor = self._db.execute(
                "DELETE FROM executed WHERE keep_until < ?", (int(now.timestamp()),)
            )
        return cursor.rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()
