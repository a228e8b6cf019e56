"""The bytes a record signature covers (DESIGN §4, format ``trustcircle.record-signature/v1``).

Verifying an update set builds one payload per record, so the common case takes a fast
path: exact ``str`` values and ASCII field names are written straight into the fixed
layout (keys in JCS order) with :func:`~.canonical._json_string`. Anything else (a
``str`` subclass, a non-ASCII or non-text field name, a value that is neither text nor
null, a lone surrogate) goes to the reference path, which builds the document and
hands it to :func:`~.canonical.canonical_json`. ``tests/signing/test_payload.py``
proves with hypothesis that both paths give identical bytes.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

from trustcircle._types import Fingerprint, Timestamp
from trustcircle.errors import UsageError

from .canonical import _json_string, canonical_json
from .model import MAX_SIGNED_FIELDS

RECORD_SIGNATURE_FORMAT = "trustcircle.record-signature/v1"

_FORMAT_JSON = _json_string(RECORD_SIGNATURE_FORMAT)
_CACHED_NAMES = MAX_SIGNED_FIELDS
"""Longest ``signed_fields`` tuple whose JSON keys are cached."""
_EXACT_STR = frozenset({str})


def record_signature_payload(
    *,
    purpose: str,
    table: str,
    document_id: str,
    fields: Mapping[str, str | None],
    signed_fields: Sequence[str],
    certificate: Fingerprint,
    signed_at: Timestamp,
    expires_at: Timestamp | None,
) -> bytes:
    """The canonical JSON of a record signature over the current *fields*.

    Every name in *signed_fields* appears in the payload's ``fields`` object with the
    record's value, or ``null`` when the record has no such value.
    """
    fast = _fast_payload(
        purpose, table, document_id, fields, signed_fields, certificate, signed_at, expires_at
    )
    if fast is not None:
        return fast
    return _reference_payload(
        purpose, table, document_id, fields, signed_fields, certificate, signed_at, expires_at
    )


def _reference_payload(
    purpose: str,
    table: str,
    document_id: str,
    fields: Mapping[str, str | None],
    signed_fields: Sequence[str],
    certificate: Fingerprint,
    signed_at: Timestamp,
    expires_at: Timestamp | None,
) -> bytes:
    """The payload as the definition reads: a document, canonicalised by ``canonical_json``."""
    values: dict[str, str | None] = {}
    for name in signed_fields:
        value = fields.get(name)
        if value is not None and not isinstance(value, str):
            raise UsageError(
                f"field {name!r} of {table} {document_id} holds {type(value).__name__}: "
                "signed field values must be text or null, as the update-set XML carries them"
            )
        values[name] = value
    return canonical_json(
        {
            "format": RECORD_SIGNATURE_FORMAT,
            "purpose": purpose,
            "table": table,
            "document_id": document_id,
            "fields": values,
            "certificate": certificate,
            "signed_at": signed_at,
            "expires_at": expires_at,
        }
    )


def _fast_payload(
    purpose: str,
    table: str,
    document_id: str,
    fields: Mapping[str, str | None],
    signed_fields: Sequence[str],
    certificate: str,
    signed_at: str,
    expires_at: str | None,
) -> bytes | None:
    """The payload bytes written directly, or None when the reference path must decide."""
    if not (
        type(purpose) is str
        and type(table) is str
        and type(document_id) is str
        and type(certificate) is str
        and type(signed_at) is str
        and (expires_at is None or type(expires_at) is str)
    ):
        return None
    if (
        type(signed_fields) is tuple
        and len(signed_fields) <= _CACHED_NAMES
        and set(map(type, signed_fields)) <= _EXACT_STR  # no str subclass posing as a key
    ):
        keys = _cached_keys(signed_fields)
    else:
        keys = _keys(signed_fields)
    if keys is None:
        return None
    parts: list[str] = []
    get = fields.get
    for name, key in keys:
        value = get(name)
        if value is None:
            parts.append(key + "null")
        elif type(value) is str:
            parts.append(key + _json_string(value))
        else:  # a str subclass, or not text: the reference path decides (and words the error)
            return None
    text = (
        f'{{"certificate":{_json_string(certificate)}'
        f',"document_id":{_json_string(document_id)}'
        f',"expires_at":{"null" if expires_at is None else _json_string(expires_at)}'
        f',"fields":{{{",".join(parts)}}}'
        f',"format":{_FORMAT_JSON}'
        f',"purpose":{_json_string(purpose)}'
        f',"signed_at":{_json_string(signed_at)}'
        f',"table":{_json_string(table)}}}'
    )
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: the reference path refuses it
        return None


def _keys(names: Sequence[str]) -> tuple[tuple[str, str], ...] | None:
    """Each distinct name with its JSON key text (``"name":``), in JCS order.

    None unless every name is an exact ASCII ``str``: on ASCII, code-point order (what
    ``sorted`` gives) is the UTF-16 order JCS asks for.
    """
    try:
        unique = dict.fromkeys(names)
    except TypeError:  # an unhashable name: the reference path raises
        return None
    if not all(type(name) is str and name.isascii() for name in unique):
        return None
    return tuple((name, _json_string(name) + ":") for name in sorted(unique))


@functools.lru_cache(maxsize=256)
def _cached_keys(names: tuple[str, ...]) -> tuple[tuple[str, str], ...] | None:
    """:func:`_keys`, cached: records of one table repeat one ``signed_fields`` tuple."""
    return _keys(names)
