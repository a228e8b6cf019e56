"""Commit a retrieved update set: every entry, all or nothing, in the operation's transaction.

The checks of preview run again first, on the state inside this transaction (it may
have changed since preview): while a blocking problem exists, or an acceptable one
is not accepted with ``accept_remote``, nothing is applied and the refusal is audited
by the operation. While preview's seal holds — every input reads as preview read it
and no time the checks turn on has come (:mod:`._seal`) — its sealed result is that
check; otherwise the checks run in full, sparing only the public-key work for the
signatures preview's receipts vouch for (:mod:`trustcircle.signing.receipts`). A
batch parent commits with all its children.
Generic records and signatures are written with bulk statements; certificates go through
:mod:`trustcircle.platform.rows`, and those of a Circle-of-Trust set join the trusted
friends list; a revocation request (:mod:`trustcircle.cot.revoke`), which the checklist
found signed by a current trusted friend, revokes its certificate. Protected properties
never change here: ``sys_properties`` is no table an update set may write (preview
blocks it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Insert, Table, bindparam, delete, literal, select, update

from .._types import SysId
from ..cot.friends import add_friend
from ..cot.revoke import apply_requests, check_requests
from ..errors import PolicyError, VerificationError
from ..platform import rows
from ..platform.context import Operation
from ..signing import SIGNATURE_TABLE
from ..store.bulk import chunks, insert_many
from ..store.models import (
    Certificate,
    RecordSignatureRow,
    RemoteUpdateSet,
    RemoteUpdateXml,
    SysRecord,
    fields_json,
)
from . import _results as r
from ._facts import Context
from .preview import (
    COMMITTED,
    Keys,
    check,
    get_retrieved,
    sealed,
    store_problems,
)
from .xmlformat import ACTION_DELETE

_CHUNK = 1000
_SHOWN = 3
_RECORDS = cast(Table, SysRecord.__table__)
_SIGNATURES = cast(Table, RecordSignatureRow.__table__)
_ENTRIES = cast(Table, RemoteUpdateXml.__table__)
_RECORD_COLUMNS = (
    "sys_id",
    "table_name",
    "fields",
    "created_on",
    "updated_on",
    "created_by",
    "updated_by",
    "mod_count",
)


@dataclass
class CommitResult:
    """What a commit applied."""

    set_id: str
    name: str
    cot: bool
    entries: int = 0
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    signatures: int = 0
    certificates: int = 0
    accepted: int = 0
    children: int = 0
    friends: list[str] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sys_id": self.set_id,
            "name": self.name,
            "state": COMMITTED,
            "circle_of_trust": self.cot,
            "entries": self.entries,
            "inserted": self.inserted,
            "updated": self.updated,
            "deleted": self.deleted,
            "signatures": self.signatures,
            "certificates": self.certificates,
            "accepted_problems": self.accepted,
            "children": self.children,
            "friends_added": list(self.friends),
            "friends_revoked": list(self.revoked),
        }


def commit_set(op: Operation, set_id: str, accept_remote: bool) -> CommitResult:
    """Check retrieved set *set_id* again and apply all of it, or refuse and apply nothing."""
    row = get_retrieved(op.session, set_id)
    op.target = f"{row.name} ({row.sys_id})"
    if row.parent and op.session.get(RemoteUpdateSet, row.parent) is not None:
        raise PolicyError(
            f"{row.name!r} is one part of batch {row.parent}: commit the whole batch with "
            f"`trustcircle updateset commit {row.parent}`"
        )
    if row.parent:
        raise PolicyError(
            f"{row.name!r} is one part of batch {row.parent}, whose parent file is not "
            "imported: import the parent file too, then commit the batch"
        )
    parts = [
        row,
        *op.session.scalars(select(RemoteUpdateSet).where(RemoteUpdateSet.parent == set_id)),
    ]
    for part in parts:
        if part.state == COMMITTED:
            raise PolicyError(
                f"{part.name!r} ({part.sys_id}) is already committed (on {part.committed_on} by "
                f"{part.committed_by}): a committed update set cannot be committed again"
            )
    keys = Keys.of(op)
    context = Context.read(op.session, op.now)  # for the seal and, if it fails, the check
    checked = sealed(op.session, row, op.now, keys.seal, context)
    how = "preview's sealed result" if checked is not None else "checked again in full"
    op.detail = {"update_set": row.sys_id, "checks": how}
    if checked is None:
        checked = check(op.session, row, op.now, receipts=keys.receipts_of(row), context=context)
    result = checked.result
    _refuse_unless_committable(result, accept_remote)
    parts = [result, *result.children]
    revocations = check_requests([p for part in parts for p in part.parsed])
    store_problems(op.session, result, accepted=accept_remote)
    done = CommitResult(result.set_id, result.name, result.cot, accepted=len(result.acceptable))
    via = f"{result.name} ({result.set_id})"
    for part in parts:
        _apply(op, part.set_id, part.parsed, done, via if result.cot else None)
        target = op.session.get(RemoteUpdateSet, part.set_id)
        assert target is not None
        target.state = COMMITTED
        target.committed_on = op.ts
        target.committed_by = op.actor.name
        target.accepted_remote = bool(accept_remote and result.acceptable)
        target.receipts = target.preview_seal = None  # they served their purpose
    done.revoked = apply_requests(op.session, revocations, via, op.actor.name, op.ts)
    done.children = len(result.children)
    op.detail = {"update_set": result.set_id, "checks": how, **done.to_dict()}
    return done


def _refuse_unless_committable(result: r.PreviewResult, accept_remote: bool) -> None:
    blocking = result.blocking
    if blocking:
        raise VerificationError(
            f"commit of {result.name!r} refused: {len(blocking)} blocking problem(s): "
            f"{_first(blocking)}: fix the set on its source instance, export and import it again"
        )
    acceptable = result.acceptable
    if acceptable and not accept_remote:
        raise PolicyError(
            f"commit of {result.name!r} refused: {len(acceptable)} problem(s) need acceptance: "
            f"{_first(acceptable)}: review `trustcircle updateset preview {result.set_id}`, "
            "then commit with --accept-remote"
        )


def _first(problems: Sequence[r.Problem]) -> str:
    shown = "; ".join(p.description[:240] for p in problems[:_SHOWN])
    more = len(problems) - _SHOWN
    return shown + (f"; and {more} more" if more > 0 else "")


# -- applying ------------------------------------------------------------------------------


def _apply(
    op: Operation,
    set_id: str,
    parsed: Sequence[r.ParsedEntry],
    done: CommitResult,
    via: str | None,
) -> None:
    """Write every entry of retrieved set *set_id*: rows are built a chunk at a time, never
    all at once, and new records' JSON is copied from the entries in SQL."""
    session, actor, ts = op.session, op.actor.name, op.ts
    new: list[r.ParsedEntry] = []
    changed: list[r.ParsedEntry] = []
    gone: list[str] = []
    sigs: list[r.ParsedEntry] = []
    # A certificate stored here under another sys_id is not written again, so its
    # carried signature records would name a record that does not exist here: skip them.
    skipped = {p.target_sys_id for p in parsed if p.same_as is not None}
    for p in parsed:
        done.entries += 1
        if p.table == SIGNATURE_TABLE:
            if p.signature is None or p.signature.document_id not in skipped:
                sigs.append(p)
        elif p.table == rows.CERTIFICATE_TABLE:
            _apply_certificate(op, p, done, via)
        elif p.action == ACTION_DELETE:
            gone.append(p.target_sys_id)
        else:
            (changed if p.exists else new).append(p)
    for chunk in chunks(sigs, _CHUNK):
        ids = [p.target_sys_id for p in chunk]
        session.execute(delete(RecordSignatureRow).where(RecordSignatureRow.sys_id.in_(ids)))
        insert_many(
            session,
            _SIGNATURES,
            [p.signature.to_fields() for p in chunk if p.signature and p.action != ACTION_DELETE],
        )
    copied = [p for p in new if p.stored]
    for chunk in chunks(copied, _CHUNK):  # the checked JSON, copied as it stands
        session.execute(_copy_records(set_id, [p.sys_id for p in chunk], actor, ts))
    for chunk in chunks([p for p in new if not p.stored], _CHUNK):
        insert_many(session, _RECORDS, [_new_record(p, actor, ts) for p in chunk])
    update_stmt = _UPDATE.values(updated_on=ts, updated_by=actor)
    for chunk in chunks(changed, _CHUNK):
        values = [{"b_id": p.target_sys_id, "b_fields": fields_json(p.fields)} for p in chunk]
        session.connection().execute(update_stmt, values)
    for ids_chunk in chunks(gone, _CHUNK):
        session.execute(delete(SysRecord).where(SysRecord.sys_id.in_(ids_chunk)))
    done.inserted += len(new)
    done.updated += len(changed)
    done.deleted += len(gone)
    done.signatures += len(sigs)


_UPDATE = (
    update(_RECORDS)
    .where(_RECORDS.c.sys_id == bindparam("b_id"))
    .values(fields=bindparam("b_fields"), mod_count=_RECORDS.c.mod_count + 1)
)


def _copy_records(set_id: str, entries: Sequence[str], actor: str, ts: str) -> Insert:
    """Insert the records of *entries* of retrieved set *set_id* with their stored fields:
    the very rows the checks read in this transaction."""
    x = _ENTRIES.c
    return _RECORDS.insert().from_select(
        _RECORD_COLUMNS,
        select(
            x.target_sys_id,
            x.table_name,
            x.fields,
            literal(ts),
            literal(ts),
            literal(actor),
            literal(actor),
            literal(0),
        ).where(x.remote_update_set == set_id, x.sys_id.in_(entries)),
    )


def _new_record(p: r.ParsedEntry, actor: str, ts: str) -> dict[str, Any]:
    return {
        "sys_id": p.target_sys_id,
        "table_name": p.table,
        "fields": fields_json(p.fields),
        "created_on": ts,
        "updated_on": ts,
        "created_by": actor,
        "updated_by": actor,
        "mod_count": 0,
    }


def _apply_certificate(
    op: Operation, p: r.ParsedEntry, done: CommitResult, via: str | None
) -> None:
    done.certificates += 1
    if p.action == ACTION_DELETE:
        rows.delete_fields(op.session, p.table, p.target_sys_id)
        return
    sys_id = p.same_as or p.target_sys_id
    if p.same_as is None:  # else: stored already, under another sys_id
        rows.write_fields(
            op.session, p.table, SysId(p.target_sys_id), dict(p.fields), op.actor.name, op.ts
        )
    cert = op.session.get(Certificate, sys_id)
    if via is not None and p.friend and cert is not None:
        add_friend(op.session, cert, via, op.actor.name, op.ts)
        done.friends.append(cert.fingerprint)
