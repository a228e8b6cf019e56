"""Code Signing › Health and Status: the dashboard pages, the scan and the batch generator.

Pages (viewing: ``health.read`` — admin or any of the three codesigning roles):
``/health`` Overview (server-side SVG charts), ``/health/verification`` Signature
Verification Status (**Rescan**, progress, CSV and ``scan_report.txt`` downloads),
``/health/certificates`` Key Pair and Certificates (**View chain**),
``/health/configuration`` Code Signing Configuration, ``/health/mid`` MID Server
Configuration, ``/health/batch`` Batch Signature Generator (``health.batch_sign``:
codesigning_admin, trusted instances). Progress bars poll small JSON status routes with
``/health/progress.js`` (a same-origin script: the pages allow no inline script).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import File, Query, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from markupsafe import Markup

from ...errors import LimitExceededError, NotFoundError
from ...health import charts, figures, history
from ...health.background import BATCH, SCAN, ZIP_NAME, JobState, jobs_for
from ...health.batchreport import SUMMARY_TEXT
from ...health.batchsign import ACTION as BATCH_ACTION
from ...health.csvin import MAX_CSV_BYTES, parse_scan_csv
from ...health.results import VERDICTS, csv_text, report_text
from ...platform.roles import describe
from ._auth import UserDep, instance_of, page_operation, require_role
from ._render import render
from ._route import page_router

router = page_router()
_uploads = page_router(body_limit=MAX_CSV_BYTES + 64 * 1024, max_files=1)

READ = "health.read"
SCAN_ACTION = history.SCAN_ACTION
PAGE_SIZE = 200
MAX_PAGE = 100_000
JOB_ID = r"^[0-9a-f]{32}$"
TABS = (
    ("Overview", "/health"),
    ("Signature Verification Status", "/health/verification"),
    ("Key Pair and Certificates", "/health/certificates"),
    ("Code Signing Configuration", "/health/configuration"),
    ("MID Server Configuration", "/health/mid"),
    ("Batch Signature Generator", "/health/batch"),
)
PROGRESS_SCRIPT = """\
// Progress bars of the Health and Status pages: poll the job's JSON status, then reload.
(function () {
  "use strict";
  var box = document.querySelector("[data-poll]");
  if (!box) { return; }
  var bar = box.querySelector("progress");
  var text = box.querySelector("[data-progress-text]");
  function show(job) {
    bar.max = job.total > 0 ? job.total : 1;
    bar.value = job.done;
    text.textContent = job.state === "running"
      ? job.done + " / " + job.total + " (" + job.percent + "%)"
      : job.state + (job.message ? ": " + job.message : "");
  }
  function tick() {
    fetch(box.getAttribute("data-poll"), {
      credentials: "same-origin", headers: { "Accept": "application/json" }
    }).then(function (reply) {
      if (!reply.ok) { throw new Error("HTTP " + reply.status); }
      return reply.json();
    }).then(function (job) {
      show(job);
      if (job.state === "running") { window.setTimeout(tick, 400); }
      else { window.location.assign(box.getAttribute("data-done")); }
    }).catch(function (err) {
      text.textContent = "progress unavailable (" + err.message + "), retrying";
      window.setTimeout(tick, 2000);
    });
  }
  tick();
}());
"""


def _page(request: Request, template: str, **context: Any) -> HTMLResponse:
    return render(request, template, tabs=TABS, **context)


@router.get("/health", response_class=HTMLResponse)
def overview(request: Request, user: UserDep) -> Response:
    with page_operation(request, user, READ, write=False) as op:
        data = figures.overview(op.session, op.instance, op.now)
    last = data.last_scan
    verdicts = [(v, last.totals[v]) for v in VERDICTS] if last else []
    states = list(last.signature_states.items()) if last else []
    colors = charts.VERDICT_COLORS
    svg = {
        "verdicts": charts.donut_chart("Records by verdict", verdicts, colors=colors),
        "states": charts.donut_chart("Signature states", states, colors=colors),
        "mids": charts.donut_chart("MID servers", list(data.mids.items()), colors=colors),
        "by_table": charts.bar_chart("Signed records by type", list(data.signed_by_table.items())),
        "by_app": charts.bar_chart(
            "Signed records by application", list(data.signed_by_application.items())
        ),
    }
    return _page(
        request,
        "dashboard_overview.html",
        data=data,
        charts={k: Markup(v) for k, v in svg.items()},  # noqa: S704 - escaped in health.charts
    )


@router.get("/health/verification", response_class=HTMLResponse)
def verification(
    request: Request,
    user: UserDep,
    verdict: Annotated[str, Query(max_length=20)] = "",
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    job: Annotated[str, Query(max_length=32)] = "",
) -> Response:
    shown = verdict if verdict in VERDICTS else ""
    with page_operation(request, user, READ, write=False) as op:
        last = history.last_scan(op.session)
        rows = list(
            history.stored_rows(
                op.session,
                verdict=shown or None,
                limit=PAGE_SIZE + 1,
                offset=(page - 1) * PAGE_SIZE,
            )
        )
    running = _running(request, SCAN, job)
    return _page(
        request,
        "dashboard_verification.html",
        last=last,
        rows=rows[:PAGE_SIZE],
        more=len(rows) > PAGE_SIZE,
        page=page,
        verdict=shown,
        verdicts=VERDICTS,
        job=running,
        may_scan=user.may(SCAN_ACTION),
    )


def _running(request: Request, kind: str, job_id: str) -> JobState | None:
    """The job to show progress for: the one named, else the newest one still running."""
    jobs = jobs_for(instance_of(request))
    if job_id:
        try:
            return jobs.get(job_id, kind)
        except NotFoundError:
            return None
    latest = jobs.latest(kind)
    return latest if latest is not None and latest.state == "running" else None


@router.post("/health/scan")
def rescan(request: Request, user: UserDep) -> Response:
    """**Rescan**: start a background scan and show its progress."""
    with page_operation(request, user, SCAN_ACTION, write=False) as op:
        actor = op.actor
    job, _started = jobs_for(instance_of(request)).start_scan(actor)
    return RedirectResponse(f"/health/verification?job={job.id}", status_code=303)


@router.get("/health/scan/status")
def scan_status(request: Request, user: UserDep, job: str = "") -> Response:
    """The scan job's progress as JSON (polled by the progress bar)."""
    require_role(user, READ)
    return JSONResponse(_job_dict(request, SCAN, job))


def _job_dict(request: Request, kind: str, job_id: str) -> dict[str, object]:
    jobs = jobs_for(instance_of(request))
    found = jobs.get(job_id[:32], kind) if job_id else jobs.latest(kind)
    if found is None:
        raise NotFoundError("no job has run on this server yet: start one")
    return found.to_dict()


@router.get("/health/scan_report.csv")
def download_csv(request: Request, user: UserDep) -> Response:
    with page_operation(request, user, READ, write=False) as op:
        result = history.stored_result(op.session)
    if result is None:
        raise NotFoundError("no scan has run yet: press Rescan on Signature Verification Status")
    return _download(csv_text(result.rows), "text/csv", "scan_report.csv")


@router.get("/health/scan_report.txt")
def download_report(request: Request, user: UserDep) -> Response:
    inst = instance_of(request)
    with page_operation(request, user, READ, write=False) as op:
        result = history.stored_result(op.session)
    if result is None:
        raise NotFoundError("no scan has run yet: press Rescan on Signature Verification Status")
    return _download(
        report_text(result, role=inst.config.role.value), "text/plain", "scan_report.txt"
    )


def _download(text: str, media: str, name: str) -> Response:
    return Response(
        text,
        media_type=f"{media}; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get("/health/progress.js")
def progress_script(request: Request, user: UserDep) -> Response:
    return Response(
        PROGRESS_SCRIPT,
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/health/certificates", response_class=HTMLResponse)
def certificates(request: Request, user: UserDep) -> Response:
    with page_operation(request, user, READ, write=False) as op:
        rows = figures.certificates(op.session, op.now)
    return _page(request, "dashboard_certificates.html", certificates=rows)


@router.get("/health/certificates/{fingerprint}/chain", response_class=HTMLResponse)
def chain(request: Request, fingerprint: str, user: UserDep) -> Response:
    with page_operation(request, user, READ, write=False) as op:
        links = figures.certificate_chain(op.session, fingerprint[:64], op.now)
    return _page(request, "dashboard_chain.html", links=links, fingerprint=fingerprint[:64])


@router.get("/health/configuration", response_class=HTMLResponse)
def configuration(request: Request, user: UserDep) -> Response:
    with page_operation(request, user, READ, write=False) as op:
        settings = figures.configuration(op.session)
    return _page(request, "dashboard_configuration.html", settings=settings)


@router.get("/health/mid", response_class=HTMLResponse)
def mid_configuration(request: Request, user: UserDep) -> Response:
    with page_operation(request, user, READ, write=False) as op:
        rows = figures.mid_configuration(op.session, op.now)
    return _page(request, "dashboard_mid.html", mids=rows)


# -- batch signature generator --------------------------------------------------------------


@router.get("/health/batch", response_class=HTMLResponse)
def batch_page(
    request: Request, user: UserDep, job: Annotated[str, Query(max_length=32)] = ""
) -> Response:
    require_role(user, READ)
    inst = instance_of(request)
    shown = _running(request, BATCH, job)
    summary = ""
    if shown is not None and shown.state == "done" and shown.folder:
        path = Path(shown.folder) / SUMMARY_TEXT
        summary = path.read_text("utf-8") if path.is_file() else ""
    return _page(
        request,
        "dashboard_batch.html",
        trusted=inst.is_trusted,
        may_sign=user.may(BATCH_ACTION),
        needs=describe(BATCH_ACTION),
        job=shown,
        summary=summary,
    )


@_uploads.post("/health/batch")
def batch_start(
    request: Request, user: UserDep, csv_file: Annotated[UploadFile, File()]
) -> Response:
    """Upload the (edited) scan CSV and start signing it in the background."""
    with page_operation(request, user, BATCH_ACTION, write=False) as op:
        op.instance.require_trusted("run the batch signature generator")
        actor = op.actor
    data = csv_file.file.read(MAX_CSV_BYTES + 1)
    if len(data) > MAX_CSV_BYTES:
        raise LimitExceededError(f"the scan CSV is larger than {MAX_CSV_BYTES} bytes: split it")
    rows = parse_scan_csv(data)
    job, _started = jobs_for(instance_of(request)).start_batch(actor, rows)
    return RedirectResponse(f"/health/batch?job={job.id}", status_code=303)


@router.get("/health/batch/status")
def batch_status(request: Request, user: UserDep, job: str = "") -> Response:
    require_role(user, BATCH_ACTION)
    return JSONResponse(_job_dict(request, BATCH, job))


@router.get("/health/batch/{job_id}/download")
def batch_download(request: Request, job_id: str, user: UserDep) -> Response:
    require_role(user, BATCH_ACTION)
    path = jobs_for(instance_of(request)).zip_path(job_id[:32])
    return FileResponse(path, media_type="application/zip", filename=ZIP_NAME)


@router.get("/health/batch/{job_id}/summary.txt")
def batch_summary(request: Request, job_id: str, user: UserDep) -> Response:
    require_role(user, BATCH_ACTION)
    zip_path = jobs_for(instance_of(request)).zip_path(job_id[:32])
    text = (zip_path.parent / SUMMARY_TEXT).read_text("utf-8")
    return _download(text, "text/plain", SUMMARY_TEXT)


router.include_router(_uploads)
