"""Local and retrieved update sets side by side, as lists and ``show`` present them.

Every set is a dict with at least ``kind`` ("local" | "retrieved"), ``sys_id``,
``name``, ``description``, ``state``, ``origin_instance`` (this instance's name for a
local set), ``parent``, ``created_on`` and ``entries``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..errors import NotFoundError
from ..store.models import CurrentUpdateSet, RemoteUpdateSet, RemoteUpdateXml, UpdateSet, UpdateXml
from .manifest import payload_sha512

LOCAL = "local"
RETRIEVED = "retrieved"


@dataclass(frozen=True)
class SetDetail:
    """One set and its entries (without payloads, which can be large)."""

    summary: dict[str, object]
    entries: list[dict[str, object]]

    def to_dict(self) -> dict[str, object]:
        return {**self.summary, "entry_list": self.entries}


def _local(row: UpdateSet, instance: str, entries: int, current: bool) -> dict[str, object]:
    return {
        "kind": LOCAL,
        "sys_id": row.sys_id,
        "name": row.name,
        "description": row.description,
        "state": row.state,
        "origin_instance": instance,
        "parent": row.parent,
        "created_on": row.created_on,
        "created_by": row.created_by,
        "entries": entries,
        "current": current,
    }


def _retrieved(row: RemoteUpdateSet) -> dict[str, object]:
    return {
        "kind": RETRIEVED,
        "sys_id": row.sys_id,
        "name": row.name,
        "description": row.description,
        "state": row.state,
        "origin_instance": row.origin_instance,
        "parent": row.parent,
        "created_on": row.created_on,
        "entries": row.entry_count,
        "imported_on": row.imported_on,
        "imported_by": row.imported_by,
        "file_sha256": row.file_sha256,
        "signed": row.sig_signature is not None,
        "sig_certificate": row.sig_certificate,
        "sig_signed_at": row.sig_signed_at,
        "sig_expires_at": row.sig_expires_at,
        "previewed_on": row.previewed_on,
        "committed_on": row.committed_on,
        "committed_by": row.committed_by,
    }


def _current_of(session: Session, user_id: str | None) -> str | None:
    if user_id is None:
        return None
    pref = session.get(CurrentUpdateSet, user_id)
    return pref.update_set if pref else None


def list_all(
    session: Session, instance: str, user_id: str | None = None
) -> list[dict[str, object]]:
    """Every local set (oldest first), then every retrieved set (oldest import first).

    ``current`` marks the local set capturing *user_id*'s changes.
    """
    stmt = select(UpdateXml.update_set, func.count()).group_by(UpdateXml.update_set)
    counts: dict[str, int] = {set_id: count for set_id, count in session.execute(stmt)}
    current = _current_of(session, user_id)
    local = [
        _local(row, instance, counts.get(row.sys_id, 0), row.sys_id == current)
        for row in session.scalars(select(UpdateSet).order_by(UpdateSet.created_on, UpdateSet.name))
    ]
    remote = [
        _retrieved(row)
        for row in session.scalars(
            select(RemoteUpdateSet).order_by(RemoteUpdateSet.imported_on, RemoteUpdateSet.name)
        )
    ]
    return local + remote


def local_summary(
    session: Session, instance: str, row: UpdateSet, user_id: str | None = None
) -> dict[str, object]:
    """The summary :func:`describe` gives of local set *row*, without reading its entries."""
    count = session.scalar(
        select(func.count()).select_from(UpdateXml).where(UpdateXml.update_set == row.sys_id)
    )
    return _local(row, instance, count or 0, _current_of(session, user_id) == row.sys_id)


def describe(session: Session, instance: str, set_id: str, user_id: str | None = None) -> SetDetail:
    """The local or retrieved set *set_id* with its entries in sys_id order."""
    local = session.get(UpdateSet, set_id)
    if local is not None:
        rows = session.execute(
            select(
                UpdateXml.sys_id,
                UpdateXml.table_name,
                UpdateXml.target_sys_id,
                UpdateXml.action,
                UpdateXml.payload,
            )
            .where(UpdateXml.update_set == set_id)
            .order_by(UpdateXml.sys_id)
        )
        entries = [
            _entry(sid, table, target, action, payload_sha512(payload, sid))
            for sid, table, target, action, payload in rows
        ]
        current = _current_of(session, user_id) == set_id
        return SetDetail(_local(local, instance, len(entries), current), entries)
    remote = session.get(RemoteUpdateSet, set_id)
    if remote is None:
        raise NotFoundError(
            f"no local or retrieved update set {set_id}: "
            "list them with `trustcircle updateset list`"
        )
    found = session.execute(
        select(
            RemoteUpdateXml.sys_id,
            RemoteUpdateXml.table_name,
            RemoteUpdateXml.target_sys_id,
            RemoteUpdateXml.action,
            RemoteUpdateXml.payload_sha512,
        )
        .where(RemoteUpdateXml.remote_update_set == set_id)
        .order_by(RemoteUpdateXml.sys_id)
    )
    return SetDetail(_retrieved(remote), [_entry(*row) for row in found])


def _entry(sid: str, table: str, target: str, action: str, digest: str) -> dict[str, object]:
    return {
        "sys_id": sid,
        "table": table,
        "target_sys_id": target,
        "action": action,
        "payload_sha512": digest,
    }
