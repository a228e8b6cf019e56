"""The guardrail scan: judge every record a signature configuration makes eligible.

One short transaction reads the configurations, one certificate-trust map (built once
per scan) and every signature record, grouped by the record it names, in one query that
also says whether that record still exists. The eligible records are then read in
keyset-paged chunks, each in its own short transaction (SQLite holds a write lock for
the length of a transaction), and judged outside it with the pure
:class:`~trustcircle.signing.RecordVerifier`. Signatures whose record is gone become
``orphan`` rows. Nothing is written here: :func:`history.save` stores the result.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import and_, func, select, tuple_
from sqlalchemy.orm import Session

from .._time import format_ts
from .._types import Fingerprint, SysId
from ..cot.policy import STATEMENT_TABLE
from ..errors import LimitExceededError, TrustcircleError
from ..platform import kmf, signatures
from ..platform.rows import CERTIFICATE_FIELDS, CERTIFICATE_TABLE
from ..signing import (
    SIGNATURE_TABLE,
    CertTrust,
    RecordVerification,
    RecordVerifier,
    SignatureRecord,
    Verdict,
)
from ..store import Database
from ..store.models import Certificate, RecordSignatureRow, SysRecord
from .results import DEFAULT_APPLICATION, SIGNATURE_STATES, ScanResult, ScanRow

ProgressFn = Callable[[int, int], None]
"""Called with (records judged, records to judge) as the scan advances."""

CHUNK = 1000
MALFORMED = "malformed_signature"
Fields = Mapping[str, str | None]


@dataclass
class _Group:
    """The signature records naming one record, and whether that record exists."""

    exists: bool
    signatures: list[SignatureRecord] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)


@dataclass
class _Context:
    verifier: RecordVerifier
    trust: Mapping[Fingerprint, CertTrust]
    tables: tuple[str, ...]
    certificates: bool
    total_records: int
    groups: dict[tuple[str, str], _Group]


def run_scan(
    db: Database,
    instance: str,
    now: dt.datetime,
    *,
    progress: ProgressFn | None = None,
    chunk: int = CHUNK,
) -> ScanResult:
    """Judge every eligible record and every orphan signature at time *now*."""
    started = time.monotonic()
    with db.transaction() as session:
        ctx = _load(session, now)
    stamp = format_ts(now)
    orphans = sorted(k for k, g in ctx.groups.items() if not g.exists)
    total = ctx.total_records + len(orphans)
    report = progress or (lambda _done, _total: None)
    report(0, total)
    rows: list[ScanRow] = []
    for batch in _record_chunks(db, ctx, chunk):
        for table, sys_id, fields in batch:
            group = ctx.groups.get((table, sys_id)) or _Group(exists=True)
            rows.append(judge(ctx.verifier, table, sys_id, fields, group, stamp))
        report(min(len(rows), total), total)
    for table, sys_id in orphans:
        rows.append(judge(ctx.verifier, table, sys_id, None, ctx.groups[(table, sys_id)], stamp))
    report(len(rows), max(total, len(rows)))
    rows.sort(key=lambda r: (r.table, r.sys_id))
    elapsed = time.monotonic() - started
    return ScanResult(
        instance=instance,
        started_at=stamp,
        finished_at=format_ts(now + dt.timedelta(seconds=int(elapsed))),
        duration_ms=int(elapsed * 1000),
        rows=tuple(rows),
        signature_states=signature_states(ctx.groups, ctx.trust),
    )


def judge(
    verifier: RecordVerifier,
    table: str,
    sys_id: str,
    fields: Fields | None,
    group: _Group,
    stamp: str,
) -> ScanRow:
    """The row of one record (*fields* None: the record is gone). Pure."""
    try:
        result = verifier.verify(table, SysId(sys_id), fields, group.signatures)
    except LimitExceededError:
        return _row(table, sys_id, fields, Verdict.INVALID, ("too_many_signatures",), stamp)
    except TrustcircleError:
        return _row(table, sys_id, fields, Verdict.INVALID, ("unverifiable_record",), stamp)
    verdict, reasons = result.verdict, result.reasons
    if group.malformed and verdict is not Verdict.VALID:
        if verdict is Verdict.MISSING:
            verdict, reasons = Verdict.INVALID, ()
        reasons = (*reasons, MALFORMED) if MALFORMED not in reasons else reasons
    sig = _shown_signature(result)
    return _row(
        table,
        sys_id,
        fields,
        verdict,
        reasons,
        stamp,
        sig.sys_id if sig else (group.malformed[0] if group.malformed else ""),
        sig.certificate if sig else "",
    )


def _shown_signature(result: RecordVerification) -> SignatureRecord | None:
    if result.valid_signature is not None:
        return result.valid_signature
    return next((c.signature for c in result.checks if c.newest_in_group), None)


def _row(
    table: str,
    sys_id: str,
    fields: Fields | None,
    verdict: Verdict,
    reasons: Sequence[str],
    stamp: str,
    signature: str = "",
    certificate: str = "",
) -> ScanRow:
    return ScanRow(
        table=table,
        sys_id=sys_id,
        name=record_name(table, fields),
        application="" if fields is None else (fields.get("application") or DEFAULT_APPLICATION),
        verdict=verdict,
        reasons=tuple(reasons),
        signature=signature,
        certificate=certificate,
        last_scanned=stamp,
    )


def record_name(table: str, fields: Fields | None) -> str:
    """What lists call the record: its name (a policy statement: sequence, state, instance)."""
    if fields is None:
        return ""
    if table == STATEMENT_TABLE:
        return (
            f"policy statement {fields.get('sequence') or '?'} "
            f"({fields.get('state') or '?'}, {fields.get('instance') or '?'})"
        )
    return fields.get("name") or fields.get("api_name") or ""


def signature_states(
    groups: Mapping[tuple[str, str], _Group], trust: Mapping[Fingerprint, CertTrust]
) -> dict[str, int]:
    """Signature records by state: ``orphan`` (record or certificate gone), ``trusted``
    (certificate trusted now) or ``untrusted`` (not trusted, or the record is malformed)."""
    counts = dict.fromkeys(SIGNATURE_STATES, 0)
    for group in groups.values():
        counts["untrusted" if group.exists else "orphan"] += len(group.malformed)
        for sig in group.signatures:
            cert = trust.get(sig.certificate)
            if not group.exists or cert is None:
                counts["orphan"] += 1
            else:
                counts["trusted" if cert.trusted else "untrusted"] += 1
    return counts


# -- reading -------------------------------------------------------------------------------


def _load(session: Session, now: dt.datetime) -> _Context:
    configs = signatures.configurations(session)
    trust = kmf.signer_trust(session, now)
    tables = tuple(sorted(t for t in configs if t not in (CERTIFICATE_TABLE, SIGNATURE_TABLE)))
    certificates = CERTIFICATE_TABLE in configs
    total = 0
    if tables:
        total += (
            session.scalar(
                select(func.count()).select_from(SysRecord).where(SysRecord.table_name.in_(tables))
            )
            or 0
        )
    if certificates:
        total += session.scalar(select(func.count()).select_from(Certificate)) or 0
    return _Context(
        verifier=RecordVerifier(certificates=trust, configs=configs, now=now),
        trust=trust,
        tables=tables,
        certificates=certificates,
        total_records=total,
        groups=_signature_groups(session),
    )


def _signature_groups(session: Session) -> dict[tuple[str, str], _Group]:
    """Every signature record grouped by (table, document), with the record's existence."""
    stmt = (
        select(RecordSignatureRow, SysRecord.sys_id, Certificate.sys_id)
        .outerjoin(
            SysRecord,
            and_(
                SysRecord.sys_id == RecordSignatureRow.document_id,
                SysRecord.table_name == RecordSignatureRow.table_name,
            ),
        )
        .outerjoin(
            Certificate,
            and_(
                Certificate.sys_id == RecordSignatureRow.document_id,
                RecordSignatureRow.table_name == CERTIFICATE_TABLE,
            ),
        )
        .execution_options(yield_per=CHUNK)
    )
    groups: dict[tuple[str, str], _Group] = {}
    for sig_row, record_id, cert_id in session.execute(stmt):
        key = (sig_row.table_name, sig_row.document_id)
        group = groups.get(key)
        if group is None:
            group = groups[key] = _Group(exists=record_id is not None or cert_id is not None)
        try:
            group.signatures.append(signatures.from_row(sig_row))
        except TrustcircleError:
            group.malformed.append(sig_row.sys_id)
    return groups


def _record_chunks(
    db: Database, ctx: _Context, chunk: int
) -> Iterator[list[tuple[str, str, Fields]]]:
    """The eligible records, *chunk* at a time, each chunk read in its own transaction."""
    last: tuple[str, str] | None = None
    while ctx.tables:
        with db.transaction() as session:
            stmt = select(SysRecord.table_name, SysRecord.sys_id, SysRecord.fields).where(
                SysRecord.table_name.in_(ctx.tables)
            )
            if last is not None:
                stmt = stmt.where(tuple_(SysRecord.table_name, SysRecord.sys_id) > tuple_(*last))
            stmt = stmt.order_by(SysRecord.table_name, SysRecord.sys_id).limit(chunk)
            batch = [(t, s, stored_fields(f)) for t, s, f in session.execute(stmt)]
        if not batch:
            break
        last = (batch[-1][0], batch[-1][1])
        yield batch
    after = ""
    while ctx.certificates:
        with db.transaction() as session:
            certs = list(
                session.scalars(
                    select(Certificate)
                    .where(Certificate.sys_id > after)
                    .order_by(Certificate.sys_id)
                    .limit(chunk)
                )
            )
        if not certs:
            break
        after = certs[-1].sys_id
        yield [
            (CERTIFICATE_TABLE, c.sys_id, {k: getattr(c, k) for k in CERTIFICATE_FIELDS})
            for c in certs
        ]


def stored_fields(text: str) -> Fields:
    """A record's stored fields; an unreadable row reads as no values (judged invalid)."""
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): v if v is None or isinstance(v, str) else str(v) for k, v in data.items()}
