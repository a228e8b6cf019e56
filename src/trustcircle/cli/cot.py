"""``cert``, ``cot`` and ``job`` commands: exports to production, the Circle of Trust, jobs."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy import select

from .. import cot
from ..jobs import JOB_TABLE, find_job, job_summary, list_jobs
from ..jobs.runner import DEFAULT_TIME_LIMIT, MAX_TIME_LIMIT
from ..platform import signatures
from ..store.models import JobExecution
from ._common import HomeOpt, JsonOpt, TokenOpt, emit_json, emit_table, operation, out

NameArg = Annotated[str, typer.Argument(help="Job name (exact) or sys_id.")]


def register(app: typer.Typer) -> None:
    """Add the ``cert``, ``cot`` and ``job`` groups to *app*."""
    cert_app = typer.Typer(help="Certificates for production.", no_args_is_help=True)
    cert_app.command("export-to-production")(cert_export)
    app.add_typer(cert_app, name="cert")
    cot_app = typer.Typer(help="The Circle of Trust.", no_args_is_help=True)
    cot_app.command("friends")(cot_friends)
    cot_app.command("policy")(cot_policy)
    cot_app.command("revoke")(cot_revoke)
    app.add_typer(cot_app, name="cot")
    job_app = typer.Typer(
        help="Scheduled jobs and signed Circle-of-Trust jobs.", no_args_is_help=True
    )
    for name, fn in (
        ("list", job_list),
        ("show", job_show),
        ("export-signed", job_export_signed),
        ("prereq-check", job_prereq_check),
        ("execute", job_execute),
    ):
        job_app.command(name)(fn)
    app.add_typer(job_app, name="job")


def cert_export(
    module: Annotated[str, typer.Option(help="cm_code_signing or cm_code_attest.")],
    home: HomeOpt = None,
    token_file: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Create update set code_signing_key_publicsigver_<module> (trusted instances only)."""
    with operation(home, token_file, "cert.export", module) as op:
        result = cot.export_certificate(op, module)
    if json_out:
        emit_json(result.to_dict())
    else:
        out.print(
            f"created update set {result.name!r} ({result.update_set}): {result.entries} "
            f"entries, signatures valid until {result.expires_at}; export it with "
            f"`trustcircle updateset export {result.update_set} --out FILE`",
            markup=False,
        )


def cot_revoke(
    fingerprint: Annotated[str, typer.Argument(help="SHA-256 fingerprint of the certificate.")],
    reason: Annotated[str, typer.Option(help="Why, for the record (e.g. 'key compromised').")],
    home: HomeOpt = None,
    token_file: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Create update set cot_revocation_<fp>: a signed request that revokes a trusted friend
    on the protected instances that commit it (trusted instances only)."""
    with operation(home, token_file, "cot.revoke", fingerprint[:64]) as op:
        result = cot.export_revocation(op, fingerprint, reason)
    if json_out:
        emit_json(result.to_dict())
    else:
        out.print(
            f"created update set {result.name!r} ({result.update_set}): a revocation request "
            f"signed until {result.expires_at}; export it with "
            f"`trustcircle updateset export {result.update_set} --out FILE` and commit it on "
            "each protected instance",
            markup=False,
        )


def cot_friends(
    home: HomeOpt = None, token_file: TokenOpt = None, json_out: JsonOpt = False
) -> None:
    """List the trusted friends (certificates of the Circle of Trust)."""
    with operation(home, token_file, "cot.read", write=False) as op:
        friends = cot.list_friends(op.session)
    if json_out:
        emit_json([f.to_dict() for f in friends])
        return
    emit_table(
        "Trusted friends",
        ["fingerprint", "name", "module", "added", "via", "revoked", "not after"],
        [
            [f.fingerprint, f.name, f.module, f.added_on, f.via, f.revoked, f.not_after]
            for f in friends
        ],
    )


def cot_policy(
    home: HomeOpt = None, token_file: TokenOpt = None, json_out: JsonOpt = False
) -> None:
    """Show the Code Signing switches and the policy statements."""
    with operation(home, token_file, "cot.read", write=False) as op:
        policy = cot.current_policy(op.session)
    if json_out:
        emit_json(policy.to_dict())
        return
    certs = ", ".join(policy.validation_certificate) or "-"
    out.print(f"validation flag: {str(policy.validation_flag).lower()}", markup=False)
    out.print(f"validation certificate(s): {certs}", markup=False)
    out.print(f"current statement sequence: {policy.current_sequence}", markup=False)
    columns = ("sequence", "state", "instance", "issued_at", "expires_at")
    if policy.applied:
        emit_table(
            "Applied policy statements",
            [*columns, "applied_on", "applied_by"],
            [[a[c] for c in (*columns, "applied_on", "applied_by")] for a in policy.applied],
        )
    if policy.statements:
        emit_table(
            "Issued policy statements",
            list(columns),
            [[s[c] for c in columns] for s in policy.statements],
        )


def job_list(
    name: Annotated[
        str | None,
        typer.Option("--name", help="Name search: *Turn contains, %x ends, =x equals, x starts."),
    ] = None,
    home: HomeOpt = None,
    token_file: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List scheduled jobs."""
    with operation(home, token_file, "job.read", write=False) as op:
        rows = [job_summary(j) for j in list_jobs(op.session, name)]
    if json_out:
        emit_json(rows)
        return
    emit_table(
        "Scheduled Jobs",
        ["sys_id", "name", "run type", "active", "updated"],
        [[r["sys_id"], r["name"], r["run_type"], r["active"], r["updated_on"]] for r in rows],
    )


def job_show(
    name: NameArg,
    home: HomeOpt = None,
    token_file: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Show a job, its signatures and its executions."""
    with operation(home, token_file, "job.read", write=False) as op:
        job = find_job(op.session, name)
        sigs = signatures.signatures_of(op.session, JOB_TABLE, job.sys_id)
        runs = list(
            op.session.scalars(
                select(JobExecution)
                .where(JobExecution.job == job.sys_id)
                .order_by(JobExecution.executed_on)
            )
        )
    data = job.to_dict() | {
        "signatures": [s.to_fields() for s in sorted(sigs, key=lambda s: s.signed_at)],
        "executions": [
            {
                "sys_id": r.sys_id,
                "signature": r.signature,
                "executed_on": r.executed_on,
                "executed_by": r.executed_by,
                "outcome": r.outcome,
            }
            for r in runs
        ],
    }
    if json_out:
        emit_json(data)
        return
    emit_table(
        f"{JOB_TABLE} {job.sys_id}", ["field", "value"], [[k, v] for k, v in job.fields.items()]
    )
    emit_table(
        "Signatures",
        ["sys_id", "purpose", "signed at", "expires at", "certificate"],
        [[s.sys_id, s.purpose, s.signed_at, s.expires_at, s.certificate[:16]] for s in sigs],
    )
    for r in runs:
        out.print(f"executed {r.executed_on} by {r.executed_by}: {r.outcome}", markup=False)


def job_export_signed(
    name: NameArg,
    target: Annotated[
        str | None,
        typer.Option(help="Bind the policy statement to this protected instance (default: any)."),
    ] = None,
    home: HomeOpt = None,
    token_file: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Sign a job for the Circle of Trust and put it in an update set (trusted only)."""
    with operation(home, token_file, "job.export_signed", name) as op:
        result = cot.export_signed_job(op, name, target)
    if json_out:
        emit_json(result.to_dict())
        return
    statement = result.policy_statement
    out.print(
        f"created update set {result.name!r} ({result.update_set}): {result.entries} entries, "
        f"signed until {result.expires_at}"
        + (
            f", policy statement #{statement['sequence']} ({statement['state']}, "
            f"for {statement['instance']})"
            if statement
            else ""
        ),
        markup=False,
    )


def job_prereq_check(
    name: NameArg,
    home: HomeOpt = None,
    token_file: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Check every prerequisite of executing a signed job; exit as `job execute` would
    refuse if any fails (3 without the roles, else 1)."""
    with operation(home, token_file, "job.read", write=False) as op:
        report = cot.prereq_check(op, name)
    if json_out:
        emit_json(report.to_dict())
    else:
        out.print(
            f"Prerequisite check of {report.name!r} ({report.job}) on {report.instance}, "
            f"{report.checked_at}:",
            markup=False,
        )
        for check in report.checks:
            verdict = "PASS" if check.ok else "FAIL"
            out.print(f"{verdict}  {check.label}: {check.reason}", markup=False)
    failed = report.failed
    if failed:
        names = ", ".join(c.name for c in failed)
        raise report.refusal(
            f"prerequisite check of {report.name!r} failed: {names}; fix these first"
        )


def job_execute(
    name: NameArg,
    time_limit: Annotated[
        float, typer.Option(help=f"Seconds the script may run (at most {MAX_TIME_LIMIT:g}).")
    ] = DEFAULT_TIME_LIMIT,
    home: HomeOpt = None,
    token_file: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Execute a signed job now, when every prerequisite passes at execution."""
    with operation(home, token_file, "job.read", write=False) as op:
        job = find_job(op.session, name)
    action = cot.required_action(job.sys_id)
    target = f"{JOB_TABLE}:{job.sys_id}"
    with operation(home, token_file, action, target, deferred=True) as op:
        result = cot.execute_job(op, job.sys_id, time_limit=time_limit)
    if json_out:
        emit_json(result.to_dict())
        return
    for line in result.run.log:
        out.print(f"[{line.level}] {line.message}", markup=False)
    if result.run.output:
        out.print(result.run.output.rstrip("\n"), markup=False)
    changes = ", ".join(f"{k}={v}" for k, v in result.changed.items()) or "no property changed"
    out.print(
        f"executed {result.name!r} (signature {result.signature}): {changes}"
        + (f"; policy statement #{result.policy_sequence}" if result.policy_sequence else ""),
        markup=False,
    )
