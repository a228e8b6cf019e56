"""Preview a retrieved update set: run the checklist of :mod:`._checks`, record the problems.

The local facts the checker needs are read with a few set-wise queries (never one
per entry, :mod:`._facts`). A batch parent is previewed with all its children; the
batch is judged as one (see :mod:`._batchcheck`). Preview seals what it found
(:mod:`._seal`); commit, in its own transaction, takes the sealed result only while
every input reads the same and no time the checks turn on has come (:func:`sealed`),
and otherwise runs :func:`check` again before it applies anything.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, replace
from types import MappingProxyType

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from .._types import new_sys_id
from ..crypto import MasterKey
from ..errors import NotFoundError, TrustcircleError
from ..platform.context import Operation
from ..platform.rows import CERTIFICATE_TABLE
from ..signing import SIGNATURE_TABLE, SignatureRecord
from ..signing.receipts import PURPOSE as RECEIPTS
from ..signing.receipts import Receipts
from ..store.bulk import chunks
from ..store.models import PreviewProblem, RemoteUpdateSet
from . import _batchcheck, _checks, _facts, _parsing, _seal
from ._results import EntryResult, ParsedEntry, PreviewResult, Problem
from ._seal import InputDigest

LOADED = "loaded"
PREVIEWED = "previewed"
COMMITTED = "committed"
_COPIED: _parsing.Fields = MappingProxyType({})  # commit copies these fields in SQL
_READ_AT_COMMIT = frozenset({CERTIFICATE_TABLE, _checks.REVOCATION_TABLE})  # commit reads these
_END = _seal.EntryPlan(False, False, False, "end")  # past the last sealed plan

__all__ = [
    "COMMITTED",
    "PREVIEWED",
    "Checked",
    "Keys",
    "PreviewResult",
    "check",
    "get_retrieved",
    "preview_set",
    "sealed",
]


def preview_set(op: Operation, set_id: str) -> PreviewResult:
    """Check retrieved set *set_id* (a batch parent: the whole batch), replace its problem
    records, receipts and seal, and mark it previewed (a committed set is only reported on)."""
    row = get_retrieved(op.session, set_id)
    keys = Keys.of(op)
    receipts = keys.receipts_of(row)
    checked = check(op.session, row, op.now, receipts=receipts)
    result = checked.result
    store_problems(op.session, result, accepted=False)
    if row.state != COMMITTED:
        row.receipts = receipts.stored() or None
        row.preview_seal = checked.seal().stored(keys.seal)
    for sid in _set_ids(result):
        target = op.session.get(RemoteUpdateSet, sid)
        if target is not None and target.state != COMMITTED:
            target.state = PREVIEWED
            target.previewed_on = op.ts
    result = _previewed(result)
    op.target = f"{row.name} ({row.sys_id})"
    op.detail = {
        "update_set": row.sys_id,
        "entries": result.entry_count,
        "circle_of_trust": result.cot,
        "manifest": result.manifest.verdict.value,
        "blocking": len(result.blocking),
        "acceptable": len(result.acceptable),
        "children": len(result.children),
    }
    return result


def _previewed(result: PreviewResult) -> PreviewResult:
    state = result.state if result.state == COMMITTED else PREVIEWED
    children = tuple(map(_previewed, result.children))
    return replace(result, state=state, children=children, parsed=())


def get_retrieved(session: Session, set_id: str) -> RemoteUpdateSet:
    row = session.get(RemoteUpdateSet, set_id)
    if row is None:
        raise NotFoundError(
            f"no retrieved update set {set_id}: list them with `trustcircle updateset list` "
            "or import the file with `trustcircle updateset import FILE`"
        )
    return row


@dataclass(frozen=True)
class Keys:
    """This instance's keys for verification receipts and preview seals."""

    receipts: bytes
    seal: bytes

    @classmethod
    def of(cls, op: Operation) -> Keys:
        """Both keys, derived from the master key (read once)."""
        master = MasterKey.load(op.instance.master_key_path)
        return cls(master.derive(RECEIPTS), master.derive(_seal.PURPOSE))

    def receipts_of(self, row: RemoteUpdateSet) -> Receipts:
        """The verification receipts the last preview of *row* stored."""
        return Receipts.parse(self.receipts, row.receipts)


def check(
    session: Session,
    row: RemoteUpdateSet,
    now: dt.datetime,
    *,
    receipts: Receipts | None = None,
    context: _facts.Context | None = None,
) -> Checked:
    """Run the checklist on *row* and, when it is a batch parent, on every child with it.

    The result keeps the parsed entries for commit to apply. Signatures a receipt
    vouches for are not verified again; the ones verified are added to it. The
    returned :class:`Checked` also says what a seal of the result binds. *context*, when
    given, was read in this transaction at *now*.
    """
    context = context or _facts.Context.read(session, now)
    digest = InputDigest()
    parts = [_facts.read_input(session, r, context, digest) for r in _parts(session, row)]
    set_ids = [p.header.sys_id for p in parts]
    targets = {sid for p in parts for sid in p.parsed.targets}
    documents = {sid for p in parts for sid in p.parsed.documents} - targets
    signed = {t for p in parts for t in p.parsed.signed_targets}
    facts = _facts.read_facts(session, set_ids, context, documents, signed)
    _facts.digest_facts(facts, context, digest)
    parent, *rest = _checks.check_sets(parts, facts, now, for_commit=True, receipts=receipts)
    until = _seal.horizon(now, *_facts.stamps(parts, facts))
    top = _batchcheck.combine(parent, rest)
    if not rest and not row.parent:
        top = _batchcheck.standalone(top)
    return Checked(top, digest.hexdigest(), now, until)


@dataclass(frozen=True)
class Checked:
    """A check's result, the digest of its inputs, when it ran and until when it holds."""

    result: PreviewResult
    inputs: str
    checked_at: dt.datetime
    until: dt.datetime | None

    def seal(self) -> _seal.Seal:
        return _seal.Seal(
            self.result.set_id, self.inputs, self.checked_at, self.until, _seal.encode(self.result)
        )


def sealed(
    session: Session,
    row: RemoteUpdateSet,
    now: dt.datetime,
    key: bytes,
    context: _facts.Context | None = None,
) -> Checked | None:
    """What the last preview of *row* found, with parsed entries for commit, when its seal
    holds: the MAC, the time, and the digest of every input as read now. Else None.

    The result holds the problems and each entry's plan, not the per-entry verdicts.
    """
    seal = _seal.Seal.parse(key, row.sys_id, row.preview_seal)
    if seal is None or not _seal.holds(seal.checked_at, seal.until, now):
        return None
    try:
        top = _seal.decode(seal.plan)
    except (ValueError, KeyError, TypeError):
        return None
    sealed_parts = {p.result.set_id: p for p in (top, *top.children)}
    context = context or _facts.Context.read(session, now)
    digest = InputDigest()
    built: dict[str, PreviewResult] = {}
    documents: set[str] = set()
    signed: set[tuple[str, str]] = set()
    for part in _parts(session, row):
        _facts.digest_header(part, digest)
        sealed_part = sealed_parts.get(part.sys_id)
        if sealed_part is None:
            return None
        rows = _facts.digested(_facts.entries(session, part.sys_id), digest)
        result = _rebuilt(sealed_part, rows, signed, documents)
        if result is None:
            return None
        built[part.sys_id] = result
    documents -= {target for _table, target in signed}
    facts = _facts.read_facts(session, list(built), context, documents, signed)
    _facts.digest_facts(facts, context, digest)
    if digest.hexdigest() != seal.inputs or set(built) != set(sealed_parts):
        return None
    children = tuple(built[c.result.set_id] for c in top.children)
    result = replace(built[top.result.set_id], children=children)
    return Checked(result, seal.inputs, seal.checked_at, seal.until)


def _rebuilt(
    part: _seal.SealedPart,
    rows: Iterable[_parsing.StoredEntry],
    signed: set[tuple[str, str]],
    documents: set[str],
) -> PreviewResult | None:
    """One part's sealed result with its entries and parsed entries, from its rows in
    order (None: the rows are not the ones sealed, which the digest then tells too)."""
    entries: list[EntryResult] = []
    parsed: list[ParsedEntry] = []
    plans = iter(part.plans)
    for e in rows:
        signed.add((e.table, e.target_sys_id))
        plan = next(plans, _END)
        if plan is _END:
            return None
        entries.append(
            EntryResult(
                e.sys_id,
                e.table,
                e.target_sys_id,
                e.action,
                problems=part.problems.get(e.sys_id, ()),
            )
        )
        if plan is None:
            continue
        entry = _replanned(e, plan)
        if entry is None:
            return None
        parsed.append(entry)
        if entry.signature is not None:
            documents.add(entry.signature.document_id)
    if next(plans, _END) is not _END:
        return None
    return replace(part.result, entries=tuple(entries), parsed=tuple(parsed))


def _replanned(e: _parsing.StoredEntry, plan: _seal.EntryPlan) -> ParsedEntry | None:
    """The entry ready to apply, from its stored row and its sealed plan (None: the row no
    longer is what was sealed, which the digest then tells as well)."""
    if e.fields is None:
        return None
    signature = None
    fields: _parsing.Fields | None
    if e.table == SIGNATURE_TABLE:
        values = _parsing.loads(e.fields)
        if values is None:
            return None
        try:
            signature = SignatureRecord.from_fields(e.target_sys_id, values)
        except TrustcircleError:
            return None
        fields = _parsing.IN_SIGNATURE
    elif plan.stored and not plan.exists and e.table not in _READ_AT_COMMIT:
        fields = _COPIED
    else:
        fields = _parsing.loads(e.fields)
    if fields is None:
        return None
    return ParsedEntry(
        e.sys_id,
        e.table,
        e.target_sys_id,
        e.action,
        fields,
        signature,
        plan.exists,
        plan.same_as,
        plan.friend,
        plan.stored,
    )


def _parts(session: Session, row: RemoteUpdateSet) -> list[RemoteUpdateSet]:
    """*row* and its batch children, in the order a check reads them."""
    children = session.scalars(
        select(RemoteUpdateSet)
        .where(RemoteUpdateSet.parent == row.sys_id)
        .order_by(RemoteUpdateSet.name)
    )
    return [row, *children]


def store_problems(session: Session, result: PreviewResult, *, accepted: bool) -> None:
    """Replace the problem records of the set and its children with *result*'s."""
    status = "accepted" if accepted else "open"
    session.execute(
        delete(PreviewProblem).where(PreviewProblem.remote_update_set.in_(_set_ids(result)))
    )
    rows = [
        _problem_row(part.set_id, p, status)
        for part in (result, *result.children)
        for p in part.problems
    ]
    for chunk in chunks(rows, 1000):
        session.execute(insert(PreviewProblem), chunk)


def _problem_row(set_id: str, p: Problem, status: str) -> dict[str, object]:
    return {
        "sys_id": new_sys_id(),
        "remote_update_set": set_id,
        "entry": p.entry,
        "type": p.type,
        "description": p.description[:4000],
        "blocking": p.blocking,
        "status": "open" if p.blocking else status,
    }


def _set_ids(result: PreviewResult) -> list[str]:
    return [result.set_id, *(c.set_id for c in result.children)]
