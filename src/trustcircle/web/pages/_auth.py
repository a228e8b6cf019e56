"""Who is signed in to the pages, CSRF tokens, and one authorised operation per action.

The API every page module uses (U2's dashboard pages too)::

    router = page_router()                      # from ._route: CSRF + HTML errors built in

    @router.get("/things")
    def things(request: Request, user: UserDep) -> HTMLResponse:
        with page_operation(request, user, "thing.read", write=False) as op:
            rows = ...                          # op.session, op.actor, op.now, op.instance
        return render(request, "things.html", rows=rows)

* :data:`UserDep` — the signed-in :class:`PageUser` (signed-out visitors are sent to
  ``/login``).
* :func:`page_operation` — the same authorised, audited, captured operation as
  ``web/deps.operation`` and the CLI, run as the session's user: a missing role raises
  :class:`PageForbidden` (rendered as the 403 page naming the roles the action needs),
  and a refusal is audited.
* :func:`require_role` — refuse a page before doing anything (same 403 page).
* :func:`flash` — a one-line message shown on the user's next page (after a redirect).
* CSRF: every POST to a page route must carry the session's token in the form field
  ``csrf_token`` (templates: ``{{ csrf_input() }}``) or the ``X-CSRF-Token`` header; the
  route class checks it before the endpoint runs (see ``_route.py``).

The cookie holds a random session key; the database stores only its SHA-256, the user,
the CSRF token and the expiry (idle and absolute). A session key is never an API token.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Response
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..._time import format_ts, parse_ts
from ...errors import NotAuthenticatedError, NotAuthorisedError, PolicyError
from ...platform import audit
from ...platform.context import Instance, Operation
from ...platform.roles import describe, missing_roles
from ...platform.users import Actor, authenticate_password
from ...store.models import User, UserRole, WebSession
from ...updatesets.local import capture

SESSION_COOKIE = "tc_session_"
"""Prefix of the session cookie; the instance name follows (several instances may share
a host name on different ports, and cookies do not tell ports apart)."""
LOGIN_COOKIE = "tc_login_"
"""Prefix of the pre-session CSRF cookie of the sign-in form (double submit)."""
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
IDLE_LIMIT = dt.timedelta(minutes=60)
ABSOLUTE_LIMIT = dt.timedelta(hours=12)
_TOUCH_AFTER = dt.timedelta(seconds=60)
MAX_FLASH = 5
MAX_FLASH_CHARS = 500
MAX_PASSWORD = 1024
MAX_USER_NAME = 64


class SignInRequired(NotAuthenticatedError):
    """No valid session: the route sends the browser to the sign-in page."""


class CsrfRefused(PolicyError):
    """A POST without the session's CSRF token."""


class PageForbidden(NotAuthorisedError):
    """The signed-in user lacks a role *action* needs; the 403 page names them."""

    def __init__(self, user: str, action: str, missing: tuple[str, ...]) -> None:
        needs = " and ".join(m.replace("|", " or ") for m in missing)
        super().__init__(
            f"user {user!r} may not {action}: missing role(s) {needs}; ask an admin to grant them",
            missing,
        )
        self.action = action
        self.needs = describe(action)


@dataclass(frozen=True)
class PageUser:
    """The signed-in user of one request."""

    actor: Actor
    session_key: str
    """SHA-256 of the cookie's key (the row's primary key)."""
    csrf_token: str
    flashes: tuple[tuple[str, str], ...] = ()

    @property
    def name(self) -> str:
        return self.actor.name

    def may(self, action: str) -> bool:
        """True when the user's roles allow *action* (for showing or hiding buttons)."""
        return not missing_roles(self.actor.roles, action)


def instance_of(request: Request) -> Instance:
    inst: Instance = request.app.state.instance
    return inst


def session_cookie(request: Request) -> str:
    """The session cookie's name on this instance."""
    return SESSION_COOKIE + instance_of(request).name


def login_cookie(request: Request) -> str:
    """The sign-in form's CSRF cookie name on this instance."""
    return LOGIN_COOKIE + instance_of(request).name


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _actor(session: Session, user: User) -> Actor:
    roles = frozenset(session.scalars(select(UserRole.role).where(UserRole.user_id == user.sys_id)))
    return Actor(sys_id=user.sys_id, name=user.name, roles=roles)


def _live_row(session: Session, key_hash: str, now: dt.datetime) -> tuple[WebSession, User] | None:
    """The session row and its active user, when the session is still valid at *now*."""
    row = session.get(WebSession, key_hash)
    if row is None:
        return None
    user = session.get(User, row.user_id)
    idle_end = parse_ts(row.last_seen) + IDLE_LIMIT
    if user is None or not user.active or now >= parse_ts(row.expires_at) or now >= idle_end:
        session.delete(row)
        return None
    return row, user


def load_session(request: Request) -> PageUser | None:
    """The user whose valid session cookie *request* carries, else None (touches the row)."""
    key = request.cookies.get(session_cookie(request), "")
    if not key or len(key) > 128:
        return None
    inst = instance_of(request)
    now = inst.clock()
    with inst.db.transaction() as session:
        found = _live_row(session, _key_hash(key), now)
        if found is None:
            return None
        row, user = found
        if now - parse_ts(row.last_seen) >= _TOUCH_AFTER:
            row.last_seen = format_ts(now)
        flashes = tuple((str(lv), str(tx)) for lv, tx in json.loads(row.flash or "[]"))
        return PageUser(_actor(session, user), row.key_hash, row.csrf_token, flashes)


def current_user(request: Request) -> PageUser:
    """FastAPI dependency: the signed-in user (resolved by the route), else sign in first."""
    user: PageUser | None = getattr(request.state, "page_user", None)
    if user is None:
        raise SignInRequired("sign in to use this page")
    return user


UserDep = Annotated[PageUser, Depends(current_user)]


def sign_in(request: Request, response: Response, name: str, password: str) -> str:
    """Check *name*/*password* (argon2) and start a session; set its cookie on *response*.

    Returns the user name. Wrong credentials raise one :class:`NotAuthenticatedError`
    whatever was wrong.
    """
    inst = instance_of(request)
    now = inst.clock()
    key = secrets.token_urlsafe(32)
    with inst.db.transaction() as session:
        session.execute(delete(WebSession).where(WebSession.expires_at <= format_ts(now)))
        actor = authenticate_password(session, name[:MAX_USER_NAME], password[:MAX_PASSWORD])
        session.add(
            WebSession(
                key_hash=_key_hash(key),
                user_id=actor.sys_id,
                csrf_token=secrets.token_urlsafe(32),
                created_on=format_ts(now),
                last_seen=format_ts(now),
                expires_at=format_ts(now + ABSOLUTE_LIMIT),
                flash="[]",
            )
        )
        audit.append(
            session, at=format_ts(now), actor=actor.name, action="web.sign_in", target="",
            outcome=audit.OK, detail=None,
        )  # fmt: skip
    set_cookie(request, response, session_cookie(request), key, int(ABSOLUTE_LIMIT.total_seconds()))
    response.delete_cookie(login_cookie(request), path="/")
    return actor.name


def sign_out(request: Request, response: Response, user: PageUser) -> None:
    """End *user*'s session (row deleted, cookie cleared)."""
    inst = instance_of(request)
    with inst.db.transaction() as session:
        session.execute(delete(WebSession).where(WebSession.key_hash == user.session_key))
    response.delete_cookie(session_cookie(request), path="/")


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    """An HttpOnly, SameSite=Lax cookie for the whole site, Secure over https."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def login_token(request: Request) -> tuple[str, bool]:
    """The sign-in form's CSRF token and whether its cookie must be (re)set."""
    token = request.cookies.get(login_cookie(request), "")
    if 20 <= len(token) <= 128:
        return token, False
    return secrets.token_urlsafe(32), True


def check_csrf(request: Request, sent: str) -> None:
    """Refuse unless *sent* is the token of the request's session (or sign-in cookie)."""
    user: PageUser | None = getattr(request.state, "page_user", None)
    expected = (
        user.csrf_token if user is not None else request.cookies.get(login_cookie(request), "")
    )
    if not sent or not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise CsrfRefused(
            "the form's CSRF token is missing or wrong: reload the page and submit it again"
        )


def require_role(user: PageUser, action: str) -> None:
    """Raise :class:`PageForbidden` (the 403 page) unless *user* may do *action*."""
    missing = missing_roles(user.actor.roles, action)
    if missing:
        raise PageForbidden(user.name, action, missing)


@contextmanager
def page_operation(
    request: Request,
    user: PageUser,
    action: str,
    target: str = "",
    *,
    write: bool = True,
    deferred: bool = False,
) -> Iterator[Operation]:
    """Run *action* as *user*: one transaction, role check, update-set capture, audit.

    Mirrors :meth:`Instance.operation` (plus ``web.deps.operation``'s capture), but the
    actor comes from the session, re-checked inside the transaction.
    """
    inst = instance_of(request)

    def resolve(session: Session) -> Actor:
        found = _live_row(session, user.session_key, inst.clock())
        if found is None:
            raise SignInRequired("your session ended: sign in again")
        return _actor(session, found[1])

    with inst.operation_as(
        resolve,
        action,
        target,
        write=write,
        who=user.name,
        audit_unauthenticated=False,
        forbid=lambda actor, act, missing: PageForbidden(actor.name, act, missing),
        deferred=deferred,
    ) as op:
        yield op
        capture(op)


def flash(request: Request, user: PageUser, text: str, level: str = "info") -> None:
    """Show *text* (one line) on *user*'s next page; *level* is info, success or error."""
    inst = instance_of(request)
    with inst.db.transaction() as session:
        row = session.get(WebSession, user.session_key)
        if row is None:
            return
        items = json.loads(row.flash or "[]")[-(MAX_FLASH - 1) :]
        items.append([level, " ".join(text.split())[:MAX_FLASH_CHARS]])
        row.flash = json.dumps(items)


def pop_flashes(request: Request, user: PageUser) -> tuple[tuple[str, str], ...]:
    """*user*'s pending messages, cleared now that they are shown."""
    if not user.flashes:
        return ()
    inst = instance_of(request)
    with inst.db.transaction() as session:
        row = session.get(WebSession, user.session_key)
        if row is not None:
            row.flash = "[]"
    return user.flashes
