"""Circle-of-Trust signatures made with ``cm_code_attest``, and the material they travel with.

Only a trusted instance signs: every function that touches the attest key refuses
on a protected instance (:meth:`Instance.require_trusted`) before it reads the key.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from .._types import SysId
from ..errors import NotFoundError
from ..platform import properties, rows, signatures
from ..platform.context import Operation
from ..platform.kmf import CHAIN_MODULE, SigningKey, signing_key
from ..signing import (
    CIRCLE_OF_TRUST,
    SIGNATURE_TABLE,
    SignatureConfig,
    SignatureRecord,
    sign_record,
)
from ..store.models import Certificate, UpdateSet
from ..updatesets import ACTION_INSERT_OR_UPDATE
from ..updatesets.local import add_entry

ATTEST_MODULE = "cm_code_attest"
CERTIFICATE_TABLE = rows.CERTIFICATE_TABLE
MAX_CHAIN = 8


def attest_key(op: Operation, what: str) -> SigningKey:
    """The attest key, after refusing *what* on a protected instance."""
    op.instance.require_trusted(what)
    return signing_key(op, ATTEST_MODULE)


def validity_end(op: Operation) -> dt.datetime:
    """``now`` + ``com.snc.kmf.signature.validity_window``."""
    window = properties.get_int(op.session, properties.VALIDITY_WINDOW)
    return op.now + dt.timedelta(seconds=window)


def cot_sign(
    op: Operation,
    key: SigningKey,
    table: str,
    sys_id: str,
    expires_at: dt.datetime,
    config: SignatureConfig | None = None,
) -> SignatureRecord:
    """Sign the current values of a record of *table* (any table: generic, certificate),
    under *config* (default: the table's stored configuration)."""
    op.instance.require_trusted(f"sign a {table} record")
    fields = rows.read_fields(op.session, table, sys_id)
    if fields is None:
        raise NotFoundError(f"no {table} record {sys_id} to sign")
    sig = sign_record(
        table=table,
        document_id=SysId(sys_id),
        fields=fields,
        config=config or signatures.config_for(op.session, table),
        purpose=CIRCLE_OF_TRUST,
        key=key.key,
        algorithm=key.algorithm,
        certificate=key.certificate,
        signed_at=signatures.signing_time(op.session, table, sys_id, key.certificate, op.now),
        expires_at=expires_at,
    )
    op.session.add(signatures.to_row(sig))
    op.session.flush()
    return sig


def certificate_path(session: Session, fingerprint: str) -> list[Certificate]:
    """The certificate with *fingerprint*, then the stored ``chain`` certificates issuing it."""
    leaf = session.scalar(select(Certificate).where(Certificate.fingerprint == fingerprint))
    if leaf is None:
        raise NotFoundError(
            f"certificate {fingerprint[:16]}... is not stored: import the module's key again"
        )
    chain = list(session.scalars(select(Certificate).where(Certificate.module == CHAIN_MODULE)))
    path = [leaf]
    while len(path) < MAX_CHAIN and path[-1].issuer != path[-1].subject:
        issuer = next(
            (c for c in chain if c.subject == path[-1].issuer and c not in path),
            None,
        )
        if issuer is None:
            break
        path.append(issuer)
    return path


def sign_certificates(
    op: Operation, key: SigningKey, certs: Iterable[Certificate], expires_at: dt.datetime
) -> list[SignatureRecord]:
    """A Circle-of-Trust signature over each certificate record (name, module, pem)."""
    return [cot_sign(op, key, CERTIFICATE_TABLE, c.sys_id, expires_at) for c in certs]


def add_records(op: Operation, row: UpdateSet, items: Iterable[tuple[str, str]]) -> int:
    """Add each ``(table, sys_id)`` record, as it is stored now, to the local set *row*."""
    count = 0
    for table, sys_id in items:
        fields = rows.read_fields(op.session, table, sys_id)
        if fields is None:
            raise NotFoundError(f"no {table} record {sys_id} to put in update set {row.name!r}")
        add_entry(
            op.session,
            row,
            table,
            sys_id,
            ACTION_INSERT_OR_UPDATE,
            fields,
            op.actor.name,
            op.ts,
        )
        count += 1
    return count


def signature_items(sigs: Iterable[SignatureRecord]) -> list[tuple[str, str]]:
    return [(SIGNATURE_TABLE, s.sys_id) for s in sigs]
