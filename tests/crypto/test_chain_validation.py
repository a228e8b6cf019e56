"""Chain validation of signing certificates: each rule, and the attacks it stops."""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from trustcircle.crypto.certs import fingerprint_of
from trustcircle.crypto.chain import ChainValidator, ChainVerificationError, validate_anchor
from trustcircle.crypto.pki import issue_ca, issue_leaf, new_ed25519_key, new_rsa_key
from trustcircle.errors import LimitExceededError, PolicyError, VerificationError

if TYPE_CHECKING:
    from tests.conftest import SessionPki

DAY = _dt.timedelta(days=1)


@pytest.fixture(scope="module")
def validator(test_pki: SessionPki) -> ChainValidator:
    return ChainValidator([test_pki.root])


@pytest.mark.parametrize("name", ["code_signing", "code_attest", "runtime", "ec_p384", "ed25519"])
def test_good_leaf_returns_verified_chain_to_root(
    test_pki: SessionPki, validator: ChainValidator, name: str
) -> None:
    leaf = getattr(test_pki, name)
    chain = validator.validate_signing_certificate(leaf.cert, leaf.chain, test_pki.now)
    assert [fingerprint_of(c) for c in chain] == [
        fingerprint_of(leaf.cert),
        fingerprint_of(test_pki.intermediate),
        fingerprint_of(test_pki.root),
    ]


def test_self_signed_leaf_is_refused(test_pki: SessionPki, validator: ChainValidator) -> None:
    leaf = test_pki.self_signed
    with pytest.raises(
        ChainVerificationError, match="self-signed leaf certificates are refused"
    ) as info:
        validator.validate_signing_certificate(leaf.cert, [], test_pki.now)
    assert info.value.reason == "self_signed"


def test_self_signed_leaf_is_refused_even_when_added_as_anchor(test_pki: SessionPki) -> None:
    leaf = test_pki.self_signed.cert
    with pytest.raises(VerificationError, match="self-signed"):
        ChainValidator([test_pki.root, leaf]).validate_signing_certificate(leaf, [], test_pki.now)


def test_expired_leaf_is_refused_with_its_dates(
    test_pki: SessionPki, validator: ChainValidator
) -> None:
    leaf = test_pki.expired
    with pytest.raises(VerificationError, match="expired on") as info:
        validator.validate_signing_certificate(leaf.cert, leaf.chain, test_pki.now)
    assert leaf.cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ") in info.value.message
    assert isinstance(info.value, ChainVerificationError)
    assert info.value.reason == "certificate_expired"


def test_not_yet_valid_leaf_is_refused_with_its_dates(
    test_pki: SessionPki, validator: ChainValidator
) -> None:
    leaf = test_pki.not_yet_valid
    with pytest.raises(VerificationError, match="is not yet valid: it starts on") as info:
        validator.validate_signing_certificate(leaf.cert, leaf.chain, test_pki.now)
    assert leaf.cert.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ") in info.value.message
    assert isinstance(info.value, ChainVerificationError)
    assert info.value.reason == "certificate_not_yet_valid"


def test_certificate_from_unknown_ca_is_refused_naming_issuer_and_fix(
    test_pki: SessionPki, validator: ChainValidator
) -> None:
    leaf = test_pki.unknown_ca
    with pytest.raises(VerificationError) as info:
        validator.validate_signing_certificate(leaf.cert, leaf.chain, test_pki.now)
    assert "Unknown Root CA" in info.value.message
    assert "trustcircle trust-anchor add CA.pem" in info.value.message
    assert isinstance(info.value, ChainVerificationError)
    assert info.value.reason == "chain_untrusted"


def test_missing_intermediate_names_the_intermediate(
    test_pki: SessionPki, validator: ChainValidator
) -> None:
    with pytest.raises(VerificationError, match="Test Intermediate CA"):
        validator.validate_signing_certificate(test_pki.code_signing.cert, [], test_pki.now)


def test_weak_rsa_key_is_refused(test_pki: SessionPki, validator: ChainValidator) -> None:
    leaf = test_pki.rsa2048
    with pytest.raises(PolicyError, match="2048 bits is too weak"):
        validator.validate_signing_certificate(leaf.cert, leaf.chain, test_pki.now)


def test_leaf_without_digital_signature_is_refused(
    test_pki: SessionPki, validator: ChainValidator
) -> None:
    leaf = test_pki.no_digital_signature
    with pytest.raises(ChainVerificationError, match="lacks digitalSignature") as info:
        validator.validate_signing_certificate(leaf.cert, leaf.chain, test_pki.now)
    assert info.value.reason == "key_usage"


def test_tls_certificate_is_refused_for_code_signing(
    test_pki: SessionPki, validator: ChainValidator
) -> None:
    leaf = test_pki.wrong_eku
    with pytest.raises(VerificationError, match="without codeSigning") as info:
        validator.validate_signing_certificate(leaf.cert, leaf.chain, test_pki.now)
    assert "serverAuth" in info.value.message
    assert isinstance(info.value, ChainVerificationError)
    assert info.value.reason == "extended_key_usage"


def test_leaf_without_eku_is_accepted(test_pki: SessionPki, validator: ChainValidator) -> None:
    cert = _leaf(test_pki, eku=None)
    chain = validator.validate_signing_certificate(cert, [test_pki.intermediate], test_pki.now)
    assert chain[0] == cert


def test_leaf_with_code_signing_among_other_ekus_is_accepted(
    test_pki: SessionPki, validator: ChainValidator
) -> None:
    cert = _leaf(test_pki, eku=(ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.CODE_SIGNING))
    assert validator.validate_signing_certificate(cert, [test_pki.intermediate], test_pki.now)


def test_any_extended_key_usage_leaf_is_refused(
    test_pki: SessionPki, validator: ChainValidator
) -> None:
    cert = _leaf(test_pki, eku=(ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,))
    with pytest.raises(VerificationError, match="without codeSigning"):
        validator.validate_signing_certificate(cert, [test_pki.intermediate], test_pki.now)


def test_ca_certificate_used_as_signing_certificate_is_refused(
    test_pki: SessionPki, validator: ChainValidator
) -> None:
    with pytest.raises(VerificationError, match="is a CA certificate"):
        validator.validate_signing_certificate(test_pki.intermediate, [], test_pki.now)


def test_forged_intermediate_with_trusted_name_is_refused(test_pki: SessionPki) -> None:
    """An attacker's CA copying the real intermediate's name cannot issue trusted leaves."""
    forged_ca = issue_ca(
        "Test Intermediate CA",
        test_pki.unknown_ca.key,
        test_pki.other_root,
        test_pki.code_attest.key,  # not the other root's key either: any key the attacker holds
        not_before=test_pki.now - DAY,
        not_after=test_pki.now + 100 * DAY,
    )
    leaf = issue_leaf(
        "Test Intermediate CA-signed",
        test_pki.code_signing.key.public_key(),
        forged_ca,
        test_pki.unknown_ca.key,
        test_pki.now - DAY,
        test_pki.now + 10 * DAY,
    )
    assert forged_ca.subject == test_pki.intermediate.subject
    with pytest.raises(VerificationError):
        ChainValidator([test_pki.root]).validate_signing_certificate(
            leaf, [forged_ca, test_pki.intermediate], test_pki.now
        )


def test_expired_intermediate_is_refused_naming_it(test_pki: SessionPki) -> None:
    old_intermediate = issue_ca(
        "Test Intermediate CA",
        test_pki.intermediate_key,
        test_pki.root,
        test_pki.root_key,
        not_before=test_pki.now - 400 * DAY,
        not_after=test_pki.now - DAY,
    )
    with pytest.raises(ChainVerificationError, match=r"intermediate CA .* expired on") as info:
        ChainValidator([test_pki.root]).validate_signing_certificate(
            test_pki.code_signing.cert, [old_intermediate], test_pki.now
        )
    assert info.value.reason == "intermediate_invalid"


def test_expired_anchor_is_refused_naming_it(test_pki: SessionPki) -> None:
    old_root = issue_ca(
        "Test Root CA",
        test_pki.root_key,
        not_before=test_pki.now - 400 * DAY,
        not_after=test_pki.now - DAY,
    )
    with pytest.raises(
        ChainVerificationError, match=r"trust anchor .*Test Root CA.* expired on"
    ) as info:
        ChainValidator([old_root]).validate_signing_certificate(
            test_pki.code_signing.cert, [test_pki.intermediate], test_pki.now
        )
    assert info.value.reason == "anchor_invalid"


def test_intermediate_ca_restricted_to_tls_cannot_issue_signing_certificates(
    test_pki: SessionPki,
) -> None:
    tls_ca = _intermediate_with_eku(test_pki, (ExtendedKeyUsageOID.SERVER_AUTH,))
    leaf = _leaf(test_pki, issuer=tls_ca)
    with pytest.raises(ChainVerificationError, match="without codeSigning") as info:
        ChainValidator([test_pki.root]).validate_signing_certificate(leaf, [tls_ca], test_pki.now)
    assert info.value.reason == "intermediate_invalid"
    assert "Restricted CA" in info.value.message


def test_intermediate_ca_restricted_to_code_signing_is_accepted(test_pki: SessionPki) -> None:
    cs_ca = _intermediate_with_eku(test_pki, (ExtendedKeyUsageOID.CODE_SIGNING,))
    leaf = _leaf(test_pki, issuer=cs_ca)
    chain = ChainValidator([test_pki.root]).validate_signing_certificate(
        leaf, [cs_ca], test_pki.now
    )
    assert len(chain) == 3


def test_intermediate_can_be_the_trust_anchor(test_pki: SessionPki) -> None:
    leaf = test_pki.code_signing.cert
    chain = ChainValidator([test_pki.intermediate]).validate_signing_certificate(
        leaf, [], test_pki.now
    )
    assert chain == (leaf, test_pki.intermediate)


def test_validator_without_anchors_refuses_and_says_how_to_add_one(test_pki: SessionPki) -> None:
    leaf = test_pki.code_signing
    with pytest.raises(VerificationError, match=r"no trust anchors.*trust-anchor add"):
        ChainValidator([]).validate_signing_certificate(leaf.cert, leaf.chain, test_pki.now)


def test_validation_time_is_injected_and_one_validator_serves_many_times(
    test_pki: SessionPki, validator: ChainValidator
) -> None:
    leaf = test_pki.code_signing
    after_expiry = leaf.cert.not_valid_after_utc + DAY
    validator.validate_signing_certificate(leaf.cert, leaf.chain, test_pki.now)
    with pytest.raises(VerificationError, match="expired"):
        validator.validate_signing_certificate(leaf.cert, leaf.chain, after_expiry)
    assert validator.validate_signing_certificate(leaf.cert, leaf.chain, test_pki.now)


def test_naive_time_is_a_programming_error(test_pki: SessionPki, validator: ChainValidator) -> None:
    leaf = test_pki.code_signing
    with pytest.raises(ValueError, match="naive"):
        validator.validate_signing_certificate(
            leaf.cert, leaf.chain, test_pki.now.replace(tzinfo=None)
        )


def test_unrelated_intermediates_are_ignored(
    test_pki: SessionPki, validator: ChainValidator
) -> None:
    leaf = test_pki.code_signing
    noise = [test_pki.other_root, test_pki.self_signed.cert, test_pki.runtime.cert] * 40
    chain = validator.validate_signing_certificate(
        leaf.cert, [*noise, test_pki.intermediate], test_pki.now
    )
    assert chain == (leaf.cert, test_pki.intermediate, test_pki.root)


def test_too_many_intermediates_are_refused(
    test_pki: SessionPki, validator: ChainValidator
) -> None:
    leaf = test_pki.code_signing
    with pytest.raises(LimitExceededError):
        validator.validate_signing_certificate(
            leaf.cert, [test_pki.intermediate] * 257, test_pki.now
        )


# validate_anchor


@pytest.mark.parametrize("which", ["root", "intermediate", "other_root"])
def test_ca_certificates_are_valid_anchors(test_pki: SessionPki, which: str) -> None:
    validate_anchor(getattr(test_pki, which), test_pki.now)
    ChainValidator.validate_anchor(getattr(test_pki, which), test_pki.now)


def test_signing_certificate_is_not_an_anchor(test_pki: SessionPki) -> None:
    with pytest.raises(PolicyError, match="not a CA certificate"):
        validate_anchor(test_pki.code_signing.cert, test_pki.now)


def test_expired_ca_is_not_an_anchor(test_pki: SessionPki) -> None:
    with pytest.raises(VerificationError, match="expired on"):
        validate_anchor(test_pki.root, test_pki.root.not_valid_after_utc + DAY)


def test_ca_without_key_cert_sign_is_not_an_anchor(test_pki: SessionPki) -> None:
    builder = _ca_builder(test_pki, "No keyCertSign CA").add_extension(
        x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
    )
    cert = builder.sign(test_pki.unknown_ca.key, hashes.SHA256())
    with pytest.raises(PolicyError, match="keyCertSign"):
        validate_anchor(cert, test_pki.now)


def test_ca_with_non_critical_basic_constraints_is_not_an_anchor(test_pki: SessionPki) -> None:
    builder = _ca_builder(test_pki, "Sloppy CA", critical_constraints=False)
    cert = builder.sign(test_pki.unknown_ca.key, hashes.SHA256())
    with pytest.raises(PolicyError, match="not marked critical"):
        validate_anchor(cert, test_pki.now)


def test_anchor_without_key_usage_is_accepted_and_chains(test_pki: SessionPki) -> None:
    """RFC 5280 allows a CA without keyUsage (``openssl req -x509`` makes them)."""
    key = test_pki.unknown_ca.key
    root = _ca_builder(test_pki, "Plain OpenSSL-style Root").sign(key, hashes.SHA256())
    validate_anchor(root, test_pki.now)
    leaf = issue_leaf(
        "leaf of plain root",
        test_pki.code_signing.key.public_key(),
        root,
        key,
        test_pki.now - DAY,
        test_pki.now + DAY,
    )
    assert ChainValidator([root]).validate_signing_certificate(leaf, [], test_pki.now)


def test_ed25519_ca_is_refused_as_anchor(test_pki: SessionPki) -> None:
    key = new_ed25519_key()
    cert = issue_ca("Ed CA", key, not_before=test_pki.now - DAY, not_after=test_pki.now + DAY)
    with pytest.raises(PolicyError, match="Ed25519"):
        validate_anchor(cert, test_pki.now)


def test_rsa_1024_ca_is_refused_as_anchor(test_pki: SessionPki) -> None:
    key = new_rsa_key(1024)
    cert = issue_ca("Weak CA", key, not_before=test_pki.now - DAY, not_after=test_pki.now + DAY)
    with pytest.raises(PolicyError, match="1024 bits"):
        validate_anchor(cert, test_pki.now)


# helpers


def _leaf(
    pki: SessionPki,
    *,
    eku: tuple[x509.ObjectIdentifier, ...] | None = (ExtendedKeyUsageOID.CODE_SIGNING,),
    issuer: x509.Certificate | None = None,
) -> x509.Certificate:
    return issue_leaf(
        "Test extra leaf",
        pki.code_signing.key.public_key(),
        issuer if issuer is not None else pki.intermediate,
        pki.unknown_ca.key if issuer is not None else pki.intermediate_key,
        pki.now - DAY,
        pki.now + 30 * DAY,
        eku=eku,
    )


def _intermediate_with_eku(
    pki: SessionPki, eku: tuple[x509.ObjectIdentifier, ...]
) -> x509.Certificate:
    """An intermediate (key: unknown_ca's spare key) under the root, restricted to *eku*."""
    builder = (
        _ca_builder(pki, "Restricted CA", issuer=pki.root)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    )
    return builder.sign(pki.root_key, hashes.SHA256())


def _ca_builder(
    pki: SessionPki,
    cn: str,
    issuer: x509.Certificate | None = None,
    *,
    critical_constraints: bool = True,
) -> x509.CertificateBuilder:
    key = pki.unknown_ca.key
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer is not None else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(pki.now - DAY)
        .not_valid_after(pki.now + 30 * DAY)
        .add_extension(
            x509.BasicConstraints(ca=True, path_length=None), critical=critical_constraints
        )
    )
