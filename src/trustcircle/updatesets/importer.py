"""Import update-set XML files into retrieved update sets, streaming, in one transaction.

Each file is parsed once with :func:`read_update_set` under the ``IMPORT_MAX_*``
limits, and each entry's payload once with :func:`parse_payload`: an entry is stored
with its payload's SHA-512 and the record's fields (or, when the payload is refused,
the payload and the reason). Entries go to the database in chunks of bulk inserts
while the file is read, so memory stays flat. All files of one call land in the
caller's transaction: any error leaves nothing stored. Import only loads — a refused
payload, signatures and the manifest are judged by preview.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, cast

from sqlalchemy import Table, delete, select, update
from sqlalchemy.orm import Session

from ..errors import BadInputError, NotFoundError, PolicyError, RefusedError, UsageError
from ..platform import properties
from ..platform.context import Operation
from ..store.bulk import insert_many
from ..store.models import PreviewProblem, RemoteUpdateSet, RemoteUpdateXml, UpdateSet
from ._xml_read import read_update_set
from .record_xml import parse_payload
from .xmlformat import ImportLimits, ManifestSignature, UpdateEntry, UpdateSetHeader

LOADED = "loaded"
COMMITTED = "committed"
MAX_FILES = 1000
_CHUNK = 1000
_DRAIN = 1024 * 1024
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


def import_files(op: Operation, paths: Sequence[Path]) -> list[ImportResult]:
    """Load every file of *paths* as a retrieved update set in state ``loaded``."""
    if not paths:
        raise UsageError("give at least one update set XML file to import")
    if len(paths) > MAX_FILES:
        raise UsageError(f"{len(paths)} files given: import at most {MAX_FILES} at a time")
    limits = import_limits(op.session)
    seen: dict[str, Path] = {}
    results: list[ImportResult] = []
    for path in map(Path, paths):
        try:
            results.append(_Import(op, path, limits, seen).run())
        except BadInputError as exc:
            if len(paths) == 1 or str(path) in exc.message:
                raise
            raise type(exc)(f"{path}: {exc.message}") from exc
    op.target = ", ".join(f"{r.name} ({r.sys_id})" for r in results)[:1000]
    op.detail = {
        "sets": [
            {"sys_id": r.sys_id, "name": r.name, "entries": r.entries, "file_sha256": r.file_sha256}
            for r in results
        ]
    }
    return results


class _HashingReader:
    """A binary file for the parser that hashes what it hands over."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.sha256 = hashlib.sha256()
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.sha256.update(data)
        self.count += len(data)
        return data


class _Import:
    """The import of one file: parse once, hash and insert in chunks as entries arrive.

    Single-threaded on purpose: parsing holds the GIL, and a second thread for parsing
    payloads, hashing or inserting measured slower than doing all of it inline.
    """

    def __init__(
        self, op: Operation, path: Path, limits: ImportLimits, seen: dict[str, Path]
    ) -> None:
        self.op = op
        self.path = path
        self.limits = limits
        self.seen = seen
        self.pending: list[UpdateEntry] = []

    def run(self) -> ImportResult:
        with self._open() as raw:
            reader = _HashingReader(raw)
            header: UpdateSetHeader | None = None
            signature: ManifestSignature | None = None
            count = 0
            for item in read_update_set(cast(BinaryIO, reader), self.limits):
                if isinstance(item, UpdateEntry):
                    self._add(item)
                    count += 1
                elif isinstance(item, UpdateSetHeader):
                    header = item
                    self._start(item)
                else:
                    signature = item
            self._flush()
            while reader.read(_DRAIN):  # what follows the root element is part of the file
                if reader.count > self.limits.max_file_bytes:
                    raise self.limits.refuse("max_file_bytes", f"update set file {self.path}")
        if header is None:  # the reader refuses such a file; never store a headless set
            raise BadInputError(f"update set file {str(self.path)!r} holds no update set")
        digest = reader.sha256.hexdigest()
        self._finish(header, count, signature, digest)
        return ImportResult(
            sys_id=header.sys_id,
            name=header.name,
            description=header.description,
            origin_instance=header.origin_instance,
            parent=header.parent,
            created_on=header.created_on,
            entries=count,
            signed=signature is not None,
            file=str(self.path),
            file_sha256=digest,
        )

    def _add(self, entry: UpdateEntry) -> None:
        self.pending.append(entry)
        if len(self.pending) >= _CHUNK:
            self._flush()

    def _flush(self) -> None:
        insert_many(self.op.session, _ENTRIES, _rows(self.pending, self.limits))
        self.pending = []

    def _open(self) -> IO[bytes]:
        where = f"update set file {str(self.path)!r}"
        try:
            size = self.path.stat().st_size
            if size > self.limits.max_file_bytes:
                raise self.limits.refuse("max_file_bytes", f"{where} of {size} bytes")
            return self.path.open("rb")
        except FileNotFoundError as exc:
            raise BadInputError(f"{where} does not exist: check the path") from exc
        except IsADirectoryError as exc:
            raise BadInputError(f"{where} is a directory, not a file") from exc
        except PermissionError as exc:
            raise BadInputError(f"{where} cannot be read: permission denied") from exc
        except OSError as exc:
            raise BadInputError(f"{where} cannot be read: {exc.strerror or exc}") from exc

    def _start(self, header: UpdateSetHeader) -> None:
        """Refuse a set seen before, then store its row (completed by :meth:`_finish`)."""
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

    def _finish(
        self,
        header: UpdateSetHeader,
        count: int,
        signature: ManifestSignature | None,
        digest: str,
    ) -> None:
        self.op.session.execute(
            update(RemoteUpdateSet)
            .where(RemoteUpdateSet.sys_id == header.sys_id)
            .values(
                entry_count=count,
                file_sha256=digest,
                sig_algorithm=signature.algorithm if signature else None,
                sig_certificate=signature.certificate if signature else None,
                sig_signed_at=signature.signed_at if signature else None,
                sig_expires_at=signature.expires_at if signature else None,
                sig_signature=signature.signature if signature else None,
            )
            .execution_options(synchronize_session=False)
        )


def _rows(entries: list[UpdateEntry], limits: ImportLimits) -> list[dict[str, str | None]]:
    """The rows of *entries*: each payload parsed once and hashed."""
    rows: list[dict[str, str | None]] = []
    for entry in entries:
        fields, problem = parse_payload(entry, limits)
        rows.append(
            {
                "remote_update_set": entry.update_set,
                "sys_id": entry.sys_id,
                "table_name": entry.table,
                "target_sys_id": entry.target_sys_id,
                "action": entry.action,
                "payload": None if problem is None else entry.payload,
                "payload_sha512": hashlib.sha512(entry.payload.encode("utf-8")).hexdigest(),
                "fields": fields,
                "problem": problem,
            }
        )
    return rows


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
