"""Executing a signed job on a protected instance: check again, run apart, then apply.

Every prerequisite is judged again inside the operation's transaction (fail
closed); the script runs in a separate process with a time limit and may only
*ask* (``codesigning.turn_on()``); what it asked is applied afterwards, in the same
transaction, and only when it matches the verified policy statement. A refusal or
a failed run applies nothing; the operation audits the refusal. The script also sees
the instance script API (``records``, ``ecc``, ``include``: :mod:`trustcircle.ecc.scriptapi`);
its ECC messages are notarized by the tracker when its calling stack is signed.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from .._time import format_ts
from .._types import Fingerprint, new_sys_id
from ..ecc.scriptapi import instance_api
from ..errors import PolicyError, RefusedError
from ..jobs.model import JOB_TABLE, find_job
from ..jobs.runner import DEFAULT_TIME_LIMIT, Frame, RunResult, codesigning_api, run_script
from ..platform import properties
from ..platform.context import Operation
from ..platform.kmf import SIGNING_MODULES
from ..signing import SignatureRecord
from ..store.models import JobExecution, PolicyStatementRow
from .friends import friend_trust, list_friends
from .policy import Statement
from .prereq import Check, PrereqReport, evaluate

MAX_STORED_OUTPUT = 64 * 1024
_REQUESTS = {"turn_on": "on", "turn_off": "off"}


@dataclass(frozen=True)
class ExecutionResult:
    """A completed execution: the run, and what it changed."""

    job: str
    name: str
    execution: str
    signature: str
    run: RunResult
    changed: dict[str, str]
    policy_sequence: int | None

    def to_dict(self) -> dict[str, object]:
        return {
            "job": self.job,
            "name": self.name,
            "execution": self.execution,
            "signature": self.signature,
            "run": self.run.to_dict(),
            "changed": dict(self.changed),
            "policy_sequence": self.policy_sequence,
        }


def execute_job(
    op: Operation, name: str, *, time_limit: float = DEFAULT_TIME_LIMIT
) -> ExecutionResult:
    """Run job *name* once its prerequisites pass now; apply what it asked, or nothing.

    The prerequisites are judged again after the run, under the write lock and at the
    time then, before anything is applied: in a ``deferred`` operation the run only read
    until the script's first write (the instance's other writers were not held up), and a
    run may last long enough for a validity window or a certificate to end.
    """
    job = find_job(op.session, name)
    op.target = f"{JOB_TABLE}:{job.sys_id}"
    report = evaluate(op.session, op.instance, op.actor, op.now, job)
    sig = _refuse_unless_ok(report)
    script = job.fields.get("script") or ""
    run = run_script(
        script,
        instance_api(op, codesigning_api()),
        time_limit,
        stack=(Frame(JOB_TABLE, job.sys_id, sig.sys_id),),
    )
    if not run.ok:
        first = (run.error or "").strip().splitlines()[-1:] or [run.status.value]
        raise RefusedError(
            f"job {report.name!r} did not complete ({run.status.value}: {first[0][:200]}): "
            "nothing was applied; fix the job on the trusted instance and export it again"
        )
    op.begin_writing()  # under the write lock from here (if not since the script's first write)
    report, sig = _still_ok(op, job.sys_id, script, sig)
    changed, sequence = _apply(op, report, sig, run)
    execution = new_sys_id()
    op.session.add(
        JobExecution(
            sys_id=execution,
            job=job.sys_id,
            signature=sig.sys_id,
            executed_on=op.ts,
            executed_by=op.actor.name,
            outcome=run.status.value,
            output=run.output[:MAX_STORED_OUTPUT],
        )
    )
    _flush(op, f"signature {sig.sys_id} was executed meanwhile: a signed job runs once")
    op.detail = {
        "job": job.sys_id,
        "name": report.name,
        "signature": sig.sys_id,
        "execution": execution,
        "changed": changed,
        "policy_sequence": sequence,
    }
    return ExecutionResult(job.sys_id, report.name, execution, sig.sys_id, run, changed, sequence)


def _still_ok(
    op: Operation, job_id: str, script: str, ran: SignatureRecord
) -> tuple[PrereqReport, SignatureRecord]:
    """The prerequisites judged again under the write lock, now, for the script that ran."""
    job = find_job(op.session, job_id)
    report = evaluate(op.session, op.instance, op.actor, op.instance.clock(), job)
    sig = _refuse_unless_ok(report)
    if sig.sys_id != ran.sys_id or (job.fields.get("script") or "") != script:
        raise PolicyError(
            f"job {report.name!r} or its signature changed while it ran: nothing was applied; "
            "execute it again"
        )
    return report, sig


def _refuse_unless_ok(report: PrereqReport) -> SignatureRecord:
    """The verified signature when every check passed; else the refusal, by kind."""
    if report.ok and report.signature is not None:
        return report.signature
    failed = report.failed or (Check("signature_valid", False, "no verified signature"),)
    summary = "; ".join(f"{c.name}: {c.reason}" for c in failed)
    raise report.refusal(f"job {report.name!r} refused ({summary}); nothing was applied")


def _apply(
    op: Operation, report: PrereqReport, sig: SignatureRecord, run: RunResult
) -> tuple[dict[str, str], int | None]:
    """Apply the Code Signing requests of the run: only the state the statement grants."""
    wanted = {_REQUESTS[r.method] for r in run.requests if r.target == "codesigning"}
    if not wanted:
        return {}, None
    judged = report.statement
    granted = None if judged is None else judged.statement
    if judged is None or granted is None or judged.signature is None or wanted != {granted.state}:
        raise PolicyError(
            f"job {report.name!r} asked to turn Code Signing {'/'.join(sorted(wanted))} but only "
            "the Turn On/Off system job with a verified policy statement of that state may: "
            "nothing was applied"
        )
    changed = _switch(op, report, sig, granted.state)
    _record_statement(op, granted, judged.signature)
    return changed, granted.sequence


def _switch(
    op: Operation, report: PrereqReport, sig: SignatureRecord, state: str
) -> dict[str, str]:
    values = {properties.VALIDATION_FLAG: "true" if state == "on" else "false"}
    if state == "on":
        trust = friend_trust(op.session, op.now)
        fingerprints = sorted(
            f.fingerprint
            for f in list_friends(op.session)
            if f.module in SIGNING_MODULES
            and not f.revoked
            and (t := trust.get(Fingerprint(f.fingerprint))) is not None
            and t.trusted
        )
        values[properties.VALIDATION_CERTIFICATE] = ",".join(fingerprints)
    for name, value in values.items():
        previous = properties.get_property(op.session, name)
        properties.set_protected(op.session, name, value, op.actor.name, op.ts)
        op.audit(
            "property.protected_set",
            name,
            {
                "value": value,
                "previous": previous,
                "job": report.job,
                "job_name": report.name,
                "signature": sig.sys_id,
                "user": op.actor.name,
            },
        )
    return values


def _record_statement(op: Operation, st: Statement, signature: str) -> None:
    op.session.add(
        PolicyStatementRow(
            sequence=st.sequence,
            record=st.sys_id,
            signature=signature,
            instance=st.instance,
            state=st.state,
            issued_at=format_ts(st.issued_at),
            expires_at=format_ts(st.expires_at),
            applied_on=op.ts,
            applied_by=op.actor.name,
        )
    )
    _flush(op, f"policy statement #{st.sequence} was applied meanwhile: replay refused")


def _flush(op: Operation, conflict: str) -> None:
    try:
        op.session.flush()
    except IntegrityError as exc:
        raise RefusedError(conflict) from exc
