"""The FastAPI application of one instance home.

Errors are mapped to HTTP once, here: every :class:`TrustcircleError` becomes
``{"error": kind, "message": one line}`` with the status its class names.
Routers live in ``web/api/``, one module per area, each exposing ``router``.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..errors import TrustcircleError
from ..platform.context import Instance

ROUTERS = (
    "records",
    "kmf",
    "properties",
    "updatesets",
    "jobs",
    "ecc",
    "mid",
    "codesigning",
    "health",
)

_HTTP_ERRORS = {
    404: ("not_found", "no such endpoint {method} {path}: the API is listed at /docs"),
    405: ("usage", "{method} is not allowed on {path}: the API is listed at /docs"),
    413: (
        "limit_exceeded",
        "the request body is too large for {path}: send less (limits are listed at /docs)",
    ),
}


def _include_routers(app: FastAPI) -> None:
    for name in ROUTERS:
        try:
            module = importlib.import_module(f"{__package__}.api.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__package__}.api.{name}":
                raise
            continue
        app.include_router(module.router, prefix="/api")


def create_app(home: Path, instance: Instance | None = None) -> FastAPI:
    """The app serving the instance home *home*."""
    inst = instance or Instance.open(home)
    app = FastAPI(
        title=f"trustcircle instance {inst.name}",
        version=__version__,
        description="Circle-of-Trust code signing: JSON API. Authenticate with "
        "`Authorization: Bearer <token>`.",
    )
    app.state.instance = inst

    @app.exception_handler(TrustcircleError)
    async def _trustcircle_error(_request: Request, exc: TrustcircleError) -> JSONResponse:
        body: dict[str, object] = {"error": exc.kind, "message": exc.message}
        missing = getattr(exc, "missing", ())
        if missing:
            body["missing_roles"] = list(missing)
        return JSONResponse(body, status_code=exc.http_status)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse(
            {"error": "bad_input", "message": f"{where}: {first.get('msg', 'invalid request')}"},
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        known = _HTTP_ERRORS.get(exc.status_code)
        if known is None:
            kind, text = "error", " ".join(str(exc.detail).split())[:300]
        else:
            kind, text = (
                known[0],
                known[1].format(method=request.method, path=request.url.path[:200]),
            )
        return JSONResponse(
            {"error": kind, "message": text}, status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(Exception)
    async def _internal_error(_request: Request, exc: Exception) -> JSONResponse:
        # the traceback goes to the server log (uvicorn); the client gets one line
        return JSONResponse(
            {
                "error": "internal",
                "message": f"internal error ({type(exc).__name__}): a bug in trustcircle; "
                "the server log has the details",
            },
            status_code=500,
        )

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok", "instance": inst.name, "role": inst.config.role.value}

    _include_routers(app)
    _include_pages(app)
    return app


def _include_pages(app: FastAPI) -> None:
    """The HTML pages (``web/pages/``) at ``/`` and their stylesheet at ``/static``."""
    from .pages import include_pages

    include_pages(app)
