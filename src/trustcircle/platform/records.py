"""Records of the generic tables: insert, update, delete, get, query.

Every field value is a string or None, exactly as the update-set XML carries it.
Functions return a :class:`RecordChange` so update-set capture can record it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from .._types import SysId, Timestamp, new_sys_id
from ..errors import BadInputError, NotFoundError, UsageError
from ..store.models import SysRecord, fields_json
from .tables import table_def, writable_table

MAX_FIELD_CHARS = 1024 * 1024
Fields = dict[str, str | None]


@dataclass(frozen=True)
class Record:
    """A record as read from the store."""

    table: str
    sys_id: SysId
    fields: Fields
    created_on: str
    updated_on: str
    mod_count: int

    def to_dict(self) -> dict[str, object]:
        return {
            "table": self.table,
            "sys_id": self.sys_id,
            "fields": self.fields,
            "created_on": self.created_on,
            "updated_on": self.updated_on,
            "mod_count": self.mod_count,
        }


@dataclass(frozen=True)
class RecordChange:
    """One insert, update or delete, as update-set capture records it."""

    action: str  # "INSERT" | "UPDATE" | "DELETE"
    record: Record


def _check_values(fields: Mapping[str, str | None]) -> None:
    for key, value in fields.items():
        if value is not None and not isinstance(value, str):
            raise UsageError(f"field {key!r} must be text or null")
        if value is not None and len(value) > MAX_FIELD_CHARS:
            raise UsageError(f"field {key!r} is longer than {MAX_FIELD_CHARS} characters")
        if value is not None and not _storable(value):
            raise BadInputError(
                f"field {key!r} holds a NUL character or a lone surrogate: send plain UTF-8 text"
            )


def _storable(text: str) -> bool:
    """Text every database stores as given (no NUL for PostgreSQL) and UTF-8 can encode."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _load(row: SysRecord) -> Record:
    return Record(
        table=row.table_name,
        sys_id=SysId(row.sys_id),
        fields=json.loads(row.fields),
        created_on=row.created_on,
        updated_on=row.updated_on,
        mod_count=row.mod_count,
    )


def _row(session: Session, table: str, sys_id: str) -> SysRecord:
    row = session.get(SysRecord, sys_id)
    if row is None or row.table_name != table:
        raise NotFoundError(f"no {table} record with sys_id {sys_id}: check the table and id")
    return row


def get(session: Session, table: str, sys_id: str) -> Record:
    return _load(_row(session, table, sys_id))


def find(session: Session, table: str, sys_id: str) -> Record | None:
    row = session.get(SysRecord, sys_id)
    return _load(row) if row is not None and row.table_name == table else None


def insert(
    session: Session,
    table: str,
    fields: Mapping[str, str | None],
    actor: str,
    now: Timestamp,
    sys_id: SysId | None = None,
    *,
    check_required: bool = True,
    subsystem: bool = False,
) -> RecordChange:
    """Insert a record. A table only a subsystem writes (:func:`~.tables.writable_table`)
    is refused unless that *subsystem* is the caller."""
    tdef = table_def(table) if subsystem else writable_table(table)
    tdef.check_fields(fields)
    _check_values(fields)
    if check_required:
        missing = [f for f in tdef.required if not fields.get(f)]
        if missing:
            raise UsageError(
                f"a {table} record needs field(s) {', '.join(missing)}: add --field NAME=VALUE"
            )
    sid = sys_id or new_sys_id()
    if session.get(SysRecord, sid) is not None:
        raise UsageError(f"a record with sys_id {sid} already exists")
    row = SysRecord(
        sys_id=sid,
        table_name=table,
        fields=fields_json(fields),
        created_on=now,
        updated_on=now,
        created_by=actor,
        updated_by=actor,
        mod_count=0,
    )
    session.add(row)
    session.flush()
    return RecordChange("INSERT", _load(row))


def update(
    session: Session,
    table: str,
    sys_id: str,
    changes: Mapping[str, str | None],
    actor: str,
    now: Timestamp,
) -> RecordChange:
    """Change fields of a record (never of a table a subsystem manages: see :func:`insert`)."""
    tdef = writable_table(table)
    tdef.check_fields(changes)
    _check_values(changes)
    row = _row(session, table, sys_id)
    values: Fields = json.loads(row.fields)
    values.update(changes)
    row.fields = fields_json(values)
    row.updated_on = now
    row.updated_by = actor
    row.mod_count += 1
    session.flush()
    return RecordChange("UPDATE", _load(row))


def replace(
    session: Session,
    table: str,
    sys_id: SysId,
    fields: Mapping[str, str | None],
    actor: str,
    now: Timestamp,
) -> RecordChange:
    """Insert or overwrite every field (update-set commit: the incoming record wins whole)."""
    row = session.get(SysRecord, sys_id)
    if row is None:
        return insert(
            session, table, fields, actor, now, sys_id, check_required=False, subsystem=True
        )
    if row.table_name != table:
        raise UsageError(f"sys_id {sys_id} belongs to table {row.table_name}, not {table}")
    table_def(table).check_fields(fields)
    _check_values(fields)
    row.fields = fields_json(fields)
    row.updated_on = now
    row.updated_by = actor
    row.mod_count += 1
    session.flush()
    return RecordChange("UPDATE", _load(row))


def delete(session: Session, table: str, sys_id: str, *, subsystem: bool = False) -> RecordChange:
    """Delete a record (see :func:`insert` for *subsystem*)."""
    if not subsystem:
        writable_table(table)
    row = _row(session, table, sys_id)
    record = _load(row)
    session.delete(row)
    session.flush()
    return RecordChange("DELETE", record)


def query(
    session: Session, table: str, equals: Mapping[str, str] | None = None, limit: int = 1000
) -> list[Record]:
    """Records of *table* whose fields equal *equals* (filtered here: portable across databases)."""
    table_def(table)
    out: list[Record] = []
    stmt = (
        select(SysRecord)
        .where(SysRecord.table_name == table)
        .order_by(SysRecord.created_on, SysRecord.sys_id)
    )
    for row in session.scalars(stmt).yield_per(500):
        record = _load(row)
        if equals and any(record.fields.get(k) != v for k, v in equals.items()):
            continue
        out.append(record)
        if len(out) >= limit:
            break
    return out
