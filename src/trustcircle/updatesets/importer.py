"""Import update-set XML files into retrieved update sets, streaming, in one transaction.

Each file is parsed once under the ``IMPORT_MAX_*`` limits, each entry's payload
once (:mod:`._import_parse`): an entry is stored with its payload's SHA-512 and the
record's fields (or, when the payload is refused, the payload and the reason).
Entries go to the database in chunks of bulk inserts while the file is read, so
memory stays flat; the CLI parses the files of a batch in parallel processes. All
files of one call land in the caller's transaction: any error leaves nothing stored.
Import only loads — a refused payload, signatures and the manifest are judged by
preview.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from sqlalchemy import Table, delete, select, update
from sqlalchemy.orm import Session

from ..errors import BadInputError, NotFoundError, PolicyError, RefusedError, UsageError
from ..platform import properties
from ..platform.context import Operation
from ..store.bulk import insert_many
from ..store.models import PreviewProblem, RemoteUpdateSet, RemoteUpdateXml, UpdateSet
from ._import_parse import (
    End,
    Message,
    Rows,
    WorkerFailed,
    parse_file,
    parse_in_workers,
    worker_count,
)
from .xmlformat import ImportLimits, ManifestSignature, UpdateSetHeader

LOADED = "loaded"
COMMITTED = "committed"
MAX_FILES = 1000
_ENTRIES = cast(Table, RemoteUpdateXml.__table__)
_SETS = cast(Table, RemoteUpdateSet.__table__)


@dataclass(frozen=True)
class ImportResult:
    """One retrieved update set, as :func:`import_files` stored it."""

    sys_id: str
    name: str
    description: str
    origin_instance: str
    parent: str
    created_on: str
    entries: int
    signed: bool
    file: str
    file_sha256: str
    state: str = LOADED

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def import_limits(session: Session) -> ImportLimits:
    """The import limits the ``IMPORT_MAX_*`` system properties set."""
    return ImportLimits(
        max_file_bytes=properties.get_int(session, properties.IMPORT_MAX_FILE_BYTES),
        max_depth=properties.get_int(session, properties.IMPORT_MAX_DEPTH),
        max_field_bytes=properties.get_int(session, properties.IMPORT_MAX_FIELD_BYTES),
        max_entries=properties.get_int(session, properties.IMPORT_MAX_ENTRIES),
    )


def import_files(op: Operation, paths: Sequence[Path], *, workers: int = 1) -> list[ImportResult]:
    """Load every file of *paths* as a retrieved update set in state ``loaded``.

    With *workers* above one, several files are parsed at once in forked processes
    (:func:`~._import_parse.parse_in_workers`); only a caller without threads of its
    own (the CLI) may ask for that. The stored result is the same either way.
    """
    if not paths:
        raise UsageError("give at least one update set XML file to import")
    if len(paths) > MAX_FILES:
        raise UsageError(f"{len(paths)} files given: import at most {MAX_FILES} at a time")
    limits = import_limits(op.session)
    files = [Path(p) for p in paths]
    seen: dict[str, Path] = {}
    stores = [_Store(op, path, seen) for path in files]
    results: dict[int, ImportResult] = {}
    forks = worker_count(files, workers)
    current = 0
    try:
        if forks:
            for current, message in parse_in_workers(files, limits, forks):
                _take(stores, results, current, message)
        else:
            for current, path in enumerate(files):
                for message in parse_file(path, limits):
                    _take(stores, results, current, message)
    except WorkerFailed as failed:
        current, error = failed.index, failed.error
        if isinstance(error, BadInputError) and len(files) > 1:
            raise _in_file(error, files[current]) from None
        raise error from None
    except BadInputError as exc:
        if len(files) == 1:
            raise
        raise _in_file(exc, files[current]) from exc
    ordered = [results[i] for i in range(len(files))]
    op.target = ", ".join(f"{r.name} ({r.sys_id})" for r in ordered)[:1000]
    op.detail = {
        "sets": [
            {"sys_id": r.sys_id, "name": r.name, "entries": r.entries, "file_sha256": r.file_sha256}
            for r in ordered
        ]
    }
    return ordered


def _take(
    stores: list[_Store], results: dict[int, ImportResult], index: int, message: Message
) -> None:
    store = stores[index]
    if isinstance(message, Rows):
        store.rows(message.rows)
    elif isinstance(message, UpdateSetHeader):
        store.start(message)
    elif isinstance(message, ManifestSignature):
        store.signature = message
    else:
        results[index] = store.finish(message)


def _in_file(exc: BadInputError, path: Path) -> BadInputError:
    """*exc* naming the file it is about (one of several)."""
    if str(path) in exc.message:
        return exc
    return type(exc)(f"{path}: {exc.message}")


class _Store:
    """The storing half of one file's import: the set row first, then its entry rows."""

    def __init__(self, op: Operation, path: Path, seen: dict[str, Path]) -> None:
        self.op = op
        self.path = path
        self.seen = seen
        self.header: UpdateSetHeader | None = None
        self.signature: ManifestSignature | None = None

    def rows(self, rows: list[dict[str, str | None]]) -> None:
        assert self.header is not None, "the reader yields the header before any entry"
        insert_many(self.op.session, _ENTRIES, rows)

    def start(self, header: UpdateSetHeader) -> None:
        """Refuse a set seen before, then store its row (completed by :meth:`finish`)."""
        self.header = header
        sid = header.sys_id
        earlier = self.seen.get(sid)
        if earlier is not None:
            raise UsageError(
                f"files {str(earlier)!r} and {str(self.path)!r} both hold update set {sid}: "
                "give each file once"
            )
        self.seen[sid] = self.path
        session = self.op.session
        existing = session.get(RemoteUpdateSet, sid)
        if existing is not None:
            if existing.state == COMMITTED:
                raise RefusedError(
                    f"update set {sid} was already imported as {existing.name!r} and "  # noqa: S608
                    "committed: a committed update set cannot be imported again"
                )
            raise RefusedError(
                f"update set {sid} is already imported as {existing.name!r}; delete it first "
                f"with `trustcircle updateset delete {sid}`"
            )
        local = session.get(UpdateSet, sid)
        if local is not None:
            raise RefusedError(
                f"update set {sid} is this instance's own local set {local.name!r}: "  # noqa: S608
                "import it on another instance"
            )
        session.execute(
            _SETS.insert(),
            {
                "sys_id": sid,
                "name": header.name,
                "description": header.description,
                "origin_instance": header.origin_instance,
                "parent": header.parent,
                "created_on": header.created_on,
                "state": LOADED,
                "imported_on": self.op.ts,
                "imported_by": self.op.actor.name,
                "file_sha256": "",
                "entry_count": 0,
                "accepted_remote": False,
            },
        )

    def finish(self, end: End) -> ImportResult:
        header, signature = self.header, self.signature
        assert header is not None, "parse_file refuses a headless file before its end"
        self.op.session.execute(
            update(RemoteUpdateSet)
            .where(RemoteUpdateSet.sys_id == header.sys_id)
            .values(
                entry_count=end.entries,
                file_sha256=end.sha256,
                sig_algorithm=signature.algorithm if signature else None,
                sig_certificate=signature.certificate if signature else None,
                sig_signed_at=signature.signed_at if signature else None,
                sig_expires_at=signature.expires_at if signature else None,
                sig_signature=signature.signature if signature else None,
            )
            .execution_options(synchronize_session=False)
        )
        return ImportResult(
            sys_id=header.sys_id,
            name=header.name,
            description=header.description,
            origin_instance=header.origin_instance,
            parent=header.parent,
            created_on=header.created_on,
            entries=end.entries,
            signed=signature is not None,
            file=str(self.path),
            file_sha256=end.sha256,
        )


@dataclass(frozen=True)
class DeletedSet:
    sys_id: str
    name: str
    entries: int

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def delete_retrieved(op: Operation, set_id: str) -> list[DeletedSet]:
    """Delete retrieved set *set_id* (with its batch children); never a committed one."""
    session = op.session
    row = session.get(RemoteUpdateSet, set_id)
    if row is None:
        if session.get(UpdateSet, set_id) is not None:
            raise UsageError(
                f"{set_id} is a local update set: only retrieved update sets can be deleted"
            )
        raise NotFoundError(
            f"no retrieved update set {set_id}: list them with `trustcircle updateset list`"
        )
    rows = [row, *session.scalars(select(RemoteUpdateSet).where(RemoteUpdateSet.parent == set_id))]
    for target in rows:
        if target.state == COMMITTED:
            raise PolicyError(
                f"retrieved update set {target.name!r} ({target.sys_id}) is committed: "  # noqa: S608
                "a committed update set stays on record and cannot be deleted"
            )
    ids = [r.sys_id for r in rows]
    deleted = [DeletedSet(r.sys_id, r.name, r.entry_count) for r in rows]
    session.execute(delete(PreviewProblem).where(PreviewProblem.remote_update_set.in_(ids)))
    session.execute(delete(RemoteUpdateXml).where(RemoteUpdateXml.remote_update_set.in_(ids)))
    session.execute(delete(RemoteUpdateSet).where(RemoteUpdateSet.sys_id.in_(ids)))
    op.target = f"{row.name} ({row.sys_id})"
    op.detail = {"deleted": [d.to_dict() for d in deleted]}
    return deleted
