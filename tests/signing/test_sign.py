"""sign_record: what it signs and what it refuses to sign."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from trustcircle._types import Fingerprint, SysId
from trustcircle.crypto import algorithms
from trustcircle.crypto.algorithms import Algorithm
from trustcircle.errors import PolicyError, UsageError
from trustcircle.signing import (
    BUILTIN_CONFIGS,
    WILDCARD,
    Verdict,
    record_signature_payload,
    sign_record,
)

from .conftest import DOC, JOB_FIELDS, NOW, Signer, verifier

SCRIPT_INCLUDE = {"name": "Util", "api_name": "global.Util", "script": "x = 1", "active": "true"}


def test_signature_covers_the_configured_fields_sorted(signer: Signer) -> None:
    record = signer.sign()
    assert record.signed_fields == ("active", "name", "run_as", "run_type", "script")
    assert record.table_name == "sysauto_script"
    assert record.document_id == DOC
    assert record.algorithm == signer.algorithm.value
    assert record.certificate == signer.fingerprint
    assert record.signed_at == "2026-11-27T18:45:00Z"
    assert record.expires_at == "2026-11-27T20:45:00Z"
    assert len(record.sys_id) == 32


def test_signature_is_the_primitive_over_the_documented_payload(signer: Signer) -> None:
    record = signer.sign()
    payload = record_signature_payload(
        purpose="Circle of Trust",
        table="sysauto_script",
        document_id=DOC,
        fields=JOB_FIELDS,
        signed_fields=("name", "script", "run_as", "run_type", "active"),
        certificate=signer.fingerprint,
        signed_at=record.signed_at,
        expires_at=record.expires_at,
    )
    raw = base64.b64decode(record.signature)
    assert algorithms.verify(signer.algorithm, signer.key.public_key(), raw, payload)


def test_each_signature_gets_a_fresh_sys_id_unless_given(ed_signer: Signer) -> None:
    assert ed_signer.sign().sys_id != ed_signer.sign().sys_id
    chosen = SysId("c" * 32)
    assert ed_signer.sign(sys_id=chosen).sys_id == chosen


def test_wildcard_on_a_script_include_is_signed_and_valid(signer: Signer) -> None:
    record = signer.sign(SCRIPT_INCLUDE, table="sys_script_include", purpose=WILDCARD)
    result = verifier((signer, signer.trust())).verify(
        "sys_script_include", DOC, SCRIPT_INCLUDE, [record], purpose="Code Signing"
    )
    assert result.verdict is Verdict.VALID


def test_wildcard_on_a_scheduled_job_is_refused_at_sign_time(ed_signer: Signer) -> None:
    with pytest.raises(PolicyError, match="table sysauto_script cannot use it"):
        ed_signer.sign(purpose=WILDCARD)


def test_purpose_not_configured_for_the_table_is_refused(ed_signer: Signer) -> None:
    with pytest.raises(UsageError, match="'Code Signing'"):
        ed_signer.sign(
            {"name": "c", "module": "m", "pem": "p"},
            table="sys_certificate",
            purpose="Code Signing",
        )


def test_config_of_another_table_is_refused(ed_signer: Signer) -> None:
    with pytest.raises(UsageError, match="sys_script"):
        sign_record(
            table="sysauto_script",
            document_id=DOC,
            fields=JOB_FIELDS,
            config=BUILTIN_CONFIGS["sys_script"],
            purpose="Code Signing",
            key=ed_signer.key,
            algorithm=Algorithm.ED25519,
            certificate=ed_signer.fingerprint,
            signed_at=NOW,
            expires_at=None,
        )


def _sign_job(signer: Signer, **overrides: object) -> None:
    arguments: dict[str, object] = {
        "table": "sysauto_script",
        "document_id": DOC,
        "fields": JOB_FIELDS,
        "config": BUILTIN_CONFIGS["sysauto_script"],
        "purpose": "Circle of Trust",
        "key": signer.key,
        "algorithm": signer.algorithm,
        "certificate": signer.fingerprint,
        "signed_at": NOW,
        "expires_at": NOW + dt.timedelta(hours=1),
    }
    arguments.update(overrides)
    sign_record(**arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"signed_at": NOW.replace(tzinfo=None)}, "timezone-aware"),
        ({"expires_at": NOW}, "expire"),
        ({"expires_at": NOW - dt.timedelta(seconds=1)}, "expire"),
        ({"document_id": "not-a-sys-id"}, "sys_id"),
        ({"certificate": Fingerprint("AB" * 32)}, "fingerprint"),
        ({"sys_id": "short"}, "sys_id"),
        ({"algorithm": Algorithm.RSA_PKCS1_SHA512}, "does not fit"),
    ],
)
def test_bad_signing_arguments_are_refused(
    ed_signer: Signer, overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        _sign_job(ed_signer, **overrides)


def test_weak_rsa_key_is_refused_before_signing(ed_signer: Signer) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(PolicyError, match="2048"):
        _sign_job(ed_signer, key=weak, algorithm=Algorithm.RSA_PKCS1_SHA512)
