"""X.509 certificates: load PEM, name by fingerprint, describe, say whether current.

Nothing here decides trust: that is :mod:`trustcircle.crypto.chain`.
"""

from __future__ import annotations

import datetime as _dt
import enum
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization

from trustcircle._time import format_ts
from trustcircle._types import Fingerprint, Timestamp
from trustcircle.errors import BadInputError, LimitExceededError

MAX_PEM_BYTES = 256 * 1024
"""Largest PEM input accepted (a certificate is 1-3 KiB; a chain of 16 fits easily)."""

MAX_PEM_CERTIFICATES = 16
"""Most certificates accepted in one PEM input."""

_PEM_MARKER = b"-----BEGIN CERTIFICATE-----"


def fingerprint_of(cert: x509.Certificate) -> Fingerprint:
    """Lowercase hex SHA-256 of the certificate's DER: its name everywhere in trustcircle."""
    return Fingerprint(cert.fingerprint(hashes.SHA256()).hex())


def load_pem_certificates(data: bytes, what: str) -> list[x509.Certificate]:
    """Parse every certificate of PEM *data*; *what* names the input in error messages.

    Refuses empty input, input without certificates, garbage, more than
    :data:`MAX_PEM_CERTIFICATES` certificates or more than :data:`MAX_PEM_BYTES` bytes.
    """
    if len(data) > MAX_PEM_BYTES:
        raise LimitExceededError(
            f"{what} is {len(data)} bytes, more than the {MAX_PEM_BYTES} allowed: "
            "give only the certificates needed"
        )
    if not data.strip():
        raise BadInputError(f"{what} is empty: expected PEM text with -----BEGIN CERTIFICATE-----")
    count = data.count(_PEM_MARKER)
    if count == 0:
        hint = (
            "it looks like DER: convert it with `openssl x509 -inform der -in FILE -out FILE.pem`"
            if data[:1] == b"\x30"
            else "expected PEM text with -----BEGIN CERTIFICATE-----"
        )
        raise BadInputError(f"{what} holds no PEM certificate: {hint}")
    if count > MAX_PEM_CERTIFICATES:
        raise LimitExceededError(
            f"{what} holds {count} certificates, more than the {MAX_PEM_CERTIFICATES} allowed"
        )
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise BadInputError(
            f"{what} is not valid PEM certificate data ({_first_line(exc)}): "
            "check that the file is an unmodified PEM certificate"
        ) from exc
    return certs


def load_pem_certificate(data: bytes, what: str) -> x509.Certificate:
    """Parse PEM *data* that must hold exactly one certificate."""
    certs = load_pem_certificates(data, what)
    if len(certs) != 1:
        raise BadInputError(f"{what} holds {len(certs)} certificates: expected exactly one")
    return certs[0]


def cert_to_pem(cert: x509.Certificate) -> str:
    """The certificate as PEM text (ASCII, ends with a newline)."""
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


class CertStatus(enum.StrEnum):
    """Where a certificate stands in its validity period."""

    VALID = "valid"
    EXPIRING_SOON = "expiring soon"
    EXPIRED = "expired"
    NOT_YET_VALID = "not yet valid"


def certificate_status(cert: x509.Certificate, now: _dt.datetime, expiring_days: int) -> CertStatus:
    """The status of *cert* at *now*; EXPIRING_SOON within *expiring_days* of notAfter."""
    if now < cert.not_valid_before_utc:
        return CertStatus.NOT_YET_VALID
    if now > cert.not_valid_after_utc:
        return CertStatus.EXPIRED
    if cert.not_valid_after_utc - now <= _dt.timedelta(days=expiring_days):
        return CertStatus.EXPIRING_SOON
    return CertStatus.VALID


@dataclass(frozen=True)
class CertificateInfo:
    """The certificate fields of a ``sys_certificate`` record (DESIGN §4)."""

    pem: str
    fingerprint: Fingerprint
    subject: str
    issuer: str
    not_before: Timestamp
    not_after: Timestamp


def describe_certificate(cert: x509.Certificate) -> CertificateInfo:
    """The ``sys_certificate`` fields of *cert*: PEM, fingerprint, RFC 4514 names, times."""
    return CertificateInfo(
        pem=cert_to_pem(cert),
        fingerprint=fingerprint_of(cert),
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        not_before=format_ts(cert.not_valid_before_utc),
        not_after=format_ts(cert.not_valid_after_utc),
    )


def is_ca(cert: x509.Certificate) -> bool:
    """True when *cert*'s basicConstraints say it is a CA (no extension: not a CA)."""
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def is_self_signed(cert: x509.Certificate) -> bool:
    """True when *cert* names itself as issuer and its signature verifies under its own key."""
    if cert.subject != cert.issuer:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):
        return False
    return True


def subject_text(cert: x509.Certificate) -> str:
    """The subject as RFC 4514 text, for messages (``<empty subject>`` when there is none)."""
    return cert.subject.rfc4514_string() or "<empty subject>"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__
