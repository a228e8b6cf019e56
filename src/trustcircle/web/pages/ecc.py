"""MID Server › MID Servers (validate, status, last check-in, version, firewall mode), ECC
Queue (state, error, payload; one message with its answer) and the Code Signing log.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ...ecc import cslog, mids, service
from ...ecc import queue as ecc_queue
from ._auth import UserDep, flash, page_operation
from ._render import render
from ._route import page_router

router = page_router()

MAX_SHOWN = 500
PAYLOAD_PREVIEW = 200
MID_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$"


@router.get("/mid", response_class=HTMLResponse)
def mid_servers(request: Request, user: UserDep) -> Response:
    with page_operation(request, user, "mid.read", write=False) as op:
        rows = mids.list_mids(op.session, op.now)
    active = sum(1 for r in rows if r["status"] == "active")
    return render(
        request,
        "mids.html",
        mids=rows,
        active=active,
        audit_mode=[r["name"] for r in rows if r["firewall_mode"] == "audit"],
        can_validate=user.may("mid.admin"),
    )


def _set_validated(request: Request, user: UserDep, name: str, validated: bool) -> Response:
    with page_operation(request, user, "mid.admin", name) as op:
        mids.set_validated(op.session, name, validated, op.actor.name, op.ts)
        op.detail = {"validated": validated}
    verb = "validated: it may get work" if validated else "invalidated: it gets no work"
    flash(request, user, f"MID server {name} {verb}", "success")
    return RedirectResponse("/mid", status_code=303)


@router.post("/mid/{name}/validate", response_class=HTMLResponse)
def validate(
    request: Request, name: Annotated[str, Path(pattern=MID_NAME)], user: UserDep
) -> Response:
    return _set_validated(request, user, name, True)


@router.post("/mid/{name}/invalidate", response_class=HTMLResponse)
def invalidate(
    request: Request, name: Annotated[str, Path(pattern=MID_NAME)], user: UserDep
) -> Response:
    return _set_validated(request, user, name, False)


@router.get("/ecc", response_class=HTMLResponse)
def ecc_list(
    request: Request,
    user: UserDep,
    agent: Annotated[str, Query(max_length=100)] = "",
    state: Annotated[str, Query(max_length=20)] = "",
    queue: Annotated[str, Query(max_length=10)] = "",
) -> Response:
    with page_operation(request, user, "ecc.read", write=False) as op:
        rows = service.list_messages(
            op,
            agent=agent.strip() or None,
            state=state or None,
            queue_name=queue or None,
            limit=MAX_SHOWN,
        )
        ecc_rows = [ecc_queue.to_dict(r) for r in rows]
    return render(
        request,
        "ecc.html",
        ecc_rows=ecc_rows,
        agent=agent,
        state=state,
        queue=queue,
        states=ecc_queue.STATES,
        queues=ecc_queue.QUEUES,
        preview=PAYLOAD_PREVIEW,
        limit=MAX_SHOWN,
    )


@router.get("/ecc/{sys_id}", response_class=HTMLResponse)
def ecc_message(request: Request, sys_id: str, user: UserDep) -> Response:
    with page_operation(request, user, "ecc.read", write=False) as op:
        shown = service.show(op, sys_id[:64])
    return render(request, "ecc_message.html", message=shown["message"], response=shown["response"])


@router.get("/codesigning/log", response_class=HTMLResponse)
def codesigning_log(
    request: Request,
    user: UserDep,
    source: Annotated[str, Query(max_length=120)] = "",
    event: Annotated[str, Query(max_length=60)] = "",
    ecc: Annotated[str, Query(max_length=32)] = "",
) -> Response:
    with page_operation(request, user, "codesigning.log", write=False) as op:
        entries = cslog.list_entries(
            op.session,
            source=source.strip() or None,
            event_name=event.strip() or None,
            ecc=ecc.strip() or None,
            limit=MAX_SHOWN,
        )
    return render(
        request,
        "cslog.html",
        entries=entries,
        source=source,
        event=event,
        ecc=ecc,
        limit=MAX_SHOWN,
    )
