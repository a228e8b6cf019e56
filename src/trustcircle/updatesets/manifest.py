"""The update-set manifest payload of DESIGN §4: what ``cm_code_attest`` signs."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from trustcircle.errors import UsageError
from trustcircle.signing.canonical import canonical_json

from .xmlformat import (
    UpdateEntry,
    UpdateSetHeader,
    check_entry,
    check_header,
    is_timestamp,
    shorten,
)

MANIFEST_FORMAT = "trustcircle.update-set-manifest/v1"
_SHA512_HEX = re.compile(r"[0-9a-f]{128}")


@dataclass(frozen=True)
class ManifestEntry:
    """One line of the manifest: an entry named by its payload's SHA-512."""

    sys_id: str
    table: str
    target_sys_id: str
    action: str
    payload_sha512: str

    @classmethod
    def of(cls, entry: UpdateEntry) -> ManifestEntry:
        """The manifest line of *entry*: SHA-512 of its payload text as UTF-8."""
        try:
            data = entry.payload.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise UsageError(
                f"payload of update entry {entry.sys_id} holds a lone surrogate: not valid text"
            ) from exc
        digest = hashlib.sha512(data).hexdigest()
        return cls(entry.sys_id, entry.table, entry.target_sys_id, entry.action, digest)


def manifest_payload(
    header: UpdateSetHeader,
    entries: Iterable[UpdateEntry | ManifestEntry],
    signed_at: str,
    expires_at: str,
) -> bytes:
    """The canonical (RFC 8785) bytes of the manifest of *header* and *entries*.

    Entries are sorted by sys_id. Raises :class:`UsageError` for malformed times or
    entries, an entry of another update set, or two entries with one sys_id.
    """
    check_header(header, UsageError)
    for name, value in (("signed_at", signed_at), ("expires_at", expires_at)):
        if not isinstance(value, str) or not is_timestamp(value):
            raise UsageError(
                f"manifest {name} {shorten(value)} is not an RFC 3339 UTC time like "
                "2026-11-27T19:45:00Z"
            )
    lines: dict[str, ManifestEntry] = {}
    for item in entries:
        line = _line(item, header.sys_id)
        if line.sys_id in lines:
            raise UsageError(f"two manifest entries have sys_id {line.sys_id}: give each its own")
        lines[line.sys_id] = line
    document: dict[str, object] = {
        "format": MANIFEST_FORMAT,
        "update_set": header.sys_id,
        "name": header.name,
        "origin_instance": header.origin_instance,
        "signed_at": signed_at,
        "expires_at": expires_at,
        "entries": [
            {
                "sys_id": line.sys_id,
                "table": line.table,
                "target_sys_id": line.target_sys_id,
                "action": line.action,
                "payload_sha512": line.payload_sha512,
            }
            for _, line in sorted(lines.items())
        ],
    }
    return _canonical(document)


def _line(item: UpdateEntry | ManifestEntry, update_set: str) -> ManifestEntry:
    if isinstance(item, UpdateEntry):
        check_entry(item, update_set, UsageError)
        return ManifestEntry.of(item)
    if not isinstance(item, ManifestEntry):
        raise UsageError(
            f"manifest entries must be UpdateEntry or ManifestEntry, not {type(item).__name__}"
        )
    probe = UpdateEntry(item.sys_id, update_set, item.table, item.target_sys_id, item.action, "")
    check_entry(probe, update_set, UsageError)
    if _SHA512_HEX.fullmatch(item.payload_sha512) is None:
        raise UsageError(
            f"manifest entry {item.sys_id} payload_sha512 is not 128 lowercase hex characters"
        )
    return item


def _canonical(document: dict[str, object]) -> bytes:
    return canonical_json(document)
