"""Trust in a retrieved set's certificates and the verdict on its manifest (DESIGN §4). Pure.

A certificate the set carries is trusted when it chains to this instance's trust
anchors now (through intermediates from the set or stored locally), is inside its
validity period and is not a revoked trusted friend. The manifest is judged over
the header and entries actually present: a signature made by the certificate's key
over another manifest (RSA lets us tell) means the entry set was changed after
signing.
"""

from __future__ import annotations

import binascii
import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .._time import format_ts, parse_ts
from .._types import Fingerprint
from ..crypto import ChainValidator, ChainVerificationError, is_ca
from ..crypto import algorithms as algs
from ..crypto.chain import MAX_CHAIN_DEPTH, MAX_INTERMEDIATES
from ..errors import TrustcircleError
from ..signing import CLOCK_SKEW, CertTrust
from ._results import ManifestResult, ManifestVerdict
from .manifest import ManifestEntry, manifest_parts
from .xmlformat import ManifestSignature, UpdateSetHeader

TRUSTED = "trusted"
INTERMEDIATE = "intermediate"
REVOKED = "revoked"


@dataclass(frozen=True)
class CarriedCertificate:
    """A ``sys_certificate`` entry's certificate, parsed."""

    entry: str
    cert: x509.Certificate
    fingerprint: Fingerprint
    is_ca: bool


def carried_trust(
    carried: Sequence[CarriedCertificate],
    validator: ChainValidator,
    local_intermediates: Sequence[x509.Certificate],
    revoked: frozenset[str],
    now: dt.datetime,
) -> tuple[dict[Fingerprint, CertTrust], dict[str, str]]:
    """Trust of each carried signing certificate, and each carried entry's status.

    The status is ``trusted``, ``intermediate`` (a CA certificate that chains to an
    anchor) or the machine reason it is neither (``chain_untrusted``,
    ``certificate_expired``, ``revoked``, ...).
    """
    pool = [c.cert for c in carried if c.is_ca][:MAX_INTERMEDIATES]
    pool += list(local_intermediates)[: max(0, MAX_INTERMEDIATES - len(pool))]
    trust: dict[Fingerprint, CertTrust] = {}
    status: dict[str, str] = {}
    for item in carried:
        if item.is_ca:
            status[item.entry] = _ca_status(item.cert, validator.anchors, pool, now, 0)
            continue
        reason = _leaf_problem(item.cert, validator, pool, now)
        if reason is None and item.fingerprint in revoked:
            reason = REVOKED
        trust[item.fingerprint] = CertTrust(item.cert.public_key(), reason is None, reason)  # type: ignore[arg-type]
        status[item.entry] = reason or TRUSTED
    return trust, status


def _leaf_problem(
    cert: x509.Certificate,
    validator: ChainValidator,
    pool: Sequence[x509.Certificate],
    now: dt.datetime,
) -> str | None:
    try:
        validator.validate_signing_certificate(cert, pool, now)
    except ChainVerificationError as exc:
        return exc.reason
    except TrustcircleError:  # a key too weak to sign with, or more intermediates than allowed
        return "certificate_refused"
    return None


def _ca_status(
    cert: x509.Certificate,
    anchors: Sequence[x509.Certificate],
    pool: Sequence[x509.Certificate],
    now: dt.datetime,
    depth: int,
) -> str:
    """``intermediate`` when CA *cert* is current and issued by an anchor, directly or
    through other current CA certificates of *pool*; else the reason."""
    if now > cert.not_valid_after_utc:
        return "certificate_expired"
    if now < cert.not_valid_before_utc:
        return "certificate_not_yet_valid"
    if depth >= MAX_CHAIN_DEPTH or not is_ca(cert):
        return "chain_untrusted"
    if any(_issued_by(cert, a) for a in anchors if a.subject == cert.issuer):
        return INTERMEDIATE
    for issuer in pool:
        if (
            issuer is not cert
            and issuer.subject == cert.issuer
            and _issued_by(cert, issuer)
            and _ca_status(issuer, anchors, pool, now, depth + 1) == INTERMEDIATE
        ):
            return INTERMEDIATE
    return "chain_untrusted"


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def judge_manifest(
    header: UpdateSetHeader,
    signature: ManifestSignature | None,
    lines: Sequence[ManifestEntry],
    trust: Mapping[Fingerprint, CertTrust],
    now: dt.datetime,
) -> ManifestResult:
    """The manifest verdict over the header and the entries present (see the module doc)."""
    if signature is None:
        return ManifestResult(ManifestVerdict.MISSING, "the set carries no manifest signature")

    def result(verdict: ManifestVerdict, reason: str = "") -> ManifestResult:
        return ManifestResult(
            verdict, reason, signature.certificate, signature.signed_at, signature.expires_at
        )

    cert = trust.get(Fingerprint(signature.certificate))
    if cert is None:
        return result(
            ManifestVerdict.INVALID,
            f"its certificate {signature.certificate[:16]}... is neither in the set nor known "
            "here: export the set with its verification certificates",
        )
    try:
        algorithm = algs.Algorithm(signature.algorithm)
        parts = manifest_parts(header, lines, signature.signed_at, signature.expires_at)
        raw = binascii.a2b_base64(signature.signature, strict_mode=True)
        signed_at, expires_at = parse_ts(signature.signed_at), parse_ts(signature.expires_at)
    except (ValueError, binascii.Error, TrustcircleError) as exc:
        return result(ManifestVerdict.INVALID, f"the manifest signature is malformed ({exc})")
    if not algs.verify_parts(algorithm, cert.public_key, raw, parts):
        if _signed_other_manifest(cert, raw):
            return result(
                ManifestVerdict.MISMATCH,
                "the signed manifest lists other entries or header values than the set holds: "
                "an entry was added, removed or altered after signing",
            )
        return result(
            ManifestVerdict.INVALID,
            "the signature does not verify over the header and entries present with its "
            "certificate's key",
        )
    if not cert.trusted:
        return result(
            ManifestVerdict.INVALID,
            f"its certificate {signature.certificate[:16]}... is not trusted here "
            f"({cert.reason or 'untrusted'})",
        )
    if signed_at > now + CLOCK_SKEW:
        return result(
            ManifestVerdict.INVALID, f"it claims to be signed in the future ({signature.signed_at})"
        )
    if expires_at <= signed_at:
        return result(ManifestVerdict.INVALID, "it expires before it was signed")
    if expires_at < now:
        return result(
            ManifestVerdict.EXPIRED,
            f"its validity window ended at {signature.expires_at} (now {format_ts(now)}): "
            "export the set again",
        )
    return result(ManifestVerdict.VALID)


def _signed_other_manifest(cert: CertTrust, raw: bytes) -> bool:
    """True when *raw* is a genuine RSA signature of the key over some other SHA-512 digest."""
    key = cert.public_key
    if not isinstance(key, rsa.RSAPublicKey):
        return False
    try:
        digest = key.recover_data_from_signature(raw, padding.PKCS1v15(), hashes.SHA512())
    except (InvalidSignature, ValueError):
        return False
    return len(digest) == hashlib.sha512().digest_size
