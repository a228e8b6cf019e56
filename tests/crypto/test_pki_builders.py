"""The certificate builders make the profile chain validation expects."""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID

from trustcircle.crypto.pki import (
    export_pkcs12,
    issue_ca,
    issue_leaf,
    new_ec_key,
    self_signed_leaf,
)
from trustcircle.errors import UsageError

if TYPE_CHECKING:
    from tests.conftest import SessionPki

DAY = _dt.timedelta(days=1)


def _ext(
    cert: x509.Certificate, kind: type[x509.ExtensionType]
) -> x509.Extension[x509.ExtensionType]:
    return cert.extensions.get_extension_for_class(kind)


def test_ca_profile(test_pki: SessionPki) -> None:
    ca = test_pki.intermediate
    constraints = _ext(ca, x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value == x509.BasicConstraints(ca=True, path_length=0)
    usage = _ext(ca, x509.KeyUsage)
    assert usage.critical
    assert isinstance(usage.value, x509.KeyUsage)
    assert usage.value.key_cert_sign
    assert usage.value.crl_sign
    assert _ext(ca, x509.AuthorityKeyIdentifier).value == (
        x509.AuthorityKeyIdentifier.from_issuer_public_key(test_pki.root_key.public_key())
    )


def test_leaf_profile(test_pki: SessionPki) -> None:
    leaf = test_pki.code_signing.cert
    assert _ext(leaf, x509.BasicConstraints).value == x509.BasicConstraints(
        ca=False, path_length=None
    )
    usage = _ext(leaf, x509.KeyUsage).value
    assert isinstance(usage, x509.KeyUsage)
    assert usage.digital_signature
    assert not usage.key_cert_sign
    assert _ext(leaf, x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.CODE_SIGNING]
    )
    assert leaf.issuer == test_pki.intermediate.subject


def test_rsa_4096_issuer_signs_with_sha512_and_p384_with_sha384(test_pki: SessionPki) -> None:
    assert isinstance(test_pki.code_signing.cert.signature_hash_algorithm, hashes.SHA512)
    ec_key = new_ec_key()
    ec_ca = issue_ca("EC CA", ec_key, not_before=test_pki.now, not_after=test_pki.now + DAY)
    assert isinstance(ec_ca.signature_hash_algorithm, hashes.SHA384)
    small = issue_leaf(
        "by 3072",
        ec_key.public_key(),
        test_pki.other_root,
        test_pki.unknown_ca.key,
        test_pki.now,
        test_pki.now + DAY,
    )
    assert isinstance(small.signature_hash_algorithm, hashes.SHA256)


def test_leaf_without_eku_and_without_digital_signature(test_pki: SessionPki) -> None:
    cert = self_signed_leaf(
        "x",
        test_pki.ec_p384.key,
        test_pki.now,
        test_pki.now + DAY,
        eku=None,
        digital_signature=False,
    )
    with pytest.raises(x509.ExtensionNotFound):
        _ext(cert, x509.ExtendedKeyUsage)
    usage = _ext(cert, x509.KeyUsage).value
    assert isinstance(usage, x509.KeyUsage)
    assert not usage.digital_signature
    assert usage.content_commitment


def test_builder_misuse_is_refused(test_pki: SessionPki) -> None:
    now = test_pki.now
    key = test_pki.ec_p384.key
    with pytest.raises(UsageError, match="both issuer_cert and issuer_key"):
        issue_ca("x", key, test_pki.root, None, not_before=now, not_after=now + DAY)
    with pytest.raises(UsageError, match="later than"):
        issue_ca("x", key, not_before=now, not_after=now)
    with pytest.raises(UsageError, match="at least one usage"):
        self_signed_leaf("x", key, now, now + DAY, eku=())
    with pytest.raises(UsageError, match="1 to 64"):
        self_signed_leaf("", key, now, now + DAY)
    with pytest.raises(UsageError, match="non-empty password"):
        export_pkcs12(key, test_pki.ec_p384.cert, (), b"", "x")
