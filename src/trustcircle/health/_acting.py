"""An authorised, audited operation for a user already signed in (a page session, a job).

:meth:`Instance.operation` starts from an API token; background work started from a
page has the user instead. This does the same with the user's *current* state: the
account must still be active and its roles are read again, so a role withdrawn while a
long job runs stops the job's next step.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import NotAuthenticatedError
from ..platform.context import Instance, Operation
from ..platform.users import Actor
from ..store.models import User, UserRole


def acting(
    instance: Instance, actor: Actor, action: str, target: str = "", *, write: bool = True
) -> AbstractContextManager[Operation]:
    """Run *action* as *actor* (re-read now) in one transaction, audited like any operation."""

    def resolve(session: Session) -> Actor:
        user = session.get(User, actor.sys_id)
        if user is None or not user.active:
            raise NotAuthenticatedError(f"user {actor.name!r} is disabled or gone: sign in again")
        roles = frozenset(
            session.scalars(select(UserRole.role).where(UserRole.user_id == user.sys_id))
        )
        return Actor(sys_id=user.sys_id, name=user.name, roles=roles)

    return instance.operation_as(resolve, action, target, write=write, who=actor.name)
