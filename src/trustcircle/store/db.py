"""The engine, its sessions, and schema upgrades through Alembic.

SQLite (the default) runs in WAL mode with foreign keys on and every transaction
``BEGIN IMMEDIATE``: writers queue behind each other instead of failing half-way
when a read transaction would need upgrading. The one exception is a transaction
opened with ``deferred=True`` (a signed job's execution, whose script may run for
minutes): it reads without the write lock and, before its first write,
:func:`begin_writing` ends the reading phase and takes the lock in a fresh
``BEGIN IMMEDIATE``, so the job holds the lock only from then on.

PostgreSQL works through any SQLAlchemy URL (``postgresql+psycopg://...``) and gets
the same rule: every transaction first takes one transaction-level advisory lock
(:data:`_WRITERS`, waiting at most 30 s as SQLite's busy timeout does), a deferred one
only in :func:`begin_writing`. Its default READ COMMITTED isolation would otherwise let
two checks pass before either applies (two policy statements, a trust change during a
commit); under the lock every statement sees all that others committed, and nobody
else commits until this transaction ends.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import NoSuchModuleError as _NoSuchModule
from sqlalchemy.orm import Session, sessionmaker

from ..errors import BadInputError, TrustcircleError, UsageError

if TYPE_CHECKING:
    from alembic.config import Config

_MIGRATIONS = Path(__file__).parent / "migrations"
_DEFERRED_OPTION = "trustcircle_deferred"
_WRITERS = 0x74727573  # the advisory lock key every PostgreSQL transaction takes
_READING = "trustcircle.reading"  # session.info: changes count while still only reading


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        deferred = conn.get_execution_options().get(_DEFERRED_OPTION, False)
        conn.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")


def make_engine(url: str) -> Engine:
    """An engine for *url*, set up for trustcircle's transaction rules."""
    try:
        engine = create_engine(url, future=True)
    except (ArgumentError, _NoSuchModule) as exc:
        raise UsageError(f"database URL {url!r} is not usable: {exc}") from exc
    if engine.dialect.name == "sqlite":
        _sqlite_setup(engine)
    return engine


class Database:
    """An engine and its session factory."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @contextmanager
    def transaction(self, *, deferred: bool = False) -> Iterator[Session]:
        """One session in one transaction: committed on success, rolled back on any error.

        *deferred* (SQLite): read without the write lock until :func:`begin_writing`.
        """
        dialect = self.engine.dialect.name
        with self._sessions() as session, session.begin():
            if deferred and dialect == "sqlite":
                conn = session.connection(execution_options={_DEFERRED_OPTION: True})
                session.info[_READING] = _changes(conn)
            elif deferred and dialect == "postgresql":
                session.info[_READING] = 0
            elif dialect == "postgresql":
                _lock_writers(session)
            yield session

    def session(self) -> Session:
        return self._sessions()

    def dispose(self) -> None:
        self.engine.dispose()


def begin_writing(session: Session) -> bool:
    """Let a ``deferred`` transaction write: take the write lock (waiting for it), see the
    newest data, and hold the lock until the end; True when it did. A no-op (False) for
    any other transaction.

    The reading phase must not have written (a programming error, raised as a plain
    :class:`TrustcircleError`: the transaction is then rolled back). Every loaded object is
    expired, so what was read before is read again under the lock.
    """
    before = session.info.pop(_READING, None)
    if before is None:
        return False
    conn = session.connection()
    sqlite = conn.dialect.name == "sqlite"
    if session.new or session.dirty or session.deleted or (sqlite and _changes(conn) != before):
        # a programming error, not the user's: nothing is applied (the caller rolls back)
        raise TrustcircleError("a deferred transaction changed data before it began writing")
    if sqlite:
        conn.exec_driver_sql("COMMIT")  # ends the read snapshot; nothing was written
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        _lock_writers(session)
    session.expire_all()
    return True


def _lock_writers(session: Session) -> None:
    """PostgreSQL: wait (at most 30 s) for the one writers' lock, held to the end of the
    transaction (see the module doc)."""
    conn = session.connection()
    conn.exec_driver_sql("SET LOCAL lock_timeout = '30s'")
    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_WRITERS})")


def _changes(conn: Any) -> int:
    return int(conn.connection.dbapi_connection.total_changes)


def _alembic_config(engine: Engine) -> Config:
    from alembic.config import Config  # imported on demand: most commands never migrate

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade_schema(db: Database) -> None:
    """Bring the schema to the newest migration."""
    from alembic import command

    try:
        command.upgrade(_alembic_config(db.engine), "head")
    except OperationalError as exc:
        raise BadInputError(f"cannot migrate the database: {exc.orig}") from exc


_REVISION = re.compile(r"^(down_revision|revision)\s*(?::\s*[^=]+)?=\s*['\"]?([0-9A-Za-z_]+)", re.M)


@functools.cache
def head_revision() -> str:
    """The newest migration's revision id, read once from the migration files (no Alembic)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (_MIGRATIONS / "versions").glob("*.py"):
        for kind, value in _REVISION.findall(path.read_text("utf-8")):
            (revisions if kind == "revision" else parents).add(value)
    heads = revisions - parents
    if len(heads) != 1:
        raise UsageError(f"the migrations have {len(heads)} heads: a packaging error")
    return heads.pop()


def check_schema(db: Database) -> None:
    """Refuse to work on a database whose schema is not this version's (one clear line)."""
    try:
        with db.engine.connect() as conn:
            current = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    except SQLAlchemyError as exc:
        raise UsageError(
            "the database has no trustcircle schema: create the home with `trustcircle init`"
        ) from exc
    head = head_revision()
    if current != head:
        raise UsageError(
            f"the database schema is at revision {current}, this trustcircle needs "
            f"{head}: run `trustcircle upgrade --home HOME` (back up first)"
        )


def open_database(url: str) -> Database:
    """Open (not migrate) the database at *url*."""
    return Database(make_engine(url))
