"""Exports to production, made on a trusted instance: certificates and signed jobs.

Each export signs its material for the Circle of Trust with ``cm_code_attest``
(``expires_at`` = now + ``com.snc.kmf.signature.validity_window``) and puts it in
a new, complete local update set, ready for ``updateset export``. The records go
only into that set, never into the user's current set.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select

from .._time import format_ts
from ..errors import NotFoundError, UsageError
from ..jobs.model import JOB_TABLE, find_job, policy_state
from ..platform import records
from ..platform.context import Operation
from ..platform.kmf import SIGNING_MODULES
from ..signing import SignatureRecord
from ..store.models import Certificate, CryptoKey
from ..updatesets.local import COMPLETE, create_set
from . import attest
from .policy import STATEMENT_TABLE, next_sequence, target_instance

CERTIFICATE_SET_PREFIX = "code_signing_key_publicsigver_"


@dataclass(frozen=True)
class ExportResult:
    """The local update set an export created, and what it holds."""

    update_set: str
    name: str
    entries: int
    expires_at: str
    signatures: tuple[str, ...]
    certificates: tuple[str, ...]  # fingerprints, leaf first
    job: str | None = None
    policy_statement: dict[str, object] | None = field(default=None)

    def to_dict(self) -> dict[str, object]:
        return {
            "update_set": self.update_set,
            "name": self.name,
            "state": COMPLETE,
            "entries": self.entries,
            "expires_at": self.expires_at,
            "signatures": list(self.signatures),
            "certificates": list(self.certificates),
            "job": self.job,
            "policy_statement": self.policy_statement,
        }


def export_certificate(op: Operation, module: str) -> ExportResult:
    """Update set ``code_signing_key_publicsigver_<module>``: the module's certificate, the
    chain certificates issuing it, and a Circle-of-Trust signature over each."""
    op.instance.require_trusted("export a certificate to production")
    if module not in SIGNING_MODULES:
        raise UsageError(
            f"module {module!r} signs nothing for production: export one of "
            + ", ".join(sorted(SIGNING_MODULES))
        )
    key_row = op.session.scalar(
        select(CryptoKey).where(CryptoKey.module == module, CryptoKey.active.is_(True))
    )
    if key_row is None:
        raise NotFoundError(
            f"crypto module {module} holds no key: import one with "
            f"`trustcircle kmf import --module {module} --p12 FILE --password-file PF`"
        )
    key = attest.attest_key(op, "export a certificate to production")
    expires = attest.validity_end(op)
    certs = attest.certificate_path(op.session, key_row.certificate)
    sigs = attest.sign_certificates(op, key, certs, expires)
    name = CERTIFICATE_SET_PREFIX + module
    result = package(
        op,
        name,
        f"Certificate of {module} ({certs[0].subject}) for the trusted friends list",
        [],
        sigs,
        certs,
        expires,
    )
    op.target = name
    op.detail = {
        "update_set": result.update_set,
        "module": module,
        "certificate": certs[0].fingerprint,
        "signatures": list(result.signatures),
    }
    return result


def package(
    op: Operation,
    name: str,
    description: str,
    items: list[tuple[str, str]],
    sigs: Sequence[SignatureRecord],
    certs: Sequence[Certificate],
    expires: dt.datetime,
    *,
    job: str | None = None,
    policy_statement: dict[str, object] | None = None,
) -> ExportResult:
    """A new, complete local update set *name* holding the records *items*, the
    certificates *certs* and the signature records *sigs*, in that order."""
    row = create_set(
        op.session, name, op.actor.name, op.ts, state=COMPLETE, description=description[:1000]
    )
    items = items + [(attest.CERTIFICATE_TABLE, c.sys_id) for c in certs]
    count = attest.add_records(op, row, items + attest.signature_items(sigs))
    return ExportResult(
        row.sys_id,
        name,
        count,
        format_ts(expires),
        tuple(s.sys_id for s in sigs),
        tuple(c.fingerprint for c in certs),
        job=job,
        policy_statement=policy_statement,
    )


def export_signed_job(op: Operation, name: str, target: str | None = None) -> ExportResult:
    """Sign job *name* and put it, its signature, the verification certificates and (for
    the Turn On/Off jobs) a signed policy statement in a new update set named after it."""
    key = attest.attest_key(op, "export a signed job")
    job = find_job(op.session, name)
    state = policy_state(job.sys_id)
    if state is None and target is not None:
        raise UsageError(
            "--target binds a policy statement: only the Turn On/Off Code Signing jobs carry one"
        )
    expires = attest.validity_end(op)
    job_sig = attest.cot_sign(op, key, JOB_TABLE, job.sys_id, expires)
    certs = attest.certificate_path(op.session, key.certificate)
    cert_sigs = attest.sign_certificates(op, key, certs, expires)
    statement: dict[str, object] | None = None
    items: list[tuple[str, str]] = [(JOB_TABLE, job.sys_id)]
    sigs: list[SignatureRecord] = [job_sig]
    if state is not None:
        sequence = next_sequence(op.session)
        fields: dict[str, str | None] = {
            "instance": target_instance(target),
            "state": state,
            "sequence": str(sequence),
            "issued_at": op.ts,
            "expires_at": format_ts(expires),
        }
        created = records.insert(
            op.session, STATEMENT_TABLE, fields, op.actor.name, op.ts, subsystem=True
        )
        statement_id = created.record.sys_id
        sigs.append(attest.cot_sign(op, key, STATEMENT_TABLE, statement_id, expires))
        items.append((STATEMENT_TABLE, statement_id))
        statement = {"sys_id": statement_id, **fields, "signature": sigs[-1].sys_id}
    sigs += cert_sigs
    job_name = job.fields.get("name") or job.sys_id
    result = package(
        op,
        job_name,
        f"Signed job {job_name} ({job.sys_id}) for production",
        items,
        sigs,
        certs,
        expires,
        job=job.sys_id,
        policy_statement=statement,
    )
    op.target = f"{JOB_TABLE}:{job.sys_id}"
    op.detail = {
        "update_set": result.update_set,
        "signature": job_sig.sys_id,
        "certificate": key.certificate,
        "expires_at": format_ts(expires),
        "policy_statement": statement,
    }
    return result
