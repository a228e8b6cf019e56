"""The record-signature payload, pinned by a golden vector (DESIGN §4, format v1)."""

from __future__ import annotations

import pytest

from trustcircle._types import Fingerprint, Timestamp
from trustcircle.errors import UsageError
from trustcircle.signing import record_signature_payload

GOLDEN = (
    b'{"certificate":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",'
    b'"document_id":"0123456789abcdef0123456789abcdef",'
    b'"expires_at":"2026-11-27T20:45:00Z",'
    b'"fields":{"active":"true","name":"Turn on Code Signing Property","run_as":null,'
    b'"run_type":"","script":"gs.setProperty(\\"flag\\", \\"true\\");\\n// caf\xc3\xa9 \\\\o/"},'
    b'"format":"trustcircle.record-signature/v1",'
    b'"purpose":"Circle of Trust","signed_at":"2026-11-27T19:45:00Z","table":"sysauto_script"}'
)


def _payload(**overrides: object) -> bytes:
    arguments: dict[str, object] = {
        "purpose": "Circle of Trust",
        "table": "sysauto_script",
        "document_id": "0123456789abcdef0123456789abcdef",
        "fields": {
            "name": "Turn on Code Signing Property",
            "script": 'gs.setProperty("flag", "true");\n// café \\o/',
            "run_type": "",
            "active": "true",
            "description": "unsigned: must not appear",
        },
        "signed_fields": ("active", "name", "run_as", "run_type", "script"),
        "certificate": Fingerprint(
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        ),
        "signed_at": Timestamp("2026-11-27T19:45:00Z"),
        "expires_at": Timestamp("2026-11-27T20:45:00Z"),
    }
    arguments.update(overrides)
    return record_signature_payload(**arguments)  # type: ignore[arg-type]


def test_golden_vector_pins_the_payload_bytes() -> None:
    assert _payload() == GOLDEN


def test_absent_field_is_null_and_empty_field_is_empty_string() -> None:
    payload = _payload()
    assert b'"run_as":null' in payload
    assert b'"run_type":""' in payload


def test_no_expiry_is_null() -> None:
    assert b'"expires_at":null' in _payload(expires_at=None)


def test_signed_field_order_does_not_change_the_bytes() -> None:
    assert _payload(signed_fields=("script", "run_type", "run_as", "name", "active")) == GOLDEN


def test_non_text_field_value_is_refused() -> None:
    with pytest.raises(UsageError, match="'active'"):
        _payload(fields={"active": True})
