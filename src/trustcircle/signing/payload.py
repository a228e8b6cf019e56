"""The bytes a record signature covers (DESIGN §4, format ``trustcircle.record-signature/v1``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from trustcircle._types import Fingerprint, Timestamp
from trustcircle.errors import UsageError

from .canonical import canonical_json

RECORD_SIGNATURE_FORMAT = "trustcircle.record-signature/v1"


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
