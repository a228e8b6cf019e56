"""The home page and the navigator (``sys_properties.list`` and friends, or a menu label)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ...platform import properties
from ._auth import UserDep, page_operation
from ._render import NAV, NavItem, render
from ._route import page_router

router = page_router()

LISTS: Mapping[str, str] = {
    "sysauto_script": "/jobs",
    "sysauto": "/jobs",
    "sys_update_set": "/updatesets/local",
    "sys_remote_update_set": "/updatesets/retrieved",
    "sn_kmf_record_signature": "/signatures",
    "sys_properties": "/properties",
    "sys_certificate": "/certificates",
    "sn_kmf_crypto_module": "/modules",
    "ecc_agent": "/mid",
    "mid_server": "/mid",
    "ecc_queue": "/ecc",
    "codesigning_log": "/codesigning/log",
}
"""Table list names the navigator accepts (``<table>.list``) and the page of each."""

MAX_QUERY = 100


def resolve(query: str) -> tuple[str | None, list[NavItem]]:
    """The page *query* names (a ``<table>.list``/``.do`` name or one menu label), else None
    and the menu entries whose label contains it."""
    text = " ".join(query.split())[:MAX_QUERY]
    table = text.lower()
    for suffix in (".list", ".do", "_list.do"):
        if table.endswith(suffix):
            table = table[: -len(suffix)]
            break
    if table in LISTS:
        return LISTS[table], []
    found = [item for item in NAV if text and text.lower() in item.label.lower()]
    exact = [item for item in found if item.label.lower() == text.lower()]
    if len(exact) == 1 or len(found) == 1:
        return (exact or found)[0].href, []
    return None, found


@router.get("/", response_class=HTMLResponse)
def home(request: Request, user: UserDep) -> Response:
    flag = None
    if user.may("property.read"):
        with page_operation(request, user, "property.read", write=False) as op:
            flag = properties.get_property(op.session, properties.VALIDATION_FLAG)
    return render(request, "home.html", validation_flag=flag, roles=sorted(user.actor.roles))


@router.get("/nav", response_class=HTMLResponse)
def navigator(
    request: Request, user: UserDep, q: Annotated[str, Query(max_length=MAX_QUERY)] = ""
) -> Response:
    target, matches = resolve(q)
    if target is not None:
        return RedirectResponse(target, status_code=303)
    return render(request, "navigator.html", query=q, matches=matches, lists=sorted(LISTS))


@router.get("/{table}.list", response_class=HTMLResponse)
def table_list(request: Request, table: str, user: UserDep) -> Response:
    return navigator(request, user, f"{table[:MAX_QUERY]}.list")
