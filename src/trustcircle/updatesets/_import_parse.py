"""The parsing half of an import: one file → header, rows to store, manifest signature.

:func:`parse_file` reads a file once under the import limits (:func:`read_update_set`)
and each entry's payload once (:func:`parse_payload`), and yields what the storing
half (:mod:`.importer`) writes: the header, chunks of entry rows (the payload's
SHA-512 and the record's fields as JSON, or the payload and why it was refused), the
manifest signature, and the file's size and SHA-256. Nothing here touches the database.

:func:`parse_in_workers` runs :func:`parse_file` for several files in forked worker
processes, one file at a time each, so a batch of large files is parsed on every
core; the rows come back through pipes, a chunk at a time, so memory stays flat.
Only a process that forks safely (no threads of its own, like the CLI) may use it.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import IO, BinaryIO, cast

from ..errors import BadInputError, TrustcircleError
from ._xml_read import open_file, read_update_set
from .manifest import payload_sha512
from .record_xml import parse_payload
from .xmlformat import ImportLimits, ManifestSignature, UpdateEntry, UpdateSetHeader

CHUNK = 1000
_DRAIN = 1024 * 1024
Row = dict[str, str | None]


@dataclass(frozen=True)
class Rows:
    """The next stored form of up to :data:`CHUNK` entries."""

    rows: list[Row]


@dataclass(frozen=True)
class End:
    """The file is read to its end: its entry count and SHA-256."""

    entries: int
    sha256: str


@dataclass(frozen=True)
class Failed:
    """A worker's refusal of its file (sent instead of raising across the pipe)."""

    error: TrustcircleError


class WorkerFailed(Exception):
    """The worker parsing file *index* refused it with *error* (raised by the parent)."""

    def __init__(self, index: int, error: TrustcircleError) -> None:
        super().__init__(index, error)
        self.index = index
        self.error = error


Message = UpdateSetHeader | Rows | ManifestSignature | End


def parse_file(path: Path, limits: ImportLimits) -> Iterator[Message]:
    """The header, the rows in chunks, the signature if any, then :class:`End`.

    Raises :class:`BadInputError` (or a subclass) on a file the limits or the format
    refuse; a headless file is refused after it is read.
    """
    with open_file(path, limits) as raw:
        reader = _HashingReader(raw)
        pending: list[UpdateEntry] = []
        count = 0
        header = False
        for item in read_update_set(cast(BinaryIO, reader), limits):
            if isinstance(item, UpdateEntry):
                pending.append(item)
                count += 1
                if len(pending) >= CHUNK:
                    yield Rows(rows(pending, limits))
                    pending = []
            else:
                header = header or isinstance(item, UpdateSetHeader)
                yield item
        if pending:
            yield Rows(rows(pending, limits))
        while reader.read(_DRAIN):  # what follows the root element is part of the file
            if reader.count > limits.max_file_bytes:
                raise limits.refuse("max_file_bytes", f"update set file {path}")
    if not header:  # the reader refuses such a file; never store a headless set
        raise BadInputError(f"update set file {str(path)!r} holds no update set")
    yield End(count, reader.sha256.hexdigest())


def rows(entries: list[UpdateEntry], limits: ImportLimits) -> list[Row]:
    """The rows of *entries*: each payload parsed once and hashed."""
    out: list[Row] = []
    for entry in entries:
        fields, problem = parse_payload(entry, limits)
        out.append(
            {
                "remote_update_set": entry.update_set,
                "sys_id": entry.sys_id,
                "table_name": entry.table,
                "target_sys_id": entry.target_sys_id,
                "action": entry.action,
                "payload": None if problem is None else entry.payload,
                "payload_sha512": payload_sha512(entry.payload, entry.sys_id),
                "fields": fields,
                "problem": problem,
            }
        )
    return out


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


# -- worker processes -------------------------------------------------------------------------


def worker_count(paths: Sequence[Path], requested: int) -> int:
    """How many workers to fork for *paths*: none for one file, else up to *requested*
    (bounded by the cores and the files)."""
    if requested <= 1 or len(paths) <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return 0
    return min(requested, len(paths), os.cpu_count() or 1)


def parse_in_workers(
    paths: Sequence[Path], limits: ImportLimits, workers: int
) -> Iterator[tuple[int, Message]]:
    """``(index into paths, message)`` of every file, parsed by *workers* forked processes.

    The files go out largest first, one to a worker at a time; each file's messages
    arrive in order. A worker's refusal is raised here as :class:`WorkerFailed`; the
    workers are stopped on any way out.
    """
    ctx = multiprocessing.get_context("fork")
    order = sorted(range(len(paths)), key=lambda i: _size(paths[i]), reverse=True)
    busy: dict[Connection, int] = {}
    ours: list[Connection] = []
    procs = []
    try:
        for _ in range(workers):
            mine, theirs = ctx.Pipe()
            ours.append(mine)
            proc = ctx.Process(target=_work, args=(theirs, paths, limits, ours), daemon=True)
            proc.start()
            theirs.close()
            procs.append(proc)
            _next(mine, order, busy)
        while busy:
            for conn in wait(list(busy)):
                assert isinstance(conn, Connection)
                index = busy[conn]
                try:
                    message = conn.recv()
                except EOFError as exc:
                    raise TrustcircleError(
                        f"the worker parsing {str(paths[index])!r} stopped unexpectedly: "
                        "import the files again"
                    ) from exc
                if isinstance(message, Failed):
                    raise WorkerFailed(index, message.error)
                yield index, message
                if isinstance(message, End):
                    del busy[conn]
                    _next(conn, order, busy)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
            proc.join()


def _next(conn: Connection, order: list[int], busy: dict[Connection, int]) -> None:
    """Give the worker on *conn* the next file, or tell it to stop."""
    if order:
        index = order.pop(0)
        busy[conn] = index
        conn.send(index)
    else:
        conn.send(None)
        conn.close()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _work(
    conn: Connection, paths: Sequence[Path], limits: ImportLimits, ours: list[Connection]
) -> None:
    """A worker: parse each file the parent names until it says stop (or goes away: the
    parent's ends of the pipes, inherited by the fork, are closed so that can be seen)."""
    for inherited in ours:
        inherited.close()
    while True:
        try:
            index = conn.recv()
        except EOFError:
            return
        if index is None:
            return
        try:
            for message in parse_file(paths[index], limits):
                conn.send(message)
        except TrustcircleError as exc:
            conn.send(Failed(exc))
            return
        except Exception as exc:
            conn.send(Failed(TrustcircleError(f"parsing failed: {exc}")))
            return
