"""Code Signing policy statements (DESIGN §6): issued on a trusted instance, applied on a
protected one, never applied twice or out of order.

A statement is a ``cot_policy_statement`` record (instance, state, sequence,
issued_at, expires_at) signed for the Circle of Trust with ``cm_code_attest``. The
trusted instance numbers them (highest local sequence + 1); the protected instance
logs each one it applies in ``cot_policy_statement_log``, and the highest sequence
there is current: a statement at or below it is a replay or a rollback.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .._time import format_ts, parse_ts
from ..errors import BadInputError, UsageError
from ..platform import properties, records, signatures
from ..platform.context import Instance
from ..signing import CIRCLE_OF_TRUST, CLOCK_SKEW, RecordVerifier, Verdict
from ..store.models import PolicyStatementRow

STATEMENT_TABLE = "cot_policy_statement"
ANY_INSTANCE = "*"
STATES = ("on", "off")
MAX_STATEMENTS = 10_000
_SEQUENCE = re.compile(r"[0-9]{1,18}")
_INSTANCE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


def target_instance(target: str | None) -> str:
    """The ``instance`` a statement names: an instance name, or ``*`` for any."""
    if target is None or target.strip() in ("", ANY_INSTANCE):
        return ANY_INSTANCE
    name = target.strip()
    if not _INSTANCE.fullmatch(name):
        raise UsageError(
            f"--target {name[:70]!r} is not an instance name: use the protected instance's "
            "name (lowercase letters, digits, '_' and '-'), or omit it for any instance"
        )
    return name


def next_sequence(session: Session) -> int:
    """One above the highest sequence of this instance's statement records."""
    highest = 0
    for record in records.query(session, STATEMENT_TABLE, limit=MAX_STATEMENTS):
        text = record.fields.get("sequence") or ""
        if _SEQUENCE.fullmatch(text):
            highest = max(highest, int(text))
    return highest + 1


def current_sequence(session: Session) -> int:
    """The sequence of the newest applied statement (0 when none was applied)."""
    return int(session.scalar(select(func.max(PolicyStatementRow.sequence))) or 0)


@dataclass(frozen=True)
class Statement:
    """A statement record's fields, parsed (claims only, until :func:`judge` says so)."""

    sys_id: str
    instance: str
    state: str
    sequence: int
    issued_at: dt.datetime
    expires_at: dt.datetime

    def to_dict(self) -> dict[str, object]:
        return {
            "sys_id": self.sys_id,
            "instance": self.instance,
            "state": self.state,
            "sequence": self.sequence,
            "issued_at": format_ts(self.issued_at),
            "expires_at": format_ts(self.expires_at),
        }


def parse_statement(sys_id: str, fields: Mapping[str, str | None]) -> Statement:
    instance, state = fields.get("instance") or "", fields.get("state") or ""
    sequence = fields.get("sequence") or ""
    if instance != ANY_INSTANCE and not _INSTANCE.fullmatch(instance):
        raise BadInputError(f"policy statement {sys_id} names no valid instance")
    if state not in STATES:
        raise BadInputError(f"policy statement {sys_id} has state {state[:20]!r}, not on/off")
    if not _SEQUENCE.fullmatch(sequence):
        raise BadInputError(f"policy statement {sys_id} has a malformed sequence number")
    return Statement(
        sys_id,
        instance,
        state,
        int(sequence),
        parse_ts(fields.get("issued_at") or ""),
        parse_ts(fields.get("expires_at") or ""),
    )


@dataclass(frozen=True)
class StatementJudgement:
    """Whether a statement may be applied now, and the signature that makes it so."""

    statement: Statement | None
    signature: str | None
    ok: bool
    reason: str


def judge(
    session: Session,
    verifier: RecordVerifier,
    instance: Instance,
    state: str,
    now: dt.datetime,
) -> StatementJudgement:
    """The highest-sequence statement turning Code Signing *state* that may apply now.

    When none may, the judgement of the highest-sequence candidate says why.
    """
    current = current_sequence(session)
    best_fail: tuple[int, str] | None = None
    best: StatementJudgement | None = None
    for record in records.query(session, STATEMENT_TABLE, limit=MAX_STATEMENTS):
        try:
            st = parse_statement(record.sys_id, record.fields)
        except BadInputError as exc:
            best_fail = best_fail or (-1, exc.message)
            continue
        if st.state != state:
            continue
        result = verifier.verify(
            STATEMENT_TABLE,
            record.sys_id,
            record.fields,
            signatures.signatures_of(session, STATEMENT_TABLE, record.sys_id),
            CIRCLE_OF_TRUST,
        )
        label = f"statement #{st.sequence} ({st.state}, for {st.instance})"
        reason: str | None = None
        if result.verdict is not Verdict.VALID:
            reason = f"{label} is not validly signed ({', '.join(result.reasons)})"
        elif st.instance not in (ANY_INSTANCE, instance.name):
            reason = f"{label} names another instance, not {instance.name!r}"
        elif st.expires_at < now:
            reason = f"{label} expired at {format_ts(st.expires_at)}"
        elif st.issued_at > now + CLOCK_SKEW:
            reason = f"{label} is issued in the future ({format_ts(st.issued_at)})"
        elif st.sequence <= current:
            reason = (
                f"{label} is not above the current sequence {current}: "
                "a replay or rollback is refused"
            )
        if reason is not None:
            if best_fail is None or st.sequence > best_fail[0]:
                best_fail = (st.sequence, reason)
            continue
        if best is None or (best.statement and st.sequence > best.statement.sequence):
            sig = result.valid_signature
            best = StatementJudgement(
                st, sig.sys_id if sig else None, True, f"{label} verifies and is above {current}"
            )
    if best is not None:
        return best
    if best_fail is not None:
        return StatementJudgement(None, None, False, best_fail[1] + ": export the job again")
    return StatementJudgement(
        None,
        None,
        False,
        f"no signed policy statement turns Code Signing {state}: export the job with its "
        "statement from the trusted instance and commit it here",
    )


@dataclass(frozen=True)
class PolicyView:
    """What ``cot policy`` shows: the switches, the applied statements, the issued ones."""

    validation_flag: bool
    validation_certificate: tuple[str, ...]
    applied: tuple[dict[str, object], ...]  # newest first
    statements: tuple[dict[str, object], ...]  # this instance's statement records

    @property
    def current_sequence(self) -> int:
        return int(str(self.applied[0]["sequence"])) if self.applied else 0

    def to_dict(self) -> dict[str, object]:
        return {
            "validation_flag": self.validation_flag,
            "validation_certificate": list(self.validation_certificate),
            "current_sequence": self.current_sequence,
            "current": self.applied[0] if self.applied else None,
            "applied": list(self.applied),
            "statements": list(self.statements),
        }


def current_policy(session: Session) -> PolicyView:
    """The Code Signing switches, the applied statements (newest 100) and the issued ones."""
    applied = session.scalars(
        select(PolicyStatementRow).order_by(PolicyStatementRow.sequence.desc()).limit(100)
    )
    issued: list[Statement] = []
    for record in records.query(session, STATEMENT_TABLE, limit=MAX_STATEMENTS):
        try:
            issued.append(parse_statement(record.sys_id, record.fields))
        except BadInputError:
            continue
    certs = properties.get_property(session, properties.VALIDATION_CERTIFICATE) or ""
    return PolicyView(
        properties.get_bool(session, properties.VALIDATION_FLAG),
        tuple(c for c in certs.split(",") if c),
        tuple(_applied(r) for r in applied),
        tuple(s.to_dict() for s in sorted(issued, key=lambda s: s.sequence)),
    )


def _applied(row: PolicyStatementRow) -> dict[str, object]:
    return {
        "sequence": row.sequence,
        "state": row.state,
        "instance": row.instance,
        "record": row.record,
        "signature": row.signature,
        "issued_at": row.issued_at,
        "expires_at": row.expires_at,
        "applied_on": row.applied_on,
        "applied_by": row.applied_by,
    }
