"""Write an update set as the XML of DESIGN §5, streaming one entry at a time."""

from __future__ import annotations

from collections.abc import Iterable
from typing import BinaryIO

from lxml import etree

from trustcircle.errors import UsageError

from .xmlformat import (
    FORMAT,
    ManifestSignature,
    UpdateEntry,
    UpdateSetHeader,
    check_entry,
    check_header,
    check_signature,
    first_bad_xml_char,
    is_timestamp,
    shorten,
)

_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'


def write_update_set(
    out: BinaryIO,
    header: UpdateSetHeader,
    entries: Iterable[UpdateEntry],
    signature: ManifestSignature | None,
    unload_date: str,
) -> None:
    """Write *header*, *entries* (in the order given) and *signature* to *out*.

    Entries are consumed one at a time and never held together. Raises
    :class:`UsageError` for data a reader would refuse (malformed ids or times, an entry
    of another update set, two entries with one sys_id or one target, text XML 1.0
    cannot carry); output already written is then incomplete, so write to a temporary
    file and move it into place on success.
    """
    check_header(header, UsageError)
    if not is_timestamp(unload_date):
        raise UsageError(
            f"unload_date {shorten(unload_date)} is not an RFC 3339 UTC time like "
            "2026-11-27T19:45:00Z"
        )
    if signature is not None:
        check_signature(signature, UsageError)
    out.write(_DECLARATION)
    with (
        etree.xmlfile(out, encoding="UTF-8") as xf,
        xf.element("unload", {"format": FORMAT, "unload_date": unload_date}),
    ):
        _write_record(
            xf,
            "sys_remote_update_set",
            (
                ("sys_id", header.sys_id),
                ("name", header.name),
                ("description", header.description),
                ("origin_instance", header.origin_instance),
                ("parent", header.parent),
                ("created_on", header.created_on),
            ),
        )
        seen: set[str] = set()
        targets: dict[str, str] = {}
        for entry in entries:
            _check_unique(entry, header.sys_id, seen, targets)
            _write_record(
                xf,
                "sys_update_xml",
                (
                    ("sys_id", entry.sys_id),
                    ("update_set", entry.update_set),
                    ("table", entry.table),
                    ("target_sys_id", entry.target_sys_id),
                    ("action", entry.action),
                    ("payload", entry.payload),
                ),
            )
        if signature is not None:
            _write_record(
                xf,
                "update_set_signature",
                (
                    ("algorithm", signature.algorithm),
                    ("certificate", signature.certificate),
                    ("signed_at", signature.signed_at),
                    ("expires_at", signature.expires_at),
                    ("signature", signature.signature),
                ),
            )
        xf.write("\n")
    out.write(b"\n")


def _check_unique(
    entry: UpdateEntry, update_set: str, seen: set[str], targets: dict[str, str]
) -> None:
    if not isinstance(entry, UpdateEntry):
        raise UsageError(f"update set entries must be UpdateEntry, not {type(entry).__name__}")
    check_entry(entry, update_set, UsageError)
    if entry.sys_id in seen:
        raise UsageError(f"two entries have sys_id {entry.sys_id}: give each its own")
    other = targets.get(entry.target_sys_id)
    if other is not None:
        raise UsageError(
            f"entries {other} and {entry.sys_id} both target record "
            f"{entry.target_sys_id}: an update set changes a record once"
        )
    seen.add(entry.sys_id)
    targets[entry.target_sys_id] = entry.sys_id


def _write_record(
    xf: etree._IncrementalFileWriter, tag: str, fields: tuple[tuple[str, str], ...]
) -> None:
    xf.write("\n  ")
    with xf.element(tag):
        for name, value in fields:
            if not isinstance(value, str):
                raise UsageError(f"<{tag}> field {name} is a {type(value).__name__}, not text")
            bad = first_bad_xml_char(value)
            if bad >= 0:
                raise UsageError(
                    f"<{tag}> field {name} holds character U+{ord(value[bad]):04X} at offset "
                    f"{bad}, which XML 1.0 cannot carry: remove it"
                )
            xf.write("\n    ")
            with xf.element(name):
                xf.write(value)
        xf.write("\n  ")
