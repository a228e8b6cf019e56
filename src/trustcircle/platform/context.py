"""An open instance home and the one way to run an operation on it.

:meth:`Instance.operation` authenticates the token, checks the action's roles,
opens one transaction, and audits: a successful write is audited inside its own
transaction (the change and its audit entry land together), and any refusal —
not authorised, or refused by verification or policy — rolls the change back
and is audited in a fresh transaction, so nothing is applied and the refusal is
on record.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session

from .._time import Clock, format_ts, system_clock
from .._types import Timestamp
from ..errors import NotAuthorisedError, PolicyError, RefusedError
from ..store import Database, open_database
from . import audit
from .home import MASTER_KEY, InstanceConfig, InstanceRole, load_config
from .roles import authorize
from .users import Actor, authenticate_token


@dataclass
class Operation:
    """What a running operation sees: its session, its user, the time."""

    session: Session
    actor: Actor
    instance: Instance
    now: dt.datetime
    action: str
    target: str
    detail: dict[str, object] = field(default_factory=dict)

    @property
    def ts(self) -> Timestamp:
        return format_ts(self.now)

    def audit(self, action: str, target: str, detail: Mapping[str, object] | None = None) -> None:
        """Add one more audit entry in this transaction (for sub-steps worth recording)."""
        audit.append(
            self.session,
            at=self.ts,
            actor=self.actor.name,
            action=action,
            target=target,
            outcome=audit.OK,
            detail=detail,
        )


class Instance:
    """An instance home, opened: its config, database and clock."""

    def __init__(self, home: Path, config: InstanceConfig, db: Database, clock: Clock) -> None:
        self.home = home
        self.config = config
        self.db = db
        self.clock = clock

    @classmethod
    def open(cls, home: Path, clock: Clock = system_clock) -> Instance:
        config = load_config(home)
        return cls(home, config, open_database(config.database_url), clock)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def is_trusted(self) -> bool:
        return self.config.role is InstanceRole.TRUSTED

    @property
    def is_protected(self) -> bool:
        return self.config.role is InstanceRole.PROTECTED

    @property
    def master_key_path(self) -> Path:
        return self.home / MASTER_KEY

    def require_trusted(self, what: str) -> None:
        """Refuse *what* on a protected instance: a protected instance never signs code."""
        if not self.is_trusted:
            raise PolicyError(
                f"cannot {what}: a protected instance never signs code; sign on a trusted instance"
            )

    def close(self) -> None:
        self.db.dispose()

    def audit_refusal(self, actor: str, action: str, target: str, reason: str) -> None:
        with self.db.transaction() as session:
            audit.append(
                session,
                at=format_ts(self.clock()),
                actor=actor,
                action=action,
                target=target,
                outcome=audit.REFUSED,
                detail={"reason": reason},
            )

    @contextmanager
    def operation(
        self, token: str, action: str, target: str = "", *, write: bool = True
    ) -> Iterator[Operation]:
        """Run *action* as the holder of *token* in one transaction (see the module doc)."""
        actor_name = "(invalid token)"
        try:
            with self.db.transaction() as session:
                actor = authenticate_token(session, token)
                actor_name = actor.name
                authorize(actor.name, actor.roles, action)
                op = Operation(session, actor, self, self.clock(), action, target)
                yield op
                if write:
                    audit.append(
                        session,
                        at=op.ts,
                        actor=actor.name,
                        action=action,
                        target=op.target,
                        outcome=audit.OK,
                        detail=op.detail,
                    )
        except (RefusedError, NotAuthorisedError) as exc:
            self.audit_refusal(actor_name, action, target, exc.message)
            raise
