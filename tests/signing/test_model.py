"""SignatureRecord.from_fields parses untrusted signature records strictly."""

from __future__ import annotations

import pytest

from trustcircle.errors import BadInputError, LimitExceededError
from trustcircle.signing import SIGNATURE_FIELDS, SignatureRecord

from .conftest import Signer

SYS_ID = "a" * 32
GOOD: dict[str, str | None] = {
    "table_name": "sysauto_script",
    "document_id": "0123456789abcdef0123456789abcdef",
    "purpose": "Circle of Trust",
    "algorithm": "ED25519",
    "signature": "q83vEjRWeJA=",
    "certificate": "f" * 64,
    "signed_fields": "active,name,run_as,run_type,script",
    "signed_at": "2026-11-27T19:45:00Z",
    "expires_at": "2026-11-27T20:45:00Z",
}


def _parse(**changes: str | None) -> SignatureRecord:
    return SignatureRecord.from_fields(SYS_ID, {**GOOD, **changes})


def test_signed_record_round_trips_through_its_fields(signer: Signer) -> None:
    record = signer.sign()
    fields = record.to_fields()
    assert tuple(fields) == SIGNATURE_FIELDS
    assert SignatureRecord.from_fields(record.sys_id, fields) == record


def test_fields_are_strings_with_empty_expiry_and_sorted_comma_list() -> None:
    record = _parse(expires_at="")
    assert record.expires_at is None
    assert record.signed_fields == ("active", "name", "run_as", "run_type", "script")
    fields = record.to_fields()
    assert fields["expires_at"] == ""
    assert fields["signed_fields"] == "active,name,run_as,run_type,script"
    assert all(isinstance(v, str) for v in fields.values())


def test_null_expiry_means_no_expiry() -> None:
    assert _parse(expires_at=None).expires_at is None


def test_unknown_columns_are_ignored() -> None:
    assert _parse(sys_created_on="2026-11-27 19:45:00", sys_mod_count="3") == _parse()


def test_unknown_algorithm_name_parses_so_verification_can_report_it() -> None:
    assert _parse(algorithm="RSASSA_PSS_SHA_256").algorithm == "RSASSA_PSS_SHA_256"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("table_name", "Sys Script"),
        ("table_name", ""),
        ("document_id", "0123456789ABCDEF0123456789ABCDEF"),
        ("document_id", "0123"),
        ("document_id", None),
        ("purpose", "Circle\nof Trust"),
        ("purpose", ""),
        ("purpose", "Circle \udc80 of Trust"),
        ("algorithm", "ED 25519"),
        ("signature", "not base64!"),
        ("signature", "q83vEjRWeJA"),
        ("signature", ""),
        ("certificate", "F" * 64),
        ("certificate", "f" * 63),
        ("signed_fields", "script,name"),
        ("signed_fields", "name,name"),
        ("signed_fields", "name,,script"),
        ("signed_fields", "name, script"),
        ("signed_fields", ""),
        ("signed_at", "2026-11-27 19:45:00"),
        ("signed_at", "2026-11-27T19:45:00+00:00"),
        ("signed_at", "2026-02-30T19:45:00Z"),
        ("signed_at", "2026-1-2T3:4:5Z"),
        ("signed_at", None),
        ("expires_at", "tomorrow"),
    ],
)
def test_malformed_field_is_bad_input_naming_the_field(field: str, value: str | None) -> None:
    with pytest.raises(BadInputError, match=f"'{field}'") as caught:
        _parse(**{field: value})
    assert "\n" not in caught.value.message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("purpose", "x" * 101),
        ("signature", "AAAA" * 1025),
        ("table_name", "t" * 81),
        ("signed_fields", ",".join(f"f{i:03d}" for i in range(65))),
    ],
)
def test_over_long_field_is_refused_naming_the_field(field: str, value: str) -> None:
    with pytest.raises(LimitExceededError, match=f"'{field}'"):
        _parse(**{field: value})


def test_malformed_sys_id_is_bad_input() -> None:
    with pytest.raises(BadInputError, match="'sys_id'"):
        SignatureRecord.from_fields("not-an-id", GOOD)


def test_sys_id_column_naming_another_record_is_refused() -> None:
    with pytest.raises(BadInputError, match="'sys_id'"):
        _parse(sys_id="b" * 32)


def test_non_text_value_is_refused() -> None:
    with pytest.raises(BadInputError, match="'purpose'"):
        SignatureRecord.from_fields(SYS_ID, {**GOOD, "purpose": 42})  # type: ignore[dict-item]
