"""Persistence: SQLAlchemy models, the engine and its sessions, Alembic migrations."""

from .db import Database, check_schema, open_database, upgrade_schema

__all__ = ["Database", "check_schema", "open_database", "upgrade_schema"]
