"""The Code Signing policy statement as a MID sees it (DESIGN §6).

The instance serves its latest statement from its database; the MID treats it as a claim.
:func:`verify_policy_statement` checks it against the MID's pinned anchors (signature of a
``cot_policy_statement`` record, purpose ``Circle of Trust``), this instance's name, its
validity window. :class:`PolicyTracker` keeps the highest verified sequence in
:class:`PolicyStore` (a JSON file in ``work_dir``), so a lower sequence is refused even
after a restart. Until a statement has been verified, validation is on (fail closed);
nothing but a verified statement ever turns it off.
"""

from __future__ import annotations

import datetime as _dt
import enum
import json
import re
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from trustcircle._fs import read_limited, write_atomic
from trustcircle._time import format_ts, parse_ts
from trustcircle._types import SysId
from trustcircle.crypto import load_pem_certificates
from trustcircle.errors import BadInputError, TrustcircleError, VerificationError
from trustcircle.signing import (
    BUILTIN_CONFIGS,
    CIRCLE_OF_TRUST,
    CLOCK_SKEW,
    RecordVerifier,
    SignatureRecord,
)

from .trust import AnchorTrust

POLICY_TABLE = "cot_policy_statement"
ANY_INSTANCE = "*"
STATE_FILE = "policy-state.json"
_STATE_FORMAT = "trustcircle.mid-policy/v1"
_MAX_SIGNATURES = 64
_MAX_CERTIFICATES = 16
_SYS_ID = re.compile(r"[0-9a-f]{32}")
_SEQUENCE = re.compile(r"0|[1-9][0-9]{0,17}")


class PolicyState(enum.StrEnum):
    ON = "on"
    OFF = "off"


@dataclass(frozen=True)
class PolicyStatement:
    """A verified policy statement."""

    sys_id: str
    instance: str
    state: PolicyState
    sequence: int
    issued_at: str
    expires_at: str
    signature: str


def verify_policy_statement(
    response: object, trust: AnchorTrust, instance_name: str, now: _dt.datetime
) -> PolicyStatement:
    """Verify a ``GET /api/codesigning/policy`` body; return the statement or raise.

    Raises :class:`VerificationError` (a bad signature, an untrusted certificate, another
    instance, expired) or :class:`BadInputError` (malformed body), one line each.
    """
    statement, signatures, certificates = _parse(response)
    sys_id, fields = statement
    certs = trust.trust_map(certificates, (s.certificate for s in signatures), now)
    verifier = RecordVerifier(certs, BUILTIN_CONFIGS, now)
    try:
        good = verifier.require_valid(POLICY_TABLE, sys_id, fields, signatures, CIRCLE_OF_TRUST)
    except VerificationError as exc:
        raise VerificationError(f"policy statement is not validly signed: {exc.message}") from exc
    instance = fields["instance"] or ""
    if instance not in (ANY_INSTANCE, instance_name):
        raise VerificationError(
            f"policy statement {sys_id} names instance {instance[:100]!r}, not "
            f"{instance_name!r}: refusing it"
        )
    state = _state(fields["state"])
    expires = parse_ts(fields["expires_at"] or "")
    issued = parse_ts(fields["issued_at"] or "")
    if expires < now:
        raise VerificationError(
            f"policy statement {sys_id} expired at {fields['expires_at']}: issue a new one"
        )
    if issued > now + CLOCK_SKEW:
        raise VerificationError(
            f"policy statement {sys_id} is issued in the future ({fields['issued_at']}): "
            "check the clocks"
        )
    return PolicyStatement(
        sys_id=sys_id,
        instance=instance,
        state=state,
        sequence=_sequence(fields["sequence"]),
        issued_at=str(fields["issued_at"]),
        expires_at=str(fields["expires_at"]),
        signature=good.sys_id,
    )


def claimed_sequence(response: object) -> tuple[int, str, str] | None:
    """(sequence, state, sys_id) a policy body *claims*, unverified; None if malformed."""
    try:
        (sys_id, fields), _, _ = _parse(response)
        return _sequence(fields["sequence"]), _state(fields["state"]).value, sys_id
    except TrustcircleError:
        return None


def _parse(
    response: object,
) -> tuple[tuple[SysId, dict[str, str | None]], list[SignatureRecord], list[Any]]:
    if not isinstance(response, dict):
        raise BadInputError("policy response is not a JSON object")
    statement = response.get("statement")
    if not isinstance(statement, dict):
        raise BadInputError("policy response has no statement object")
    sys_id = statement.get("sys_id")
    if not isinstance(sys_id, str) or not _SYS_ID.fullmatch(sys_id):
        raise BadInputError("policy statement has no valid sys_id")
    raw_fields = statement.get("fields")
    if not isinstance(raw_fields, dict):
        raise BadInputError("policy statement has no fields object")
    fields: dict[str, str | None] = {}
    for name in BUILTIN_CONFIGS[POLICY_TABLE].fields:
        value = raw_fields.get(name)
        if not isinstance(value, str) or len(value) > 200:
            raise BadInputError(f"policy statement field {name} is missing or not short text")
        fields[name] = value
    raw_sigs = response.get("signatures") or []
    raw_certs = response.get("certificates") or []
    if not isinstance(raw_sigs, list) or len(raw_sigs) > _MAX_SIGNATURES:
        raise BadInputError("policy response signatures is not a short list")
    if not isinstance(raw_certs, list) or len(raw_certs) > _MAX_CERTIFICATES:
        raise BadInputError("policy response certificates is not a short list")
    signatures = []
    for item in raw_sigs:
        if not isinstance(item, dict) or any(
            v is not None and not isinstance(v, str) for v in item.values()
        ):
            raise BadInputError("policy response holds a malformed signature record")
        signatures.append(SignatureRecord.from_fields(str(item.get("sys_id", "")), item))
    certs = []
    for pem in raw_certs:
        if not isinstance(pem, str):
            raise BadInputError("policy response certificates must be PEM texts")
        certs.extend(load_pem_certificates(pem.encode("utf-8", "replace"), "policy certificate"))
    return (SysId(sys_id), fields), signatures, certs


def _state(value: str | None) -> PolicyState:
    try:
        return PolicyState(value or "")
    except ValueError as exc:
        raise BadInputError(f"policy statement state {str(value)[:20]!r} is not on or off") from exc


def _sequence(value: str | None) -> int:
    if value is None or not _SEQUENCE.fullmatch(value):
        raise BadInputError(f"policy statement sequence {str(value)[:20]!r} is not a number")
    return int(value)


@dataclass(frozen=True)
class AcceptedPolicy:
    """What the MID keeps across restarts: the highest verified statement."""

    sequence: int
    state: PolicyState
    statement: str
    instance: str
    issued_at: str
    expires_at: str
    accepted_at: str


class PolicyStore:
    """``work_dir/policy-state.json``: the highest verified statement, written atomically."""

    def __init__(self, work_dir: Path) -> None:
        self.path = Path(work_dir) / STATE_FILE

    def load(self) -> AcceptedPolicy | None:
        """The stored statement, None when there is none; a damaged file is refused."""
        if not self.path.exists():
            return None
        raw = read_limited(self.path, 64 * 1024, "MID policy state")
        try:
            data = json.loads(raw)
            if not isinstance(data, dict) or data.pop("format", None) != _STATE_FORMAT:
                raise ValueError("format")
            data["state"] = PolicyState(data["state"])
            accepted = AcceptedPolicy(**data)
            if type(accepted.sequence) is not int or accepted.sequence < 0:
                raise ValueError("sequence")
        except (ValueError, TypeError, KeyError) as exc:
            raise BadInputError(
                f"MID policy state {str(self.path)!r} is damaged: restore it from a backup "
                "(deleting it makes the MID forget the highest policy sequence it has seen)"
            ) from exc
        return accepted

    def save(self, accepted: AcceptedPolicy) -> None:
        data = {"format": _STATE_FORMAT, **asdict(accepted)}
        data["state"] = accepted.state.value
        write_atomic(self.path, json.dumps(data, indent=2, sort_keys=True).encode("utf-8"), 0o600)


@dataclass(frozen=True)
class PolicyUpdate:
    """The outcome of one fetch: whether validation is on now, and what happened."""

    validation_on: bool
    changed: bool
    refused: str | None = None


class PolicyTracker:
    """Applies fetched statements to the persisted state; thread-safe."""

    def __init__(self, store: PolicyStore, trust: AnchorTrust, instance_name: str) -> None:
        self._store = store
        self._trust = trust
        self._instance = instance_name
        self._lock = threading.Lock()
        self._accepted = store.load()

    @property
    def accepted(self) -> AcceptedPolicy | None:
        return self._accepted

    @property
    def validation_on(self) -> bool:
        """Off only when the highest verified statement says off."""
        accepted = self._accepted
        return accepted is None or accepted.state is not PolicyState.OFF

    def apply(self, response: object | None, now: _dt.datetime) -> PolicyUpdate:
        """Apply a fetched policy body (None: the instance has none). Never raises on bad data."""
        with self._lock:
            if response is None:
                return PolicyUpdate(self.validation_on, False)
            current = self._accepted
            claimed = claimed_sequence(response)
            if current is not None and claimed is not None:
                sequence, state, sys_id = claimed
                if sequence < current.sequence:
                    return self._refuse(
                        f"policy statement sequence {sequence} is lower than {current.sequence}, "
                        "the highest this MID has verified (rollback refused)"
                    )
                if sequence == current.sequence:
                    if (state, sys_id) == (current.state.value, current.statement):
                        return PolicyUpdate(self.validation_on, False)
                    return self._refuse(
                        f"policy statement {sys_id} reuses sequence {sequence} of statement "
                        f"{current.statement} with other content: refusing it"
                    )
            try:
                statement = verify_policy_statement(response, self._trust, self._instance, now)
            except TrustcircleError as exc:
                return self._refuse(exc.message)
            accepted = AcceptedPolicy(
                sequence=statement.sequence,
                state=statement.state,
                statement=statement.sys_id,
                instance=statement.instance,
                issued_at=statement.issued_at,
                expires_at=statement.expires_at,
                accepted_at=format_ts(now),
            )
            self._store.save(accepted)
            self._accepted = accepted
            return PolicyUpdate(self.validation_on, True)

    def _refuse(self, reason: str) -> PolicyUpdate:
        return PolicyUpdate(self.validation_on, False, reason)
