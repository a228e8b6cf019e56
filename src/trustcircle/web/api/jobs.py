"""Scheduled jobs, signed Circle-of-Trust jobs, and the Circle of Trust (``job`` / ``cot``).

Endpoints are plain ``def``: FastAPI runs them in its threadpool, so a job execution
(whose script runs in a separate process with a time limit) never stalls the event
loop that serves the other requests.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from ... import cot
from ...errors import NotAuthorisedError, RefusedError, TrustcircleError
from ...jobs import JOB_TABLE, find_job, job_summary, list_jobs
from ...jobs.runner import DEFAULT_TIME_LIMIT, MAX_TIME_LIMIT
from ...platform import signatures
from ...platform.context import Instance
from ...store.models import JobExecution
from ..deps import InstanceDep, TokenDep, operation
from ._common import api_router, error_response

router = api_router("jobs")

JobName = Annotated[
    str, Path(min_length=1, max_length=200, description="Job name (exact) or sys_id.")
]


class ExportSignedBody(BaseModel):
    """Optionally bind the policy statement of a Turn On/Off job to one protected instance."""

    model_config = ConfigDict(extra="forbid")
    target: str | None = Field(None, max_length=200, description="Default: any instance.")


class ExecuteBody(BaseModel):
    """How long the job's script may run."""

    model_config = ConfigDict(extra="forbid")
    time_limit: float = Field(DEFAULT_TIME_LIMIT, gt=0, le=MAX_TIME_LIMIT)


@router.get("/jobs", summary="List scheduled jobs")
def jobs(
    inst: InstanceDep,
    token: TokenDep,
    name: Annotated[
        str | None,
        Query(
            max_length=100,
            description="Name search: *x contains, %x ends with, =x equals, x starts with.",
        ),
    ] = None,
) -> Any:
    with operation(inst, token, "job.read", write=False) as op:
        return [job_summary(j) for j in list_jobs(op.session, name)]


@router.get("/jobs/{name}", summary="A job, its signatures and its executions")
def job(name: JobName, inst: InstanceDep, token: TokenDep) -> Any:
    with operation(inst, token, "job.read", write=False) as op:
        record = find_job(op.session, name)
        sigs = signatures.signatures_of(op.session, JOB_TABLE, record.sys_id)
        runs = op.session.scalars(
            select(JobExecution)
            .where(JobExecution.job == record.sys_id)
            .order_by(JobExecution.executed_on)
        )
        executions = [
            {
                "sys_id": r.sys_id,
                "signature": r.signature,
                "executed_on": r.executed_on,
                "executed_by": r.executed_by,
                "outcome": r.outcome,
            }
            for r in runs
        ]
    return record.to_dict() | {
        "signatures": [s.to_fields() for s in sorted(sigs, key=lambda s: s.signed_at)],
        "executions": executions,
    }


@router.post(
    "/jobs/{name}/export-signed",
    status_code=status.HTTP_201_CREATED,
    summary="Sign a job for the Circle of Trust and put it in an update set (trusted only)",
)
def export_signed(
    name: JobName, inst: InstanceDep, token: TokenDep, body: ExportSignedBody | None = None
) -> Any:
    target = body.target if body is not None else None
    with operation(inst, token, "job.export_signed", name) as op:
        return cot.export_signed_job(op, name, target).to_dict()


@router.post(
    "/jobs/{name}/prereq-check",
    summary="Check every prerequisite of executing a signed job",
    description="A report, always 200 when the job exists: `ok` is true only when every check "
    "passes; each check carries its reason.",
)
def prereq_check(name: JobName, inst: InstanceDep, token: TokenDep) -> Any:
    with operation(inst, token, "job.read", write=False) as op:
        return cot.prereq_check(op, name).to_dict()


@router.post(
    "/jobs/{name}/execute",
    summary="Execute a signed job now, when every prerequisite passes at execution",
    description="Refused (409 verification, 403 policy or roles) when a prerequisite fails; "
    "the error body then lists `failed_checks`. Nothing is applied on refusal.",
)
def execute(
    name: JobName, inst: InstanceDep, token: TokenDep, body: ExecuteBody | None = None
) -> Any:
    time_limit = body.time_limit if body is not None else DEFAULT_TIME_LIMIT
    with operation(inst, token, "job.read", write=False) as op:
        record = find_job(op.session, name)
    action = cot.required_action(record.sys_id)
    try:
        target = f"{JOB_TABLE}:{record.sys_id}"
        with operation(inst, token, action, target, deferred=True) as op:
            return cot.execute_job(op, record.sys_id, time_limit=time_limit).to_dict()
    except (RefusedError, NotAuthorisedError) as exc:
        failed = _failed_checks(inst, token, record.sys_id)
        if not failed:
            raise
        return error_response(exc, {"failed_checks": failed})


@router.get("/cot/friends", tags=["circle of trust"], summary="The trusted friends")
def friends(inst: InstanceDep, token: TokenDep) -> Any:
    with operation(inst, token, "cot.read", write=False) as op:
        return [f.to_dict() for f in cot.list_friends(op.session)]


@router.get(
    "/cot/policy",
    tags=["circle of trust"],
    summary="The Code Signing switches and the policy statements",
)
def policy(inst: InstanceDep, token: TokenDep) -> Any:
    with operation(inst, token, "cot.read", write=False) as op:
        return cot.current_policy(op.session).to_dict()


def _failed_checks(inst: Instance, token: str, job_id: str) -> list[dict[str, object]]:
    """The checks that fail now (for a refusal's body); empty when they cannot be read."""
    try:
        with operation(inst, token, "job.read", write=False) as op:
            report = cot.prereq_check(op, job_id)
    except TrustcircleError:
        return []
    return [c.to_dict() for c in report.failed]
