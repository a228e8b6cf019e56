"""PKCS#12 import: good bundles load; each kind of bad file gets its own clear line."""

from __future__ import annotations

import datetime as _dt
import os
from typing import TYPE_CHECKING

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed448
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    NoEncryption,
    pkcs12,
)
from cryptography.x509.oid import NameOID

from trustcircle.crypto.certs import fingerprint_of
from trustcircle.crypto.pkcs12 import MAX_PKCS12_BYTES, load_pkcs12
from trustcircle.errors import BadInputError, LimitExceededError, PolicyError

if TYPE_CHECKING:
    from tests.conftest import SessionPki

WRONG_PASSWORD = "wrong password for PKCS#12 file, or the file is corrupt: check the password file"


def _spki(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.mark.parametrize("name", ["code_signing", "code_attest", "runtime", "ec_p384", "ed25519"])
def test_good_bundle_loads_key_certificate_and_chain(test_pki: SessionPki, name: str) -> None:
    leaf = getattr(test_pki, name)
    bundle = load_pkcs12(leaf.p12, test_pki.password)
    assert fingerprint_of(bundle.certificate) == fingerprint_of(leaf.cert)
    assert bundle.chain == (test_pki.intermediate,)
    assert bundle.private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == _spki(leaf.cert)


def test_wrong_password_says_so(test_pki: SessionPki) -> None:
    with pytest.raises(BadInputError) as info:
        load_pkcs12(test_pki.code_signing.p12, b"not the password")
    assert info.value.message == WRONG_PASSWORD


def test_truncated_file_is_called_truncated_not_a_password_problem(test_pki: SessionPki) -> None:
    with pytest.raises(BadInputError, match="corrupt or truncated"):
        load_pkcs12(test_pki.truncated_p12, test_pki.password)


def test_random_bytes_are_refused_as_corrupt() -> None:
    with pytest.raises(BadInputError, match="corrupt or truncated"):
        load_pkcs12(os.urandom(3000), b"pw")


def test_certificate_der_given_as_p12_is_refused_as_corrupt(test_pki: SessionPki) -> None:
    der = test_pki.root.public_bytes(serialization.Encoding.DER)
    with pytest.raises(BadInputError, match="corrupt or truncated"):
        load_pkcs12(der, test_pki.password)


def test_pem_file_given_as_p12_gets_a_conversion_hint(test_pki: SessionPki) -> None:
    with pytest.raises(BadInputError, match="PEM file, not a PKCS#12"):
        load_pkcs12(test_pki.files.root_pem.read_bytes(), test_pki.password)


def test_empty_file_is_refused() -> None:
    with pytest.raises(BadInputError, match="empty"):
        load_pkcs12(b"", b"pw")


def test_oversized_file_is_refused_before_parsing() -> None:
    with pytest.raises(LimitExceededError):
        load_pkcs12(b"\x30" * (MAX_PKCS12_BYTES + 1), b"pw")


def test_file_without_private_key_is_refused(test_pki: SessionPki) -> None:
    data = pkcs12.serialize_key_and_certificates(
        b"certs only", None, None, [test_pki.code_signing.cert], _enc(test_pki)
    )
    with pytest.raises(BadInputError, match="holds no private key"):
        load_pkcs12(data, test_pki.password)


def test_file_without_certificate_is_refused(test_pki: SessionPki) -> None:
    data = pkcs12.serialize_key_and_certificates(
        b"key only", test_pki.code_signing.key, None, None, _enc(test_pki)
    )
    with pytest.raises(BadInputError, match="no certificate"):
        load_pkcs12(data, test_pki.password)


def test_key_packed_with_someone_elses_certificate_is_refused(test_pki: SessionPki) -> None:
    with pytest.raises(BadInputError, match="does not match its certificate"):
        load_pkcs12(test_pki.mismatched_p12, test_pki.password)


def test_weak_key_is_refused_by_policy(test_pki: SessionPki) -> None:
    with pytest.raises(PolicyError, match="2048 bits is too weak"):
        load_pkcs12(test_pki.rsa2048.p12, test_pki.password)


def test_unsupported_key_type_is_refused_by_policy(test_pki: SessionPki) -> None:
    key = ed448.Ed448PrivateKey.generate()
    now = test_pki.now
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ed448")]))
        .issuer_name(test_pki.intermediate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + _dt.timedelta(days=1))
        .sign(test_pki.intermediate_key, hashes.SHA256())
    )
    data = pkcs12.serialize_key_and_certificates(b"ed448", key, cert, None, _enc(test_pki))
    with pytest.raises(PolicyError, match="Ed448"):
        load_pkcs12(data, test_pki.password)


def test_certificate_found_among_the_others_when_not_linked_to_the_key(
    test_pki: SessionPki,
) -> None:
    """Some tools write no localKeyId: the key's certificate is found by its public key."""
    leaf = test_pki.code_attest
    data = pkcs12.serialize_key_and_certificates(
        b"unlinked", leaf.key, None, [test_pki.intermediate, leaf.cert], _enc(test_pki)
    )
    bundle = load_pkcs12(data, test_pki.password)
    assert bundle.certificate == leaf.cert
    assert bundle.chain == (test_pki.intermediate,)


def test_full_chain_is_kept_in_order(test_pki: SessionPki) -> None:
    leaf = test_pki.runtime
    data = pkcs12.serialize_key_and_certificates(
        b"full", leaf.key, leaf.cert, [test_pki.intermediate, test_pki.root], _enc(test_pki)
    )
    assert load_pkcs12(data, test_pki.password).chain == (test_pki.intermediate, test_pki.root)


def test_unencrypted_file_opens_with_empty_password(test_pki: SessionPki) -> None:
    leaf = test_pki.ec_p384
    data = pkcs12.serialize_key_and_certificates(
        b"plain", leaf.key, leaf.cert, None, NoEncryption()
    )
    assert load_pkcs12(data, b"").certificate == leaf.cert


def _enc(pki: SessionPki) -> BestAvailableEncryption:
    return BestAvailableEncryption(pki.password)
