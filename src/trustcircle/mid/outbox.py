"""The persistent outbox: results and log entries waiting for the instance (SQLite).

A result is written here before anything is sent, and removed only once the instance
has acknowledged it, so a MID that cannot reach its instance (or is restarted) loses
nothing. Entries the instance refuses for good (4xx) are kept as ``dead`` for the operator.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._store import open_store

OUTBOX_FILE = "outbox.sqlite3"
RESULT = "result"
LOG = "log"


@dataclass(frozen=True)
class OutboxItem:
    id: int
    kind: str
    key: str
    body: dict[str, Any]


class Outbox:
    """Pending deliveries, oldest first; thread-safe."""

    def __init__(self, work_dir: Path) -> None:
        self.path = Path(work_dir) / OUTBOX_FILE
        self._lock = threading.Lock()
        self._db = open_store(
            self.path,
            "CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, "
            "kind TEXT NOT NULL, key TEXT NOT NULL, body TEXT NOT NULL, "
            "dead TEXT NOT NULL DEFAULT '')",
            "outbox",
            "undelivered results in it would be lost",
        )

    def put(self, kind: str, key: str, body: dict[str, Any]) -> None:
        text = json.dumps(body, sort_keys=True)
        with self._lock:
            self._db.execute(
                "INSERT INTO outbox (kind, key, body) VALUES (?, ?, ?)", (kind, key, text)
            )

    def pending(self, limit: int) -> list[OutboxItem]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, kind, key, body FROM outbox WHERE dead = '' ORDER BY id LIMIT ?",
                (limit,),
            ).fetchall()
        return [OutboxItem(r[0], r[1], r[2], json.loads(r[3])) for r in rows]

    def done(self, ids: list[int]) -> None:
        if not ids:
            return
        with self._lock:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                self._db.execute(f"DELETE FROM outbox WHERE id IN ({marks})", chunk)  # noqa: S608

    def bury(self, item_id: int, reason: str) -> None:
        """Keep an entry the instance refused for good, out of the delivery queue."""
        with self._lock:
            self._db.execute(
                "UPDATE outbox SET dead = ? WHERE id = ?", (reason[:500] or "refused", item_id)
            )

    def count(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT count(*) FROM outbox WHERE dead = ''").fetchone()
        return int(row[0])

    def dead_count(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT count(*) FROM outbox WHERE dead != ''").fetchone()
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
