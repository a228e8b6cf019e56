"""Export a local update set as the XML of DESIGN §5, signed on a trusted instance.

On a trusted instance the manifest (DESIGN §4) is signed with ``cm_code_attest``;
a protected instance never signs, so its exports carry no ``<update_set_signature>``.
A set with more entries than ``com.snc.csf.maximum_update_size`` exports as a batch:
a parent file (header and signed manifest, no entries) plus one child file per
``maximum_update_size`` entries, split in sys_id order (see :mod:`._batch`).

Every file is written to a temporary file in the target folder and moved into place
only once all of them are complete: a reader never sees half a file or half a batch.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from .._time import format_ts
from ..crypto import algorithms
from ..errors import UsageError
from ..platform import kmf, properties
from ..platform.context import Operation
from ..platform.roles import authorize
from ..store.models import UpdateXml
from ._batch import Part, plan_parts
from ._xml_write import write_update_set
from .local import get_set
from .manifest import ManifestEntry, manifest_payload
from .xmlformat import ManifestSignature, UpdateEntry, UpdateSetHeader

ATTEST_MODULE = "cm_code_attest"
_FETCH = 500


@dataclass(frozen=True)
class ExportedFile:
    """One file an export wrote."""

    path: Path
    sys_id: str
    name: str
    parent: str
    entries: int
    signed: bool

    def to_dict(self) -> dict[str, object]:
        return {
            "path": str(self.path),
            "sys_id": self.sys_id,
            "name": self.name,
            "parent": self.parent,
            "entries": self.entries,
            "signed": self.signed,
        }


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_set` wrote: every file, the entry count, and the signature."""

    update_set: str
    name: str
    entries: int
    signed: bool
    certificate: str | None
    expires_at: str | None
    files: tuple[ExportedFile, ...]

    @property
    def batch(self) -> bool:
        return len(self.files) > 1

    def to_dict(self) -> dict[str, object]:
        return {
            "update_set": self.update_set,
            "name": self.name,
            "entries": self.entries,
            "signed": self.signed,
            "certificate": self.certificate,
            "expires_at": self.expires_at,
            "batch": self.batch,
            "files": [f.to_dict() for f in self.files],
        }


@dataclass(frozen=True)
class _Signer:
    """The attest key and the times every manifest of one export carries."""

    key: kmf.SigningKey
    signed_at: str
    expires_at: str

    def sign(self, header: UpdateSetHeader, lines: Sequence[ManifestEntry]) -> ManifestSignature:
        payload = manifest_payload(header, lines, self.signed_at, self.expires_at)
        raw = algorithms.sign(self.key.algorithm, self.key.key, payload)
        return ManifestSignature(
            algorithm=self.key.algorithm.value,
            certificate=self.key.certificate,
            signed_at=self.signed_at,
            expires_at=self.expires_at,
            signature=base64.b64encode(raw).decode("ascii"),
        )


def export_set(op: Operation, set_id: str, out: Path) -> ExportResult:
    """Write local update set *set_id* to *out* (and its batch children next to it).

    On a trusted instance the export is signed, so the user must also hold what
    ``updateset.sign`` needs (codesigning_admin), not only ``updateset.export``.
    """
    row = get_set(op.session, set_id)
    if op.instance.is_trusted:
        authorize(op.actor.name, op.actor.roles, "updateset.sign")
    signer = _signer(op) if op.instance.is_trusted else None
    out = _check_out(Path(out))
    header = UpdateSetHeader(
        sys_id=row.sys_id,
        name=row.name,
        description=row.description,
        origin_instance=op.instance.name,
        parent=row.parent,
        created_on=row.created_on,
    )
    lines = _manifest_lines(op.session, row.sys_id)
    maximum = properties.get_int(op.session, properties.MAX_UPDATE_SIZE)
    parts = plan_parts(header, lines, maximum, out)
    written = _write_all(op.session, row.sys_id, parts, signer, op.ts)
    result = ExportResult(
        update_set=row.sys_id,
        name=row.name,
        entries=len(lines),
        signed=signer is not None,
        certificate=signer.key.certificate if signer else None,
        expires_at=signer.expires_at if signer else None,
        files=written,
    )
    op.target = f"{row.name} ({row.sys_id})"
    op.detail = {
        "update_set": row.sys_id,
        "entries": len(lines),
        "signed": result.signed,
        "certificate": result.certificate,
        "files": [str(f.path) for f in written],
    }
    return result


def _check_out(out: Path) -> Path:
    if out.is_dir():
        raise UsageError(f"--out {str(out)!r} is a folder: give the path of the XML file to write")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"cannot create the folder {str(out.parent)!r} for the export: {exc.strerror}"
        ) from exc
    return out


def _signer(op: Operation) -> _Signer:
    key = kmf.signing_key(op, ATTEST_MODULE)
    window = properties.get_int(op.session, properties.VALIDITY_WINDOW)
    return _Signer(key, op.ts, format_ts(op.now + dt.timedelta(seconds=window)))


def _manifest_lines(session: Session, set_id: str) -> list[ManifestEntry]:
    """The manifest line of every entry, in sys_id order (payloads hashed, not kept)."""
    stmt = (
        select(
            UpdateXml.sys_id,
            UpdateXml.table_name,
            UpdateXml.target_sys_id,
            UpdateXml.action,
            UpdateXml.payload,
        )
        .where(UpdateXml.update_set == set_id)
        .order_by(UpdateXml.sys_id)
        .execution_options(yield_per=_FETCH)
    )
    return [
        ManifestEntry.of(UpdateEntry(sid, set_id, table, target, action, payload))
        for sid, table, target, action, payload in session.execute(stmt)
    ]


def _entries(session: Session, set_id: str, part: Part) -> Iterator[UpdateEntry]:
    """The entries of *part*, streamed from the database, relabelled to its update set."""
    if not part.lines:
        return
    stmt = (
        select(
            UpdateXml.sys_id,
            UpdateXml.table_name,
            UpdateXml.target_sys_id,
            UpdateXml.action,
            UpdateXml.payload,
        )
        .where(
            UpdateXml.update_set == set_id,
            UpdateXml.sys_id >= part.lines[0].sys_id,
            UpdateXml.sys_id <= part.lines[-1].sys_id,
        )
        .order_by(UpdateXml.sys_id)
        .execution_options(yield_per=_FETCH)
    )
    for sid, table, target, action, payload in session.execute(stmt):
        yield UpdateEntry(sid, part.header.sys_id, table, target, action, payload)


def _write_all(
    session: Session,
    set_id: str,
    parts: Sequence[Part],
    signer: _Signer | None,
    unload_date: str,
) -> tuple[ExportedFile, ...]:
    """Write every part to a temporary file, then move them all into place."""
    temps: list[tuple[str, Path]] = []
    try:
        for part in parts:
            signature = signer.sign(part.header, part.lines) if signer else None
            tmp = _temp_for(part.path)
            temps.append((tmp, part.path))
            with open(tmp, "wb") as fh:
                write_update_set(
                    fh, part.header, _entries(session, set_id, part), signature, unload_date
                )
                fh.flush()
                os.fsync(fh.fileno())
        for tmp, path in temps:
            os.replace(tmp, path)
        temps.clear()
    except OSError as exc:
        raise UsageError(
            f"cannot write the export {str(parts[0].path)!r}: {exc.strerror or exc}"
        ) from exc
    finally:
        for tmp, _ in temps:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    _sync_folder(parts[0].path.parent)
    return tuple(
        ExportedFile(
            path=part.path,
            sys_id=part.header.sys_id,
            name=part.header.name,
            parent=part.header.parent,
            entries=len(part.lines),
            signed=signer is not None,
        )
        for part in parts
    )


def _temp_for(path: Path) -> str:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)
    finally:
        os.close(fd)
    return tmp


def _sync_folder(folder: Path) -> None:
    """Make the renames durable (best effort: not every platform opens folders)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
