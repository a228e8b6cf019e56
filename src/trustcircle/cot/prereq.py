"""The prerequisite check of a signed job on a protected instance.

Every check is judged and reported (pass/fail with its reason), none short-cuts
another. ``job execute`` runs the very same evaluation again inside its own
transaction, so what executes is what was checked at that moment.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from .._time import format_ts, parse_ts
from .._types import Fingerprint
from ..errors import (
    BadInputError,
    NotAuthorisedError,
    PolicyError,
    TrustcircleError,
    VerificationError,
)
from ..jobs.model import JOB_TABLE, find_job, policy_state
from ..platform import properties, signatures
from ..platform.context import Instance, Operation
from ..platform.records import Record
from ..platform.roles import describe, missing_roles
from ..platform.users import Actor
from ..signing import (
    CIRCLE_OF_TRUST,
    CLOCK_SKEW,
    CertTrust,
    RecordVerification,
    SignatureRecord,
    Verdict,
)
from ..store.models import JobExecution
from .friends import friend_trust
from .policy import StatementJudgement, judge

CHECK_LABELS = {
    "instance_protected": "Instance role is protected",
    "optin_enabled": "Code Signing opt-in enabled",
    "user_roles": "Acting user has the roles",
    "signature_valid": "Signature valid",
    "certificate_trusted": "Certificate a trusted friend, unexpired, unrevoked",
    "validity_window": "Within validity window",
    "not_replayed": "Not already executed",
    "policy_statement": "Policy statement verifies and is newer",
}
SIGNATURE_CHECKS = frozenset(
    {"signature_valid", "certificate_trusted", "validity_window", "policy_statement"}
)


def required_action(job_id: str) -> str:
    """The action (DESIGN §8) running this job needs: turn on/off, else execute."""
    state = policy_state(job_id)
    return "job.execute" if state is None else f"job.turn_{state}"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    reason: str

    @property
    def label(self) -> str:
        return CHECK_LABELS[self.name]

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "label": self.label, "ok": self.ok, "reason": self.reason}


@dataclass(frozen=True)
class PrereqReport:
    """Every check of one job at one moment; ``ok`` only when all pass."""

    job: str
    name: str
    instance: str
    checked_at: str
    action: str
    checks: tuple[Check, ...]
    signature: SignatureRecord | None
    statement: StatementJudgement | None

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.ok)

    def refusal(self, message: str) -> TrustcircleError:
        """The error refusing this job with *message*, by the kind of check that failed:
        missing roles first (not authorised), then a signature check (verification),
        else policy. ``job prereq-check`` and ``job execute`` fail alike."""
        failed = {c.name for c in self.failed} or {"signature_valid"}
        if "user_roles" in failed:
            return NotAuthorisedError(message, (self.action,))
        if failed & SIGNATURE_CHECKS:
            return VerificationError(message)
        return PolicyError(message)

    def to_dict(self) -> dict[str, object]:
        st = self.statement
        return {
            "job": self.job,
            "name": self.name,
            "instance": self.instance,
            "checked_at": self.checked_at,
            "action": self.action,
            "ok": self.ok,
            "checks": [c.to_dict() for c in self.checks],
            "signature": None if self.signature is None else self.signature.sys_id,
            "policy_statement": (
                None if st is None or st.statement is None else st.statement.to_dict()
            ),
        }


def prereq_check(op: Operation, name: str) -> PrereqReport:
    """Judge job *name* (name or sys_id) for the operation's user, now."""
    job = find_job(op.session, name)
    op.target = f"{JOB_TABLE}:{job.sys_id}"
    return evaluate(op.session, op.instance, op.actor, op.now, job)


def evaluate(
    session: Session, instance: Instance, actor: Actor, now: dt.datetime, job: Record
) -> PrereqReport:
    """Judge every prerequisite of running *job* as *actor* at *now*."""
    action = required_action(job.sys_id)
    checks = [
        _instance_check(instance),
        _optin_check(session),
        _roles_check(actor, action),
    ]
    trust = friend_trust(session, now)
    verifier = signatures.verifier(session, now, trust=cast(Mapping[str, CertTrust], trust))
    result = verifier.verify(
        JOB_TABLE,
        job.sys_id,
        job.fields,
        signatures.signatures_of(session, JOB_TABLE, job.sys_id),
        CIRCLE_OF_TRUST,
    )
    sig = result.valid_signature or _newest_cot_signature(
        [c.signature for c in result.checks if c.newest_in_group]
    )
    if result.verdict is Verdict.VALID and sig is not None:
        checks.append(
            Check(
                "signature_valid",
                True,
                f"signature {sig.sys_id} by {sig.certificate[:16]}... verifies over the job's "
                "current fields",
            )
        )
    else:
        checks.append(Check("signature_valid", False, _signature_problem(result)))
    checks += [
        _certificate_check(sig, trust),
        _window_check(sig, now),
        _replay_check(session, sig),
    ]
    statement: StatementJudgement | None = None
    state = policy_state(job.sys_id)
    if state is not None:
        statement = judge(session, verifier, instance, state, now)
        checks.append(Check("policy_statement", statement.ok, statement.reason))
    return PrereqReport(
        job.sys_id,
        job.fields.get("name") or "",
        instance.name,
        format_ts(now),
        action,
        tuple(checks),
        sig,
        statement,
    )


def _signature_problem(result: RecordVerification) -> str:
    why = ", ".join(result.reasons) or result.verdict.value
    if result.verdict is Verdict.MISSING:
        hint = "the job carries no signature"
    elif "signature_mismatch" in result.reasons:
        hint = "the job was changed after it was signed"
    elif "purpose_mismatch" in result.reasons:
        hint = "no signature is for the Circle of Trust"
    else:
        hint = "no signature of the job is good now"
    return (
        f"verdict {result.verdict.value} ({why}): {hint}; commit the signed job exported "
        "from the trusted instance again"
    )


def _newest_cot_signature(sigs: list[SignatureRecord]) -> SignatureRecord | None:
    cot = [s for s in sigs if s.purpose == CIRCLE_OF_TRUST]
    return max(cot, key=lambda s: (s.signed_at, s.sys_id)) if cot else None


def _instance_check(instance: Instance) -> Check:
    if instance.is_protected:
        return Check("instance_protected", True, f"instance {instance.name!r} is protected")
    return Check(
        "instance_protected",
        False,
        f"instance {instance.name!r} is trusted: signed jobs run on a protected instance",
    )


def _optin_check(session: Session) -> Check:
    if properties.get_bool(session, properties.VALIDATION_OPTIN):
        return Check("optin_enabled", True, f"{properties.VALIDATION_OPTIN} is true")
    return Check(
        "optin_enabled",
        False,
        f"{properties.VALIDATION_OPTIN} is false: Code Signing is not opted in here",
    )


def _roles_check(actor: Actor, action: str) -> Check:
    missing = missing_roles(actor.roles, action)
    if not missing:
        return Check("user_roles", True, f"{actor.name} holds the roles of {action}")
    needs = " and ".join(m.replace("|", " or ") for m in missing)
    return Check(
        "user_roles",
        False,
        f"{actor.name} lacks {needs} ({action} needs {describe(action)}): ask an admin",
    )


def _certificate_check(
    sig: SignatureRecord | None, trust: Mapping[Fingerprint, CertTrust]
) -> Check:
    if sig is None:
        return Check("certificate_trusted", False, "no Circle-of-Trust signature to judge")
    fp = sig.certificate
    cert = trust.get(fp)
    if cert is None:
        return Check(
            "certificate_trusted",
            False,
            f"certificate {fp[:16]}... is unknown here: commit its certificate update set",
        )
    if cert.trusted:
        return Check(
            "certificate_trusted", True, f"certificate {fp[:16]}... is a trusted friend, valid now"
        )
    reason = cert.reason or "untrusted"
    text = {
        "not_a_trusted_friend": "is not on the trusted friends list",
        "revoked": "was revoked from the trusted friends list",
    }.get(reason, f"does not chain to a trust anchor now ({reason})")
    return Check("certificate_trusted", False, f"certificate {fp[:16]}... {text}")


def _window_check(sig: SignatureRecord | None, now: dt.datetime) -> Check:
    if sig is None:
        return Check("validity_window", False, "no Circle-of-Trust signature to judge")
    if sig.expires_at is None:
        return Check(
            "validity_window",
            False,
            "the signature carries no expiry: a Circle-of-Trust job signature must; export again",
        )
    try:
        signed, expires = parse_ts(sig.signed_at), parse_ts(sig.expires_at)
    except BadInputError as exc:
        return Check("validity_window", False, exc.message)
    if expires < now:
        return Check(
            "validity_window",
            False,
            f"the validity window ended at {sig.expires_at} (now {format_ts(now)}): "
            "export the signed job again",
        )
    if signed > now + CLOCK_SKEW:
        return Check("validity_window", False, f"the signature is dated {sig.signed_at}, ahead")
    return Check("validity_window", True, f"signed {sig.signed_at}, valid until {sig.expires_at}")


def _replay_check(session: Session, sig: SignatureRecord | None) -> Check:
    if sig is None:
        return Check("not_replayed", False, "no Circle-of-Trust signature to judge")
    done = session.scalar(select(JobExecution).where(JobExecution.signature == sig.sys_id))
    if done is None:
        return Check("not_replayed", True, f"signature {sig.sys_id} has not been executed")
    return Check(
        "not_replayed",
        False,
        f"signature {sig.sys_id} was executed on {done.executed_on} by {done.executed_by}: "
        "a signed job runs once; export it again for another run",
    )
