"""Certificate helpers: PEM loading and its bounds, fingerprints, status, description."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import re
from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives import serialization

from trustcircle.crypto.certs import (
    MAX_PEM_BYTES,
    CertificateInfo,
    CertStatus,
    cert_to_pem,
    certificate_status,
    describe_certificate,
    fingerprint_of,
    is_self_signed,
    load_pem_certificate,
    load_pem_certificates,
)
from trustcircle.errors import BadInputError, LimitExceededError

if TYPE_CHECKING:
    from tests.conftest import SessionPki

DAY = _dt.timedelta(days=1)


def test_fingerprint_is_lowercase_hex_sha256_of_der(test_pki: SessionPki) -> None:
    der = test_pki.root.public_bytes(serialization.Encoding.DER)
    assert fingerprint_of(test_pki.root) == hashlib.sha256(der).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", fingerprint_of(test_pki.root))


def test_pem_round_trip_keeps_the_fingerprint(test_pki: SessionPki) -> None:
    pem = cert_to_pem(test_pki.code_signing.cert)
    assert pem.startswith("-----BEGIN CERTIFICATE-----\n")
    assert pem.endswith("\n")
    loaded = load_pem_certificate(pem.encode(), "certificate")
    assert fingerprint_of(loaded) == fingerprint_of(test_pki.code_signing.cert)


def test_chain_file_loads_in_order(test_pki: SessionPki) -> None:
    certs = load_pem_certificates(test_pki.files.chain_pem.read_bytes(), "chain file")
    assert certs == [test_pki.intermediate, test_pki.root]


def test_pem_with_surrounding_text_loads(test_pki: SessionPki) -> None:
    data = b"Subject: whatever\n" + cert_to_pem(test_pki.root).encode() + b"\ntrailing notes\n"
    assert load_pem_certificates(data, "CA file") == [test_pki.root]


@pytest.mark.parametrize("data", [b"", b"   \n\t"])
def test_empty_input_is_refused_clearly(data: bytes) -> None:
    with pytest.raises(BadInputError, match="CA file is empty"):
        load_pem_certificates(data, "CA file")


def test_garbage_is_refused_clearly() -> None:
    with pytest.raises(BadInputError, match="CA file holds no PEM certificate"):
        load_pem_certificates(b"hello, I am not a certificate", "CA file")


def test_der_certificate_gets_a_conversion_hint(test_pki: SessionPki) -> None:
    der = test_pki.root.public_bytes(serialization.Encoding.DER)
    with pytest.raises(BadInputError, match="openssl x509 -inform der"):
        load_pem_certificates(der, "CA file")


def test_corrupted_pem_body_is_refused_clearly(test_pki: SessionPki) -> None:
    pem = cert_to_pem(test_pki.root)
    lines = pem.splitlines()
    lines[3] = "!!!!" + lines[3][4:]
    with pytest.raises(BadInputError, match="not valid PEM certificate data"):
        load_pem_certificates("\n".join(lines).encode(), "CA file")


def test_more_than_sixteen_certificates_are_refused(test_pki: SessionPki) -> None:
    data = cert_to_pem(test_pki.root).encode() * 17
    with pytest.raises(LimitExceededError, match="17 certificates"):
        load_pem_certificates(data, "CA file")


def test_oversized_input_is_refused_before_parsing() -> None:
    with pytest.raises(LimitExceededError, match="more than"):
        load_pem_certificates(b"A" * (MAX_PEM_BYTES + 1), "CA file")


def test_single_certificate_loader_refuses_a_bundle(test_pki: SessionPki) -> None:
    with pytest.raises(BadInputError, match="holds 2 certificates: expected exactly one"):
        load_pem_certificate(test_pki.files.chain_pem.read_bytes(), "certificate")


def test_status_through_the_validity_period(test_pki: SessionPki) -> None:
    cert = test_pki.code_signing.cert
    before, after = cert.not_valid_before_utc, cert.not_valid_after_utc
    assert certificate_status(cert, before - DAY, 30) is CertStatus.NOT_YET_VALID
    assert certificate_status(cert, before, 30) is CertStatus.VALID
    assert certificate_status(cert, after - 31 * DAY, 30) is CertStatus.VALID
    assert certificate_status(cert, after - 30 * DAY, 30) is CertStatus.EXPIRING_SOON
    assert certificate_status(cert, after, 30) is CertStatus.EXPIRING_SOON
    assert certificate_status(cert, after + _dt.timedelta(seconds=1), 30) is CertStatus.EXPIRED
    assert CertStatus.EXPIRING_SOON.value == "expiring soon"
    assert str(CertStatus.NOT_YET_VALID) == "not yet valid"


def test_description_has_exactly_the_sys_certificate_fields(test_pki: SessionPki) -> None:
    info = describe_certificate(test_pki.code_signing.cert)
    assert [f.name for f in dataclasses.fields(CertificateInfo)] == [
        "pem",
        "fingerprint",
        "subject",
        "issuer",
        "not_before",
        "not_after",
    ]
    assert info.fingerprint == fingerprint_of(test_pki.code_signing.cert)
    assert info.subject == "CN=Test code_signing,O=trustcircle"
    assert info.issuer == "CN=Test Intermediate CA,O=trustcircle"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", info.not_before)
    assert info.not_after == test_pki.code_signing.cert.not_valid_after_utc.strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    assert load_pem_certificate(info.pem.encode(), "pem") == test_pki.code_signing.cert


def test_self_signed_detection(test_pki: SessionPki) -> None:
    assert is_self_signed(test_pki.root)
    assert is_self_signed(test_pki.self_signed.cert)
    assert not is_self_signed(test_pki.intermediate)
    assert not is_self_signed(test_pki.code_signing.cert)
