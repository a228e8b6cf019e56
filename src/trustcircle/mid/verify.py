"""Verification of one ECC message before it runs (DESIGN §7, step 2). Pure apart from replay.

In order: (a) the notarization object is recomputed from the message as received and
compared with the one carried, and its signature verifies with a certificate that chains to
the anchors pinned in the MID's configuration; (b) freshness; (c) for script-bearing topics,
the record signature of the script itself (an instance that lies cannot change what
runs); (d) replay: the message id is recorded, and a second execution refused.
Every failure is a :class:`VerificationError` whose message is the short denial reason.
"""

from __future__ import annotations

import binascii
import datetime as _dt
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from trustcircle._time import parse_ts
from trustcircle.crypto import Algorithm, fingerprint_of, is_ca
from trustcircle.crypto import verify as verify_signature
from trustcircle.errors import BadInputError, RefusedError, TrustcircleError, VerificationError
from trustcircle.signing import BUILTIN_CONFIGS, CLOCK_SKEW, RecordVerifier, Verdict, canonical_json
from trustcircle.signing import notarization as _object

from .payloads import SCRIPT_TOPICS, EccMessage, ScriptPayload, parse_script_payload
from .replay import ReplayStore
from .trust import AnchorTrust, public_key

_MAX_POOL = 256


class UnknownCertificateError(VerificationError):
    """The notarization names a certificate the MID has not fetched (yet)."""


@dataclass(frozen=True)
class VerifiedMessage:
    """A message that passed every check, with its parsed signed record (if any)."""

    message: EccMessage
    notarization: Mapping[str, Any]
    script: ScriptPayload | None


def notarization_object(
    message: EccMessage, instance: str, carried: Mapping[str, Any]
) -> dict[str, object]:
    """The DESIGN §7 object for *message* as received; only origin and times come from
    *carried* (they are not message fields; the signature covers them)."""
    return _object.notarization_object(
        instance=instance,
        ecc=message.sys_id,
        agent=message.agent,
        topic=message.topic,
        name=message.name,
        source=message.source,
        payload=message.payload,
        origin=carried.get("origin"),
        created_at=carried.get("created_at"),
        expires_at=carried.get("expires_at"),
    )


class MessageVerifier:
    """Checks ECC messages against the pinned anchors; one per MID, used from many threads."""

    def __init__(
        self,
        anchors: Sequence[x509.Certificate] | AnchorTrust,
        instance_name: str,
        replay: ReplayStore,
        *,
        agent: str | None = None,
        certificates: Iterable[x509.Certificate] = (),
        notarizers: Iterable[str] = (),
    ) -> None:
        """*notarizers* (fingerprints) pin the notarizing certificates when *anchors* is a
        list of certificates; an :class:`AnchorTrust` brings its own."""
        self._trust = (
            anchors
            if isinstance(anchors, AnchorTrust)
            else AnchorTrust(anchors, notarizers=notarizers)
        )
        self._instance = instance_name
        self._agent = agent
        self._replay = replay
        self._pool: dict[str, x509.Certificate] = {}
        self._cas: tuple[x509.Certificate, ...] = ()
        self._lock = threading.Lock()
        self.add_certificates(certificates)

    def add_certificates(self, certificates: Iterable[x509.Certificate]) -> None:
        """Add candidate certificates (e.g. from ``/api/sn_kmf/signature/certificates``).

        They are candidates only: trust always comes from a chain to the pinned anchors.
        """
        with self._lock:
            pool = dict(self._pool)
            for cert in certificates:
                pool[fingerprint_of(cert)] = cert
            if len(pool) > 4 * _MAX_POOL:
                pool = dict(list(pool.items())[-4 * _MAX_POOL :])
            self._pool = pool
            self._cas = tuple(c for c in pool.values() if is_ca(c))[:_MAX_POOL]

    def verify(self, message: EccMessage, now: _dt.datetime) -> VerifiedMessage:
        """Return the verified message, or raise :class:`VerificationError` with the reason."""
        if self._agent is not None and message.agent != self._agent:
            raise VerificationError(
                f"message is addressed to agent {message.agent[:100]!r}, not {self._agent}"
            )
        try:
            carried, keep_until = self._check_notarization(message, now)
            script = self._check_record(message, now) if message.topic in SCRIPT_TOPICS else None
        except VerificationError:
            raise
        except (TrustcircleError, UnicodeError) as exc:  # e.g. text no signer could have signed
            raise VerificationError(f"message cannot be verified: {exc}"[:500]) from exc
        self._replay.claim(message.sys_id, keep_until)
        return VerifiedMessage(message, carried, script)

    def _check_notarization(
        self, message: EccMessage, now: _dt.datetime
    ) -> tuple[Mapping[str, Any], _dt.datetime]:
        notarization = message.notarization
        if notarization is None:
            raise VerificationError("message is not notarized (not created by signed code)")
        carried = notarization.payload
        extra = sorted(set(carried) - set(_object.NOTARIZATION_KEYS))
        if extra:
            raise VerificationError(f"notarization has unexpected field {extra[0][:40]!r}")
        expected = notarization_object(message, self._instance, carried)
        for name in _object.NOTARIZATION_KEYS:
            if carried.get(name) != expected[name]:
                raise VerificationError(_mismatch(name))
        _check_origin(expected["origin"])
        created, expires = _times(expected)
        try:
            algorithm = Algorithm(notarization.algorithm)
            raw = binascii.a2b_base64(notarization.signature, strict_mode=True)
            data = canonical_json(expected)
        except (ValueError, binascii.Error, BadInputError) as exc:
            raise VerificationError("notarization signature is malformed") from exc
        self._trust.require_notarizer(notarization.certificate)
        cert = self._pool.get(notarization.certificate)
        if cert is None:
            raise UnknownCertificateError(
                f"notarization certificate {notarization.certificate[:64]} is unknown"
            )
        try:
            self._trust.check(cert, self._cas, now)
            key = public_key(cert)
        except TrustcircleError as exc:
            raise VerificationError(
                f"notarization certificate does not chain to the pinned anchors: {exc.message}"
            ) from exc
        if not verify_signature(algorithm, key, raw, data):
            raise VerificationError("notarization signature does not verify")
        if created > now + CLOCK_SKEW:
            raise VerificationError(
                f"notarization is created in the future ({expected['created_at']})"
            )
        if expires < now:
            raise VerificationError(f"notarization expired at {expected['expires_at']}")
        return carried, expires

    def _check_record(self, message: EccMessage, now: _dt.datetime) -> ScriptPayload:
        try:
            script = parse_script_payload(message.topic, message.payload)
        except BadInputError as exc:
            raise VerificationError(f"malformed payload: {exc.message}") from exc
        candidates = (*script.certificates, *self._cas)
        certs = self._trust.trust_map(candidates, (s.certificate for s in script.signatures), now)
        try:
            result = RecordVerifier(certs, BUILTIN_CONFIGS, now).verify(
                script.table, script.sys_id, script.fields, script.signatures
            )
        except (RefusedError, BadInputError) as exc:
            raise VerificationError(f"record signature cannot be checked: {exc.message}") from exc
        if result.verdict is not Verdict.VALID:
            reasons = ", ".join(result.reasons) or result.verdict.value
            raise VerificationError(
                f"record signature of {script.table} {script.sys_id} is {result.verdict.value} "
                f"({reasons})"
            )
        return script


def _mismatch(key: str) -> str:
    if key == "payload_sha512":
        return "notarization does not match the payload (payload changed after notarization)"
    if key == "instance":
        return "notarization names another instance"
    if key == "ecc":
        return "notarization belongs to another message"
    if key in ("created_at", "expires_at", "origin", "format"):
        return f"notarization field {key} is missing or malformed"
    return f"notarization does not match the message ({key} changed after notarization)"


def _check_origin(origin: object) -> None:
    if not isinstance(origin, list) or len(origin) > _object.MAX_ORIGIN:
        raise VerificationError("notarization origin is not a short list")
    for item in origin:
        if (
            not isinstance(item, dict)
            or set(item) != {"table", "document_id", "signature"}
            or not all(isinstance(v, str) and len(v) <= 100 for v in item.values())
        ):
            raise VerificationError("notarization origin entry is malformed")


def _times(obj: Mapping[str, Any]) -> tuple[_dt.datetime, _dt.datetime]:
    try:
        created = parse_ts(obj["created_at"])
        expires = parse_ts(obj["expires_at"])
    except BadInputError as exc:
        raise VerificationError("notarization times are malformed") from exc
    if expires <= created:
        raise VerificationError("notarization expires before it is created")
    return created, expires
