"""System Properties: the list with name search (the seed's spelling
``com_snc_kmf_signature.validation.flag`` accepted); protected properties read-only with
the reason, ordinary ones editable by an admin.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ...jobs.model import MAX_PATTERN, name_matcher
from ...platform import properties
from ._auth import UserDep, flash, page_operation
from ._render import render
from ._route import page_router

router = page_router()

MAX_NAME = 200
SEED_PREFIX = "com_snc_kmf_signature."
MAX_VALUE = 65536
PROTECTED_REASON = (
    "Protected: changes only by executing a verified Circle-of-Trust job signed on a trusted "
    "instance (Turn on / Turn off Code Signing Property), never by a user, an update set or "
    "the API"
)


def _search(text: str) -> str:
    """*text* with the seed's spelling (``com_snc_kmf_signature.``) made canonical."""
    text = text.strip()
    for alias, name in properties.ALIASES.items():
        text = text.replace(alias, name)
    return text.replace(SEED_PREFIX, "com.snc.kmf.signature.")


@router.get("/properties", response_class=HTMLResponse)
def properties_list(
    request: Request,
    user: UserDep,
    name: Annotated[str, Query(max_length=MAX_PATTERN)] = "",
) -> Response:
    matcher = name_matcher(_search(name))
    with page_operation(request, user, "property.read", write=False) as op:
        rows = [
            p
            for p in properties.list_properties(op.session)
            if matcher is None or matcher.search(p.name)
        ]
    return render(
        request,
        "properties.html",
        rows=rows,
        name=name,
        reason=PROTECTED_REASON,
        editable=user.may("property.write"),
    )


@router.post("/properties/{name}", response_class=HTMLResponse)
def set_property(
    request: Request,
    name: str,
    user: UserDep,
    value: Annotated[str, Form(max_length=MAX_VALUE)],
    back: Annotated[str, Form(max_length=MAX_PATTERN)] = "",
) -> Response:
    canonical = properties.canonical_name(name.strip()[:MAX_NAME])
    with page_operation(request, user, "property.write", canonical) as op:
        stored = properties.set_property(op.session, canonical, value, op.actor.name, op.ts)
        op.detail = {"value": stored}
    flash(request, user, f"{canonical} set to {stored!r}", "success")
    query = f"?name={quote(back, safe='*%=')}" if back else ""
    return RedirectResponse(f"/properties{query}", status_code=303)
