"""Health and Status: start a guardrail scan in the background, poll it, download its report.

``POST /api/health/scan`` starts a scan (one at a time: while one runs, the running one
is returned with ``started: false``); ``GET /api/health/scan/{id}`` polls it
(``done``/``total``/``state``); the last stored scan downloads as CSV
(``/api/health/scan/report.csv``, columns documented in ``health/results.py``) and as
``scan_report.txt``. ``GET /api/health/overview`` gives the dashboard's figures.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, status
from fastapi.responses import JSONResponse, Response

from ...errors import NotFoundError
from ...health import figures, history
from ...health.background import SCAN, jobs_for
from ...health.results import csv_text, report_text
from ..deps import InstanceDep, TokenDep, operation
from ._common import api_router

router = api_router("health")

READ = "health.read"
JobId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="id of the scan job")]


@router.post(
    "/health/scan",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Start a guardrail scan in the background (or return the running one)",
)
def start_scan(inst: InstanceDep, token: TokenDep) -> Any:
    with operation(inst, token, history.SCAN_ACTION, write=False) as op:
        actor = op.actor
    job, started = jobs_for(inst).start_scan(actor)
    return {**job.to_dict(), "started": started}


@router.get(
    "/health/scan",
    summary="The newest scan job of this server (if any) and the stored last scan",
)
def scan_status(inst: InstanceDep, token: TokenDep) -> Any:
    with operation(inst, token, READ, write=False) as op:
        last = history.last_scan(op.session)
    job = jobs_for(inst).latest(SCAN)
    return {
        "job": None if job is None else job.to_dict(),
        "last_scan": None if last is None else last.to_dict(),
    }


@router.get(
    "/health/scan/report.csv",
    summary="The last scan's per-record results as CSV",
    response_class=Response,
)
def report_csv(inst: InstanceDep, token: TokenDep) -> Response:
    with operation(inst, token, READ, write=False) as op:
        result = history.stored_result(op.session)
    if result is None:
        raise NotFoundError("no scan has run yet: start one with POST /api/health/scan")
    return Response(
        csv_text(result.rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="scan_report.csv"'},
    )


@router.get(
    "/health/scan/scan_report.txt",
    summary="The last scan's text report",
    response_class=Response,
)
def report_txt(inst: InstanceDep, token: TokenDep) -> Response:
    with operation(inst, token, READ, write=False) as op:
        result = history.stored_result(op.session)
    if result is None:
        raise NotFoundError("no scan has run yet: start one with POST /api/health/scan")
    return Response(
        report_text(result, role=inst.config.role.value),
        media_type="text/plain; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="scan_report.txt"'},
    )


@router.get("/health/scan/{job_id}", summary="One scan job: state, done, total, result")
def scan_job(job_id: JobId, inst: InstanceDep, token: TokenDep) -> Any:
    with operation(inst, token, READ, write=False):
        pass
    return JSONResponse(jobs_for(inst).get(job_id, SCAN).to_dict())


@router.get(
    "/health/overview",
    summary="Dashboard figures: status, last scan, MID servers, signed records by table/app",
)
def overview(inst: InstanceDep, token: TokenDep) -> Any:
    with operation(inst, token, READ, write=False) as op:
        return figures.overview(op.session, inst, op.now).to_dict()
