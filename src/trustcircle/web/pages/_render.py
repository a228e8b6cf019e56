"""Jinja2 rendering of the pages: one environment, the base context, the navigation.

Every template extends ``base.html`` (header with instance name, role and user; the
navigator box; the menu; messages; a ``content`` block). The context always holds
``instance`` (name, role), ``user`` (:class:`PageUser` or None), ``csrf_token``,
``messages`` (list of (level, text)), ``nav`` and the helpers ``csrf_input()`` (the
hidden CSRF field for a form) and ``may(action)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context, select_autoescape
from jinja2.runtime import Context
from markupsafe import Markup

from ._auth import CSRF_FIELD, PageUser, instance_of, pop_flashes

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
STATIC = Path(__file__).resolve().parent.parent / "static"


SECURITY_HEADERS: Mapping[str, str] = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
"""Headers of every page: no caching of signed-in pages, no external or inline script."""


@dataclass(frozen=True)
class NavItem:
    """One menu entry: its section, label and link."""

    section: str
    label: str
    href: str


NAV: tuple[NavItem, ...] = (
    NavItem("System Definition", "Scheduled Jobs", "/jobs"),
    NavItem("System Update Sets", "Local Update Sets", "/updatesets/local"),
    NavItem("System Update Sets", "Retrieved Update Sets", "/updatesets/retrieved"),
    NavItem("Key Management", "KMF Signature Records", "/signatures"),
    NavItem("Key Management", "X.509 Certificates", "/certificates"),
    NavItem("Key Management", "Crypto Modules", "/modules"),
    NavItem("System Properties", "System Properties", "/properties"),
    NavItem("MID Server", "MID Servers", "/mid"),
    NavItem("MID Server", "ECC Queue", "/ecc"),
    NavItem("Code Signing", "Code Signing Log", "/codesigning/log"),
    NavItem("Code Signing", "Health and Status", "/health"),
    NavItem("Code Signing", "Guided Setup", "/setup"),
)


def nav_sections() -> list[tuple[str, list[NavItem]]]:
    """:data:`NAV` grouped by section, in order."""
    out: list[tuple[str, list[NavItem]]] = []
    for item in NAV:
        if not out or out[-1][0] != item.section:
            out.append((item.section, []))
        out[-1][1].append(item)
    return out


@pass_context
def _csrf_input(ctx: Context) -> Markup:
    token = ctx.get("csrf_token") or ""
    return Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD, token)


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["csrf_input"] = _csrf_input
    env.globals["nav_sections"] = nav_sections
    return env


ENV = _environment()


def render(
    request: Request,
    template: str,
    *,
    status_code: int = 200,
    messages: Sequence[tuple[str, str]] = (),
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """*template* rendered with the base context plus *context*, as an HTML response.

    *messages* are (level, text) pairs shown above the content, after the user's
    flashed ones; level is ``info``, ``success`` or ``error``.
    """
    user: PageUser | None = getattr(request.state, "page_user", None)
    inst = instance_of(request)
    shown = list(pop_flashes(request, user)) if user is not None else []
    shown.extend(messages)
    base: dict[str, Any] = {
        "request": request,
        "instance": {"name": inst.name, "role": inst.config.role.value},
        "user": user,
        "csrf_token": user.csrf_token
        if user is not None
        else getattr(request.state, "login_token", ""),
        "messages": shown,
        "may": (lambda action: user is not None and user.may(action)),
        "path": request.url.path,
    }
    base.update(context)
    html = ENV.get_template(template).render(base)
    response = HTMLResponse(html, status_code=status_code, headers=dict(headers or {}))
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
