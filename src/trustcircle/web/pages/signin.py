"""Sign in (user name + password, argon2) and sign out.

Failed sign-ins are audited and slowed down: after :data:`MAX_FAILURES` failures for one
user name within :data:`WINDOW` seconds, that name is refused until the window passes.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ...errors import LimitExceededError, NotAuthenticatedError
from ._auth import (
    MAX_PASSWORD,
    MAX_USER_NAME,
    UserDep,
    instance_of,
    login_cookie,
    login_token,
    set_cookie,
    sign_in,
    sign_out,
)
from ._render import render
from ._route import page_router

router = page_router()

MAX_FAILURES = 5
WINDOW = 300.0
_MAX_TRACKED = 10_000


class _Throttle:
    """Recent sign-in failures per user name (this process only)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, name: str, now: float) -> deque[float]:
        times = self._failures.setdefault(name, deque(maxlen=MAX_FAILURES))
        while times and now - times[0] > WINDOW:
            times.popleft()
        return times

    def check(self, name: str) -> None:
        with self._lock:
            if len(self._recent(name, time.monotonic())) >= MAX_FAILURES:
                raise LimitExceededError(
                    f"too many failed sign-ins for {name[:64]!r}: wait {int(WINDOW / 60)} "
                    "minutes and try again"
                )

    def failed(self, name: str) -> None:
        with self._lock:
            now = time.monotonic()
            if len(self._failures) > _MAX_TRACKED:
                self._forget_some(now)
            self._recent(name, now).append(now)

    def _forget_some(self, now: float) -> None:
        """Make room: drop the names whose failures have aged out, then the half with the
        fewest recent failures, so a flood of new names cannot unlock a throttled one."""
        for name in [n for n in self._failures if not self._recent(n, now)]:
            del self._failures[name]
        if len(self._failures) > _MAX_TRACKED // 2:
            ranked = sorted(self._failures, key=lambda n: len(self._failures[n]))
            for name in ranked[: len(ranked) - _MAX_TRACKED // 2]:
                del self._failures[name]

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._failures.pop(name, None)


_THROTTLE = _Throttle()


def _safe_next(target: str) -> str:
    """*target* when it is a path on this site, else ``/`` (no open redirect)."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    if "\\" in target or len(target) > 500:
        return "/"
    return target


def _form(request: Request, *, next_url: str, name: str = "", error: str = "") -> HTMLResponse:
    token, fresh = login_token(request)
    request.state.login_token = token
    response = render(
        request,
        "login.html",
        status_code=401 if error else 200,
        messages=[("error", error)] if error else [],
        next_url=next_url,
        user_name=name,
    )
    if fresh:
        set_cookie(request, response, login_cookie(request), token, 3600)
    return response


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> Response:
    if request.state.page_user is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return _form(request, next_url=_safe_next(next))


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    user_name: Annotated[str, Form(max_length=MAX_USER_NAME)],
    password: Annotated[str, Form(max_length=MAX_PASSWORD)],
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    name = user_name.strip()
    target = _safe_next(next)
    try:
        _THROTTLE.check(name)
        response = RedirectResponse(target, status_code=303)
        sign_in(request, response, name, password)
    except (NotAuthenticatedError, LimitExceededError) as exc:
        if isinstance(exc, NotAuthenticatedError):
            _THROTTLE.failed(name)
        inst = instance_of(request)
        inst.audit_unauthenticated(name or "(none)", "web.sign_in", "", exc.message)
        return _form(request, next_url=target, name=name, error=exc.message)
    _THROTTLE.succeeded(name)
    return response


@router.post("/logout")
def logout(request: Request, user: UserDep) -> Response:
    response = RedirectResponse("/login", status_code=303)
    sign_out(request, response, user)
    return response
