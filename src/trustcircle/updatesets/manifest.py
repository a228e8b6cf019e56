"""The update-set manifest payload of DESIGN §4: what ``cm_code_attest`` signs.

A manifest has a line per entry, up to the import limit of 100 000, so lines take a
fast path: exact ``str`` fields are checked with one C pass over their hex digits, a
cached match of the table name and a set lookup of the action, then written straight
into the fixed JCS layout. A line it does not accept is checked by :func:`_line`, the
reference, which refuses it with the same words as before; if any line needed it, the
whole document is serialised the reference way, with ``canonical_json``.
``tests/updatesets/test_updateset_manifest.py`` proves both paths agree.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from trustcircle.errors import UsageError
from trustcircle.signing.canonical import _json_string, canonical_json

from .xmlformat import (
    _NAME,
    ACTIONS,
    ELEMENT_NAME_MAX,
    UpdateEntry,
    UpdateSetHeader,
    check_entry,
    check_header,
    is_timestamp,
    shorten,
)

MANIFEST_FORMAT = "trustcircle.update-set-manifest/v1"
_LINES_PER_PART = 512
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
        digest = payload_sha512(entry.payload, entry.sys_id)
        return cls(entry.sys_id, entry.table, entry.target_sys_id, entry.action, digest)


def payload_sha512(payload: str, sys_id: str) -> str:
    """The ``payload_sha512`` of a manifest line: SHA-512 of entry *sys_id*'s payload text
    as UTF-8, in lowercase hex."""
    try:
        data = payload.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise UsageError(
            f"payload of update entry {sys_id} holds a lone surrogate: not valid text"
        ) from exc
    return hashlib.sha512(data).hexdigest()


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
    return b"".join(manifest_parts(header, entries, signed_at, expires_at))


def manifest_parts(
    header: UpdateSetHeader,
    entries: Iterable[UpdateEntry | ManifestEntry],
    signed_at: str,
    expires_at: str,
) -> Iterator[bytes]:
    """:func:`manifest_payload` in pieces, to hash without holding the whole document
    (10,000 lines make 3 MiB). Every check runs before the first piece is given."""
    check_header(header, UsageError)
    for name, value in (("signed_at", signed_at), ("expires_at", expires_at)):
        if not isinstance(value, str) or not is_timestamp(value):
            raise UsageError(
                f"manifest {name} {shorten(value)} is not an RFC 3339 UTC time like "
                "2026-11-27T19:45:00Z"
            )
    lines: dict[str, ManifestEntry] = {}
    fast = True  # while every line took the fast path
    for item in entries:
        line = _fast_line(item, header.sys_id)
        if line is None:
            line = _line(item, header.sys_id)
            fast = False
        if line.sys_id in lines:
            raise UsageError(f"two manifest entries have sys_id {line.sys_id}: give each its own")
        lines[line.sys_id] = line
    tail = _fast_tail(header, signed_at, expires_at) if fast else None
    if tail is None:
        return iter((_canonical(_document(header, lines, signed_at, expires_at)),))
    return _fast_parts(lines, tail)


def _document(
    header: UpdateSetHeader, lines: dict[str, ManifestEntry], signed_at: str, expires_at: str
) -> dict[str, object]:
    """The manifest as DESIGN §4 defines it, for ``canonical_json``."""
    return {
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


_FORMAT_JSON = _json_string(MANIFEST_FORMAT)


def _entry_json(line: ManifestEntry) -> str:
    """One entry in JCS order, for a line :func:`_fast_line` accepted: its fields are exact
    ``str`` of hex digits, a table name and an action, which JSON writes as they are."""
    return (
        f'{{"action":"{line.action}","payload_sha512":"{line.payload_sha512}"'
        f',"sys_id":"{line.sys_id}","table":"{line.table}"'
        f',"target_sys_id":"{line.target_sys_id}"}}'
    )


def _fast_tail(header: UpdateSetHeader, signed_at: str, expires_at: str) -> bytes | None:
    """What follows the entries in :func:`_document`'s bytes; None when the reference must
    write the document (a header value that is not an exact ``str`` or not UTF-8)."""
    values = (header.sys_id, header.name, header.origin_instance, signed_at, expires_at)
    if not all(type(value) is str for value in values):
        return None
    text = (
        f'],"expires_at":{_json_string(expires_at)}'
        f',"format":{_FORMAT_JSON}'
        f',"name":{_json_string(header.name)}'
        f',"origin_instance":{_json_string(header.origin_instance)}'
        f',"signed_at":{_json_string(signed_at)}'
        f',"update_set":{_json_string(header.sys_id)}}}'
    )
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate in the header: the reference refuses it
        return None


def _fast_parts(lines: dict[str, ManifestEntry], tail: bytes) -> Iterator[bytes]:
    """The document's bytes a few hundred lines at a time, for lines :func:`_fast_line`
    accepted (ASCII by construction)."""
    order = sorted(lines)
    yield b'{"entries":['
    for start in range(0, len(order), _LINES_PER_PART):
        chunk = order[start : start + _LINES_PER_PART]
        text = ",".join([_entry_json(lines[sys_id]) for sys_id in chunk])
        yield (text if start == 0 else "," + text).encode("ascii")
    yield tail


_HEX_DIGITS = b"0123456789abcdef"


def _fast_line(item: object, update_set: str) -> ManifestEntry | None:
    """The manifest line of *item* when it is certainly well formed, else None.

    Accepts only what :func:`_line` accepts, and only exact types (``UpdateEntry``,
    ``ManifestEntry``, ``str`` fields), so that the fast document may write them as is.
    Raises only where :func:`_line` raises for the same item after its checks
    (``ManifestEntry.of`` on a payload holding a lone surrogate).
    """
    if type(item) is ManifestEntry:
        digest = item.payload_sha512
        if type(digest) is str and len(digest) == 128 and _fields_ok(item, digest):
            return item
        return None
    if type(item) is UpdateEntry:
        if item.update_set != update_set or not _fields_ok(item, ""):
            return None
        return ManifestEntry.of(item)
    return None


def _fields_ok(item: UpdateEntry | ManifestEntry, digest: str) -> bool:
    """``check_entry`` for exact ``str`` fields, without the update-set test, plus *digest*
    (the manifest line's ``payload_sha512``, or "" for an update entry) being hex."""
    sys_id, table, target, action = item.sys_id, item.table, item.target_sys_id, item.action
    if not (
        type(sys_id) is str
        and type(table) is str
        and type(target) is str
        and type(action) is str
        and len(sys_id) == 32
        and len(target) == 32
        and action in ACTIONS
        and len(table) <= ELEMENT_NAME_MAX
        and _is_table_name(table)
    ):
        return False
    hex_digits = sys_id + target + digest
    return hex_digits.isascii() and not hex_digits.encode("ascii").translate(None, _HEX_DIGITS)


@functools.lru_cache(maxsize=1024)
def _is_table_name(table: str) -> bool:
    """``is_name`` for an exact ``str`` no longer than any name (callers bound it): an
    update set repeats a few table names."""
    return _NAME.fullmatch(table) is not None


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
