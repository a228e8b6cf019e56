"""PKCS#12 import: one private key, its certificate and the CA certificates around it.

Every way a .p12 file can be unusable gets its own line: wrong password, corrupt
or truncated file, no key, no certificate, a certificate that is not the key's,
a key too weak for trustcircle. Chain trust is not decided here.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs12 as _pkcs12

from trustcircle.crypto.algorithms import PrivateKey, PublicKey, check_key_policy
from trustcircle.errors import BadInputError, LimitExceededError, PolicyError

MAX_PKCS12_BYTES = 256 * 1024
"""Largest PKCS#12 file accepted (a 4096-bit key with a chain of a few CAs is ~8 KiB)."""

MAX_PKCS12_CERTIFICATES = 16
"""Most certificates accepted in one PKCS#12 file."""


@dataclass(frozen=True)
class KeyBundle:
    """A private key, the certificate of its public key, and the other certificates given."""

    private_key: PrivateKey
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]


def load_pkcs12(data: bytes, password: bytes) -> KeyBundle:
    """Open PKCS#12 *data* with *password*; the key must match one of its certificates.

    Raises :class:`BadInputError` for a file that cannot be used as given and
    :class:`PolicyError` (via ``check_key_policy``) for a key trustcircle refuses.
    """
    if len(data) > MAX_PKCS12_BYTES:
        raise LimitExceededError(
            f"PKCS#12 file is {len(data)} bytes, more than the {MAX_PKCS12_BYTES} allowed: "
            "export only the key, its certificate and its CA chain"
        )
    _check_outer_structure(data)
    try:
        parsed = _pkcs12.load_pkcs12(data, password or None)
    except ValueError as exc:
        if "password" in str(exc).lower():
            raise BadInputError(
                "wrong password for PKCS#12 file, or the file is corrupt: check the password file"
            ) from exc
        raise BadInputError(
            "PKCS#12 file is corrupt or truncated and cannot be read: export it again"
        ) from exc
    key = parsed.key
    if key is None:
        raise BadInputError(
            "PKCS#12 file holds no private key: export the key together with its certificate "
            "(openssl pkcs12 -export -inkey KEY.pem -in CERT.pem -certfile CA.pem)"
        )
    certs = ([parsed.cert.certificate] if parsed.cert is not None else []) + [
        c.certificate for c in parsed.additional_certs
    ]
    if not certs:
        raise BadInputError(
            "PKCS#12 file holds a private key but no certificate: export it with the key's "
            "certificate (-in CERT.pem)"
        )
    if len(certs) > MAX_PKCS12_CERTIFICATES:
        raise LimitExceededError(
            f"PKCS#12 file holds {len(certs)} certificates, more than the "
            f"{MAX_PKCS12_CERTIFICATES} allowed: export only the key's certificate and its chain"
        )
    private_key = _accepted_key(key)
    check_key_policy(private_key)
    wanted = _spki(private_key.public_key())
    for index, cert in enumerate(certs):
        if _spki_of_cert(cert) == wanted:
            chain = tuple(certs[:index] + certs[index + 1 :])
            return KeyBundle(private_key=private_key, certificate=cert, chain=chain)
    raise BadInputError(
        f"the private key in the PKCS#12 file does not match its certificate "
        f"(none of its {len(certs)} certificates carries that key): export the key with its own "
        "certificate"
    )


def _check_outer_structure(data: bytes) -> None:
    """Tell a PEM file, an empty file or a truncated DER file apart before trying passwords."""
    if not data:
        raise BadInputError("PKCS#12 file is empty: export the key and certificate again")
    if data.lstrip()[:10] == b"-----BEGIN":
        raise BadInputError(
            "this is a PEM file, not a PKCS#12 (.p12/.pfx) file: convert it with "
            "`openssl pkcs12 -export -inkey KEY.pem -in CERT.pem -out FILE.p12`"
        )
    declared = _der_total_length(data)
    if declared is None or declared != len(data):
        raise BadInputError(
            "PKCS#12 file is corrupt or truncated: its DER structure "
            + (
                "is not a valid outer SEQUENCE"
                if declared is None
                else f"declares {declared} bytes but the file has {len(data)}"
            )
            + ": copy or export it again"
        )


def _der_total_length(data: bytes) -> int | None:
    """Length of the outer DER SEQUENCE including its header, or None if there is none."""
    if len(data) < 2 or data[0] != 0x30:
        return None
    first = data[1]
    if first < 0x80:
        return 2 + first
    count = first & 0x7F
    if count == 0 or count > 4 or len(data) < 2 + count:
        return None
    return 2 + count + int.from_bytes(data[2 : 2 + count], "big")


def _accepted_key(key: object) -> PrivateKey:
    if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        return key
    raise PolicyError(
        f"PKCS#12 file holds a {type(key).__name__.lstrip('_')} key, which is not accepted: "
        "use RSA >= 3072 bits (4096 recommended), EC P-384 or Ed25519"
    )


def _spki(public_key: PublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _spki_of_cert(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
