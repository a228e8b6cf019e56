"""Persistence: SQLAlchemy models, the engine and its sessions, Alembic migrations."""

from .db import Database, open_database, upgrade_schema

__all__ = ["Database", "open_database", "upgrade_schema"]
