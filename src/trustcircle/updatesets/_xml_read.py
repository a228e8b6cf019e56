"""Read update-set XML (DESIGN §5) from untrusted input, streaming, in flat memory.

The parser never loads a DTD, never resolves an entity and never touches the network;
a document that carries a DOCTYPE at all is refused as soon as its root element starts,
before anything is yielded. Elements are cleared once read, so memory does not grow
with the number of entries. Errors found late in the file (truncation, a duplicate)
surface after earlier entries were yielded: a caller must treat the whole import as
failed on any error.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from lxml import etree

from trustcircle.errors import BadInputError, UsageError

from .xmlformat import (
    FORMAT,
    HARDENED_PARSER,
    ImportLimits,
    ManifestSignature,
    UpdateEntry,
    UpdateSetHeader,
    check_entry,
    check_header,
    check_signature,
    has_dtd,
    is_timestamp,
    shorten,
)

Item = UpdateSetHeader | UpdateEntry | ManifestSignature

_XML_SPACE = " \t\r\n"
_HEADER = "sys_remote_update_set"
_ENTRY = "sys_update_xml"
_SIGNATURE = "update_set_signature"
_FIELDS = {
    _HEADER: frozenset(
        ("sys_id", "name", "description", "origin_instance", "parent", "created_on")
    ),
    _ENTRY: frozenset(("sys_id", "update_set", "table", "target_sys_id", "action", "payload")),
    _SIGNATURE: frozenset(("algorithm", "certificate", "signed_at", "expires_at", "signature")),
}
_DTD_REFUSED = "update set XML must not contain a DTD or entity declarations: refusing it"


def read_update_set(source: Path | BinaryIO, limits: ImportLimits) -> Iterator[Item]:
    """Yield the header, then each entry as it closes, then the signature if any.

    *source* is a path (its size is checked before parsing) or a binary file object
    (read through a counter that stops at ``limits.max_file_bytes``).
    """
    if isinstance(source, str | os.PathLike):
        yield from _read_path(Path(source), limits)
    else:
        yield from _Reader(limits).run(_LimitedReader(source, limits))


def _read_path(path: Path, limits: ImportLimits) -> Iterator[Item]:
    with open_file(path, limits) as handle:
        yield from _Reader(limits).run(_LimitedReader(handle, limits))


def open_file(path: Path, limits: ImportLimits) -> BinaryIO:
    """*path* opened for reading, after its size is checked against the limits; each way
    it cannot be read is one clear :class:`BadInputError`."""
    where = f"update set file {str(path)!r}"
    try:
        size = path.stat().st_size
        if size > limits.max_file_bytes:
            raise limits.refuse("max_file_bytes", f"{where} of {size} bytes")
        return path.open("rb")
    except FileNotFoundError as exc:
        raise BadInputError(f"{where} does not exist: check the path") from exc
    except IsADirectoryError as exc:
        raise BadInputError(f"{where} is a directory, not a file") from exc
    except PermissionError as exc:
        raise BadInputError(f"{where} cannot be read: permission denied") from exc
    except OSError as exc:
        raise BadInputError(f"{where} cannot be read: {exc.strerror or exc}") from exc


class _LimitedReader:
    """A file object for lxml that refuses to deliver more than ``max_file_bytes``."""

    def __init__(self, raw: BinaryIO, limits: ImportLimits) -> None:
        self._raw = raw
        self._limits = limits
        self._count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        if not isinstance(data, bytes):
            raise UsageError("update set source must be opened in binary mode ('rb')")
        self._count += len(data)
        if self._count > self._limits.max_file_bytes:
            raise self._limits.refuse("max_file_bytes", "update set XML")
        return data


class _Reader:
    """The state of one streaming parse."""

    def __init__(self, limits: ImportLimits) -> None:
        self.limits = limits
        self.header: UpdateSetHeader | None = None
        self.signed = False
        self.entries = 0
        self.seen: set[str] = set()
        self.targets: dict[str, str] = {}
        self.values: dict[str, str] = {}
        self.allowed: frozenset[str] = frozenset()

    def run(self, stream: _LimitedReader) -> Iterator[Item]:
        events = etree.iterparse(stream, events=("start", "end"), **HARDENED_PARSER)
        # The common events (a field of a record starts or ends) are handled inline;
        # everything else, refusals included, goes through the methods below.
        values = self.values
        quarter = self.limits.max_field_bytes // 4
        fields_allowed = self.limits.max_depth >= 3
        depth = 0
        try:
            for event, element in events:
                if event == "start":
                    depth += 1
                    if depth == 3 and fields_allowed:
                        tag = element.tag
                        if tag in self.allowed and tag not in values and not element.attrib:
                            continue
                    self._start(element, depth)
                    continue
                if depth == 3:
                    text = element.text or ""
                    if len(element) or len(text) > quarter:
                        self._check_field(element, text)
                    values[element.tag] = text
                elif depth == 2:
                    item = self._end_record(element)
                    element.clear(keep_tail=True)
                    yield item
                else:
                    self._end_root(element)
                depth -= 1
        except etree.XMLSyntaxError as exc:
            raise _syntax_error(exc, events.error_log.last_error) from exc

    def _start(self, element: etree._Element, depth: int) -> None:
        if depth > self.limits.max_depth:
            raise self.limits.refuse(
                "max_depth", f"nesting of {depth} levels at line {element.sourceline}"
            )
        if depth == 1:
            self._start_root(element)
        elif depth == 2:
            self._start_record(element)
        else:
            self._refuse_field(element, depth)

    def _start_root(self, root: etree._Element) -> None:
        if has_dtd(root):
            raise BadInputError(_DTD_REFUSED)
        if root.tag != "unload":
            raise _at(root, f"root element is {shorten(root.tag)}, not <unload>: not an update set")
        fmt = root.get("format")
        if fmt != FORMAT:
            raise _at(
                root,
                f'unknown update set format {shorten(fmt or "")}: expected format="{FORMAT}"',
            )
        date = root.get("unload_date")
        if date is None or not is_timestamp(date):
            raise _at(
                root,
                f"<unload> unload_date {shorten(date or '')} is not an RFC 3339 UTC time like "
                "2026-11-27T19:45:00Z",
            )
        extra = set(root.attrib) - {"format", "unload_date"}
        if extra:
            raise _at(root, f"<unload> has unexpected attribute {shorten(sorted(extra)[0])}")

    def _start_record(self, element: etree._Element) -> None:
        root = element.getparent()
        assert root is not None
        # Text and comments before this record are complete: check them, then drop them.
        if self.header is None:  # the first record (or a misplaced one, refused below)
            _no_text(root.text, root)
        while (previous := element.getprevious()) is not None:
            _no_text(previous.tail, root)
            del root[0]
        tag = element.tag
        if tag not in _FIELDS:
            raise _at(element, f"unexpected element {shorten(tag)} in <unload>")
        if element.attrib:
            raise _at(element, f"<{tag}> has unexpected attributes")
        if tag == _HEADER and self.header is not None:
            raise _at(element, "second <sys_remote_update_set>: one header per file")
        if tag != _HEADER and self.header is None:
            raise _at(element, f"<{tag}> before <sys_remote_update_set>: the header comes first")
        if self.signed:
            raise _at(element, f"<{tag}> after <update_set_signature>: the signature comes last")
        if tag == _ENTRY:
            if self.entries >= self.limits.max_entries:
                raise self.limits.refuse("max_entries", f"entry {self.entries + 1}")
            self.entries += 1
        self.values.clear()
        self.allowed = _FIELDS[tag]

    def _refuse_field(self, element: etree._Element, depth: int) -> None:
        parent = element.getparent()
        assert parent is not None
        where = str(parent.tag)
        tag = element.tag
        if depth > 3:
            raise _at(
                element,
                f"unexpected element {shorten(tag)} inside <{where}>: "
                "a field is text (a payload is escaped XML text)",
            )
        if tag not in _FIELDS[where]:
            raise _at(element, f"unexpected element {shorten(tag)} in <{where}>")
        if tag in self.values:
            raise _at(element, f"<{where}> has two <{tag}> elements")
        if element.attrib:
            raise _at(element, f"<{where}><{tag}> has unexpected attributes")

    def _check_field(self, element: etree._Element, text: str) -> None:
        tag = str(element.tag)
        if len(element):
            raise _at(
                element,
                f"<{tag}> holds a comment, processing instruction or entity: a field is plain text",
            )
        size = len(text.encode("utf-8"))
        if size > self.limits.max_field_bytes:
            raise self.limits.refuse(
                "max_field_bytes", f"<{tag}> of {size} bytes at line {element.sourceline}"
            )

    def _end_record(self, element: etree._Element) -> Item:
        tag = str(element.tag)
        _no_text(element.text, element)
        for child in element:
            _no_text(child.tail, element)
        missing = sorted(_FIELDS[tag] - self.values.keys())
        if missing:
            raise _at(element, f"<{tag}> lacks <{missing[0]}>: re-export the update set")
        v = self.values
        if tag == _HEADER:
            header = UpdateSetHeader(
                v["sys_id"], v["name"], v["description"], v["origin_instance"], v["parent"],
                v["created_on"],
            )  # fmt: skip
            check_header(header, BadInputError)
            self.header = header
            return header
        if tag == _SIGNATURE:
            signature = ManifestSignature(
                v["algorithm"], v["certificate"], v["signed_at"], v["expires_at"], v["signature"]
            )
            check_signature(signature, BadInputError)
            self.signed = True
            return signature
        assert self.header is not None
        entry = UpdateEntry(
            v["sys_id"], v["update_set"], v["table"], v["target_sys_id"], v["action"],
            v["payload"],
        )  # fmt: skip
        check_entry(entry, self.header.sys_id, BadInputError)
        if entry.sys_id in self.seen:
            raise _at(element, f"two entries have sys_id {entry.sys_id}: refusing the file")
        other = self.targets.get(entry.target_sys_id)
        if other is not None:
            raise _at(
                element,
                f"entries {other} and {entry.sys_id} both target record "
                f"{entry.target_sys_id}: an update set may change a record once",
            )
        self.seen.add(entry.sys_id)
        self.targets[entry.target_sys_id] = entry.sys_id
        return entry

    def _end_root(self, root: etree._Element) -> None:
        if len(root) == 0:
            _no_text(root.text, root)
        for child in root:
            _no_text(child.tail, root)
        if self.header is None:
            raise _at(root, "update set XML lacks <sys_remote_update_set>: not an update set")


def _no_text(text: str | None, where: etree._Element) -> None:
    if text and text.strip(_XML_SPACE):
        raise _at(where, f"stray text {shorten(text.strip())} in <{where.tag}>")


def _at(element: etree._Element, message: str) -> BadInputError:
    return BadInputError(f"update set XML line {element.sourceline}: {message}")


def _syntax_error(exc: etree.XMLSyntaxError, last: etree._LogEntry | None) -> BadInputError:
    line, msg = exc.lineno, exc.msg or str(exc)
    if not line and last is not None:  # iterparse reports some errors as "no element found"
        line, msg = last.line, last.message
    msg = " ".join(msg.split())[:200]
    if not line:
        return BadInputError(f"update set XML is empty or not XML ({msg}): check the file")
    return BadInputError(
        f"update set XML is not well-formed at line {line} ({msg}): the file is "
        "truncated or not an exported update set"
    )
