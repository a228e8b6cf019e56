"""Update sets: list, create, complete, export (XML download), import (XML upload),
preview and commit — the ``updateset`` commands over HTTP.

Export of a batch (a set larger than ``com.snc.csf.maximum_update_size``) downloads as
one ``application/zip`` holding the parent file and every child file; upload all of
those XML files together to ``POST /api/updatesets/import`` to load the batch.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated, Any

from fastapi import Path as PathParam
from fastapi import Request, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from ...errors import TrustcircleError
from ...platform.context import Instance
from ...updatesets import catalog, local
from ...updatesets.commit import commit_set
from ...updatesets.importer import MAX_FILES, delete_retrieved, import_files, import_limits
from ...updatesets.preview import preview_set
from ..deps import InstanceDep, TokenDep, operation
from ..downloads import export_response, scratch
from ._common import api_router, parse_id, streams_body
from ._upload import Upload, UploadLimits, receive_files

router = api_router("update sets")

UPLOAD_TOTAL = 4 * 1024**3
"""Most bytes one import request may carry (each file is bounded by the import limits)."""
MAX_DESCRIPTION = 4000
UPLOAD_FIELD = "files"

SetId = Annotated[str, PathParam(max_length=64, description="sys_id of the update set.")]


class CreateBody(BaseModel):
    """A new local update set."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=local.MAX_NAME)
    description: str = Field("", max_length=MAX_DESCRIPTION)


class CommitBody(BaseModel):
    """Whether to accept the acceptable problems preview listed (blocking ones never are)."""

    model_config = ConfigDict(extra="forbid")
    accept_remote: bool = False


@router.get("/updatesets", summary="Local and retrieved update sets")
def list_sets(inst: InstanceDep, token: TokenDep) -> Any:
    with operation(inst, token, "updateset.read", write=False) as op:
        return catalog.list_all(op.session, op.instance.name, op.actor.sys_id)


@router.post(
    "/updatesets",
    status_code=status.HTTP_201_CREATED,
    summary="Create a local update set and make it your current one",
)
def create_set(body: CreateBody, inst: InstanceDep, token: TokenDep) -> Any:
    with operation(inst, token, "updateset.write", body.name[:200]) as op:
        row = local.create_set(
            op.session, body.name, op.actor.name, op.ts, description=body.description
        )
        local.make_current(op.session, op.actor, row)
        op.target = f"{row.name} ({row.sys_id})"
        return catalog.local_summary(op.session, op.instance.name, row, op.actor.sys_id)


@router.post(
    "/updatesets/import",
    status_code=status.HTTP_201_CREATED,
    summary="Import update set XML files as retrieved update sets",
    description=f"Multipart form: one or more files in the field `{UPLOAD_FIELD}` (a batch: "
    "the parent and all its children together). Each file is streamed to disk and imported "
    "under the instance's import limits (`trustcircle.updateset.import.*` properties), all "
    f"in one transaction; at most {MAX_FILES} files and {UPLOAD_TOTAL} bytes per request. "
    "Returns one entry per retrieved set.",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": [UPLOAD_FIELD],
                        "properties": {
                            UPLOAD_FIELD: {
                                "type": "array",
                                "items": {"type": "string", "format": "binary"},
                            }
                        },
                    }
                }
            },
        }
    },
)
@streams_body
async def import_sets(request: Request, inst: InstanceDep, token: TokenDep) -> Any:
    limits = await run_in_threadpool(_upload_limits, inst, token)
    folder = await run_in_threadpool(scratch, inst, "upload-")
    try:
        uploads = await receive_files(request, folder, limits)
        return await run_in_threadpool(_import, inst, token, uploads, folder)
    finally:
        await run_in_threadpool(shutil.rmtree, folder, True)


@router.get("/updatesets/{set_id}", summary="A local or retrieved update set and its entries")
def show_set(set_id: SetId, inst: InstanceDep, token: TokenDep) -> Any:
    sid = parse_id(set_id)
    with operation(inst, token, "updateset.read", write=False) as op:
        return catalog.describe(op.session, op.instance.name, sid, op.actor.sys_id).to_dict()


@router.post("/updatesets/{set_id}/use", summary="Make a local update set your current one")
def use_set(set_id: SetId, inst: InstanceDep, token: TokenDep) -> Any:
    sid = parse_id(set_id)
    with operation(inst, token, "updateset.write", sid) as op:
        row = local.get_set(op.session, sid)
        local.make_current(op.session, op.actor, row)
        op.target = f"{row.name} ({row.sys_id})"
        return catalog.local_summary(op.session, op.instance.name, row, op.actor.sys_id)


@router.post(
    "/updatesets/{set_id}/complete", summary="Mark a local update set complete (no more capture)"
)
def complete_set(set_id: SetId, inst: InstanceDep, token: TokenDep) -> Any:
    sid = parse_id(set_id)
    with operation(inst, token, "updateset.write", sid) as op:
        row = local.get_set(op.session, sid)
        local.complete(op.session, row)
        op.target = f"{row.name} ({row.sys_id})"
        return catalog.local_summary(op.session, op.instance.name, row, op.actor.sys_id)


@router.delete(
    "/updatesets/{set_id}",
    summary="Delete a retrieved update set (and its batch children) not yet committed",
)
def delete_set(set_id: SetId, inst: InstanceDep, token: TokenDep) -> Any:
    sid = parse_id(set_id)
    with operation(inst, token, "updateset.write", sid) as op:
        return [d.to_dict() for d in delete_retrieved(op, sid)]


@router.get(
    "/updatesets/{set_id}/export",
    summary="Export a local update set as XML (signed on a trusted instance)",
    description="Downloads `application/xml`; a batch downloads as `application/zip` holding "
    "the parent file and every child file (import them together). Headers "
    "`X-Trustcircle-Signed` and `X-Trustcircle-Files` say whether the manifest is signed and "
    "how many files were written.",
    response_class=FileResponse,
    responses={200: {"content": {"application/xml": {}, "application/zip": {}}}},
)
def export(set_id: SetId, inst: InstanceDep, token: TokenDep) -> FileResponse:
    sid = parse_id(set_id)
    return export_response(inst, sid, lambda: operation(inst, token, "updateset.export", sid))


@router.post(
    "/updatesets/{set_id}/preview",
    summary="Preview a retrieved update set: every verdict and problem",
    description="A report, always 200 when the set exists: see `blocking` and `acceptable`.",
)
def preview(set_id: SetId, inst: InstanceDep, token: TokenDep) -> Any:
    sid = parse_id(set_id)
    with operation(inst, token, "updateset.write", sid) as op:
        return preview_set(op, sid).to_dict()


@router.post(
    "/updatesets/{set_id}/commit",
    summary="Commit a retrieved update set whole, or refuse and apply nothing",
    description="Refused while blocking problems remain (409), or while acceptable ones remain "
    "unless `accept_remote` is true (403).",
)
def commit(
    set_id: SetId, inst: InstanceDep, token: TokenDep, body: CommitBody | None = None
) -> Any:
    sid = parse_id(set_id)
    accept = body.accept_remote if body is not None else False
    with operation(inst, token, "updateset.commit", sid) as op:
        return commit_set(op, sid, accept).to_dict()


def _upload_limits(inst: Instance, token: str) -> UploadLimits:
    """Authorise the import before reading any of the upload, and read its limits."""
    with operation(inst, token, "updateset.write", write=False) as op:
        limits = import_limits(op.session)
    return UploadLimits(
        field=UPLOAD_FIELD,
        max_files=MAX_FILES,
        max_file_bytes=limits.max_file_bytes,
        max_total_bytes=UPLOAD_TOTAL,
        too_large=lambda name: limits.refuse("max_file_bytes", f"uploaded file {name!r}"),
    )


def _import(
    inst: Instance, token: str, uploads: list[Upload], folder: Path
) -> list[dict[str, object]]:
    names = {str(u.path): u.name for u in uploads}
    try:
        with operation(inst, token, "updateset.write") as op:
            results = import_files(op, [u.path for u in uploads])
    except TrustcircleError as exc:
        message = exc.message
        for path, name in names.items():
            message = message.replace(path, name)
        message = message.replace(str(folder), "upload")
        if len(uploads) == 1 and uploads[0].name not in message:
            message = f"{uploads[0].name}: {message}"
        exc.message = message
        exc.args = (message,)
        raise
    return [r.to_dict() | {"file": names.get(r.file, r.file)} for r in results]
