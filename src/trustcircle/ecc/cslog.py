"""The Code Signing log: what the tracker decided on the instance and what MIDs reported.

Entries come from the instance (``source`` = ``instance``: unsigned scripts behind an
ECC message, refused enqueues, direct inserts, tracking exclusions) and from MID servers
(``source`` = ``mid.server.<name>``: execution denials, firewall accept exceptions,
audit-mode findings, refused policy statements). :func:`add_durable` keeps an entry even
when the surrounding transaction rolls back (a refused enqueue usually fails its job).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from .._types import Timestamp, new_sys_id
from ..errors import UsageError
from ..store import Database
from ..store.models import CodeSigningLogEntry

INSTANCE = "instance"
LEVELS = ("info", "warn", "error")
MAX_MESSAGE_CHARS = 8000
MAX_LIST = 10_000
_EVENT = re.compile(r"[a-z][a-z0-9_]{0,59}")
_KEYS = ("level", "source", "event", "message", "ecc", "agent", "topic", "reported_at")


@dataclass(frozen=True)
class Entry:
    """One log entry to write."""

    level: str
    source: str
    event: str
    message: str
    ecc: str = ""
    agent: str = ""
    topic: str = ""
    reported_at: str = ""
    reported_by: str = ""

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise UsageError(f"log level {self.level[:20]!r} is not info, warn or error")
        if not _EVENT.fullmatch(self.event):
            raise UsageError(f"log event {self.event[:60]!r} is not a lowercase_name")


def add(session: Session, entry: Entry, now: Timestamp) -> CodeSigningLogEntry:
    row = CodeSigningLogEntry(
        sys_id=new_sys_id(),
        created_on=now,
        level=entry.level,
        source=entry.source[:120],
        event=entry.event,
        message=entry.message[:MAX_MESSAGE_CHARS],
        ecc=entry.ecc[:32],
        agent=entry.agent[:120],
        topic=entry.topic[:100],
        reported_at=entry.reported_at[:20],
        reported_by=entry.reported_by[:100],
    )
    session.add(row)
    return row


def add_durable(
    session: Session, database: Database, entry: Entry, now: Timestamp
) -> CodeSigningLogEntry:
    """Add *entry*; if the transaction rolls back, write it again in one of its own."""
    row = add(session, entry, now)
    values = {k: getattr(row, k) for k in ("sys_id", "created_on", *_KEYS, "reported_by")}

    def rescue(_session: Session) -> None:
        with database.transaction() as fresh:
            fresh.add(CodeSigningLogEntry(**values))

    event.listen(session, "after_rollback", rescue, once=True)
    return row


def to_dict(row: CodeSigningLogEntry) -> dict[str, object]:
    return {
        "sys_id": row.sys_id,
        "created_on": row.created_on,
        "level": row.level,
        "source": row.source,
        "event": row.event,
        "message": row.message,
        "ecc": row.ecc,
        "agent": row.agent,
        "topic": row.topic,
        "reported_at": row.reported_at,
        "reported_by": row.reported_by,
    }


def list_entries(
    session: Session,
    *,
    source: str | None = None,
    event_name: str | None = None,
    ecc: str | None = None,
    limit: int = 1000,
) -> list[dict[str, object]]:
    """Entries matching the filters, newest first."""
    if not 1 <= limit <= MAX_LIST:
        raise UsageError(f"limit must be between 1 and {MAX_LIST}")
    stmt = select(CodeSigningLogEntry)
    filters: Mapping[str, str | None] = {"source": source, "event": event_name, "ecc": ecc}
    for column, value in filters.items():
        if value:
            stmt = stmt.where(getattr(CodeSigningLogEntry, column) == value)
    stmt = stmt.order_by(CodeSigningLogEntry.created_on.desc(), CodeSigningLogEntry.sys_id).limit(
        limit
    )
    return [to_dict(r) for r in session.scalars(stmt)]
