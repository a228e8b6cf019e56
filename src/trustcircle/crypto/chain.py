"""Certificate chain validation for signing certificates, on cryptography's path builder.

:class:`ChainValidator` holds the trust anchors (built once, reused for every
verification) and validates a signing certificate at an injected time with
``cryptography.x509.verification``. trustcircle's code-signing profile is
expressed as extension policies:

* end entity: keyUsage present with digitalSignature (and not keyCertSign);
  extendedKeyUsage, when present, lists codeSigning; subjectAltName and
  authorityKeyIdentifier are optional; basicConstraints must not say cA.
* CA: the WebPKI defaults, except that keyUsage may be absent (RFC 5280) and
  an extendedKeyUsage, when present, must allow codeSigning (or any usage).

``build_client_verifier`` would otherwise demand clientAuth in a present EKU and
a subjectAltName on the leaf; both are replaced above. The leaf is pre-checked
with the same rules so that a refusal names the exact problem in one line.
Pure: no I/O, no clock.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Sequence
from typing import TypeVar

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import (
    ClientVerifier,
    Criticality,
    ExtensionPolicy,
    Policy,
    PolicyBuilder,
    Store,
)
from cryptography.x509.verification import VerificationError as _PathError

from trustcircle._time import format_ts
from trustcircle.crypto.algorithms import PublicKey, check_key_policy
from trustcircle.crypto.certs import fingerprint_of, is_self_signed, subject_text
from trustcircle.errors import LimitExceededError, PolicyError, VerificationError

MAX_INTERMEDIATES = 256
"""Most untrusted candidate intermediates accepted in one call (only those whose names
can link the leaf to an anchor are handed to the path builder)."""

MAX_CHAIN_DEPTH = 6
"""Most CA certificates between a signing certificate and its anchor."""

MIN_CA_RSA_BITS = 2048
"""Smallest RSA key accepted for a CA (the path builder's floor); signing keys need 3072."""


class ChainVerificationError(VerificationError):
    """A refused certificate chain; ``reason`` is stable for programs, the message for people.

    Reasons: ``self_signed``, ``certificate_expired``, ``certificate_not_yet_valid``,
    ``ca_certificate`` (a CA used as signing certificate), ``key_usage``,
    ``extended_key_usage``, ``no_trust_anchors``, ``chain_untrusted`` (no path to an
    anchor), ``intermediate_invalid``, ``anchor_invalid``, ``chain_refused`` (other).
    """

    kind = "verification_failed"

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


_Ext = TypeVar("_Ext", bound=x509.ExtensionType)
_CA_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)
_ADD_ANCHOR_HINT = "run `trustcircle trust-anchor add CA.pem` with your CA's certificate"
_NOISE = re.compile(
    r"validation failed: |candidates exhausted: |Python extension validator failed: "
    r"_ProfileViolation: |\s*\(encountered processing <.*\)$"
)


class ChainValidator:
    """Validates signing certificates against a fixed set of trust anchors.

    Construction is cheap and the object is immutable apart from a one-entry
    cache of the verifier for the last verification time; reuse it.
    """

    def __init__(self, anchors: Sequence[x509.Certificate]) -> None:
        self._anchors = tuple(anchors)
        self._anchor_fingerprints = frozenset(fingerprint_of(a) for a in self._anchors)
        self._store = Store(list(self._anchors)) if self._anchors else None
        self._cached: tuple[_dt.datetime, ClientVerifier] | None = None

    @property
    def anchors(self) -> tuple[x509.Certificate, ...]:
        """The trust anchors, as given."""
        return self._anchors

    def validate_signing_certificate(
        self,
        leaf: x509.Certificate,
        intermediates: Sequence[x509.Certificate],
        now: _dt.datetime,
    ) -> tuple[x509.Certificate, ...]:
        """Return the verified chain leaf → anchor of *leaf* at *now*, or raise.

        Raises :class:`VerificationError` naming the problem (self-signed,
        outside its validity period, wrong key usage, no path to an anchor) and
        :class:`PolicyError` for a key too weak to sign with.
        """
        _require_aware(now)
        if len(intermediates) > MAX_INTERMEDIATES:
            raise LimitExceededError(
                f"{len(intermediates)} intermediate certificates given, more than the "
                f"{MAX_INTERMEDIATES} allowed: give only the chain of the signing certificate"
            )
        name = subject_text(leaf)
        if is_self_signed(leaf):
            raise ChainVerificationError(
                "self-signed leaf certificates are refused: use a certificate issued by your CA "
                f"({name!r} is self-signed)",
                "self_signed",
            )
        check_key_policy(_public_key(leaf, f"signing certificate {name!r}"))
        validity = _validity_problem(leaf, now, f"signing certificate {name!r}")
        if validity is not None:
            raise ChainVerificationError(validity[1], f"certificate_{validity[0]}")
        profile = _leaf_profile_problem(leaf)
        if profile is not None:
            raise ChainVerificationError(f"signing certificate {name!r} {profile[1]}", profile[0])
        store = self._store
        if store is None:
            raise ChainVerificationError(
                f"signing certificate {name!r} cannot be trusted: this instance has no trust "
                f"anchors: {_ADD_ANCHOR_HINT}",
                "no_trust_anchors",
            )
        candidates = _linkable(leaf, intermediates)
        try:
            verified = self._verifier(store, now).verify(leaf, candidates)
        except (_PathError, ValueError) as exc:
            reason, message = self._explain(leaf, candidates, now, exc)
            raise ChainVerificationError(message, reason) from exc
        return tuple(verified.chain)

    def _verifier(self, store: Store, now: _dt.datetime) -> ClientVerifier:
        cached = self._cached
        if cached is not None and cached[0] == now:
            return cached[1]
        verifier = (
            PolicyBuilder()
            .store(store)
            .time(now)
            .max_chain_depth(MAX_CHAIN_DEPTH)
            .extension_policies(ca_policy=_CA_POLICY, ee_policy=_EE_POLICY)
            .build_client_verifier()
        )
        self._cached = (now, verifier)
        return verifier

    def _explain(
        self,
        leaf: x509.Certificate,
        intermediates: Sequence[x509.Certificate],
        now: _dt.datetime,
        exc: Exception,
    ) -> tuple[str, str]:
        """Reason and one line saying why path building failed (diagnosis only)."""
        path = _name_path(leaf, intermediates)
        for cert in path[1:]:
            problem = _ca_problem(cert, now, "intermediate CA")
            if problem is not None:
                return "intermediate_invalid", problem
        top = path[-1]
        issuers = [a for a in self._anchors if a.subject == top.issuer]
        for anchor in issuers:
            problem = _ca_problem(anchor, now, "trust anchor")
            if problem is not None:
                return (
                    "anchor_invalid",
                    f"{problem} (it issues the chain of {subject_text(leaf)!r})",
                )
        if not issuers and fingerprint_of(top) not in self._anchor_fingerprints:
            issuer = top.issuer.rfc4514_string() or "<empty issuer>"
            return "chain_untrusted", (
                f"certificate {subject_text(leaf)!r} does not chain to a trust anchor of this "
                f"instance: its chain ends at issuer {issuer!r}, which is not trusted (if that CA "
                f"is an intermediate, supply its certificate too; if you trust it, "
                f"{_ADD_ANCHOR_HINT})"
            )
        detail = _NOISE.sub("", str(exc)).strip() or type(exc).__name__
        return "chain_refused", (
            f"certificate chain of {subject_text(leaf)!r} was refused: {detail[:300]}: check "
            "that the CA certificates are the ones that issued it and fit a code-signing profile"
        )

    @staticmethod
    def validate_anchor(cert: x509.Certificate, now: _dt.datetime) -> None:
        """Same as the module-level :func:`validate_anchor`."""
        validate_anchor(cert, now)


def validate_anchor(cert: x509.Certificate, now: _dt.datetime) -> None:
    """Refuse a certificate that cannot serve as a trust anchor for code signing at *now*.

    :class:`PolicyError` when it is not a CA certificate fit to issue code-signing
    certificates (basicConstraints cA, keyCertSign, EKU, key type and size);
    :class:`VerificationError` when outside its validity period.
    """
    _require_aware(now)
    name = subject_text(cert)
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise PolicyError(
            f"certificate {name!r} is not a CA certificate (basicConstraints cA is not set): "
            "a trust anchor must be the certificate of the CA that issues signing certificates"
        )
    problem = _ca_profile_problem(cert)
    if problem is not None:
        raise PolicyError(f"CA certificate {name!r} {problem}: it cannot be a trust anchor")
    _check_ca_key(_public_key(cert, f"CA certificate {name!r}"), name)
    validity = _validity_problem(cert, now, f"CA certificate {name!r}")
    if validity is not None:
        raise ChainVerificationError(validity[1], f"certificate_{validity[0]}")


def _ca_problem(cert: x509.Certificate, now: _dt.datetime, role: str) -> str | None:
    """Why CA *cert* cannot be part of a code-signing chain at *now*, or None."""
    what = f"{role} {subject_text(cert)!r}"
    validity = _validity_problem(cert, now, what)
    if validity is not None:
        return validity[1]
    problem = _ca_profile_problem(cert)
    if problem is not None:
        return f"{what} {problem}: it cannot issue code-signing certificates"
    return None


def _require_aware(now: _dt.datetime) -> None:
    if now.tzinfo is None:
        raise ValueError("naive datetime: trustcircle only handles timezone-aware UTC times")


def _public_key(cert: x509.Certificate, what: str) -> PublicKey:
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
        return key
    raise PolicyError(
        f"{what} has a {type(key).__name__.lstrip('_')} key, which is not accepted: "
        "use RSA >= 3072 bits, EC P-384 or Ed25519"
    )


def _check_ca_key(key: PublicKey, name: str) -> None:
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_CA_RSA_BITS:
            raise PolicyError(
                f"CA certificate {name!r} has an RSA key of {key.key_size} bits, too weak to "
                f"trust: use a CA with RSA >= {MIN_CA_RSA_BITS} bits (3072+ recommended) or EC"
            )
        return
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, _CA_CURVES):
        return
    kind = key.curve.name if isinstance(key, ec.EllipticCurvePublicKey) else "Ed25519"
    raise PolicyError(
        f"CA certificate {name!r} has a key of type {kind}, which chain validation cannot use: "
        "use a CA with an RSA or EC P-256/P-384/P-521 key"
    )


def _validity_problem(
    cert: x509.Certificate, now: _dt.datetime, what: str
) -> tuple[str, str] | None:
    """``("expired" | "not_yet_valid", message)`` when *cert* is outside its period at *now*."""
    not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
    period = f"valid {format_ts(not_before)} to {format_ts(not_after)}, checked at {format_ts(now)}"
    if now > not_after:
        return "expired", (
            f"{what} expired on {format_ts(not_after)} ({period}): renew it and import the new one"
        )
    if now < not_before:
        return "not_yet_valid", (
            f"{what} is not yet valid: it starts on {format_ts(not_before)} ({period}): "
            "check the clock or wait"
        )
    return None


def _extension(cert: x509.Certificate, kind: type[_Ext]) -> _Ext | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _leaf_profile_problem(cert: x509.Certificate) -> tuple[str, str] | None:
    """``(reason, message)`` for what keeps *cert* from being a code-signing leaf, or None."""
    constraints = _extension(cert, x509.BasicConstraints)
    if constraints is not None and constraints.ca:
        return "ca_certificate", (
            "is a CA certificate, not a signing certificate: use a leaf issued by your CA"
        )
    problem = _key_usage_problem(_extension(cert, x509.KeyUsage))
    if problem is not None:
        return "key_usage", problem
    problem = _eku_problem(_extension(cert, x509.ExtendedKeyUsage), allow_any=False)
    if problem is not None:
        return "extended_key_usage", (
            f"{problem}: ask your CA for a certificate with extendedKeyUsage codeSigning"
        )
    return None


def _key_usage_problem(usage: x509.KeyUsage | None) -> str | None:
    if usage is None:
        return (
            "has no keyUsage extension: ask your CA for a code-signing certificate with "
            "keyUsage digitalSignature"
        )
    if not usage.digital_signature:
        return (
            "has a keyUsage that lacks digitalSignature: ask your CA for a code-signing "
            "certificate with keyUsage digitalSignature"
        )
    if usage.key_cert_sign:
        return "asserts keyCertSign in its keyUsage: a signing certificate must not be a CA"
    return None


def _eku_problem(eku: x509.ExtendedKeyUsage | None, *, allow_any: bool) -> str | None:
    if eku is None or ExtendedKeyUsageOID.CODE_SIGNING in eku:
        return None
    if allow_any and ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in eku:
        return None
    listed = ", ".join(oid._name for oid in eku) or "nothing"
    return f"has an extendedKeyUsage without codeSigning (it lists {listed})"


def _ca_profile_problem(cert: x509.Certificate) -> str | None:
    try:
        if not cert.extensions.get_extension_for_class(x509.BasicConstraints).critical:
            return "has a basicConstraints extension not marked critical (RFC 5280 requires it)"
    except x509.ExtensionNotFound:
        return "has no basicConstraints extension, so it is not a CA"
    usage = _extension(cert, x509.KeyUsage)
    if usage is not None and not usage.key_cert_sign:
        return "has a keyUsage without keyCertSign"
    return _eku_problem(_extension(cert, x509.ExtendedKeyUsage), allow_any=True)


def _linkable(
    leaf: x509.Certificate, intermediates: Sequence[x509.Certificate]
) -> list[x509.Certificate]:
    """The intermediates whose names can link *leaf* upwards (a path never uses the others)."""
    wanted = {leaf.issuer}
    chosen: list[x509.Certificate] = []
    remaining = list(intermediates)
    for _ in range(MAX_CHAIN_DEPTH + 1):
        found = [c for c in remaining if c.subject in wanted]
        if not found:
            break
        chosen.extend(found)
        remaining = [c for c in remaining if c.subject not in wanted]
        wanted = {c.issuer for c in found}
    return chosen


def _name_path(
    leaf: x509.Certificate, intermediates: Sequence[x509.Certificate]
) -> list[x509.Certificate]:
    """Leaf, then each given intermediate whose subject is the previous issuer (by name only)."""
    path = [leaf]
    remaining = list(intermediates)
    while remaining:
        current = path[-1]
        nxt = next((c for c in remaining if c.subject == current.issuer), None)
        if nxt is None or current.subject == current.issuer:
            break
        remaining.remove(nxt)
        path.append(nxt)
    return path


class _ProfileViolation(Exception):
    """Raised inside cryptography's path builder; surfaces as its VerificationError."""


def _ee_key_usage(_policy: Policy, cert: x509.Certificate, usage: x509.KeyUsage) -> None:
    problem = _key_usage_problem(usage)
    if problem is not None:
        raise _ProfileViolation(f"{subject_text(cert)!r} {problem}")


def _ee_eku(_policy: Policy, cert: x509.Certificate, eku: x509.ExtendedKeyUsage | None) -> None:
    problem = _eku_problem(eku, allow_any=False)
    if problem is not None:
        raise _ProfileViolation(f"{subject_text(cert)!r} {problem}")


def _ca_key_usage(_policy: Policy, cert: x509.Certificate, usage: x509.KeyUsage | None) -> None:
    if usage is not None and not usage.key_cert_sign:
        raise _ProfileViolation(f"CA {subject_text(cert)!r} has a keyUsage without keyCertSign")


def _ca_eku(_policy: Policy, cert: x509.Certificate, eku: x509.ExtendedKeyUsage | None) -> None:
    problem = _eku_problem(eku, allow_any=True)
    if problem is not None:
        raise _ProfileViolation(f"CA {subject_text(cert)!r} {problem}")


_EE_POLICY = (
    ExtensionPolicy.webpki_defaults_ee()
    .require_present(x509.KeyUsage, Criticality.AGNOSTIC, _ee_key_usage)
    .may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, _ee_eku)
    .may_be_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
    .may_be_present(x509.AuthorityKeyIdentifier, Criticality.NON_CRITICAL, None)
)
_CA_POLICY = (
    ExtensionPolicy.webpki_defaults_ca()
    .may_be_present(x509.KeyUsage, Criticality.AGNOSTIC, _ca_key_usage)
    .may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, _ca_eku)
)
