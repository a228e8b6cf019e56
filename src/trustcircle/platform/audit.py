"""The append-only, hash-chained audit log.

Entry *n* stores ``prev_hash`` (the hash of entry *n-1*, 64 zeros for the first)
and ``hash = SHA-256(canonical JSON of its own fields, prev_hash included)``.
Sequence numbers are dense, so a deleted entry leaves a gap or a broken link, and
an edited entry no longer matches its hash. ``sys_audit_head`` names the newest
entry; appends lock it (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite
transactions are already exclusive), so concurrent writers cannot fork the chain.
Truncation of the newest entries together with the head row is only visible
against a head recorded elsewhere: ``audit verify --head HASH``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from .._types import Timestamp
from ..store.models import AuditEntry, AuditHead

GENESIS = "0" * 64
OK = "ok"
REFUSED = "refused"


def _digest(entry: Mapping[str, object]) -> str:
    body = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def _fields(e: AuditEntry) -> dict[str, object]:
    return {
        "seq": e.seq,
        "at": e.at,
        "actor": e.actor,
        "action": e.action,
        "target": e.target,
        "outcome": e.outcome,
        "detail": e.detail,
        "prev_hash": e.prev_hash,
    }


def append(
    session: Session,
    *,
    at: Timestamp,
    actor: str,
    action: str,
    target: str,
    outcome: str,
    detail: Mapping[str, object] | None = None,
) -> AuditEntry:
    """Append one entry in *session*'s transaction (it commits or rolls back with the change)."""
    head = session.execute(
        select(AuditHead).where(AuditHead.id == 1).with_for_update()
    ).scalar_one_or_none()
    if head is None:
        head = AuditHead(id=1, seq=0, hash=GENESIS)
        session.add(head)
    entry = AuditEntry(
        seq=head.seq + 1,
        at=at,
        actor=actor,
        action=action,
        target=target[:2000],
        outcome=outcome,
        detail=json.dumps(dict(detail or {}), sort_keys=True, default=str)[:20000],
        prev_hash=head.hash,
    )
    entry.hash = _digest(_fields(entry))
    session.add(entry)
    head.seq = entry.seq
    head.hash = entry.hash
    session.flush()
    return entry


@dataclass
class AuditReport:
    """Result of :func:`verify`: every problem found, with the entry it concerns."""

    entries: int = 0
    head: str = GENESIS
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "head": self.head,
            "problems": self.problems,
        }


def verify(session: Session, expected_head: str | None = None) -> AuditReport:
    """Walk the whole chain and report every edited, inserted or deleted entry."""
    report = AuditReport()
    prev_hash, expected_seq = GENESIS, 1
    for e in session.scalars(select(AuditEntry).order_by(AuditEntry.seq)).yield_per(1000):
        report.entries += 1
        if e.seq != expected_seq:
            report.problems.append(
                f"entries {expected_seq}..{e.seq - 1} are missing (deleted from the log)"
            )
        if e.prev_hash != prev_hash:
            report.problems.append(f"entry {e.seq} does not link to the entry before it")
        if _digest(_fields(e)) != e.hash:
            report.problems.append(
                f"entry {e.seq} was edited: its content no longer matches its hash"
            )
        prev_hash, expected_seq = e.hash, e.seq + 1
    report.head = prev_hash
    head = session.get(AuditHead, 1)
    if head is not None and (head.seq != expected_seq - 1 or head.hash != prev_hash):
        report.problems.append(
            f"the newest entries were removed: the head names entry {head.seq}, "
            f"the log ends at {expected_seq - 1}"
        )
    if expected_head is not None and expected_head != prev_hash:
        report.problems.append(
            f"the log does not end at the head you recorded ({expected_head[:16]}...): "
            "entries were removed or rewritten"
        )
    return report
