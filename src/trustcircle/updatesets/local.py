"""Local update sets: creation, the user's current set, and capture of record changes.

Each user has one *current* update set; every record change they make is captured
into it as a ``sys_update_xml`` entry (the newest change of a target replaces the
older entry). A user without a current set gets an in-progress set named
``Default`` on their first change, as on the reference platform.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from .._types import SysId, Timestamp, new_sys_id
from ..errors import NotFoundError, PolicyError, UsageError
from ..platform.context import Change, Operation
from ..platform.users import Actor
from ..store.models import CurrentUpdateSet, UpdateSet, UpdateXml
from .record_xml import record_to_payload
from .xmlformat import ACTION_DELETE, ACTION_INSERT_OR_UPDATE

IN_PROGRESS = "in progress"
COMPLETE = "complete"
DEFAULT_NAME = "Default"
MAX_NAME = 200


@dataclass(frozen=True)
class LocalSetView:
    """A local update set as lists and ``--json`` show it."""

    sys_id: str
    name: str
    description: str
    state: str
    parent: str
    created_on: str
    created_by: str
    entries: int

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def view(session: Session, row: UpdateSet) -> LocalSetView:
    count = len(
        list(session.scalars(select(UpdateXml.sys_id).where(UpdateXml.update_set == row.sys_id)))
    )
    return LocalSetView(
        row.sys_id,
        row.name,
        row.description,
        row.state,
        row.parent,
        row.created_on,
        row.created_by,
        count,
    )


def create_set(
    session: Session,
    name: str,
    actor: str,
    now: Timestamp,
    *,
    description: str = "",
    state: str = IN_PROGRESS,
    parent: str = "",
    sys_id: SysId | None = None,
) -> UpdateSet:
    """A new local update set."""
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise UsageError(f"an update set name must be 1 to {MAX_NAME} characters")
    row = UpdateSet(
        sys_id=sys_id or new_sys_id(),
        name=name,
        description=description,
        state=state,
        parent=parent,
        created_on=now,
        created_by=actor,
    )
    session.add(row)
    session.flush()
    return row


def get_set(session: Session, set_id: str) -> UpdateSet:
    row = session.get(UpdateSet, set_id)
    if row is None:
        raise NotFoundError(
            f"no local update set {set_id}: list them with `trustcircle updateset list`"
        )
    return row


def current_set(session: Session, actor: Actor, now: Timestamp) -> UpdateSet:
    """The user's current in-progress set, creating ``Default`` when there is none."""
    pref = session.get(CurrentUpdateSet, actor.sys_id)
    if pref is not None:
        row = session.get(UpdateSet, pref.update_set)
        if row is not None and row.state == IN_PROGRESS:
            return row
    row = session.scalar(
        select(UpdateSet).where(
            UpdateSet.name == DEFAULT_NAME,
            UpdateSet.created_by == actor.name,
            UpdateSet.state == IN_PROGRESS,
        )
    )
    if row is None:
        row = create_set(
            session,
            DEFAULT_NAME,
            actor.name,
            now,
            description=f"Default update set of {actor.name}",
        )
    make_current(session, actor, row)
    return row


def make_current(session: Session, actor: Actor, row: UpdateSet) -> None:
    if row.state != IN_PROGRESS:
        raise PolicyError(
            f"update set {row.name!r} is {row.state}: only an in-progress set can become current"  # noqa: S608
        )
    pref = session.get(CurrentUpdateSet, actor.sys_id)
    if pref is None:
        session.add(CurrentUpdateSet(user_id=actor.sys_id, update_set=row.sys_id))
    else:
        pref.update_set = row.sys_id
    session.flush()


def complete(session: Session, row: UpdateSet) -> None:
    """Close a set: it captures nothing more and can be exported."""
    row.state = COMPLETE
    session.execute(delete(CurrentUpdateSet).where(CurrentUpdateSet.update_set == row.sys_id))
    session.flush()


def add_entry(
    session: Session,
    row: UpdateSet,
    table: str,
    target: str,
    action: str,
    fields: Mapping[str, str | None],
    actor: str,
    now: Timestamp,
) -> UpdateXml:
    """Record one change in *row*; an older entry for the same target is replaced."""
    if action not in (ACTION_INSERT_OR_UPDATE, ACTION_DELETE):
        raise UsageError(f"unknown update action {action!r}")
    payload = record_to_payload(table, target, fields)
    entry = session.scalar(
        select(UpdateXml).where(
            UpdateXml.update_set == row.sys_id, UpdateXml.target_sys_id == target
        )
    )
    if entry is None:
        entry = UpdateXml(
            sys_id=new_sys_id(),
            update_set=row.sys_id,
            table_name=table,
            target_sys_id=target,
            action=action,
            payload=payload,
            created_on=now,
            created_by=actor,
        )
        session.add(entry)
    else:
        entry.table_name, entry.action, entry.payload = table, action, payload
        entry.created_on, entry.created_by = now, actor
    session.flush()
    return entry


def capture(op: Operation, changes: Iterable[Change] | None = None) -> UpdateSet | None:
    """Capture *changes* (default: the operation's) into the actor's current update set."""
    todo = list(op.changes if changes is None else changes)
    if not todo:
        return None
    row = current_set(op.session, op.actor, op.ts)
    for change in todo:
        action = ACTION_DELETE if change.action == "DELETE" else ACTION_INSERT_OR_UPDATE
        add_entry(
            op.session,
            row,
            change.table,
            change.sys_id,
            action,
            change.fields,
            op.actor.name,
            op.ts,
        )
    op.changes.clear()
    return row


def list_sets(session: Session) -> list[LocalSetView]:
    return [
        view(session, r)
        for r in session.scalars(select(UpdateSet).order_by(UpdateSet.created_on, UpdateSet.name))
    ]


def entries_of(session: Session, set_id: str) -> list[UpdateXml]:
    return list(
        session.scalars(
            select(UpdateXml).where(UpdateXml.update_set == set_id).order_by(UpdateXml.sys_id)
        )
    )
