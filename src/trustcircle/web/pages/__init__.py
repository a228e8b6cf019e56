"""HTML pages of an instance: the seed's navigation, sign-in, the dashboard.

One module per area, each exposing ``router`` (made with ``_route.page_router()``);
:func:`include_pages` mounts them at ``/`` and the stylesheet at ``/static``. Shared
pieces: ``_auth`` (sessions, CSRF, roles, operations), ``_render`` (templates),
``_route`` (the route class: CSRF on POST, HTML errors, bounded bodies).
"""

from __future__ import annotations

import importlib
import inspect

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from ._auth import load_session
from ._render import STATIC, render

PAGE_MODULES = (
    "signin",
    "home",
    "jobs",
    "updatesets_local",
    "updatesets_retrieved",
    "kmf",
    "properties",
    "ecc",
    "setup",
    "dashboard",
)
"""Page modules in mount order; a module not (yet) written is skipped."""


def include_pages(app: FastAPI) -> None:
    """Mount every page router and ``/static``; unknown non-API paths get an HTML 404."""
    for name in PAGE_MODULES:
        try:
            module = importlib.import_module(f"{__package__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__package__}.{name}":
                raise
            continue
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _html_not_found(app)


def _html_not_found(app: FastAPI) -> None:
    """A browser asking for an unknown page gets the HTML 404; /api keeps its JSON errors."""
    previous = app.exception_handlers[StarletteHTTPException]

    async def handler(request: Request, exc: Exception) -> Response:
        wants_html = "text/html" in request.headers.get("accept", "")
        if (
            isinstance(exc, StarletteHTTPException)
            and exc.status_code in (404, 405)
            and wants_html
            and not request.url.path.startswith(("/api/", "/api", "/static/"))
        ):
            request.state.page_user = await run_in_threadpool(load_session, request)
            return await run_in_threadpool(
                lambda: render(
                    request,
                    "error.html",
                    status_code=exc.status_code,
                    title="Not found",
                    message=f"no page at {request.url.path[:200]}: use the menu or the navigator",
                )
            )
        response = previous(request, exc)
        return await response if inspect.isawaitable(response) else response

    app.add_exception_handler(StarletteHTTPException, handler)
