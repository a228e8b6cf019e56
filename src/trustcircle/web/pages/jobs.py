"""System Definition › Scheduled Jobs: the list (name search such as ``*Turn``) and the job
form with **Export signed job to production**, **Prerequisite Check** and **Execute Now**.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from ... import cot
from ...errors import NotAuthorisedError, RefusedError, TrustcircleError
from ...jobs import JOB_TABLE, find_job, job_summary, list_jobs
from ...jobs.model import MAX_PATTERN
from ...platform import signatures
from ...platform.context import Operation
from ...store.models import JobExecution
from ._auth import PageUser, UserDep, page_operation
from ._render import render
from ._route import error_page, page_router

router = page_router()

JOB_FIELDS = ("name", "run_as", "run_type", "active", "system_job", "description")
MAX_TARGET = 200


def _job_view(op: Operation, name: str) -> dict[str, Any]:
    """What the job form shows: the record, its signatures (oldest first), its executions."""
    record = find_job(op.session, name)
    sigs = sorted(
        signatures.signatures_of(op.session, JOB_TABLE, record.sys_id), key=lambda s: s.signed_at
    )
    runs = op.session.scalars(
        select(JobExecution)
        .where(JobExecution.job == record.sys_id)
        .order_by(JobExecution.executed_on)
    )
    return {
        "job": record,
        "fields": [(f, record.fields.get(f)) for f in JOB_FIELDS],
        "script": record.fields.get("script") or "",
        "signatures": [s.to_fields() for s in sigs],
        "executions": list(runs),
        "action": cot.required_action(record.sys_id),
    }


def _form(
    request: Request, user: PageUser, job_id: str, *, status_code: int = 200, **extra: Any
) -> Response:
    with page_operation(request, user, "job.read", write=False) as op:
        view = _job_view(op, job_id)
    return render(request, "job_form.html", status_code=status_code, **view, **extra)


@router.get("/jobs", response_class=HTMLResponse)
def jobs_list(
    request: Request,
    user: UserDep,
    name: Annotated[str, Query(max_length=MAX_PATTERN)] = "",
) -> Response:
    with page_operation(request, user, "job.read", write=False) as op:
        rows = [job_summary(j) for j in list_jobs(op.session, name or None)]
    return render(request, "jobs_list.html", jobs=rows, name=name)


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_form(request: Request, job_id: str, user: UserDep) -> Response:
    return _form(request, user, job_id[:MAX_TARGET])


@router.post("/jobs/{job_id}/export-signed", response_class=HTMLResponse)
def export_signed(
    request: Request,
    job_id: str,
    user: UserDep,
    target: Annotated[str, Form(max_length=MAX_TARGET)] = "",
) -> Response:
    with page_operation(request, user, "job.export_signed", job_id[:MAX_TARGET]) as op:
        result = cot.export_signed_job(op, job_id[:MAX_TARGET], target.strip() or None)
    text = (
        f"Signed job exported to update set {result.name} ({result.entries} entries, "
        f"signature valid until {result.expires_at}): open it in Local Update Sets and "
        "Export to XML"
    )
    return _form(request, user, job_id, messages=[("success", text)], export=result.to_dict())


@router.post("/jobs/{job_id}/prereq-check", response_class=HTMLResponse)
def prereq_check(request: Request, job_id: str, user: UserDep) -> Response:
    with page_operation(request, user, "job.read", write=False) as op:
        report = cot.prereq_check(op, job_id[:MAX_TARGET])
    level, text = (
        ("success", "Prerequisite Check passed: every check is PASS; you may Execute Now")
        if report.ok
        else ("error", f"Prerequisite Check failed: {len(report.failed)} check(s) FAIL")
    )
    return _form(request, user, job_id, messages=[(level, text)], report=report)


@router.post("/jobs/{job_id}/execute", response_class=HTMLResponse)
def execute(request: Request, job_id: str, user: UserDep) -> Response:
    with page_operation(request, user, "job.read", write=False) as op:
        record = find_job(op.session, job_id[:MAX_TARGET])
    action = cot.required_action(record.sys_id)
    try:
        target = f"{JOB_TABLE}:{record.sys_id}"
        with page_operation(request, user, action, target, deferred=True) as op:
            result = cot.execute_job(op, record.sys_id)
    except (RefusedError, NotAuthorisedError) as exc:
        failed = _failed_checks(request, user, record.sys_id)
        if not failed:
            return error_page(request, exc)
        return _form(
            request,
            user,
            record.sys_id,
            status_code=exc.http_status,
            messages=[("error", f"Execute Now refused: {exc.message}")],
            failed_checks=failed,
        )
    changed = ", ".join(f"{k} = {v}" for k, v in result.changed.items()) or "nothing"
    text = f"Executed {result.name} ({result.run.status.value}); changed: {changed}"
    return _form(request, user, record.sys_id, messages=[("success", text)], execution=result)


def _failed_checks(request: Request, user: PageUser, job_id: str) -> list[cot.Check]:
    """The checks that fail now (to show with a refusal); empty when they cannot be read."""
    try:
        with page_operation(request, user, "job.read", write=False) as op:
            return list(cot.prereq_check(op, job_id).failed)
    except TrustcircleError:
        return []
