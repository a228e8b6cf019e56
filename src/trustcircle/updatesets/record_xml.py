"""Record payloads: ``<record_update table="T"><T><sys_id>…</sys_id>…</T></record_update>``.

A payload is the text an update entry carries (DESIGN §5). An absent field element
means null, an empty one means "". :func:`record_to_payload` writes one
deterministically (sys_id first, then fields sorted by name); :func:`payload_to_record`
reads one back from untrusted input, refusing anything outside that shape.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping

from lxml import etree

from trustcircle.errors import BadInputError, TrustcircleError, UsageError
from trustcircle.store.models import fields_json

from .xmlformat import (
    HARDENED_PARSER,
    ImportLimits,
    UpdateEntry,
    first_bad_xml_char,
    has_dtd,
    is_name,
    is_sys_id,
    shorten,
)

_XML_SPACE = " \t\r\n"
_PARSERS = threading.local()


def record_to_payload(table: str, sys_id: str, fields: Mapping[str, str | None]) -> str:
    """The payload text of record *sys_id* of *table* with *fields* (None → element absent).

    A ``sys_id`` key in *fields* must equal *sys_id*. Raises :class:`UsageError` for a
    name that cannot be a table or field name, a malformed sys_id, or text XML 1.0
    cannot carry.
    """
    if not isinstance(table, str) or not is_name(table):
        raise UsageError(
            f"table name {shorten(table)} is not allowed: use lowercase letters, digits, "
            "'_' and '.', starting with a letter or '_'"
        )
    if not isinstance(sys_id, str) or not is_sys_id(sys_id):
        raise UsageError(f"record sys_id {shorten(sys_id)} is not 32 lowercase hex")
    parts = [f'<record_update table="{table}"><{table}><sys_id>{sys_id}</sys_id>']
    for name in sorted(fields):
        value = fields[name]
        if not isinstance(name, str) or not is_name(name):
            raise UsageError(
                f"field name {shorten(name)} of table {table} is not allowed: use lowercase "
                "letters, digits, '_' and '.', starting with a letter or '_'"
            )
        if name == "sys_id":
            if value is not None and value != sys_id:
                raise UsageError(
                    f"field sys_id {shorten(value)} differs from the record's sys_id {sys_id}"
                )
            continue
        if value is None:
            continue
        if not isinstance(value, str):
            raise UsageError(
                f"field {name} of table {table} is a {type(value).__name__}: "
                "pass text exactly as the record holds it, or None for null"
            )
        bad = first_bad_xml_char(value)
        if bad >= 0:
            raise UsageError(
                f"field {name} of {table} {sys_id} holds character U+{ord(value[bad]):04X} at "
                f"offset {bad}, which XML 1.0 cannot carry: remove it"
            )
        parts.append(f"<{name}>{_escape(value)}</{name}>")
    parts.append(f"</{table}></record_update>")
    return "".join(parts)


def payload_to_record(payload: str, limits: ImportLimits) -> tuple[str, str, dict[str, str | None]]:
    """Parse an untrusted payload into ``(table, sys_id, fields)``.

    ``fields`` holds every field but ``sys_id``; an absent element has no key (null),
    an empty one maps to "". Raises :class:`BadInputError` (or its
    :class:`LimitExceededError`) with one line saying what is wrong.
    """
    root = _parse(payload, limits)
    table = root.get("table")
    if root.tag != "record_update" or table is None or len(root.attrib) != 1:
        raise BadInputError(
            'payload is not <record_update table="…">: an entry payload must hold one record'
        )
    if not _known_name(table):
        raise BadInputError(f"payload names table {shorten(table)}, which is not a table name")
    record = _only_child(root, "<record_update>")
    if record.tag != table:
        raise BadInputError(
            f"payload element {shorten(record.tag)} does not match its table "
            f"attribute {table!r}: refusing a record that claims another table"
        )
    if record.attrib:
        raise BadInputError(f"payload element <{table}> has attributes: fields are elements")
    _no_text(record.text, f"<{table}>")
    fields: dict[str, str | None] = {}
    if limits.max_depth < 3 and len(record):  # record_update > table > field
        raise limits.refuse("max_depth", f"nesting of 3 levels in the {table} payload")
    for field in record:
        # The common case costs a few attribute reads; anything odd is judged in _field.
        name = field.tag
        tail = field.tail
        if (
            name.__class__ is not str
            or not _known_name(name)
            or len(field)
            or field.keys()
            or name in fields
            or (tail and tail.strip(_XML_SPACE))
        ):
            _refuse_field(field, table, limits, fields)
        fields[name] = field.text or ""
    sys_id = fields.pop("sys_id", None)
    if sys_id is None:
        raise BadInputError(f"the {table} payload has no sys_id field")
    if not is_sys_id(sys_id):
        raise BadInputError(
            f"the {table} payload has sys_id {shorten(sys_id)}, which is not 32 lowercase hex"
        )
    return table, sys_id, fields


def _refuse_field(
    field: etree._Element, table: str, limits: ImportLimits, seen: Mapping[str, object]
) -> None:
    """Raise the error for a field element that is not plain ``<name>text</name>``."""
    name = _field_name(field, table)
    depth = 4 if len(field) else 3  # record_update > table > field > nested
    if depth > limits.max_depth:
        raise limits.refuse("max_depth", f"nesting of {depth} levels in the {table} payload")
    if len(field):
        raise BadInputError(
            f"field {name} of the {table} payload holds nested elements or markup: "
            "a field is plain text"
        )
    if field.attrib:
        raise BadInputError(f"field {name} of the {table} payload has attributes")
    if name in seen:
        if name == "sys_id":
            raise BadInputError(f"the {table} payload has two sys_id fields")
        raise BadInputError(f"the {table} payload has two {name} fields: refusing it")
    _no_text(field.tail, f"<{table}>")
    raise AssertionError("unreachable: the field was judged malformed")  # pragma: no cover


@functools.lru_cache(maxsize=4096)
def _known_name(name: str) -> bool:
    """:func:`is_name`, remembered: 10,000 records repeat a handful of names."""
    return is_name(name)


def entry_to_record(entry: UpdateEntry, limits: ImportLimits) -> dict[str, str | None]:
    """The fields of *entry*'s payload, refusing a payload about another table or record."""
    table, sys_id, fields = payload_to_record(entry.payload, limits)
    if table != entry.table or sys_id != entry.target_sys_id:
        raise BadInputError(
            f"entry {entry.sys_id} says {entry.table} {entry.target_sys_id} but its "
            f"payload holds {table} {sys_id}: refusing it"
        )
    return fields


def parse_payload(entry: UpdateEntry, limits: ImportLimits) -> tuple[str | None, str | None]:
    """``(fields, None)``: the record's fields as JSON in ``sys_record.fields``'s form
    (sorted keys, text as is); or ``(None, reason)`` when the payload is refused."""
    try:
        fields = entry_to_record(entry, limits)
    except TrustcircleError as exc:
        return None, f"payload refused: {exc.message}"
    return fields_json(fields), None


def _escape(text: str) -> str:
    # "\r" as a character reference: a literal one would reach the reader as "\n".
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
    )


def _parse(payload: str, limits: ImportLimits) -> etree._Element:
    if not isinstance(payload, str):
        raise BadInputError(f"payload is a {type(payload).__name__}, not text")
    if len(payload) > limits.max_field_bytes // 4:
        try:
            size = len(payload.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise BadInputError("payload holds a lone surrogate: it is not valid text") from exc
        if size > limits.max_field_bytes:
            raise limits.refuse("max_field_bytes", f"payload of {size} bytes")
    if not payload.lstrip(_XML_SPACE).startswith("<record_update"):
        raise BadInputError(
            "payload must start with <record_update: no XML declaration, DTD, comment or "
            "text may precede the record"
        )
    try:
        root = etree.fromstring(payload.encode("utf-8"), _parser())
    except UnicodeEncodeError as exc:
        raise BadInputError("payload holds a lone surrogate: it is not valid text") from exc
    except etree.XMLSyntaxError as exc:
        raise BadInputError(
            f"payload is not well-formed XML ({_one_line(exc.msg)}, line {exc.lineno}): "
            "re-export the update set"
        ) from exc
    if has_dtd(root):
        raise BadInputError("payload must not contain a DTD or entity declarations: refusing it")
    return root


def _parser() -> etree.XMLParser:
    """This thread's hardened parser (an lxml parser must not be shared between threads)."""
    parser: etree.XMLParser | None = getattr(_PARSERS, "parser", None)
    if parser is None:
        parser = _PARSERS.parser = etree.XMLParser(**HARDENED_PARSER)
    return parser


def _only_child(parent: etree._Element, where: str) -> etree._Element:
    _no_text(parent.text, where)
    children = list(parent)
    if len(children) != 1 or not isinstance(children[0].tag, str):
        raise BadInputError(
            f"payload {where} must hold exactly one record element and nothing else"
        )
    _no_text(children[0].tail, where)
    return children[0]


def _field_name(field: etree._Element, table: str) -> str:
    if not isinstance(field.tag, str):
        raise BadInputError(
            f"the {table} payload holds a comment, processing instruction or entity: "
            "fields are plain elements"
        )
    if not is_name(field.tag):
        raise BadInputError(
            f"the {table} payload has field {shorten(field.tag)}, which is not a field name"
        )
    return field.tag


def _no_text(text: str | None, where: str) -> None:
    if text and text.strip(_XML_SPACE):
        raise BadInputError(f"payload {where} holds stray text {shorten(text.strip())}")


def _one_line(text: str) -> str:
    return " ".join(text.split())[:200]
