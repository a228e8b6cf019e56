"""The route class of every page: bounded bodies, CSRF on every POST, errors as HTML.

``page_router()`` gives an ``APIRouter`` whose routes

* resolve the signed-in user once (``request.state.page_user``, see ``_auth``);
* refuse a body over the route's limit (413 page) while it streams in;
* parse a POST's form (bounded fields and files) and refuse it (403 page) unless it
  carries the session's CSRF token — so no page endpoint can forget the check; these
  refusals, and a role refused before an upload's body is read, are audited;
* render every :class:`TrustcircleError` and request validation error as the error
  page (one line message; the 403 page names the roles the action needs), and send a
  signed-out browser to ``/login``.

The JSON API is untouched: its routers and error handlers are separate.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Message

from ...errors import LimitExceededError, TrustcircleError
from ._auth import (
    CSRF_FIELD,
    CSRF_HEADER,
    CsrfRefused,
    PageForbidden,
    SignInRequired,
    check_csrf,
    current_user,
    load_session,
    require_role,
)
from ._render import render

FORM_LIMIT = 1024 * 1024
"""Largest ordinary form body (bytes)."""
MAX_FIELDS = 100
MAX_PART = 256 * 1024
"""Largest text field of a form (bytes)."""


class PageRoute(APIRoute):
    """A page route (see the module doc). Subclasses set ``body_limit``, ``max_files`` and
    ``action`` (checked before a POST body is read: uploads of the unauthorised are refused
    before they arrive)."""

    body_limit = FORM_LIMIT
    max_files = 0
    action = ""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        limit, max_files, action = self.body_limit, self.max_files, self.action

        async def page(request: Request) -> Response:
            request = _bounded(request, limit)
            form: FormData | None = None
            try:
                request.state.page_user = await run_in_threadpool(load_session, request)
                if request.method == "POST":
                    try:
                        if action:
                            require_role(current_user(request), action)
                        form = await request.form(
                            max_files=max_files, max_fields=MAX_FIELDS, max_part_size=MAX_PART
                        )
                        sent = form.get(CSRF_FIELD)
                        header = request.headers.get(CSRF_HEADER, "")
                        check_csrf(request, sent if isinstance(sent, str) else header)
                    except (PageForbidden, CsrfRefused) as exc:
                        await run_in_threadpool(_audit_refusal, request, action, exc)
                        raise
                return await handler(request)
            except SignInRequired as exc:
                return await run_in_threadpool(_to_sign_in, request, exc)
            except TrustcircleError as exc:
                return await run_in_threadpool(error_page, request, exc)
            except RequestValidationError as exc:
                return await run_in_threadpool(_invalid, request, exc)
            except StarletteHTTPException as exc:
                return await run_in_threadpool(_http_error, request, exc)
            finally:
                if form is not None:
                    await form.close()

        return page


def _audit_refusal(request: Request, action: str, exc: TrustcircleError) -> None:
    """Write a refusal the route made before any page operation ran (for a signed-in
    user: the sign-in form's own refusals are not the audit log's business)."""
    user = getattr(request.state, "page_user", None)
    if user is None:
        return
    what = action if action else "page.csrf"
    request.app.state.instance.audit_refusal(user.name, what, request.url.path, exc.message)


def page_router(*, body_limit: int = FORM_LIMIT, max_files: int = 0, action: str = "") -> APIRouter:
    """A router for HTML pages (not in the OpenAPI schema). Uploads need *max_files* > 0
    and should name the *action* their POSTs need, so it is checked before the body."""
    if body_limit == FORM_LIMIT and max_files == 0 and not action:
        return APIRouter(route_class=PageRoute, include_in_schema=False)

    class _Route(PageRoute):
        pass

    _Route.body_limit = body_limit
    _Route.max_files = max_files
    _Route.action = action
    return APIRouter(route_class=_Route, include_in_schema=False)


def error_page(request: Request, exc: TrustcircleError, **context: Any) -> Response:
    """The HTML page for *exc*: its status, its one-line message, the roles it needs."""
    needs = exc.needs if isinstance(exc, PageForbidden) else ""
    missing = [m.replace("|", " or ") for m in getattr(exc, "missing", ())]
    titles = {
        401: "Sign in",
        403: "Not allowed",
        404: "Not found",
        409: "Refused",
        413: "Too large",
    }
    return render(
        request,
        "error.html",
        status_code=exc.http_status,
        title=titles.get(exc.http_status, "Error"),
        message=exc.message,
        needs=needs,
        missing=missing,
        **context,
    )


def _to_sign_in(request: Request, exc: SignInRequired) -> Response:
    target = request.url.path
    if request.method != "GET":
        target = "/"
    elif request.url.query:
        target = f"{target}?{request.url.query}"
    location = "/login" if target == "/" else f"/login?next={quote(target[:500], safe='')}"
    if request.method != "GET":
        return render(request, "error.html", status_code=401, title="Sign in", message=exc.message)
    return RedirectResponse(location, status_code=303)


def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    text = " ".join(str(exc.detail).split())[:300].rstrip(".")
    if exc.status_code == 400:
        text += ": correct the form and send it again"
    return render(request, "error.html", status_code=exc.status_code, title="Error", message=text)


def _invalid(request: Request, exc: RequestValidationError) -> Response:
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path"))
    text = f"{where or 'the form'}: {first.get('msg', 'invalid input')}: correct it and try again"
    return render(request, "error.html", status_code=422, title="Invalid input", message=text)


def _bounded(request: Request, limit: int) -> Request:
    """*request* whose body is refused (LimitExceededError) beyond *limit* bytes."""
    declared = request.headers.get("content-length", "")
    received = int(declared) if declared.isdigit() and int(declared) > limit else 0

    async def receive() -> Message:
        nonlocal received
        if received > limit:  # declared too large: refuse before reading any of it
            raise _too_large(request, limit)
        message = await request.receive()
        received += len(message.get("body", b""))
        if received > limit:
            raise _too_large(request, limit)
        return message

    return Request(request.scope, receive)


def _too_large(request: Request, limit: int) -> LimitExceededError:
    return LimitExceededError(
        f"the form sent to {request.url.path[:200]} is larger than {limit} bytes: send less"
    )
