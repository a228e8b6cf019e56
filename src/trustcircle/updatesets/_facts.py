"""What a check of retrieved update sets reads: local facts, stored entries, a seal's inputs.

Every read is set-wise (a few queries per check, never one per entry) and streams the
entries. :func:`digest_facts` and :func:`stamps` give a preview seal (:mod:`._seal`)
what the checklist depended on, from the very objects it was handed.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from .._time import parse_ts
from .._types import Fingerprint, SysId
from ..crypto import ChainValidator, fingerprint_of
from ..errors import BadInputError
from ..platform import kmf, signatures
from ..platform.rows import CERTIFICATE_FIELDS, CERTIFICATE_TABLE
from ..platform.tables import TABLES
from ..signing import (
    CIRCLE_OF_TRUST,
    SIGNATURE_FIELDS,
    SIGNATURE_TABLE,
    CertTrust,
    SignatureConfig,
    SignatureRecord,
    with_subsystem,
)
from ..signing.model import _parse_timestamp
from ..store.bulk import chunks
from ..store.models import (
    Certificate,
    RecordSignatureRow,
    RemoteUpdateSet,
    RemoteUpdateXml,
    SysRecord,
    TrustedFriend,
)
from . import _checks, _parsing
from ._seal import InputDigest
from .importer import import_limits
from .xmlformat import ImportLimits, ManifestSignature, UpdateSetHeader

_IN_CHUNK = 500
_FETCH = 256


@dataclass(frozen=True)
class Context:
    """Facts shared by every set of one check: trust, configurations, tables, limits."""

    certificates: Mapping[Fingerprint, CertTrust]
    certificate_ids: Mapping[str, str]
    intermediates: tuple[x509.Certificate, ...]
    validator: ChainValidator
    revoked: frozenset[str]
    friends: frozenset[str]
    configs: Mapping[str, SignatureConfig]
    tables: Mapping[str, frozenset[str]]
    limits: ImportLimits

    @classmethod
    def read(cls, session: Session, now: dt.datetime) -> Context:
        snapshot = kmf.trust_snapshot(session, now)
        listed = session.execute(select(TrustedFriend.fingerprint, TrustedFriend.revoked)).all()
        return cls(
            certificates=snapshot.signers,
            certificate_ids=snapshot.sys_ids,
            intermediates=snapshot.intermediates,
            validator=snapshot.validator,
            revoked=frozenset(fp for fp, revoked in listed if revoked),
            friends=frozenset(fp for fp, revoked in listed if not revoked),
            configs=with_subsystem(signatures.configurations(session)),
            tables=_writable_tables(),
            limits=import_limits(session),
        )


def _writable_tables() -> dict[str, frozenset[str]]:
    tables = {name: frozenset(t.fields) for name, t in TABLES.items()}
    tables[SIGNATURE_TABLE] = frozenset(SIGNATURE_FIELDS) - {"sys_id"}
    tables[CERTIFICATE_TABLE] = frozenset(CERTIFICATE_FIELDS)
    return tables


def read_input(
    session: Session, row: RemoteUpdateSet, context: Context, digest: InputDigest
) -> _checks.SetInput:
    """Step 1 of the checklist on *row*'s stored entries, each fed to *digest* as read."""
    header = digest_header(row, digest)
    stream = digested(entries(session, row.sys_id), digest)
    parsed = _parsing.parse_set(stream, context.tables, context.limits)
    return _checks.SetInput(header, row.state, manifest_signature(row), parsed)


def digest_header(row: RemoteUpdateSet, digest: InputDigest) -> UpdateSetHeader:
    """*row*'s header, fed to *digest* with its manifest signature."""
    header = UpdateSetHeader(
        row.sys_id, row.name, row.description, row.origin_instance, row.parent, row.created_on
    )
    digest.add(
        (
            row.sys_id,
            row.name,
            row.description,
            row.origin_instance,
            row.parent,
            row.created_on,
            row.sig_algorithm,
            row.sig_certificate,
            row.sig_signed_at,
            row.sig_expires_at,
            row.sig_signature,
        )
    )
    return header


def digested(
    stream: Iterable[_parsing.StoredEntry], digest: InputDigest
) -> Iterator[_parsing.StoredEntry]:
    for entry in stream:
        digest.add(entry)
        yield entry


def entries(session: Session, set_id: str) -> Iterator[_parsing.StoredEntry]:
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
    for values in session.connection().execute(stmt):  # Core: no ORM work per row
        yield stored(*values)


def manifest_signature(row: RemoteUpdateSet) -> ManifestSignature | None:
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


def local_records(
    session: Session, set_ids: Sequence[str], others: Collection[str]
) -> dict[str, _checks.LocalRecord]:
    """Every local record under a sys_id an entry of *set_ids* targets, or one of *others*,
    whatever table keeps it: one query per table for the targets (a join on the entries),
    and chunks of *others*."""
    targeted = _targeted(set_ids)
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
                table, updated_on, json.loads(fields), cot=table in _checks.COT_TABLES
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


def local_signatures(
    session: Session, set_ids: Sequence[str], targets: Collection[tuple[str, str]]
) -> dict[tuple[str, str], list[SignatureRecord]]:
    """Local signatures of *targets* (the entries of *set_ids*), in one query."""
    out: dict[tuple[str, str], list[SignatureRecord]] = defaultdict(list)
    stmt = select(RecordSignatureRow).where(RecordSignatureRow.document_id.in_(_targeted(set_ids)))
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


def _targeted(set_ids: Sequence[str]) -> Select[str]:
    """The sys_ids the entries of *set_ids* target, as a subquery."""
    return select(RemoteUpdateXml.target_sys_id).where(
        RemoteUpdateXml.remote_update_set.in_(set_ids)
    )


def read_facts(
    session: Session,
    set_ids: Sequence[str],
    context: Context,
    documents: Collection[str],
    signed: Collection[tuple[str, str]],
) -> _checks.LocalFacts:
    """The local facts for the entries of *set_ids*: *documents* are the records their
    signatures name (beyond their targets), *signed* the (table, sys_id) of each target."""
    return _checks.LocalFacts(
        records=local_records(session, set_ids, documents),
        signatures=local_signatures(session, set_ids, signed),
        certificates=context.certificates,
        certificate_ids=context.certificate_ids,
        intermediates=context.intermediates,
        validator=context.validator,
        revoked=context.revoked,
        configs=context.configs,
        friends=context.friends,
    )


# -- what a seal binds ---------------------------------------------------------------------


def digest_facts(facts: _checks.LocalFacts, context: Context, digest: InputDigest) -> None:
    """Feed every local fact the checklist is handed to *digest*, in a canonical form."""
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    digest.add_json(
        {
            "records": {
                sid: [rec.table, rec.updated_on, dict(rec.fields), rec.cot]
                for sid, rec in facts.records.items()
            },
            "signatures": sorted(
                [table, doc, [sig.to_fields() for sig in sigs]]
                for (table, doc), sigs in facts.signatures.items()
            ),
            "certificates": {
                fp: [t.trusted, t.reason, t.public_key.public_bytes(der, spki).hex()]
                for fp, t in facts.certificates.items()
            },
            "certificate_ids": dict(facts.certificate_ids),
            "intermediates": [fingerprint_of(c) for c in facts.intermediates],
            "anchors": [fingerprint_of(c) for c in facts.validator.anchors],
            "revoked": sorted(facts.revoked),
            "friends": sorted(facts.friends),
            "configs": {t: [c.fields, c.purposes] for t, c in facts.configs.items()},
            "tables": {t: sorted(f) for t, f in context.tables.items()},
            "limits": asdict(context.limits),
        }
    )


def stamps(
    parts: Sequence[_checks.SetInput], facts: _checks.LocalFacts
) -> tuple[list[dt.datetime | None], list[dt.datetime | None], list[x509.Certificate]]:
    """Every time the checklist compares with "now", parsed as it parses them: the signing
    times, the expiry times, and the certificates a chain may use (their validity)."""
    signed: list[dt.datetime | None] = []
    expiring: list[dt.datetime | None] = []
    sigs: list[SignatureRecord] = [s for group in facts.signatures.values() for s in group]
    certs = [*facts.intermediates, *facts.validator.anchors]
    for part in parts:
        for w in part.parsed.work:
            if w.signature is not None:
                sigs.append(w.signature)
            if w.carried is not None:
                certs.append(w.carried.cert)
        manifest = part.signature
        if manifest is not None:
            signed.append(_manifest_time(manifest.signed_at))
            expiring.append(_manifest_time(manifest.expires_at))
    for sig in sigs:
        signed.append(_parse_timestamp(sig.signed_at))
        if sig.expires_at is not None:
            expiring.append(_parse_timestamp(sig.expires_at))
    return signed, expiring, certs


def _manifest_time(text: str) -> dt.datetime | None:
    try:
        return parse_ts(text)
    except BadInputError:
        return None
