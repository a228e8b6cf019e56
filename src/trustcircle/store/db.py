"""The engine, its sessions, and schema upgrades through Alembic.

SQLite (the default) runs in WAL mode with foreign keys on and every transaction
``BEGIN IMMEDIATE``: writers queue behind each other instead of failing half-way
when a read transaction would need upgrading. The one exception, a transaction that
runs a job script before it writes, begins deferred (:meth:`Database.transaction`).
PostgreSQL works through any SQLAlchemy URL (``postgresql+psycopg://...``).
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

from ..errors import BadInputError, UsageError

if TYPE_CHECKING:
    from alembic.config import Config

_MIGRATIONS = Path(__file__).parent / "migrations"
_DEFERRED = "trustcircle_deferred"
_CHANGES = "trustcircle_changes_at_begin"


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
        deferred = conn.get_execution_options().get(_DEFERRED, False)
        conn.exec_driver_sql("BEGIN DEFERRED" if deferred is True else "BEGIN IMMEDIATE")
        conn.info[_CHANGES] = conn.connection.dbapi_connection.total_changes


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

        *deferred* (SQLite): take the write lock at the first write, not at the start,
        so a transaction that waits long before writing (a job script running) does not
        hold up every other writer. Before it writes, it calls :meth:`start_writing`
        and reads again what its writes depend on.
        """
        with self._sessions() as session, session.begin():
            if deferred:
                session.connection(execution_options={_DEFERRED: True})
            yield session

    def start_writing(self, session: Session) -> None:
        """Make *session*'s deferred transaction a writing one with a fresh snapshot.

        On SQLite, a transaction that has not written yet ends (nothing to commit) and
        a new one begins with the write lock held, so what is read from now on is
        current and stays current until commit; one that has written already holds
        the lock. Other databases see committed changes statement by statement.
        """
        if self.engine.dialect.name != "sqlite":
            return
        session.flush()
        conn = session.connection()
        raw = conn.connection.dbapi_connection
        if raw is None or raw.total_changes != conn.info.get(_CHANGES):
            return  # written already: the write lock is held since that write
        raw.execute("COMMIT")
        raw.execute("BEGIN IMMEDIATE")
        session.expire_all()  # what was loaded may have changed meanwhile

    def session(self) -> Session:
        return self._sessions()

    def dispose(self) -> None:
        self.engine.dispose()


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
