"""Property tests: any change to what a signature covers breaks it; nothing else does."""

from __future__ import annotations

import dataclasses
import datetime as dt
from concurrent.futures import ThreadPoolExecutor

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from trustcircle._time import format_ts, parse_ts
from trustcircle._types import SysId, Timestamp
from trustcircle.crypto.algorithms import Algorithm
from trustcircle.signing import (
    BUILTIN_CONFIGS,
    RecordVerifier,
    SignatureConfig,
    SignatureRecord,
    Verdict,
)
from trustcircle.signing.verify import _algorithm

from .conftest import DOC, JOB_FIELDS, NOW, Signer, verifier

_SETTINGS = settings(max_examples=40, deadline=None)
_TABLES = sorted(BUILTIN_CONFIGS)
_VALUE = st.none() | st.text(
    st.characters(codec="utf-8") | st.sampled_from(['"', "\\", "\n", "\x00", "\U0001f600"]),
    max_size=30,
)


@st.composite
def _record(draw: st.DrawFn) -> tuple[str, dict[str, str | None]]:
    table = draw(st.sampled_from(_TABLES))
    fields = {name: draw(_VALUE) for name in BUILTIN_CONFIGS[table].fields}
    fields.update(draw(st.dictionaries(st.sampled_from(["description", "sys_mod_count"]), _VALUE)))
    return table, fields


def _purpose(table: str) -> str:
    return BUILTIN_CONFIGS[table].purposes[-1]


@_SETTINGS
@given(record=_record(), data=st.data())
def test_changing_any_signed_field_value_breaks_the_signature(
    signer: Signer, record: tuple[str, dict[str, str | None]], data: st.DataObject
) -> None:
    table, fields = record
    signature = signer.sign(fields, table=table, purpose=_purpose(table))
    name = data.draw(st.sampled_from(BUILTIN_CONFIGS[table].fields))
    new_value = data.draw(_VALUE.filter(lambda v: v != fields[name]))
    tampered = {**fields, name: new_value}
    result = verifier((signer, signer.trust())).verify(table, DOC, tampered, [signature])
    assert result.verdict is Verdict.INVALID
    assert result.reasons == ("signature_mismatch",)


@_SETTINGS
@given(record=_record(), extra=st.dictionaries(st.sampled_from(["description", "x"]), _VALUE))
def test_changing_fields_outside_the_configuration_keeps_it_valid(
    signer: Signer, record: tuple[str, dict[str, str | None]], extra: dict[str, str | None]
) -> None:
    table, fields = record
    signature = signer.sign(fields, table=table, purpose=_purpose(table))
    edited = {**fields, **extra}
    result = verifier((signer, signer.trust())).verify(table, DOC, edited, [signature])
    assert result.verdict is Verdict.VALID


_ATTRIBUTES = ["purpose", "table_name", "document_id", "certificate", "signed_at", "expires_at"]


def _tamper(
    data: st.DataObject, signature: SignatureRecord, attribute: str, other: Signer
) -> SignatureRecord:
    seconds = data.draw(st.integers(min_value=-3000, max_value=3000).filter(bool))
    value: object
    if attribute == "purpose":
        value = data.draw(st.sampled_from(["Code Signing", "*", "ECC Notarization"]) | st.text())
    elif attribute == "table_name":
        value = data.draw(st.sampled_from([t for t in _TABLES if t != "sysauto_script"]))
    elif attribute == "document_id":
        value = SysId(data.draw(st.text("0123456789abcdef", min_size=32, max_size=32)))
    elif attribute == "certificate":
        value = other.fingerprint
    elif attribute == "signed_at":
        value = format_ts(parse_ts(signature.signed_at) + dt.timedelta(seconds=seconds))
    else:
        assert signature.expires_at is not None
        shifted = format_ts(parse_ts(signature.expires_at) + dt.timedelta(seconds=seconds))
        value = data.draw(st.sampled_from([None, Timestamp(shifted)]))
    assume(value != getattr(signature, attribute))
    return dataclasses.replace(signature, **{attribute: value})  # type: ignore[arg-type]


@_SETTINGS
@given(attribute=st.sampled_from(_ATTRIBUTES), data=st.data())
def test_changing_any_attribute_of_the_signature_breaks_it(
    signer: Signer, other_signer: Signer, attribute: str, data: st.DataObject
) -> None:
    fields = {"name": "Job", "script": "run()", "run_as": None, "run_type": "daily"}
    signature = signer.sign(fields, purpose="Circle of Trust")
    tampered = _tamper(data, signature, attribute, other_signer)
    # The record as the tampered signature claims it: same fields, its table and id.
    check = verifier((signer, signer.trust()), (other_signer, other_signer.trust()))
    result = check.verify(tampered.table_name, tampered.document_id, fields, [tampered])
    assert result.verdict is not Verdict.VALID
    assert result.valid_signature is None
    assert check.verify("sysauto_script", DOC, fields, [signature]).verdict is Verdict.VALID


# -- the per-record shortcuts of RecordVerifier change no verdict ------------------------------


def _enum_lookup(name: str) -> Algorithm | None:
    try:
        return Algorithm(name)
    except ValueError:
        return None


@settings(max_examples=300)
@given(
    st.sampled_from([a.value for a in Algorithm])
    | st.text(max_size=30)
    | st.sampled_from(list(Algorithm))
)
def test_algorithm_lookup_is_the_enum_lookup(name: str) -> None:
    assert _algorithm(name) is _enum_lookup(name)


class _Text(str):
    """A str subclass: the payload's fast path leaves it to the reference path."""


def test_values_outside_the_fast_path_verify_alike(ed_signer: Signer) -> None:
    fields = {"name": "Job", "script": "run()", "run_as": None, "run_type": "daily"}
    signature = ed_signer.sign(fields)
    check = verifier((ed_signer, ed_signer.trust()))
    subclassed = {name: None if v is None else _Text(v) for name, v in fields.items()}
    as_list = dataclasses.replace(signature, signed_fields=list(signature.signed_fields))  # type: ignore[arg-type]
    for record, values in ((signature, subclassed), (as_list, fields)):
        assert check.verify("sysauto_script", DOC, values, [record]).verdict is Verdict.VALID
    edited = {**subclassed, "script": _Text("run(); evil()")}
    result = check.verify("sysauto_script", DOC, edited, [signature])
    assert result.reasons == ("signature_mismatch",)


def test_configuration_fields_as_a_list_still_count(ed_signer: Signer) -> None:
    config = BUILTIN_CONFIGS["sysauto_script"]
    listed = SignatureConfig(config.table, list(config.fields), config.purposes)  # type: ignore[arg-type]
    signature = ed_signer.sign(JOB_FIELDS)
    check = RecordVerifier(
        {ed_signer.fingerprint: ed_signer.trust()}, {"sysauto_script": listed}, NOW
    )
    assert check.verify("sysauto_script", DOC, JOB_FIELDS, [signature]).verdict is Verdict.VALID
    fewer = dataclasses.replace(signature, signed_fields=("name", "script"))
    assert check.verify("sysauto_script", DOC, JOB_FIELDS, [fewer]).reasons == (
        "fields_not_covered",
        "signature_mismatch",
    )


def test_verdicts_are_the_same_on_two_threads(ed_signer: Signer, rsa_signer: Signer) -> None:
    check = verifier((ed_signer, ed_signer.trust()), (rsa_signer, rsa_signer.trust(False)))
    cases = []
    for n in range(60):
        fields = {**JOB_FIELDS, "script": f"run({n});\n" * (n % 7)}
        signer = rsa_signer if n % 5 == 0 else ed_signer
        at = NOW - dt.timedelta(minutes=n)
        signature = signer.sign(
            fields, signed_at=at, expires_at=at + dt.timedelta(minutes=1 + 20 * (n % 3))
        )
        cases.append((fields if n % 4 else {**fields, "name": "edited"}, signature))

    def judge(case: tuple[dict[str, str | None], SignatureRecord]) -> object:
        return check.verify("sysauto_script", DOC, case[0], [case[1]]).to_dict()

    serial = [judge(case) for case in cases]
    assert {r["verdict"] for r in serial} == {"valid", "invalid", "untrusted"}  # type: ignore[index]
    with ThreadPoolExecutor(max_workers=2) as pool:
        for _ in range(3):
            assert list(pool.map(judge, cases)) == serial
