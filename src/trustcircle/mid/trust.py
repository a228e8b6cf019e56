"""Certificate trust for the MID: chains to the anchors pinned in its own configuration.

Nothing the instance says makes a certificate trusted: certificates it serves or a
payload carries are only candidates (leaf or intermediates) handed to a
:class:`~trustcircle.crypto.ChainValidator` built from the pinned anchors. A verified
chain is remembered until the first ``notAfter`` (or after the last ``notBefore``) of its
certificates, so the per-message cost is one dictionary look-up.

Roles are pinned too (DESIGN §1 threat model (c), §6): the protected instance's host
holds its runtime key, so a certificate pinned as a *notarizer* (by fingerprint in
``mid.yaml``) is the only one whose notarization counts, and it never counts for a
record signature or a policy statement: whoever holds only the runtime key can neither
sign a script the MID runs nor switch validation off.
"""

from __future__ import annotations

import datetime as _dt
import threading
from collections.abc import Iterable, Mapping, Sequence

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from trustcircle._types import Fingerprint
from trustcircle.crypto import ChainValidator, ChainVerificationError, fingerprint_of
from trustcircle.errors import BadInputError, RefusedError, VerificationError
from trustcircle.signing import CertTrust

_MAX_CACHED = 4096
NOTARIZER = "notarizer_certificate"
"""Why a pinned notarizer's certificate is not trusted for a signature."""


class AnchorTrust:
    """Decides whether a certificate chains to the pinned anchors at a given time."""

    def __init__(self, anchors: Sequence[x509.Certificate], *, notarizers: Iterable[str]) -> None:
        """*notarizers*: fingerprints of the certificates that notarize (and sign nothing)."""
        self._validator = ChainValidator(anchors)
        self._notarizers = frozenset(fp.lower() for fp in notarizers)
        self._good: dict[Fingerprint, tuple[_dt.datetime, _dt.datetime]] = {}
        self._lock = threading.Lock()

    def check(
        self, leaf: x509.Certificate, intermediates: Iterable[x509.Certificate], now: _dt.datetime
    ) -> None:
        """Return when *leaf* chains to an anchor at *now*; else :class:`VerificationError`."""
        fp = fingerprint_of(leaf)
        window = self._good.get(fp)
        if window is not None and window[0] <= now <= window[1]:
            return
        chain = self._validator.validate_signing_certificate(
            leaf, [c for c in intermediates if c is not leaf], now
        )
        start = max(c.not_valid_before_utc for c in chain)
        end = min(c.not_valid_after_utc for c in chain)
        with self._lock:
            if len(self._good) >= _MAX_CACHED:
                self._good.clear()
            self._good[fp] = (start, end)

    def cert_trust(
        self,
        leaf: x509.Certificate,
        intermediates: Iterable[x509.Certificate],
        now: _dt.datetime,
    ) -> CertTrust:
        """The :class:`CertTrust` of *leaf* for a :class:`~trustcircle.signing.RecordVerifier`."""
        key = public_key(leaf)
        try:
            self.check(leaf, intermediates, now)
        except ChainVerificationError as exc:
            return CertTrust(key, False, exc.reason)
        except (RefusedError, BadInputError):  # a weak key, more intermediates than allowed
            return CertTrust(key, False, "certificate_refused")
        return CertTrust(key, True)

    def trust_map(
        self,
        certificates: Sequence[x509.Certificate],
        wanted: Iterable[str],
        now: _dt.datetime,
    ) -> Mapping[Fingerprint, CertTrust]:
        """CertTrust for each certificate of *certificates* whose fingerprint is *wanted*,
        for verifying a record signature or a policy statement: a pinned notarizer is never
        trusted for that."""
        by_fp = {fingerprint_of(c): c for c in certificates}
        result: dict[Fingerprint, CertTrust] = {}
        for fp in set(wanted):
            cert = by_fp.get(Fingerprint(fp))
            if cert is None:
                continue
            try:
                trust = self.cert_trust(cert, certificates, now)
            except RefusedError:  # a key type no signature of trustcircle uses: unknown
                continue
            if fp in self._notarizers:
                trust = CertTrust(trust.public_key, False, NOTARIZER)
            result[Fingerprint(fp)] = trust
        return result

    def require_notarizer(self, fingerprint: str) -> None:
        """Return when *fingerprint* is a pinned notarizer; else :class:`VerificationError`."""
        if fingerprint not in self._notarizers:
            raise VerificationError(
                f"notarization certificate {fingerprint[:16]}... is not a notarizer pinned in "
                "this MID's configuration (mid.yaml notarizers): only the protected "
                "instance's runtime certificate notarizes"
            )


def public_key(
    cert: x509.Certificate,
) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey:
    """The certificate's key when it is of a kind trustcircle signs with, else RefusedError."""
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
        return key
    raise RefusedError("certificate key type is not one trustcircle signs with")
