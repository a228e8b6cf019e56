"""Users, their roles, API tokens (stored only as SHA-256) and passwords (argon2)."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from .._types import Timestamp, new_sys_id
from ..errors import NotAuthenticatedError, NotAuthorisedError, NotFoundError, UsageError
from ..store.models import ApiToken, Role, User, UserRole, WebSession
from .roles import ELEVATED_ROLES, ROLES, canonical_role

TOKEN_PREFIX = "tc_"  # noqa: S105 - a prefix, not a secret
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
_hasher = PasswordHasher()


@dataclass(frozen=True)
class Actor:
    """The authenticated user an operation runs as."""

    sys_id: str
    name: str
    roles: frozenset[str]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def ensure_roles(session: Session) -> None:
    """Create the role rows of DESIGN §8 that are missing."""
    have = set(session.scalars(select(Role.name)))
    for name, description in ROLES.items():
        if name not in have:
            session.add(Role(name=name, description=description, elevated=name in ELEVATED_ROLES))
    session.flush()


def parse_roles(text: str) -> list[str]:
    """``a,b`` → canonical role names; unknown roles are a :class:`UsageError`."""
    names = [r.strip() for r in text.split(",") if r.strip()]
    return sorted({canonical_role(r) for r in names})


def create_user(
    session: Session,
    name: str,
    roles: Iterable[str],
    now: Timestamp,
    label: str = "cli",
    *,
    granter: Actor | None = None,
) -> tuple[User, str]:
    """Create *name* with *roles*; return the user and a new API token (shown once).

    A *granter* (the acting user; None only for the instance's own bootstrap) may grant
    only roles it holds itself: an admin cannot make a code signer or a security admin.
    """
    wanted = sorted({canonical_role(r) for r in roles})
    if granter is not None:
        _require_held(granter, wanted, f"grant role(s) {', '.join(wanted)}")
    if not _NAME.fullmatch(name):
        raise UsageError(
            f"user name {name[:70]!r} is not allowed: use 1-64 letters, digits, '_.@-'"
        )
    if session.scalar(select(User).where(User.name == name)) is not None:
        raise UsageError(f"user {name!r} already exists: choose another name")
    user = User(sys_id=new_sys_id(), name=name, active=True, created_on=now)
    session.add(user)
    session.flush()
    for role in wanted:
        session.add(UserRole(user_id=user.sys_id, role=role))
    return user, issue_token(session, user, now, label)


def issue_token(session: Session, user: User, now: Timestamp, label: str = "cli") -> str:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            token_hash=token_hash(token),
            user_id=user.sys_id,
            label=label,
            created_on=now,
            revoked=False,
        )
    )
    session.flush()
    return token


def _actor(session: Session, user: User) -> Actor:
    roles = frozenset(session.scalars(select(UserRole.role).where(UserRole.user_id == user.sys_id)))
    return Actor(sys_id=user.sys_id, name=user.name, roles=roles)


def authenticate_token(session: Session, token: str) -> Actor:
    """The active user holding *token*, or :class:`NotAuthenticatedError`."""
    token = token.strip()
    row = session.get(ApiToken, token_hash(token)) if token else None
    if row is None or row.revoked:
        raise NotAuthenticatedError(
            "the API token is not valid: use --token-file with a token from `trustcircle user add`"
        )
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        raise NotAuthenticatedError("the user of this API token is disabled or gone")
    return _actor(session, user)


def disable_user(session: Session, name: str, by: Actor) -> int:
    """Disable *name* at once: every API token revoked, every web session ended, no sign-in
    until :func:`enable_user`. *by* must hold every role *name* holds (nobody locks out
    a user above them). How many tokens were revoked."""
    user = _managed(session, name, by, "disable")
    user.active = False
    revoked = session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user.sys_id, ApiToken.revoked.is_(False))
        .values(revoked=True)
    )
    _end_web_sessions(session, user)
    return int(getattr(revoked, "rowcount", 0) or 0)


def enable_user(session: Session, name: str, by: Actor, now: Timestamp) -> str:
    """Enable *name* again with a new API token (its old ones stay revoked); the token."""
    user = _managed(session, name, by, "enable")
    user.active = True
    return issue_token(session, user, now, "enable")


def _managed(session: Session, name: str, by: Actor, doing: str) -> User:
    """User *name*, once *by* is found to hold every role it holds."""
    user = get_user(session, name)
    _require_held(by, _actor(session, user).roles, f"{doing} {user.name!r}")
    return user


def _end_web_sessions(session: Session, user: User) -> None:
    session.execute(delete(WebSession).where(WebSession.user_id == user.sys_id))


def _require_held(by: Actor, roles: Iterable[str], doing: str) -> None:
    """Refuse *doing* unless *by* holds every one of *roles* (roles are stored canonical):
    nobody grants, or locks out, more than they hold."""
    beyond = tuple(sorted(set(roles) - by.roles))
    if beyond:
        raise NotAuthorisedError(
            f"user {by.name!r} may not {doing}: that takes role(s) {', '.join(beyond)}, "
            f"which {by.name!r} does not hold; ask a user who holds them",
            beyond,
        )


def get_user(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFoundError(f"no user named {name!r}: list users with `trustcircle user list`")
    return user


def set_password(session: Session, name: str, password: str) -> None:
    """Set *name*'s web password (argon2) and end every web session it has: whoever
    signed in with the old password is signed out."""
    if len(password) < 12 or len(password) > 1024:
        raise UsageError("passwords must be 12 to 1024 characters long")
    user = get_user(session, name)
    user.password_hash = _hasher.hash(password)
    _end_web_sessions(session, user)


def authenticate_password(session: Session, name: str, password: str) -> Actor:
    """The user *name* if *password* matches its argon2 hash; one message for every failure."""
    failure = NotAuthenticatedError("wrong user name or password")
    user = session.scalar(select(User).where(User.name == name))
    if user is None or not user.active or not user.password_hash:
        _hasher.hash(password)  # same cost whether or not the user exists
        raise failure
    try:
        _hasher.verify(user.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError) as exc:
        raise failure from exc
    return _actor(session, user)


def list_users(session: Session) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for user in session.scalars(select(User).order_by(User.name)):
        out.append(
            {
                "name": user.name,
                "active": user.active,
                "created_on": user.created_on,
                "roles": sorted(_actor(session, user).roles),
            }
        )
    return out
