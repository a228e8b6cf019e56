"""Persistence: SQLAlchemy models, the engine and its sessions, Alembic migrations."""

from .db import (
    Database,
    begin_writing,
    check_schema,
    open_database,
    upgrade_schema,
)

__all__ = [
    "Database",
    "begin_writing",
    "check_schema",
    "open_database",
    "upgrade_schema",
]
