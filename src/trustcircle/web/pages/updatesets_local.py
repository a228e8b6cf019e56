"""System Update Sets › Local Update Sets: the list, one set, and **Export to XML**.

Export to XML is a POST (it signs the manifest on a trusted instance and is audited)
answered with the file as a download: ``<name>.xml``, or for a batch (a set larger than
``com.snc.csf.maximum_update_size``) one ``<name>.zip`` holding the parent and every
child file, as the API does.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from ..._types import sys_id as parse_sys_id
from ...updatesets import catalog, local
from ..downloads import export_response
from ._auth import UserDep, instance_of, page_operation
from ._render import render
from ._route import page_router

router = page_router()


@router.get("/updatesets/local", response_class=HTMLResponse)
def local_list(request: Request, user: UserDep) -> Response:
    with page_operation(request, user, "updateset.read", write=False) as op:
        sets = catalog.list_all(op.session, op.instance.name, op.actor.sys_id)
    rows = [s for s in sets if s["kind"] == catalog.LOCAL]
    return render(request, "updatesets_local.html", sets=rows)


@router.get("/updatesets/local/{set_id}", response_class=HTMLResponse)
def local_set(request: Request, set_id: str, user: UserDep) -> Response:
    sid = parse_sys_id(set_id.strip()[:64])
    with page_operation(request, user, "updateset.read", write=False) as op:
        local.get_set(op.session, sid)
        detail = catalog.describe(op.session, op.instance.name, sid, op.actor.sys_id)
        children = [
            s
            for s in catalog.list_all(op.session, op.instance.name)
            if s["kind"] == catalog.LOCAL and s["parent"] == sid
        ]
    return render(
        request,
        "updateset_local.html",
        set=detail.summary,
        entries=detail.entries,
        children=children,
    )


@router.post("/updatesets/local/{set_id}/export")
def export_xml(request: Request, set_id: str, user: UserDep) -> Response:
    sid = parse_sys_id(set_id.strip()[:64])
    return export_response(
        instance_of(request),
        sid,
        lambda: page_operation(request, user, "updateset.export", sid),
        {"Cache-Control": "no-store"},
    )
