"""Preview a retrieved update set: run the checklist of :mod:`._checks`, record the problems.

The local facts the checker needs are read with a few set-wise queries (never one
per entry). A batch parent is previewed with all its children; the batch is judged
as one (see :mod:`._batchcheck`). :func:`check` is also what commit runs again, in
its own transaction, before it applies anything.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

from cryptography import x509
from sqlalchemy import Select, delete, insert, select
from sqlalchemy.orm import Session

from .._types import Fingerprint, SysId, new_sys_id
from ..crypto import ChainValidator, MasterKey, load_pem_certificates
from ..errors import BadInputError, NotFoundError
from ..platform import kmf, signatures
from ..platform.context import Operation
from ..platform.rows import CERTIFICATE_FIELDS, CERTIFICATE_TABLE
from ..platform.tables import TABLES
from ..signing import (
    CIRCLE_OF_TRUST,
    SIGNATURE_FIELDS,
    SIGNATURE_TABLE,
    CertTrust,
    SignatureConfig,
    SignatureRecord,
)
from ..signing.receipts import PURPOSE as RECEIPTS
from ..signing.receipts import Receipts
from ..store.bulk import chunks
from ..store.models import (
    Certificate,
    PreviewProblem,
    RecordSignatureRow,
    RemoteUpdateSet,
    RemoteUpdateXml,
    SysRecord,
    TrustedFriend,
)
from . import _batchcheck, _checks, _parsing
from ._results import PreviewResult, Problem
from .importer import import_limits
from .xmlformat import ImportLimits, ManifestSignature, UpdateSetHeader

LOADED = "loaded"
PREVIEWED = "previewed"
COMMITTED = "committed"
_IN_CHUNK = 500
_FETCH = 256
_POLICY_TABLE = "cot_policy_statement"

__all__ = [
    "COMMITTED",
    "PREVIEWED",
    "PreviewResult",
    "check",
    "get_retrieved",
    "preview_set",
    "receipts_of",
]


def preview_set(op: Operation, set_id: str) -> PreviewResult:
    """Check retrieved set *set_id* (a batch parent: the whole batch), replace its problem
    records and receipts, and mark it previewed (a committed set is only reported on)."""
    row = get_retrieved(op.session, set_id)
    receipts = receipts_of(op, row)
    result = check(op.session, row, op.now, receipts=receipts)
    store_problems(op.session, result, accepted=False)
    if row.state != COMMITTED:
        row.receipts = receipts.stored() or None
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
    return replace(result, state=state, children=tuple(map(_previewed, result.children)))


def get_retrieved(session: Session, set_id: str) -> RemoteUpdateSet:
    row = session.get(RemoteUpdateSet, set_id)
    if row is None:
        raise NotFoundError(
            f"no retrieved update set {set_id}: list them with `trustcircle updateset list` "
            "or import the file with `trustcircle updateset import FILE`"
        )
    return row


def receipts_of(op: Operation, row: RemoteUpdateSet) -> Receipts:
    """The verification receipts the last preview of *row* stored, under this instance's key."""
    key = MasterKey.load(op.instance.master_key_path).derive(RECEIPTS)
    return Receipts.parse(key, row.receipts)


def check(
    session: Session,
    row: RemoteUpdateSet,
    now: dt.datetime,
    *,
    for_commit: bool = False,
    receipts: Receipts | None = None,
) -> PreviewResult:
    """Run the checklist on *row* and, when it is a batch parent, on every child with it;
    *for_commit* keeps the parsed entries in the result for commit to apply. Signatures
    a receipt vouches for are not verified again; the ones verified are added to it."""
    context = _Context.read(session, now)
    children = list(
        session.scalars(
            select(RemoteUpdateSet)
            .where(RemoteUpdateSet.parent == row.sys_id)
            .order_by(RemoteUpdateSet.name)
        )
    )
    parts = [_input(session, r, context) for r in (row, *children)]
    set_ids = [p.header.sys_id for p in parts]
    targets = {sid for p in parts for sid in p.parsed.targets}
    documents = {sid for p in parts for sid in p.parsed.documents} - targets
    signed = {t for p in parts for t in p.parsed.signed_targets}
    facts = _checks.LocalFacts(
        records=_local_records(session, set_ids, documents),
        signatures=_local_signatures(session, set_ids, signed),
        certificates=context.certificates,
        certificate_ids=context.certificate_ids,
        intermediates=context.intermediates,
        validator=context.validator,
        revoked=context.revoked,
        configs=context.configs,
    )
    parent, *rest = _checks.check_sets(parts, facts, now, for_commit=for_commit, receipts=receipts)
    return _batchcheck.combine(parent, rest)


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


# -- the facts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    """Facts shared by every set of one check: trust, configurations, tables, limits."""

    certificates: Mapping[Fingerprint, CertTrust]
    certificate_ids: Mapping[str, str]
    intermediates: tuple[x509.Certificate, ...]
    validator: ChainValidator
    revoked: frozenset[str]
    configs: Mapping[str, SignatureConfig]
    tables: Mapping[str, frozenset[str]]
    limits: ImportLimits

    @classmethod
    def read(cls, session: Session, now: dt.datetime) -> _Context:
        chain_pems = list(
            session.scalars(select(Certificate.pem).where(Certificate.module == kmf.CHAIN_MODULE))
        )
        return cls(
            certificates=kmf.certificate_trust(session, now),
            certificate_ids={
                fp: sid
                for fp, sid in session.execute(select(Certificate.fingerprint, Certificate.sys_id))
            },
            intermediates=tuple(
                load_pem_certificates(pem.encode(), "stored chain certificate")[0]
                for pem in chain_pems
            ),
            validator=kmf.validator(session),
            revoked=frozenset(
                session.scalars(
                    select(TrustedFriend.fingerprint).where(TrustedFriend.revoked.is_(True))
                )
            ),
            configs=signatures.configurations(session),
            tables=_writable_tables(),
            limits=import_limits(session),
        )


def _writable_tables() -> dict[str, frozenset[str]]:
    tables = {name: frozenset(t.fields) for name, t in TABLES.items()}
    tables[SIGNATURE_TABLE] = frozenset(SIGNATURE_FIELDS) - {"sys_id"}
    tables[CERTIFICATE_TABLE] = frozenset(CERTIFICATE_FIELDS)
    return tables


def _input(session: Session, row: RemoteUpdateSet, context: _Context) -> _checks.SetInput:
    header = UpdateSetHeader(
        row.sys_id, row.name, row.description, row.origin_instance, row.parent, row.created_on
    )
    parsed = _parsing.parse_set(_entries(session, row.sys_id), context.tables, context.limits)
    return _checks.SetInput(header, row.state, _signature(row), parsed)


def _entries(session: Session, set_id: str) -> Iterator[_parsing.StoredEntry]:
    """The set's entries, streamed: a few hundred in memory at a time."""
    stmt = (
        select(
            RemoteUpdateXml.sys_id,
            RemoteUpdateXml.remote_update_set,
            RemoteUpdateXml.table_name,
            RemoteUpdateXml.target_sys_id,
            RemoteUpdateXml.action,
            RemoteUpdateXml.payload_sha512,
            RemoteUpdateXml.fields,
            RemoteUpdateXml.problem,
            RemoteUpdateXml.payload,
        )
        .where(RemoteUpdateXml.remote_update_set == set_id)
        .order_by(RemoteUpdateXml.sys_id)
        .execution_options(yield_per=_FETCH)
    )
    stored = _parsing.StoredEntry
    for values in session.execute(stmt):
        yield stored(*values)


def _signature(row: RemoteUpdateSet) -> ManifestSignature | None:
    values = (
        row.sig_algorithm,
        row.sig_certificate,
        row.sig_signed_at,
        row.sig_expires_at,
        row.sig_signature,
    )
    if all(v is None for v in values):
        return None
    return ManifestSignature(*(v or "" for v in values))


def _local_records(
    session: Session, set_ids: Sequence[str], others: Collection[str]
) -> dict[str, _checks.LocalRecord]:
    """Every local record under a sys_id an entry of *set_ids* targets, or one of *others*,
    whatever table keeps it: one query per table for the targets (a join on the entries),
    and chunks of *others*."""
    targeted = select(RemoteUpdateXml.target_sys_id).where(
        RemoteUpdateXml.remote_update_set.in_(set_ids)
    )
    out: dict[str, _checks.LocalRecord] = {}
    where: list[Select[str] | Sequence[str]] = [targeted]
    where.extend(chunks(sorted(others), _IN_CHUNK))
    for ids in where:
        for sid, table, updated_on, fields in session.execute(
            select(
                SysRecord.sys_id, SysRecord.table_name, SysRecord.updated_on, SysRecord.fields
            ).where(SysRecord.sys_id.in_(ids))
        ):
            out[sid] = _checks.LocalRecord(
                table, updated_on, json.loads(fields), cot=table == _POLICY_TABLE
            )
        for sig in session.scalars(
            select(RecordSignatureRow).where(RecordSignatureRow.sys_id.in_(ids))
        ):
            values = {k: getattr(sig, k) for k in SIGNATURE_FIELDS if k != "sys_id"}
            out[sig.sys_id] = _checks.LocalRecord(
                SIGNATURE_TABLE, "", values, cot=sig.purpose == CIRCLE_OF_TRUST
            )
        for cert in session.scalars(select(Certificate).where(Certificate.sys_id.in_(ids))):
            values = {k: getattr(cert, k) for k in CERTIFICATE_FIELDS}
            out[cert.sys_id] = _checks.LocalRecord(CERTIFICATE_TABLE, "", values, cot=True)
    return out


def _local_signatures(
    session: Session, set_ids: Sequence[str], targets: Collection[tuple[str, str]]
) -> dict[tuple[str, str], list[SignatureRecord]]:
    """Local signatures of *targets* (the entries of *set_ids*), in one query."""
    targeted = select(RemoteUpdateXml.target_sys_id).where(
        RemoteUpdateXml.remote_update_set.in_(set_ids)
    )
    out: dict[tuple[str, str], list[SignatureRecord]] = defaultdict(list)
    stmt = select(RecordSignatureRow).where(RecordSignatureRow.document_id.in_(targeted))
    for row in session.scalars(stmt):
        key = (row.table_name, SysId(row.document_id))
        if key not in targets:
            continue
        try:
            sig = signatures.from_row(row)
        except BadInputError:
            continue  # a malformed local signature proves nothing
        out[key].append(sig)
    return dict(out)
