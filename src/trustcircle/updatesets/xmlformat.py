"""The update-set XML format of DESIGN §5: its names, its records and its bounds.

The writer lives in :mod:`._xml_write`, the streaming reader in :mod:`._xml_read`, the
record payloads in :mod:`.record_xml` and the signed manifest in :mod:`.manifest`; this
module holds what they share. Import the public names from :mod:`trustcircle.updatesets`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypedDict

from lxml import etree

from trustcircle._time import parse_ts
from trustcircle.crypto.algorithms import Algorithm
from trustcircle.errors import BadInputError, LimitExceededError, TrustcircleError, UsageError

FORMAT: Final = "trustcircle.update-set/v1"
ACTION_INSERT_OR_UPDATE: Final = "INSERT_OR_UPDATE"
ACTION_DELETE: Final = "DELETE"
ACTIONS: Final = frozenset({ACTION_INSERT_OR_UPDATE, ACTION_DELETE})

MiB: Final = 1024 * 1024

# The system properties that hold the import limits (platform/properties.py defines them).
LIMIT_PROPERTIES: Final = {
    "max_file_bytes": "trustcircle.updateset.import.max_file_bytes",
    "max_depth": "trustcircle.updateset.import.max_depth",
    "max_field_bytes": "trustcircle.updateset.import.max_field_bytes",
    "max_entries": "trustcircle.updateset.import.max_entries",
}


@dataclass(frozen=True)
class UpdateSetHeader:
    """``<sys_remote_update_set>``: the update set itself. ``parent`` is "" when none."""

    sys_id: str
    name: str
    description: str
    origin_instance: str
    parent: str
    created_on: str


@dataclass(frozen=True)
class UpdateEntry:
    """``<sys_update_xml>``: one record change. ``payload`` is the record XML as carried."""

    sys_id: str
    update_set: str
    table: str
    target_sys_id: str
    action: str
    payload: str


@dataclass(frozen=True)
class ManifestSignature:
    """``<update_set_signature>``: the signature over the manifest payload of DESIGN §4."""

    algorithm: str
    certificate: str
    signed_at: str
    expires_at: str
    signature: str


@dataclass(frozen=True)
class ImportLimits:
    """Bounds on an imported update set; each comes from a system property.

    ``max_field_bytes`` bounds the UTF-8 size of every element's text, the ``<payload>``
    of an entry included (it is a field of ``sys_update_xml``), and so every record
    field inside a payload too.
    """

    max_file_bytes: int = 256 * MiB
    max_depth: int = 8
    max_field_bytes: int = 1 * MiB
    max_entries: int = 100_000

    def __post_init__(self) -> None:
        for limit in LIMIT_PROPERTIES:
            value = getattr(self, limit)
            if type(value) is not int or value < 1:
                raise UsageError(
                    f"import limit {limit}={value!r} is not a positive integer: "
                    f"fix the system property {LIMIT_PROPERTIES[limit]}"
                )

    def refuse(self, limit: str, what: str) -> LimitExceededError:
        """The error for *what* going over the limit named *limit* (a field of this class)."""
        value = getattr(self, limit)
        return LimitExceededError(
            f"{what} exceeds {limit}={value}: refusing it; if it is legitimate, raise the "
            f"system property {LIMIT_PROPERTIES[limit]}"
        )


ELEMENT_NAME_MAX = 80
_NAME = re.compile(rf"[a-z_][a-z0-9_.]{{0,{ELEMENT_NAME_MAX - 1}}}")
_SYS_ID = re.compile(r"[0-9a-f]{32}")
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")
_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_ALLOWED_BYTES = bytes([0x09, 0x0A, 0x0D, *range(0x20, 0x100)])
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

ErrorFactory = Callable[[str], TrustcircleError]


class _ParserOptions(TypedDict):
    resolve_entities: bool
    no_network: bool
    load_dtd: bool
    huge_tree: bool
    remove_comments: bool
    remove_pis: bool
    collect_ids: bool


HARDENED_PARSER: Final = _ParserOptions(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    huge_tree=False,
    remove_comments=False,
    remove_pis=False,
    collect_ids=False,
)
"""lxml parser options for untrusted XML: no entities, no DTD, no network, libxml2's
default size bounds; comments and processing instructions kept, so they can be refused."""


def is_name(value: str) -> bool:
    """True when *value* may name a table or field (and so an XML element)."""
    return isinstance(value, str) and _NAME.fullmatch(value) is not None


def is_sys_id(value: str) -> bool:
    return isinstance(value, str) and _SYS_ID.fullmatch(value) is not None


def is_timestamp(value: str) -> bool:
    """RFC 3339 UTC with seconds and ``Z``, and a real date and time."""
    if not isinstance(value, str) or _TIMESTAMP.fullmatch(value) is None:
        return False
    try:
        parse_ts(value)
    except BadInputError:
        return False
    return True


def has_dtd(element: etree._Element) -> bool:
    """True when the document of *element* carries a DOCTYPE (and so maybe entities)."""
    info = element.getroottree().docinfo
    return bool(
        info.internalDTD is not None
        or info.externalDTD is not None
        or info.public_id
        or getattr(info, "doctype", "")
    )


def first_bad_xml_char(value: str) -> int:
    """Index of the first character XML 1.0 cannot carry in *value*, or -1."""
    # Fast path in C: lone surrogates fail to encode, C0 controls survive the deletion of
    # every allowed byte, and U+FFFE/U+FFFF are searched for; the regex only locates.
    try:
        clean = not value.encode("utf-8").translate(None, _ALLOWED_BYTES)
    except UnicodeEncodeError as exc:
        return exc.start
    if clean and "\ufffe" not in value and "\uffff" not in value:
        return -1
    found = _NOT_XML_CHAR.search(value)
    return -1 if found is None else found.start()


def shorten(value: Any, width: int = 40) -> str:
    """``repr`` of *value*, cut to *width* characters, for one-line messages."""
    text = value if isinstance(value, str) else str(value)
    return repr(text[:width]) + ("…" if len(text) > width else "")


def check_header(header: UpdateSetHeader, error: ErrorFactory) -> None:
    """Raise ``error(message)`` unless every field of *header* is well formed."""
    if not is_sys_id(header.sys_id):
        raise error(f"update set sys_id {shorten(header.sys_id)} is not 32 lowercase hex")
    if header.parent != "" and not is_sys_id(header.parent):
        raise error(
            f"update set parent {shorten(header.parent)} is neither empty nor 32 lowercase hex"
        )
    if not is_timestamp(header.created_on):
        raise error(
            f"update set created_on {shorten(header.created_on)} is not an RFC 3339 UTC time "
            "like 2026-11-27T19:45:00Z"
        )


def check_entry(entry: UpdateEntry, update_set: str, error: ErrorFactory) -> None:
    """Raise ``error(message)`` unless *entry* is well formed and belongs to *update_set*."""
    if not is_sys_id(entry.sys_id):
        raise error(f"update entry sys_id {shorten(entry.sys_id)} is not 32 lowercase hex")
    where = f"entry {entry.sys_id}"
    if entry.update_set != update_set:
        raise error(
            f"{where} belongs to {shorten(entry.update_set)}, not to {update_set}, "
            "the update set it travels in: refusing a foreign entry"
        )
    if not is_name(entry.table):
        raise error(f"{where} names table {shorten(entry.table)}, which is not a table name")
    if not is_sys_id(entry.target_sys_id):
        raise error(
            f"{where} targets {shorten(entry.target_sys_id)}, which is not 32 lowercase hex"
        )
    if entry.action not in ACTIONS:
        raise error(
            f"{where} has unknown action {shorten(entry.action)}: "
            f"use {ACTION_INSERT_OR_UPDATE} or {ACTION_DELETE}"
        )


def check_signature(signature: ManifestSignature, error: ErrorFactory) -> None:
    """Raise ``error(message)`` unless *signature* is well formed."""
    known = [a.value for a in Algorithm]
    if signature.algorithm not in known:
        raise error(
            f"update set signature algorithm {shorten(signature.algorithm)} is unknown: "
            f"use one of {', '.join(known)}"
        )
    if _FINGERPRINT.fullmatch(signature.certificate) is None:
        raise error(
            f"update set signature certificate {shorten(signature.certificate)} is not a "
            "fingerprint (64 lowercase hex)"
        )
    for name in ("signed_at", "expires_at"):
        value = getattr(signature, name)
        if not is_timestamp(value):
            raise error(
                f"update set signature {name} {shorten(value)} is not an RFC 3339 UTC time "
                "like 2026-11-27T19:45:00Z"
            )
    if len(signature.signature) % 4 or _BASE64.fullmatch(signature.signature) is None:
        raise error("update set signature value is not standard base64")
