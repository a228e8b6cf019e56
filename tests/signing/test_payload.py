"""The record-signature payload, pinned by a golden vector (DESIGN §4, format v1)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from trustcircle._types import Fingerprint, Timestamp
from trustcircle.errors import BadInputError, UsageError
from trustcircle.signing import record_signature_payload
from trustcircle.signing.payload import _fast_payload, _reference_payload

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


# -- the fast path is the reference, byte for byte ---------------------------------------------


class _Name(str):
    """A str subclass: outside the fast path's domain, so the reference path must answer."""


_TRICKY_TEXT = st.text(
    st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from(['"', "\\", "\n", "\x00", "\x1f", "\x7f", "\u2028", "\U0001f600"]),
    ),
    max_size=30,
)
_SURROGATE_TEXT = st.text(st.sampled_from(["a", "é", "\ud800", "\udc80"]), min_size=1, max_size=4)
_TEXT = _TRICKY_TEXT | _SURROGATE_TEXT
_FIELD_NAME = st.one_of(
    st.sampled_from(["active", "name", "run_as", "run_type", "script", "description"]),
    st.text(st.characters(codec="ascii"), max_size=6),
    st.text(max_size=4),  # non-ASCII names, sorted by UTF-16 in JCS
    st.sampled_from(["\ufb33", "\U0001f600", "é"]),  # code-point order is not UTF-16 order
    st.sampled_from(["name", "script"]).map(_Name),
)
_VALUE = st.one_of(
    st.none(), _TEXT, _TEXT.map(_Name), st.integers(), st.booleans(), st.just(["list"])
)
_SIGNED_FIELDS = st.one_of(
    st.lists(_FIELD_NAME, max_size=7).map(tuple),  # unsorted, repeated names
    st.lists(_FIELD_NAME, max_size=7),  # a list is a Sequence too
    st.lists(_FIELD_NAME, min_size=65, max_size=66).map(tuple),  # beyond the cached size
)
_STRING = st.one_of(_TEXT, _TEXT.map(_Name))


def _outcome(build: Callable[[], bytes]) -> bytes | tuple[type[BaseException], str]:
    try:
        return build()
    except Exception as exc:  # the reference's refusals must be the fast path's, word for word
        return type(exc), str(exc)


@settings(max_examples=600, deadline=None)
@given(
    purpose=_STRING,
    table=_STRING,
    document_id=_STRING,
    fields=st.dictionaries(_FIELD_NAME, _VALUE, max_size=8),
    signed_fields=_SIGNED_FIELDS,
    certificate=_STRING,
    signed_at=_STRING,
    expires_at=st.none() | _STRING,
)
def test_payload_is_the_reference_payload_byte_for_byte(
    purpose: str,
    table: str,
    document_id: str,
    fields: dict[str, str | None],
    signed_fields: Sequence[str],
    certificate: str,
    signed_at: str,
    expires_at: str | None,
) -> None:
    arguments = (purpose, table, document_id, fields, signed_fields)
    times = (Fingerprint(certificate), Timestamp(signed_at))
    expiry = None if expires_at is None else Timestamp(expires_at)
    expected = _outcome(lambda: _reference_payload(*arguments, *times, expiry))
    actual = _outcome(
        lambda: record_signature_payload(
            purpose=purpose,
            table=table,
            document_id=document_id,
            fields=fields,
            signed_fields=signed_fields,
            certificate=times[0],
            signed_at=times[1],
            expires_at=expiry,
        )
    )
    assert actual == expected
    fast = _fast_payload(*arguments, *times, expiry)
    if fast is not None:
        assert fast == expected


@settings(max_examples=300, deadline=None)
@given(
    values=st.dictionaries(
        st.sampled_from(["active", "name", "run_as", "run_type", "script"]),
        st.none() | _TRICKY_TEXT,
    ),
    purpose=_TRICKY_TEXT,
)
def test_ordinary_payloads_take_the_fast_path_and_are_rfc8785(
    values: dict[str, str | None], purpose: str
) -> None:
    names = ("active", "name", "run_as", "run_type", "script")
    arguments = (purpose, "sysauto_script", "0123456789abcdef0123456789abcdef", values, names)
    times = (Fingerprint("ab" * 32), Timestamp("2026-11-27T19:45:00Z"), None)
    fast = _fast_payload(*arguments, *times)
    assert fast is not None
    document = {
        "format": "trustcircle.record-signature/v1",
        "purpose": purpose,
        "table": "sysauto_script",
        "document_id": "0123456789abcdef0123456789abcdef",
        "fields": {name: values.get(name) for name in names},
        "certificate": "ab" * 32,
        "signed_at": "2026-11-27T19:45:00Z",
        "expires_at": None,
    }
    assert fast == rfc8785.dumps(document) == _reference_payload(*arguments, *times)


def test_golden_vector_comes_from_the_fast_path() -> None:
    fields = {
        "name": "Turn on Code Signing Property",
        "script": 'gs.setProperty("flag", "true");\n// café \\o/',
        "run_type": "",
        "active": "true",
    }
    fast = _fast_payload(
        "Circle of Trust",
        "sysauto_script",
        "0123456789abcdef0123456789abcdef",
        fields,
        ("active", "name", "run_as", "run_type", "script"),
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "2026-11-27T19:45:00Z",
        "2026-11-27T20:45:00Z",
    )
    assert fast == GOLDEN


def test_lone_surrogate_is_refused_as_before() -> None:
    with pytest.raises(BadInputError, match="canonical JSON"):
        _payload(fields={"name": "lone \ud800"})


def test_names_beyond_the_bmp_are_ordered_by_utf16_like_rfc8785() -> None:
    # RFC 8785 §3.2.3: U+1F600 (surrogates D83D DE00) sorts before U+FB33.
    names = ("\ufb33", "\U0001f600", "a")
    fields = {"\ufb33": "dalet", "\U0001f600": "grin", "a": None}
    payload = _payload(fields=fields, signed_fields=names)
    assert payload.index('"\U0001f600"'.encode()) < payload.index('"\ufb33"'.encode())
    assert payload == _reference_payload(
        "Circle of Trust",
        "sysauto_script",
        "0123456789abcdef0123456789abcdef",
        fields,
        names,
        Fingerprint("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"),
        Timestamp("2026-11-27T19:45:00Z"),
        Timestamp("2026-11-27T20:45:00Z"),
    )
