"""One way to read and write a record of any table as its string fields.

Generic tables live in ``sys_record``; signatures and certificates have tables of
their own. Update-set capture, export, preview and commit go through here so that
every table travels the same way. Certificate metadata is always recomputed from
the PEM: a carried fingerprint that does not match is refused, never stored.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from .._types import SysId, Timestamp
from ..crypto import describe_certificate, load_pem_certificate
from ..errors import BadInputError, UsageError
from ..signing import SIGNATURE_FIELDS, SIGNATURE_TABLE, SignatureRecord
from ..store.models import Certificate, RecordSignatureRow
from . import records
from .tables import TABLES

CERTIFICATE_TABLE = "sys_certificate"
CERTIFICATE_FIELDS = (
    "name",
    "module",
    "pem",
    "fingerprint",
    "subject",
    "issuer",
    "not_before",
    "not_after",
)
Fields = dict[str, str | None]


def known_table(table: str) -> bool:
    return table in TABLES or table in (SIGNATURE_TABLE, CERTIFICATE_TABLE)


def read_fields(session: Session, table: str, sys_id: str) -> Fields | None:
    """The record's fields (without ``sys_id``), or None when it does not exist."""
    if table == SIGNATURE_TABLE:
        sig = session.get(RecordSignatureRow, sys_id)
        if sig is None:
            return None
        return {k: getattr(sig, k) for k in SIGNATURE_FIELDS if k != "sys_id"}
    if table == CERTIFICATE_TABLE:
        cert = session.get(Certificate, sys_id)
        if cert is None:
            return None
        return {k: getattr(cert, k) for k in CERTIFICATE_FIELDS}
    record = records.find(session, table, sys_id)
    return None if record is None else dict(record.fields)


def _signature_row(sys_id: SysId, fields: Fields) -> RecordSignatureRow:
    sig = SignatureRecord.from_fields(sys_id, fields)
    f = sig.to_fields()
    return RecordSignatureRow(**f)


def certificate_row(sys_id: SysId, fields: Fields) -> Certificate:
    """A ``sys_certificate`` row whose metadata comes from its PEM, checked against the fields."""
    pem = fields.get("pem") or ""
    cert = load_pem_certificate(pem.encode("utf-8"), f"certificate record {sys_id}")
    info = describe_certificate(cert)
    carried = fields.get("fingerprint")
    if carried not in (None, "", info.fingerprint):
        raise BadInputError(
            f"certificate record {sys_id} claims fingerprint {carried[:16]}... but its PEM has "
            f"{info.fingerprint[:16]}...: the record was altered; export it again"
        )
    return Certificate(
        sys_id=sys_id,
        name=fields.get("name") or info.subject,
        module=fields.get("module") or "",
        pem=info.pem,
        fingerprint=info.fingerprint,
        subject=info.subject,
        issuer=info.issuer,
        not_before=info.not_before,
        not_after=info.not_after,
    )


def write_fields(
    session: Session, table: str, sys_id: SysId, fields: Fields, actor: str, now: Timestamp
) -> None:
    """Insert or replace the whole record (the incoming values win)."""
    if table == SIGNATURE_TABLE:
        session.merge(_signature_row(sys_id, fields))
    elif table == CERTIFICATE_TABLE:
        session.merge(certificate_row(sys_id, fields))
    elif table in TABLES:
        records.replace(session, table, sys_id, fields, actor, now)
    else:
        raise UsageError(f"unknown table {table!r}: this instance cannot store it")
    session.flush()


def delete_fields(session: Session, table: str, sys_id: str) -> bool:
    """Delete the record if it exists; True when something was deleted."""
    row: RecordSignatureRow | Certificate | None = None
    if table in (SIGNATURE_TABLE, CERTIFICATE_TABLE):
        if table == SIGNATURE_TABLE:
            row = session.get(RecordSignatureRow, sys_id)
        else:
            row = session.get(Certificate, sys_id)
        if row is None:
            return False
        session.delete(row)
        session.flush()
        return True
    if records.find(session, table, sys_id) is None:
        return False
    records.delete(session, table, sys_id, subsystem=True)  # a verified update set
    return True
