"""Verdicts on signed records (DESIGN §4, "multiple signatures per record"). Pure: no I/O.

The rule: group a record's signatures by certificate and judge only the newest of each
group (``signed_at``, ties broken by ``sys_id``), so re-signing with a certificate
supersedes its earlier signatures while another certificate's signature stands on its
own. A group's newest signature is good when it verifies over the record's *current*
values of its signed fields, covers every field the table's configuration names, names
this record, carries an allowed purpose, is inside its validity window and comes from a
trusted certificate. The caller (the store layer) decides certificate trust and hands
over parsed public keys in :class:`CertTrust`.

An update set brings thousands of records, so the per-record work around the signature
primitive is kept small: the payload takes the fast path of :mod:`.payload`, and what
repeats across records (timestamps, algorithm names) is looked up in bounded
``functools.lru_cache`` caches or constant tables. Those caches and the verifier hold
no other state, so one verifier may judge records on several threads at once.
"""

from __future__ import annotations

import binascii
import datetime as _dt
import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trustcircle._types import Fingerprint
from trustcircle.crypto import algorithms
from trustcircle.crypto.algorithms import Algorithm, PublicKey
from trustcircle.errors import BadInputError, LimitExceededError, UsageError, VerificationError

from .configs import WILDCARD, WILDCARD_TABLES, SignatureConfig, check_purpose
from .model import SignatureRecord, _parse_timestamp
from .payload import record_signature_payload
from .receipts import Receipts

CLOCK_SKEW = _dt.timedelta(seconds=300)
"""How far in the future a ``signed_at`` may lie (clocks of two instances disagree)."""

MAX_SIGNATURES_PER_RECORD = 10_000

_UNKNOWN_CERTIFICATE = "certificate_unknown"
_SUPERSEDED = "superseded"


class Verdict(enum.StrEnum):
    """What a record's signatures amount to."""

    VALID = "valid"
    INVALID = "invalid"
    MISSING = "missing"
    ORPHAN = "orphan"
    UNTRUSTED = "untrusted"


@dataclass(frozen=True)
class CertTrust:
    """A known certificate's public key and whether it is trusted now.

    *reason* is a machine code saying why not, e.g. ``chain_untrusted``,
    ``certificate_expired``, ``revoked``, ``not_a_trusted_friend``.
    """

    public_key: PublicKey
    trusted: bool
    reason: str | None = None


@dataclass(frozen=True)
class SignatureCheck:
    """The judgement of one signature; ``reasons`` is empty exactly when ``ok``."""

    signature: SignatureRecord
    newest_in_group: bool
    ok: bool
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "signature": self.signature.to_fields(),
            "newest_in_group": self.newest_in_group,
            "ok": self.ok,
            "reasons": list(self.reasons),
        }


@dataclass(frozen=True)
class RecordVerification:
    """The verdict on one record with every check that led to it."""

    table: str
    document_id: str
    verdict: Verdict
    reasons: tuple[str, ...]
    checks: tuple[SignatureCheck, ...]
    valid_signature: SignatureRecord | None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data for ``--json`` output."""
        return {
            "table": self.table,
            "document_id": self.document_id,
            "verdict": self.verdict.value,
            "reasons": list(self.reasons),
            "checks": [c.to_dict() for c in self.checks],
            "valid_signature": (
                None if self.valid_signature is None else self.valid_signature.to_fields()
            ),
        }


class RecordVerifier:
    """Judges records against known certificates, signature configurations and a time."""

    def __init__(
        self,
        certificates: Mapping[Fingerprint, CertTrust],
        configs: Mapping[str, SignatureConfig],
        now: _dt.datetime,
        *,
        receipts: Receipts | None = None,
    ) -> None:
        """*receipts*, when given, spare the public-key operation for a signature they
        vouch for (every other check still runs) and record each one verified now."""
        if now.tzinfo is None:
            raise UsageError("verification time must be timezone-aware UTC: pass tzinfo=UTC")
        self._certificates = certificates
        self._configs = configs
        self._now = now
        self._latest_signing = now + CLOCK_SKEW
        self._receipts = receipts

    def verify(
        self,
        table: str,
        document_id: str,
        fields: Mapping[str, str | None] | None,
        signatures: Sequence[SignatureRecord],
        purpose: str | None = None,
    ) -> RecordVerification:
        """Judge every group's newest signature; *fields* None means the record is gone.

        Raises :class:`UsageError` when *purpose* is not one the table's configuration
        lists or a field value is not text (a caller's mistake, not a property of the
        record), :class:`LimitExceededError` beyond ``MAX_SIGNATURES_PER_RECORD``.
        """
        return self._judge(table, document_id, fields, signatures, purpose, stop_at_valid=False)

    def require_valid(
        self,
        table: str,
        document_id: str,
        fields: Mapping[str, str | None] | None,
        signatures: Sequence[SignatureRecord],
        purpose: str | None = None,
    ) -> SignatureRecord:
        """The signature that makes the record valid, or :class:`VerificationError`.

        Stops at the first good signature, trying trusted certificates first.
        """
        result = self._judge(table, document_id, fields, signatures, purpose, stop_at_valid=True)
        if result.valid_signature is not None:
            return result.valid_signature
        failed = [
            f"signature {c.signature.sys_id} ({', '.join(c.reasons)})"
            for c in result.checks
            if c.newest_in_group
        ]
        detail = "; ".join(failed[:5]) + (
            f"; and {len(failed) - 5} more" if len(failed) > 5 else ""
        )
        raise VerificationError(
            f"{table} record {document_id} is not validly signed "
            f"(verdict {result.verdict.value}: {', '.join(result.reasons)})"
            + (f" [{detail}]" if detail else "")
            + ": sign it on a trusted instance with a trusted certificate and import it again"
        )

    # -- internals ---------------------------------------------------------------------

    def _judge(
        self,
        table: str,
        document_id: str,
        fields: Mapping[str, str | None] | None,
        signatures: Sequence[SignatureRecord],
        purpose: str | None,
        *,
        stop_at_valid: bool,
    ) -> RecordVerification:
        if len(signatures) > MAX_SIGNATURES_PER_RECORD:
            raise LimitExceededError(
                f"{table} record {document_id} has {len(signatures)} signatures, more than "
                f"{MAX_SIGNATURES_PER_RECORD}: delete superseded signature records"
            )
        config = self._configs.get(table)
        if config is not None and purpose is not None:
            check_purpose(config, purpose)

        if fields is None:
            latest = {id(s) for s in _newest_by_certificate(signatures)[0]}
            gone = tuple(
                SignatureCheck(s, id(s) in latest, False, ("record_gone",)) for s in signatures
            )
            return RecordVerification(
                table, document_id, Verdict.ORPHAN, ("record_gone",), gone, None
            )
        if not signatures:
            missing = ("no_signature" if config else "not_eligible",)
            return RecordVerification(table, document_id, Verdict.MISSING, missing, (), None)

        newest, older = _newest_by_certificate(signatures)
        if len(newest) > 1:  # trusted certificates first, then newest: require_valid stops early
            newest.sort(key=lambda s: (s.signed_at, s.sys_id), reverse=True)
            newest.sort(key=self._trusted_first)
        checks: list[SignatureCheck] = []
        valid: SignatureRecord | None = None
        untrusted = False
        for sig in newest:
            cert = self._certificates.get(sig.certificate)
            if cert is None:
                checks.append(SignatureCheck(sig, True, False, (_UNKNOWN_CERTIFICATE,)))
                continue
            reasons = self._check(sig, cert, table, document_id, fields, config, purpose)
            checks.append(SignatureCheck(sig, True, not reasons, reasons))
            if not reasons and valid is None:
                valid = sig
                if stop_at_valid:
                    break
            # passes every check but trust
            untrusted = untrusted or (not cert.trusted and reasons == (_trust_reason(cert),))
        if older:
            checks.extend(SignatureCheck(s, False, False, (_SUPERSEDED,)) for s in older)
        all_checks = tuple(checks)

        if valid is not None:
            return RecordVerification(table, document_id, Verdict.VALID, (), all_checks, valid)
        if all(c.reasons == (_UNKNOWN_CERTIFICATE,) for c in checks if c.newest_in_group):
            return RecordVerification(
                table, document_id, Verdict.ORPHAN, (_UNKNOWN_CERTIFICATE,), all_checks, None
            )
        reasons = _union(c.reasons for c in checks if c.newest_in_group)
        verdict = Verdict.UNTRUSTED if untrusted else Verdict.INVALID
        return RecordVerification(table, document_id, verdict, reasons, all_checks, None)

    def _trusted_first(self, sig: SignatureRecord) -> bool:
        cert = self._certificates.get(sig.certificate)
        return cert is None or not cert.trusted

    def _check(
        self,
        sig: SignatureRecord,
        cert: CertTrust,
        table: str,
        document_id: str,
        fields: Mapping[str, str | None],
        config: SignatureConfig | None,
        purpose: str | None,
    ) -> tuple[str, ...]:
        reasons: list[str] = []
        if sig.table_name != table or sig.document_id != document_id:
            reasons.append("wrong_document")
        if config is None:
            reasons.append("not_eligible")
        else:
            purpose_problem = _purpose_problem(sig.purpose, config, purpose)
            if purpose_problem:
                reasons.append(purpose_problem)
            if not set(config.fields).issubset(sig.signed_fields):
                reasons.append("fields_not_covered")
        signed_at = _parse_timestamp(sig.signed_at)
        expires_at = None if sig.expires_at is None else _parse_timestamp(sig.expires_at)
        if signed_at is None or (sig.expires_at is not None and expires_at is None):
            reasons.append("malformed_signature")
        else:
            if expires_at is not None and expires_at < self._now:
                reasons.append("expired")
            if signed_at > self._latest_signing:
                reasons.append("not_yet_valid")
        algorithm = _algorithm(sig.algorithm)
        raw = _decode(sig.signature)
        if algorithm is None:
            reasons.append("unknown_algorithm")
        if raw is None:
            reasons.append("malformed_signature")
        if algorithm is not None and raw is not None:
            payload = _payload(sig, fields)
            if payload is None or not self._verified(sig, cert, algorithm, raw, payload):
                reasons.append("signature_mismatch")
        if not cert.trusted:
            reasons.append(_trust_reason(cert))
        return tuple(dict.fromkeys(reasons)) if reasons else ()

    def _verified(
        self, sig: SignatureRecord, cert: CertTrust, algorithm: Algorithm, raw: bytes, data: bytes
    ) -> bool:
        """The public-key check, unless a receipt vouches for it; a success is recorded."""
        receipts = self._receipts
        if receipts is None:
            return algorithms.verify(algorithm, cert.public_key, raw, data)
        return receipts.check(
            sig.certificate,
            raw,
            data,
            lambda: algorithms.verify(algorithm, cert.public_key, raw, data),
        )


def _payload(sig: SignatureRecord, fields: Mapping[str, str | None]) -> bytes | None:
    """The payload *sig* signs over *fields*; None for text no signer could have signed
    (a lone surrogate)."""
    try:
        return record_signature_payload(
            purpose=sig.purpose,
            table=sig.table_name,
            document_id=sig.document_id,
            fields=fields,
            signed_fields=sig.signed_fields,
            certificate=sig.certificate,
            signed_at=sig.signed_at,
            expires_at=sig.expires_at,
        )
    except BadInputError:
        return None


def _newest_by_certificate(
    signatures: Sequence[SignatureRecord],
) -> tuple[list[SignatureRecord], list[SignatureRecord]]:
    """Split into the newest signature of each certificate and all the others."""
    if len(signatures) == 1:  # the common case: one signature, the newest of its group
        return [signatures[0]], []
    newest: dict[str, SignatureRecord] = {}
    older: list[SignatureRecord] = []
    for sig in signatures:
        best = newest.get(sig.certificate)
        if best is None:
            newest[sig.certificate] = sig
        elif (sig.signed_at, sig.sys_id) > (best.signed_at, best.sys_id):
            newest[sig.certificate] = sig
            older.append(best)
        else:
            older.append(sig)
    return list(newest.values()), older


def _purpose_problem(signed: str, config: SignatureConfig, wanted: str | None) -> str | None:
    if signed == WILDCARD:
        if config.table not in WILDCARD_TABLES:
            return "wildcard_not_allowed"
        return None if WILDCARD in config.purposes else "purpose_mismatch"
    if wanted is not None:
        return None if signed == wanted else "purpose_mismatch"
    return None if signed in config.purposes else "purpose_mismatch"


def _trust_reason(cert: CertTrust) -> str:
    return cert.reason or "certificate_untrusted"


_ALGORITHMS: dict[str, Algorithm] = {a.value: a for a in Algorithm}


def _algorithm(name: str) -> Algorithm | None:
    if type(name) is str:  # what ``Algorithm(name)`` looks up first, without the enum machinery
        return _ALGORITHMS.get(name)
    try:
        return Algorithm(name)
    except ValueError:
        return None


def _decode(text: str) -> bytes | None:
    try:
        raw = binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        return None
    return raw or None


def _union(groups: Iterable[tuple[str, ...]]) -> tuple[str, ...]:
    merged: dict[str, None] = {}
    for reasons in groups:
        merged.update(dict.fromkeys(reasons))
    return tuple(merged)
