"""SignatureRecord.from_fields parses untrusted signature records strictly."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import cast

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from trustcircle.errors import BadInputError, LimitExceededError
from trustcircle.signing import SIGNATURE_FIELDS, SignatureRecord
from trustcircle.signing.model import (
    _BASE64,
    _fast_record,
    _is_base64,
    _parse_timestamp,
    _strict_record,
    _timestamp,
)

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


# -- the fast path accepts exactly what the strict parser accepts ----------------------------


class _Text(str):
    """A str subclass: the fast path leaves it to the strict parser."""


def _misses(valid: st.SearchStrategy[str], *misses: str) -> st.SearchStrategy[object]:
    """Near misses of *valid* values: mutated, truncated, over-long, wrong types."""
    mutated = st.tuples(valid, st.integers(0, 200), st.sampled_from("A=Z_ \x00é\n,-.:9g")).map(
        lambda t: t[0][: t[1] % (len(t[0]) + 1)] + t[2] + t[0][t[1] % (len(t[0]) + 1) + 1 :]
    )
    return st.one_of(
        mutated,
        valid.map(lambda v: v[:-1]),
        valid.map(lambda v: v + v[-1:]),
        valid.map(_Text),  # still valid, for the strict parser
        st.sampled_from([None, "", 42, *misses]),
    )


_HEX32 = st.text("0123456789abcdef", min_size=32, max_size=32)
_NAMES = ["active", "name", "run_as", "run_type", "script", "sys_id", "a" * 80]
_TIME = st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31)).map(
    lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ").rjust(20, "0")
)
_B64 = st.binary(min_size=3, max_size=700).map(lambda raw: base64.b64encode(raw).decode())
_VALID: dict[str, st.SearchStrategy[str]] = {
    "table_name": st.sampled_from(["sysauto_script", "sys_script", "t" * 80]),
    "document_id": _HEX32,
    "purpose": st.sampled_from(["Circle of Trust", "*", "x" * 100])
    | st.text(st.characters(codec="utf-8", min_codepoint=0x20), min_size=1, max_size=100),
    "algorithm": st.sampled_from(["ED25519", "RSASSA_PKCS1_V1_5_SHA_512", "A" * 64]),
    "signature": _B64,
    "certificate": st.text("0123456789abcdef", min_size=64, max_size=64),
    "signed_fields": st.lists(st.sampled_from(_NAMES), min_size=1, max_size=7).map(
        lambda names: ",".join(sorted(set(names)))
    ),
    "signed_at": _TIME,
    "expires_at": _TIME | st.sampled_from(["", None]),
}
_MISSES = {
    "sys_id": _misses(_HEX32),
    "table_name": _misses(_VALID["table_name"], "Sys Script"),
    "document_id": _misses(_HEX32),
    "purpose": _misses(_VALID["purpose"], "a\x7fb", "\udc80"),
    "algorithm": _misses(_VALID["algorithm"]),
    "signature": _misses(_B64, "AA==", "AAA=", "AAAA" * 1025, "AAAA====", "=AAA", "AAAAAA=="),
    "certificate": _misses(_VALID["certificate"]),
    "signed_fields": _misses(
        _VALID["signed_fields"], ",".join(f"f{i:03d}" for i in range(65)), "b,a", "a,,b"
    ),
    "signed_at": _misses(_TIME, "2026-02-30T19:45:00Z", "٢٠٢٦-11-27T19:45:00Z"),
    "expires_at": _misses(_TIME, "2026-11-27T24:00:00Z"),
}


def _outcome(build: Callable[[], SignatureRecord]) -> object:
    try:
        return build()
    except Exception as exc:  # the refusals must be the strict parser's, word for word
        return type(exc), str(exc)


@settings(max_examples=1500, deadline=None)
@given(
    sys_id=_HEX32,
    own_id=st.sampled_from(["absent", "same", "other", "none"]),
    fields=st.fixed_dictionaries(_VALID),
    broken=st.sampled_from([0, 0, 1, 1, 2]).flatmap(
        lambda n: st.lists(st.sampled_from(sorted(_MISSES)), min_size=n, max_size=n, unique=True)
    ),
    data=st.data(),
)
def test_from_fields_is_the_strict_parser(
    sys_id: object,
    own_id: str,
    fields: dict[str, object],
    broken: list[str],
    data: st.DataObject,
) -> None:
    for name in broken:  # valid records, and records with one or two fields gone wrong
        value = data.draw(_MISSES[name], label=name)
        if name == "sys_id":
            sys_id = value
        else:
            fields[name] = value
    if own_id != "absent":
        fields["sys_id"] = {"same": sys_id, "other": "b" * 32, "none": None}[own_id]
    rid = cast(str, sys_id)
    row = cast(dict[str, str | None], fields)
    expected = _outcome(lambda: _strict_record(SignatureRecord, rid, row))
    assert _outcome(lambda: SignatureRecord.from_fields(rid, row)) == expected
    fast = _fast_record(SignatureRecord, rid, row)
    if fast is not None:
        assert fast == expected
    elif isinstance(expected, SignatureRecord):  # valid: the fast path must have taken it...
        values = [sys_id, *fields.values()]  # ...unless a value is not an exact str
        assert any(v is not None and type(v) is not str for v in values)


def test_valid_records_take_the_fast_path(signer: Signer) -> None:
    record = signer.sign()
    assert _fast_record(SignatureRecord, record.sys_id, record.to_fields()) == record
    assert _fast_record(SignatureRecord, SYS_ID, {**GOOD, "expires_at": ""}) == _parse(
        expires_at=""
    )


@settings(max_examples=1000)
@given(
    st.text(st.sampled_from("AZaz09+/=é-"), max_size=16)
    | st.binary(max_size=13).map(lambda raw: base64.b64encode(raw).decode())
    | _B64
    | _B64.map(lambda b: b.rstrip("="))
    | _B64.map(lambda b: b + "=")
)
@example("AA==")  # one padded quad: the regex wants a whole quad before it
@example("AAA=")
@example("AAAAAA==")
@example("AAAA=A==")
@example("++++")
def test_base64_check_is_the_regex(text: str) -> None:
    assert _is_base64(text) == (_BASE64.fullmatch(text) is not None)


@settings(max_examples=500)
@given(_TIME | st.text(st.sampled_from("0123456789-T:Z٢ "), min_size=18, max_size=22))
def test_cached_timestamps_are_the_parsed_ones(text: str) -> None:
    assert _parse_timestamp(text) == _timestamp(text)
    assert _parse_timestamp(text) == _parse_timestamp(text)  # from the cache, the second time


def _parsed_outcome(row: dict[str, str]) -> object:
    return _outcome(lambda: _parse(**row))


def test_records_parse_alike_on_several_threads(signer: Signer) -> None:
    rows = [
        {**GOOD, "document_id": f"{n:032x}", "signed_at": f"2026-11-27T19:{n % 60:02d}:00Z"}
        for n in range(400)
    ]
    rows += [{**row, "signature": "bad!"} for row in rows[:50]]
    serial = [_outcome(partial(_strict_record, SignatureRecord, SYS_ID, row)) for row in rows]
    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(3):
            assert list(pool.map(_parsed_outcome, rows)) == serial
