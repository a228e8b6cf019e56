"""Build keys, CA and leaf certificates and PKCS#12 files: for the demo PKI and for tests.

Certificates follow the profile :mod:`trustcircle.crypto.chain` accepts: CAs with
critical basicConstraints cA and keyUsage keyCertSign/cRLSign; leaves with
critical keyUsage digitalSignature and (by default) extendedKeyUsage codeSigning;
all with subject/authority key identifiers. Times are always passed in.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs12 as _pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from trustcircle.crypto.algorithms import CREATED_RSA_BITS, PrivateKey, PublicKey
from trustcircle.errors import UsageError

CODE_SIGNING = ExtendedKeyUsageOID.CODE_SIGNING
"""The extendedKeyUsage OID every trustcircle signing certificate carries."""

P12_KDF_ROUNDS = 20_000
"""PBKDF2 rounds for exported PKCS#12 files (OpenSSL 3's default is 2048)."""

_ORGANIZATION = "trustcircle"


def new_rsa_key(bits: int = CREATED_RSA_BITS) -> rsa.RSAPrivateKey:
    """A new RSA key (4096 bits unless told otherwise), public exponent 65537."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def new_ec_key() -> ec.EllipticCurvePrivateKey:
    """A new EC P-384 key."""
    return ec.generate_private_key(ec.SECP384R1())


def new_ed25519_key() -> ed25519.Ed25519PrivateKey:
    """A new Ed25519 key."""
    return ed25519.Ed25519PrivateKey.generate()


def issue_ca(
    subject_cn: str,
    key: PrivateKey,
    issuer_cert: x509.Certificate | None = None,
    issuer_key: PrivateKey | None = None,
    *,
    not_before: _dt.datetime,
    not_after: _dt.datetime,
    path_length: int | None = None,
) -> x509.Certificate:
    """A CA certificate for *key*: self-signed root without an issuer, else issued by it."""
    if (issuer_cert is None) != (issuer_key is None):
        raise UsageError("issue_ca needs both issuer_cert and issuer_key, or neither (a root)")
    subject = _name(subject_cn)
    signer = key if issuer_key is None else issuer_key
    builder = _base(
        subject,
        issuer_cert.subject if issuer_cert is not None else subject,
        key.public_key(),
        signer,
        not_before,
        not_after,
    )
    builder = builder.add_extension(
        x509.BasicConstraints(ca=True, path_length=path_length), critical=True
    ).add_extension(_key_usage(key_cert_sign=True), critical=True)
    return builder.sign(signer, _hash_for(signer))


def issue_leaf(
    subject_cn: str,
    key_public: PublicKey,
    issuer_cert: x509.Certificate,
    issuer_key: PrivateKey,
    not_before: _dt.datetime,
    not_after: _dt.datetime,
    *,
    eku: Sequence[x509.ObjectIdentifier] | None = (CODE_SIGNING,),
    digital_signature: bool = True,
) -> x509.Certificate:
    """A signing (end-entity) certificate for *key_public*, issued by *issuer_cert*.

    *eku* ``None`` leaves extendedKeyUsage out; *digital_signature* False gives a
    keyUsage of nonRepudiation only (a certificate trustcircle refuses to sign with).
    """
    builder = _base(
        _name(subject_cn), issuer_cert.subject, key_public, issuer_key, not_before, not_after
    )
    return _leaf_extensions(builder, eku, digital_signature).sign(issuer_key, _hash_for(issuer_key))


def self_signed_leaf(
    subject_cn: str,
    key: PrivateKey,
    not_before: _dt.datetime,
    not_after: _dt.datetime,
    *,
    eku: Sequence[x509.ObjectIdentifier] | None = (CODE_SIGNING,),
    digital_signature: bool = True,
) -> x509.Certificate:
    """A self-signed end-entity certificate (what trustcircle refuses to sign with)."""
    subject = _name(subject_cn)
    builder = _base(subject, subject, key.public_key(), key, not_before, not_after)
    return _leaf_extensions(builder, eku, digital_signature).sign(key, _hash_for(key))


def export_pkcs12(
    key: PrivateKey,
    cert: x509.Certificate,
    chain: Sequence[x509.Certificate],
    password: bytes,
    name: str,
) -> bytes:
    """A PKCS#12 file of *key*, *cert* and *chain*: AES-256-CBC, PBKDF2-SHA256, HMAC-SHA256.

    The format OpenSSL 3 writes by default, readable by ``openssl pkcs12``.
    """
    if not password:
        raise UsageError("a PKCS#12 export needs a non-empty password")
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(P12_KDF_ROUNDS)
        .key_cert_algorithm(_pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(password)
    )
    return _pkcs12.serialize_key_and_certificates(
        name.encode("utf-8"), key, cert, list(chain), encryption
    )


def _name(common_name: str) -> x509.Name:
    if not common_name or len(common_name) > 64:
        raise UsageError("a certificate common name must be 1 to 64 characters")
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _base(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: PublicKey,
    signer: PrivateKey,
    not_before: _dt.datetime,
    not_after: _dt.datetime,
) -> x509.CertificateBuilder:
    if not_after <= not_before:
        raise UsageError("a certificate's not_after must be later than its not_before")
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()),
            critical=False,
        )
    )


def _leaf_extensions(
    builder: x509.CertificateBuilder,
    eku: Sequence[x509.ObjectIdentifier] | None,
    digital_signature: bool,
) -> x509.CertificateBuilder:
    builder = builder.add_extension(
        x509.BasicConstraints(ca=False, path_length=None), critical=True
    ).add_extension(
        _key_usage(digital_signature=digital_signature, content_commitment=not digital_signature),
        critical=True,
    )
    if eku is not None:
        if not eku:
            raise UsageError("eku must list at least one usage, or be None to leave it out")
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    return builder


def _key_usage(
    *,
    digital_signature: bool = False,
    content_commitment: bool = False,
    key_cert_sign: bool = False,
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=content_commitment,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=key_cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _hash_for(signer: PrivateKey) -> hashes.SHA256 | hashes.SHA384 | hashes.SHA512 | None:
    """The digest that fits the signing key: none for Ed25519, the curve's for EC."""
    if isinstance(signer, ed25519.Ed25519PrivateKey):
        return None
    if isinstance(signer, ec.EllipticCurvePrivateKey):
        if signer.curve.key_size >= 521:
            return hashes.SHA512()
        return hashes.SHA384() if signer.curve.key_size >= 384 else hashes.SHA256()
    return hashes.SHA512() if signer.key_size >= 4096 else hashes.SHA256()
