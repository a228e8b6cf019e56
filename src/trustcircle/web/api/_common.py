"""What the JSON routers share: a bounded router, id parsing, error bodies with extras."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.types import Message

from ..._types import SysId
from ..._types import sys_id as parse_sys_id
from ...errors import LimitExceededError, TrustcircleError

BODY_LIMIT = 16 * 1024 * 1024
"""Largest JSON or form body the routers accept (a record field may be 1 MiB)."""

LIST_LIMIT = 100_000
"""Most rows one list request returns."""


_F = TypeVar("_F", bound=Callable[..., Any])
_STREAMS = "_trustcircle_streams_body"


def streams_body(endpoint: _F) -> _F:
    """Mark *endpoint* as reading and bounding its own (large) body: BoundedRoute skips it."""
    setattr(endpoint, _STREAMS, True)
    return endpoint


class BoundedRoute(APIRoute):
    """A route that refuses a body over ``body_limit`` with the API's JSON 413, before parsing.

    The body is read (counted) before FastAPI parses it, so a chunked upload without a
    Content-Length is bounded too. Endpoints marked :func:`streams_body` are left alone.
    """

    body_limit = BODY_LIMIT

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if getattr(self.endpoint, _STREAMS, False):
            return handler
        limit = self.body_limit

        async def bounded(request: Request) -> Response:
            return await handler(await _bounded_request(request, limit))

        return bounded


async def _bounded_request(request: Request, limit: int) -> Request:
    """A request whose body is read here, at most *limit* bytes, else LimitExceededError."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(request, limit)
    received = 0

    async def receive() -> Message:
        nonlocal received
        message = await request.receive()
        received += len(message.get("body", b""))
        if received > limit:
            raise _too_large(request, limit)
        return message

    bounded = Request(request.scope, receive)
    await bounded.body()
    return bounded


def _too_large(request: Request, limit: int) -> LimitExceededError:
    return LimitExceededError(
        f"the request body is larger than {limit} bytes, the limit of {request.url.path[:200]}: "
        "send less"
    )


def api_router(tag: str, body_limit: int = BODY_LIMIT) -> APIRouter:
    """A router whose endpoints are documented under *tag* and refuse bodies over *body_limit*."""
    if body_limit == BODY_LIMIT:
        return APIRouter(tags=[tag], route_class=BoundedRoute)

    class _Route(BoundedRoute):
        pass

    _Route.body_limit = body_limit
    return APIRouter(tags=[tag], route_class=_Route)


def parse_id(value: str) -> SysId:
    """*value* as a sys_id, or the same one-line :class:`UsageError` the CLI gives."""
    return parse_sys_id(value.strip())


def error_response(exc: TrustcircleError, extra: Mapping[str, object]) -> JSONResponse:
    """The app's error body for *exc* (see ``web/app.py``) with *extra* keys added."""
    body: dict[str, object] = {"error": exc.kind, "message": exc.message}
    missing = getattr(exc, "missing", ())
    if missing:
        body["missing_roles"] = list(missing)
    body.update(extra)
    return JSONResponse(body, status_code=exc.http_status)
