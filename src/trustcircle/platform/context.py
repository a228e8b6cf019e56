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
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session

from .._time import Clock, format_ts, system_clock
from .._types import Timestamp
from ..errors import NotAuthenticatedError, NotAuthorisedError, PolicyError, RefusedError
from ..store import Database, begin_writing, check_schema, open_database
from . import audit
from .home import MASTER_KEY, InstanceConfig, InstanceRole, load_config
from .roles import authorize, missing_roles
from .users import Actor, authenticate_token


@dataclass(frozen=True)
class Change:
    """One record inserted, updated or deleted by an operation."""

    table: str
    sys_id: str
    action: str  # "INSERT" | "UPDATE" | "DELETE"
    fields: Mapping[str, str | None]


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
    changes: list[Change] = field(default_factory=list)
    """Record changes made so far; update-set capture records them before commit."""
    epoch: int = 0
    """How often the data this operation sees was renewed (see :meth:`begin_writing`)."""

    @property
    def ts(self) -> Timestamp:
        return format_ts(self.now)

    def begin_writing(self) -> None:
        """From here on this operation may write. In a ``deferred`` operation the first call
        ends the reading phase: it takes the lock and sees the newest data, objects it
        loaded are read again, and :attr:`epoch` moves on, so that anything derived from
        what was read before can tell it is stale."""
        if begin_writing(self.session):
            self.epoch += 1

    def changed(
        self, table: str, sys_id: str, action: str, fields: Mapping[str, str | None]
    ) -> None:
        """Note a record change for update-set capture."""
        self.changes.append(Change(table, sys_id, action, dict(fields)))

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


class _RefusalBudget:
    """How many unauthenticated refusals one process writes to the audit log per window:
    anyone can send bad tokens, and each entry takes the write lock. The ones over the
    budget are counted and said in the next entry written."""

    PER_WINDOW = 30
    WINDOW = 60.0  # seconds

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._start = time.monotonic()
        self._written = 0
        self._dropped = 0

    def take(self) -> int | None:
        """None when over the budget (counted); else how many were dropped before."""
        with self._lock:
            now = time.monotonic()
            if now - self._start >= self.WINDOW:
                self._start, self._written = now, 0
            if self._written >= self.PER_WINDOW:
                self._dropped += 1
                return None
            self._written += 1
            dropped, self._dropped = self._dropped, 0
            return dropped


class Instance:
    """An instance home, opened: its config, database and clock."""

    def __init__(self, home: Path, config: InstanceConfig, db: Database, clock: Clock) -> None:
        self.home = home
        self.config = config
        self.db = db
        self.clock = clock
        self._unauthenticated = _RefusalBudget()

    @classmethod
    def open(cls, home: Path, clock: Clock = system_clock) -> Instance:
        config = load_config(home)
        db = open_database(config.database_url)
        try:
            check_schema(db)
        except BaseException:
            db.dispose()
            raise
        return cls(home, config, db, clock)

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

    def audit_unauthenticated(self, actor: str, action: str, target: str, reason: str) -> None:
        """:meth:`audit_refusal` for a caller nobody knows yet (a bad token, a failed or
        throttled sign-in), within this process's budget (:class:`_RefusalBudget`)."""
        dropped = self._unauthenticated.take()
        if dropped is None:
            return
        if dropped:
            reason += (
                f" ({dropped} more unauthenticated refusal(s) before this one were not "
                "written: over the audit log's budget)"
            )
        self.audit_refusal(actor, action, target, reason)

    def operation(
        self,
        token: str,
        action: str,
        target: str = "",
        *,
        write: bool = True,
        deferred: bool = False,
    ) -> AbstractContextManager[Operation]:
        """Run *action* as the holder of API *token* in one transaction (see the module doc)."""
        return self.operation_as(
            lambda session: authenticate_token(session, token),
            action,
            target,
            write=write,
            deferred=deferred,
        )

    @contextmanager
    def operation_as(
        self,
        resolve: Callable[[Session], Actor],
        action: str,
        target: str = "",
        *,
        write: bool = True,
        who: str = "(invalid token)",
        audit_unauthenticated: bool = True,
        forbid: Callable[[Actor, str, tuple[str, ...]], NotAuthorisedError] | None = None,
        deferred: bool = False,
    ) -> Iterator[Operation]:
        """Run *action* as the user *resolve* finds inside the transaction.

        The one implementation of the rules in the module doc, shared by API tokens,
        page sessions and background work started from a page: *resolve* authenticates
        (raising :class:`NotAuthenticatedError`), the roles are checked (*forbid* builds
        the error, default :func:`authorize`'s), and refusals are audited under *who*
        until the user is known. A session that merely expired is not worth an audit
        entry: pass ``audit_unauthenticated=False``. A *deferred* operation reads without
        SQLite's write lock until it calls :meth:`Operation.begin_writing` (its audit entry
        takes the lock at the latest): for work that runs long before it writes.
        """
        actor_name = who
        try:
            with self.db.transaction(deferred=deferred) as session:
                actor = resolve(session)
                actor_name = actor.name
                missing = missing_roles(actor.roles, action)
                if missing and forbid is not None:
                    raise forbid(actor, action, missing)
                authorize(actor.name, actor.roles, action)
                op = Operation(session, actor, self, self.clock(), action, target)
                yield op
                if write:
                    op.begin_writing()
                    audit.append(
                        session, at=op.ts, actor=actor.name, action=action, target=op.target,
                        outcome=audit.OK, detail=op.detail,
                    )  # fmt: skip
        except NotAuthenticatedError as exc:
            if audit_unauthenticated:
                self.audit_unauthenticated(actor_name, action, target, exc.message)
            raise
        except (RefusedError, NotAuthorisedError) as exc:
            self.audit_refusal(actor_name, action, target, exc.message)
            raise
