"""Bulk writes and chunked ``IN`` lists for large update sets and batches."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import Table
from sqlalchemy.orm import Session

_T = TypeVar("_T")


def insert_many(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert *rows* (all with the same keys) with one ``executemany`` on the driver: Core's
    per-row parameter handling would cost more than SQLite's insert itself. The statement
    is compiled for the session's dialect."""
    if not rows:
        return
    conn = session.connection()
    compiled = table.insert().compile(dialect=conn.dialect, column_keys=list(rows[0]))
    order = compiled.positiontup
    if compiled.positional and order is not None:
        conn.exec_driver_sql(str(compiled), [tuple(row[k] for k in order) for row in rows])
    else:
        conn.exec_driver_sql(str(compiled), [dict(row) for row in rows])


def chunks(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    """*items* in consecutive slices of at most *size*."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
