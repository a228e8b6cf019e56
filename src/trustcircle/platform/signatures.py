"""Signing records with a module's key, storing and verifying their signatures."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .._time import parse_ts
from .._types import SysId
from ..crypto.algorithms import Algorithm
from ..errors import BadInputError, UsageError
from ..signing import (
    CLOCK_SKEW,
    CODE_SIGNING,
    SIGNATURE_TABLE,
    CertTrust,
    RecordVerification,
    RecordVerifier,
    SignatureConfig,
    SignatureRecord,
    sign_record,
    with_subsystem,
)
from ..store.bulk import chunks
from ..store.models import RecordSignatureRow, SignatureConfigRow
from . import records
from .context import Operation
from .kmf import signer_trust, signing_key

_FIELDS = (
    "sys_id",
    "table_name",
    "document_id",
    "purpose",
    "algorithm",
    "signature",
    "certificate",
    "signed_fields",
    "signed_at",
    "expires_at",
)


def configurations(session: Session) -> dict[str, SignatureConfig]:
    """The active signature configurations, one per table with every purpose it allows."""
    by_table: dict[str, tuple[set[str], list[str]]] = {}
    for row in session.scalars(
        select(SignatureConfigRow).where(SignatureConfigRow.active.is_(True))
    ):
        fields, purposes = by_table.setdefault(row.table_name, (set(), []))
        fields.update(f for f in row.fields.split(",") if f)
        purposes.append(row.purpose)
    return {
        table: SignatureConfig(
            table=table, fields=tuple(sorted(fields)), purposes=tuple(sorted(purposes))
        )
        for table, (fields, purposes) in by_table.items()
    }


def config_for(session: Session, table: str) -> SignatureConfig:
    cfg = configurations(session).get(table)
    if cfg is None:
        known = ", ".join(sorted(configurations(session)))
        raise UsageError(
            f"table {table!r} has no signature configuration: signable tables are {known}"
        )
    return cfg


def to_row(sig: SignatureRecord) -> RecordSignatureRow:
    f = sig.to_fields()
    return RecordSignatureRow(**{k: f[k] for k in _FIELDS})


def from_row(row: RecordSignatureRow) -> SignatureRecord:
    return SignatureRecord.from_fields(
        SysId(row.sys_id), {k: getattr(row, k) for k in _FIELDS if k != "sys_id"}
    )


def signatures_of(session: Session, table: str, document_id: str) -> list[SignatureRecord]:
    rows = session.scalars(
        select(RecordSignatureRow).where(
            RecordSignatureRow.table_name == table, RecordSignatureRow.document_id == document_id
        )
    )
    return [from_row(r) for r in rows]


def signing_times(
    session: Session,
    table: str,
    document_ids: Sequence[str],
    certificate: str,
    now: dt.datetime,
) -> dict[str, dt.datetime]:
    """When to date a new signature of each record by *certificate*: *now*, or one second
    after the newest signature that certificate already made on it when that one is not
    older than *now* (a tie to the second, or a clock a little behind). Verification takes
    each certificate's newest signature, to the second (DESIGN §4); a new one dated the
    same second as an older one would lose to it half the time. Never further ahead than
    the clock skew verification allows."""
    out = dict.fromkeys(document_ids, now)
    for chunk in chunks(document_ids, 500):
        rows = session.execute(
            select(RecordSignatureRow.document_id, func.max(RecordSignatureRow.signed_at))
            .where(
                RecordSignatureRow.table_name == table,
                RecordSignatureRow.certificate == certificate,
                RecordSignatureRow.document_id.in_(chunk),
            )
            .group_by(RecordSignatureRow.document_id)
        )
        for document_id, newest in rows:
            try:
                after = parse_ts(newest) + dt.timedelta(seconds=1)
            except BadInputError:
                continue  # a malformed date never wins the newest-signature rule anyway
            if now < after <= now + CLOCK_SKEW:
                out[document_id] = after
    return out


def signing_time(
    session: Session, table: str, document_id: str, certificate: str, now: dt.datetime
) -> dt.datetime:
    """:func:`signing_times` of one record."""
    return signing_times(session, table, [document_id], certificate, now)[document_id]


def sign(
    op: Operation,
    table: str,
    sys_id: str,
    *,
    purpose: str = CODE_SIGNING,
    module: str = "cm_code_signing",
    algorithm: str | None = None,
    expires_at: dt.datetime | None = None,
) -> SignatureRecord:
    """Sign the record's current values; only a trusted instance signs."""
    op.instance.require_trusted("sign a record")
    cfg = config_for(op.session, table)
    record = records.get(op.session, table, sys_id)
    key = signing_key(op, module)
    alg = Algorithm.parse(algorithm) if algorithm else key.algorithm
    sig = sign_record(
        table=table,
        document_id=record.sys_id,
        fields=record.fields,
        config=cfg,
        purpose=purpose,
        key=key.key,
        algorithm=alg,
        certificate=key.certificate,
        signed_at=signing_time(op.session, table, record.sys_id, key.certificate, op.now),
        expires_at=expires_at,
    )
    op.session.add(to_row(sig))
    op.session.flush()
    fields = sig.to_fields()
    fields.pop("sys_id")
    op.changed(SIGNATURE_TABLE, sig.sys_id, "INSERT", fields)
    op.target = f"{table}:{sys_id}"
    op.detail = {"signature": sig.sys_id, "purpose": purpose, "certificate": sig.certificate}
    return sig


def verifier(
    session: Session, now: dt.datetime, trust: Mapping[str, CertTrust] | None = None
) -> RecordVerifier:
    return RecordVerifier(
        certificates=trust if trust is not None else signer_trust(session, now),  # type: ignore[arg-type]
        configs=with_subsystem(configurations(session)),
        now=now,
    )


def verify(
    session: Session, table: str, sys_id: str, now: dt.datetime, purpose: str | None = None
) -> RecordVerification:
    """The verdict of one record (it must exist)."""
    config_for(session, table)
    record = records.get(session, table, sys_id)
    return verifier(session, now).verify(
        table, record.sys_id, record.fields, signatures_of(session, table, sys_id), purpose
    )


def list_signatures(
    session: Session,
    *,
    purpose: str | None = None,
    table: str | None = None,
    certificate: str | None = None,
    limit: int = 10000,
) -> Sequence[SignatureRecord]:
    stmt = select(RecordSignatureRow).order_by(
        RecordSignatureRow.signed_at, RecordSignatureRow.sys_id
    )
    if purpose:
        stmt = stmt.where(RecordSignatureRow.purpose == purpose)
    if table:
        stmt = stmt.where(RecordSignatureRow.table_name == table)
    if certificate:
        stmt = stmt.where(RecordSignatureRow.certificate == certificate)
    return [from_row(r) for r in session.scalars(stmt.limit(limit))]
