"""System Update Sets › Retrieved Update Sets: **Import Update Set from XML** (one or more
files: a batch is its parent and children together), **Preview Update Set** (every entry's
verdict and problem), **Commit Update Set** (with **Accept remote update** for the
acceptable problems) — a batch parent previews and commits its whole batch.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated, Any

from fastapi import File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..._types import sys_id as parse_sys_id
from ...errors import RefusedError, TrustcircleError, UsageError
from ...store.models import PreviewProblem, RemoteUpdateSet
from ...updatesets import catalog
from ...updatesets.commit import commit_set
from ...updatesets.importer import delete_retrieved, import_files
from ...updatesets.preview import get_retrieved, preview_set
from ..api._upload import display_name
from ..downloads import scratch
from ._auth import PageUser, UserDep, flash, instance_of, page_operation
from ._render import render
from ._route import page_router

UPLOAD_LIMIT = 1024**3
"""Most bytes one page upload may carry (larger batches: the API or the CLI)."""
MAX_UPLOAD_FILES = 100
MAX_SHOWN = 1000

router = page_router()
_uploads = page_router(
    body_limit=UPLOAD_LIMIT, max_files=MAX_UPLOAD_FILES, action="updateset.write"
)


def _children(session: Session, set_id: str) -> list[RemoteUpdateSet]:
    stmt = select(RemoteUpdateSet).where(RemoteUpdateSet.parent == set_id)
    return list(session.scalars(stmt.order_by(RemoteUpdateSet.name)))


def _stored_problems(session: Session, ids: list[str]) -> list[PreviewProblem]:
    stmt = select(PreviewProblem).where(PreviewProblem.remote_update_set.in_(ids))
    return list(session.scalars(stmt.order_by(PreviewProblem.blocking.desc()).limit(MAX_SHOWN)))


def _page(
    request: Request, user: PageUser, set_id: str, *, status_code: int = 200, **extra: Any
) -> Response:
    with page_operation(request, user, "updateset.read", write=False) as op:
        get_retrieved(op.session, set_id)
        detail = catalog.describe(op.session, op.instance.name, set_id)
        children = _children(op.session, set_id)
        problems = _stored_problems(op.session, [set_id, *(c.sys_id for c in children)])
    return render(
        request,
        "updateset_retrieved.html",
        status_code=status_code,
        set=detail.summary,
        entries=detail.entries[:MAX_SHOWN],
        entry_total=len(detail.entries),
        children=children,
        problems=problems,
        **extra,
    )


@router.get("/updatesets/retrieved", response_class=HTMLResponse)
def retrieved_list(request: Request, user: UserDep) -> Response:
    with page_operation(request, user, "updateset.read", write=False) as op:
        sets = catalog.list_all(op.session, op.instance.name)
    rows = [s for s in sets if s["kind"] == catalog.RETRIEVED]
    return render(request, "updatesets_retrieved.html", sets=rows)


@_uploads.post("/updatesets/retrieved/import", response_class=HTMLResponse)
def import_xml(
    request: Request, user: UserDep, files: Annotated[list[UploadFile], File()]
) -> Response:
    folder = scratch(instance_of(request), "upload-")
    try:
        names: dict[str, str] = {}
        paths: list[Path] = []
        for index, upload in enumerate(files, start=1):
            shown = display_name(upload.filename or "", index)
            slot = folder / str(index)
            slot.mkdir(mode=0o700)
            path = slot / shown
            with path.open("xb") as out:
                shutil.copyfileobj(upload.file, out, 1024 * 1024)
            names[str(path)] = shown
            paths.append(path)
        if not paths or all(p.stat().st_size == 0 for p in paths):
            raise UsageError("no file chosen: Choose File, pick the update set XML, then import")
        try:
            with page_operation(request, user, "updateset.write") as op:
                results = import_files(op, paths)
        except TrustcircleError as exc:
            for stored, shown in names.items():
                exc.message = exc.message.replace(stored, shown)
            exc.message = exc.message.replace(str(folder), "upload")
            raise
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    parents = [r for r in results if not r.parent]
    text = "Imported " + ", ".join(f"{r.name} ({r.entries} entries)" for r in results)[:400]
    flash(request, user, text + ": Preview Update Set next", "success")
    target = f"/updatesets/retrieved/{parents[0].sys_id}" if len(parents) == 1 else None
    return RedirectResponse(target or "/updatesets/retrieved", status_code=303)


@router.get("/updatesets/retrieved/{set_id}", response_class=HTMLResponse)
def retrieved_set(request: Request, set_id: str, user: UserDep) -> Response:
    return _page(request, user, parse_sys_id(set_id.strip()[:64]))


@router.post("/updatesets/retrieved/{set_id}/preview", response_class=HTMLResponse)
def preview(request: Request, set_id: str, user: UserDep) -> Response:
    sid = parse_sys_id(set_id.strip()[:64])
    with page_operation(request, user, "updateset.write", sid) as op:
        result = preview_set(op, sid)
    level = "success" if result.committable(False) else "error"
    if not result.blocking and result.acceptable:
        level = "warn"
    return _page(request, user, sid, messages=[(level, result.summary())], preview=result)


@router.post("/updatesets/retrieved/{set_id}/commit", response_class=HTMLResponse)
def commit(
    request: Request,
    set_id: str,
    user: UserDep,
    accept_remote: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    sid = parse_sys_id(set_id.strip()[:64])
    try:
        with page_operation(request, user, "updateset.commit", sid) as op:
            result = commit_set(op, sid, accept_remote == "true")
    except RefusedError as exc:
        return _page(
            request,
            user,
            sid,
            status_code=exc.http_status,
            messages=[("error", f"Commit Update Set refused: {exc.message}")],
        )
    done = result.to_dict()
    text = (
        f"Committed {result.name}: {result.entries} entries ({result.inserted} inserted, "
        f"{result.updated} updated, {result.deleted} deleted), {result.signatures} signatures, "
        f"{result.certificates} certificates"
    )
    if result.friends:
        text += f"; {len(result.friends)} certificate(s) joined the trusted friends"
    if result.revoked:
        text += f"; {len(result.revoked)} certificate(s) revoked from the trusted friends"
    return _page(request, user, sid, messages=[("success", text)], committed=done)


@router.post("/updatesets/retrieved/{set_id}/delete", response_class=HTMLResponse)
def delete(request: Request, set_id: str, user: UserDep) -> Response:
    sid = parse_sys_id(set_id.strip()[:64])
    with page_operation(request, user, "updateset.write", sid) as op:
        deleted = delete_retrieved(op, sid)
    flash(request, user, f"Deleted {len(deleted)} retrieved update set(s)", "success")
    return RedirectResponse("/updatesets/retrieved", status_code=303)


router.include_router(_uploads)
