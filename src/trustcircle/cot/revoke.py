"""Revoking a trusted friend: a signed request made on the trusted instance, applied by commit.

A certificate leaves the circle the way it joined: through a verified Circle-of-Trust
update set. On the trusted instance :func:`export_revocation` (``cot revoke``) writes a
``cot_revocation_request`` record (``fingerprint``, ``reason``, ``issued_at``), signs
it with ``cm_code_attest`` for the Circle of Trust and puts it, with the verification
certificates, in a new update set ``cot_revocation_<first 16 hex of the fingerprint>``.

On the protected instance the request is Circle-of-Trust material: the manifest must
verify, and the checklist requires a valid signature by a current trusted friend (only a
member of the circle revokes; ``updatesets._checks``, step 7b). Commit takes the requests
(:func:`check_requests`, before anything is applied) and marks each certificate revoked
(:func:`apply_requests`): never trusted again for a Circle-of-Trust check here, even
when a later set carries it again. A fingerprint not known here yet is
listed as revoked ahead of its arrival. Revocation is permanent: no set deletes a request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from .._types import fingerprint as parse_fingerprint
from ..errors import PolicyError, UsageError, VerificationError
from ..platform import records
from ..platform.context import Operation
from ..signing import REVOCATION_CONFIG
from ..store.models import TrustedFriend
from . import attest
from .export import ExportResult, package

if TYPE_CHECKING:
    from ..updatesets._results import ParsedEntry

REVOCATION_TABLE = REVOCATION_CONFIG.table
REVOCATION_SET_PREFIX = "cot_revocation_"
MAX_REASON = 1000
_DELETE = "DELETE"
_UNSEEN = "(revoked before it was brought here)"


def export_revocation(op: Operation, fingerprint: str, reason: str) -> ExportResult:
    """Update set ``cot_revocation_<fp>``: a signed request to revoke certificate
    *fingerprint* from the trusted friends list, and the verification certificates."""
    key = attest.attest_key(op, "request the revocation of a certificate")
    fp = parse_fingerprint(fingerprint.strip().lower())
    why = " ".join(reason.split())
    if not why:
        raise UsageError("give the reason for the revocation with --reason TEXT")
    if len(why) > MAX_REASON:
        raise UsageError(f"the reason is {len(why)} characters: keep it under {MAX_REASON}")
    expires = attest.validity_end(op)
    fields: dict[str, str | None] = {"fingerprint": fp, "reason": why, "issued_at": op.ts}
    created = records.insert(
        op.session, REVOCATION_TABLE, fields, op.actor.name, op.ts, subsystem=True
    )
    request = created.record.sys_id
    sigs = [attest.cot_sign(op, key, REVOCATION_TABLE, request, expires, REVOCATION_CONFIG)]
    certs = attest.certificate_path(op.session, key.certificate)
    sigs += attest.sign_certificates(op, key, certs, expires)
    result = package(
        op,
        REVOCATION_SET_PREFIX + fp[:16],
        f"Revocation of certificate {fp} from the Circle of Trust: {why}",
        [(REVOCATION_TABLE, request)],
        sigs,
        certs,
        expires,
    )
    op.target = fp
    op.detail = {"update_set": result.update_set, "request": request, "reason": why}
    return result


@dataclass(frozen=True)
class Revocation:
    """A request, as preview judged it: certificate *fingerprint* leaves the circle."""

    request: str
    fingerprint: str


def check_requests(parsed: Sequence[ParsedEntry]) -> list[Revocation]:
    """The revocation requests among *parsed* (entries the checklist passed, a commit about
    to apply them: step 7b made sure a trusted friend signed each); raises, before
    anything is applied, for a set that deletes one or names no certificate."""
    out: list[Revocation] = []
    for p in parsed:
        if p.table != REVOCATION_TABLE:
            continue
        if p.action == _DELETE:
            raise PolicyError(
                f"the set deletes revocation request {p.target_sys_id}: a revocation is "
                "permanent; bring a new certificate into the circle instead"
            )
        try:
            fp = parse_fingerprint(p.fields.get("fingerprint") or "")
        except UsageError as exc:
            raise VerificationError(
                f"revocation request {p.target_sys_id} names no certificate: {exc.message}"
            ) from exc
        out.append(Revocation(p.target_sys_id, fp))
    return out


def apply_requests(
    session: Session, revocations: Sequence[Revocation], via: str, actor: str, ts: str
) -> list[str]:
    """Mark each certificate revoked (listing an unknown one ahead of its arrival); the
    fingerprints revoked."""
    done: list[str] = []
    for rv in revocations:
        row = session.get(TrustedFriend, rv.fingerprint)
        if row is None:
            session.add(
                TrustedFriend(
                    fingerprint=rv.fingerprint,
                    certificate="",
                    name=_UNSEEN,
                    module="",
                    added_on=ts,
                    added_by=actor,
                    via=via[:200],
                    revoked=True,
                )
            )
        else:
            row.revoked = True
        done.append(rv.fingerprint)
    session.flush()
    return done


__all__ = [
    "REVOCATION_SET_PREFIX",
    "REVOCATION_TABLE",
    "Revocation",
    "apply_requests",
    "check_requests",
    "export_revocation",
]
