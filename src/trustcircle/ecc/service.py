"""What the HTTP API and the CLI do with the ECC queue, the MID registry and the log.

Each function runs inside an authorised :class:`~trustcircle.platform.context.Operation`
(the caller picks the action); they share the role rules, the transaction and the
audit trail of every other command.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from sqlalchemy import select

from .._time import format_ts
from ..errors import BadInputError, NotFoundError
from ..platform import properties, records
from ..platform.context import Operation
from ..platform.signatures import signatures_of
from ..signing import BUILTIN_CONFIGS
from ..store.models import EccQueue, MidServer, PolicyStatementRow
from . import cslog, mids, queue
from .expand import certificate_bundle

POLICY_TABLE = "cot_policy_statement"
MID_EVENTS = {
    "execution_denied": "error",
    "firewall_accept": "warn",
    "audit_would_deny": "warn",
    "policy_refused": "error",
}
"""Events a MID reports, with their log level (others are ``info``)."""


def claim(op: Operation, agent: str, limit: int) -> list[dict[str, object]]:
    """Claim up to *limit* ready messages of *agent* for the calling (validated) MID."""
    name = queue.mid_name(agent)
    mids.require_validated(op.session, op.actor.name, name)
    return [queue.to_dict(r) for r in queue.claim(op.session, agent, name, limit, op.ts)]


def heartbeat(op: Operation, check_in: mids.CheckIn) -> MidServer:
    """A MID's check-in, which also ends every overdue claim (:func:`expire_claims`): MIDs
    beat every few seconds, so the sweep runs often without costing every poll."""
    row = mids.heartbeat(op.session, op.actor.name, check_in, op.ts)
    expire_claims(op)
    return row


def list_messages(
    op: Operation,
    *,
    agent: str | None = None,
    state: str | None = None,
    queue_name: str | None = None,
    limit: int = 1000,
) -> list[EccQueue]:
    """The messages matching the filters, newest first, once every overdue claim has
    ended (so a message of a MID that stopped never shows as processing for good)."""
    expire_claims(op)
    return queue.list_messages(op.session, agent=agent, state=state, queue=queue_name, limit=limit)


def expire_claims(op: Operation) -> int:
    """End every claim older than ``trustcircle.ecc.result_timeout`` without a result:
    the message becomes ``error`` with the reason, logged to the Code Signing log.
    How many ended."""
    timeout = properties.get_int(op.session, properties.ECC_RESULT_TIMEOUT)
    cutoff = format_ts(op.now - dt.timedelta(seconds=timeout))
    expired = queue.expire_claims(op.session, op.ts, cutoff, timeout)
    for item in expired:
        cslog.add(
            op.session,
            cslog.Entry(
                level="error",
                source=cslog.INSTANCE,
                event="result_timeout",
                message=f"ECC message {item.sys_id} to {item.agent} ({item.topic}): "
                + item.error_string,
                ecc=item.sys_id,
                agent=item.agent,
                topic=item.topic,
                reported_by=op.actor.name,
            ),
            op.ts,
        )
    return len(expired)


def post_results(
    op: Operation, items: Sequence[tuple[str, Mapping[str, object]]]
) -> list[dict[str, str]]:
    """Take the results ``(sys_id, body)`` of one MID account, all or none; a denial is
    written to the Code Signing log."""
    results = [queue.parse_result(sys_id, body) for sys_id, body in items]
    posted = queue.post_results(
        op.session,
        results,
        op.ts,
        may_report=lambda agent: mids.may_report_for(op.session, op.actor.name, agent),
    )
    for item in posted:
        if item.result.denied:
            cslog.add(
                op.session,
                cslog.Entry(
                    level="error",
                    source=item.agent,
                    event="execution_denied",
                    message=item.result.error_string or "ECC message execution denied",
                    ecc=item.sys_id,
                    agent=item.agent,
                    topic=item.topic,
                    reported_by=op.actor.name,
                ),
                op.ts,
            )
    return [{"sys_id": p.sys_id, "state": p.state, "response": p.response} for p in posted]


def direct_insert(
    op: Operation,
    agent: str,
    topic: str,
    name: str | None = None,
    payload: str | None = None,
    source: str | None = None,
) -> dict[str, object]:
    """Put a message on the queue as the acting user: never notarized (logged as such)."""
    message = queue.check_message(agent, topic, name, payload, source)
    row = queue.insert(op.session, message, created_by=op.actor.name, now=op.ts)
    cslog.add(
        op.session,
        cslog.Entry(
            level="info",
            source=cslog.INSTANCE,
            event="direct_insert",
            message=(
                f"ECC message {row.sys_id} to {row.agent} ({row.topic}) inserted directly by "
                f"{op.actor.name}: not notarized, so MIDs that validate will refuse it"
            ),
            ecc=row.sys_id,
            agent=row.agent,
            topic=row.topic,
            reported_by=op.actor.name,
        ),
        op.ts,
    )
    op.target = f"ecc_queue:{row.sys_id}"
    op.detail = {"agent": row.agent, "topic": row.topic, "notarized": False}
    return queue.to_dict(row)


def show(op: Operation, sys_id: str) -> dict[str, object]:
    """A message and the input record answering it (or null), once every overdue claim
    has ended (:func:`expire_claims`)."""
    expire_claims(op)
    row = queue.get(op.session, sys_id)
    response = queue.response_of(op.session, row.sys_id) if row.queue == queue.OUTPUT else None
    return {
        "message": queue.to_dict(row),
        "response": None if response is None else queue.to_dict(response),
    }


def report(op: Operation, body: Mapping[str, object]) -> dict[str, object]:
    """A MID's Code Signing log entry (``event``, ``message``, ``agent``, ``ecc``, ``topic``,
    ``created_at``), accepted only for a MID the caller registered."""
    values = {
        k: body.get(k, "") for k in ("event", "message", "agent", "ecc", "topic", "created_at")
    }
    if not all(isinstance(v, str) for v in values.values()):
        raise BadInputError("a log report's fields must all be text")
    text = {k: str(v) for k, v in values.items()}
    agent = text["agent"]
    queue.mid_name(agent)
    mids.may_report_for(op.session, op.actor.name, agent)
    if len(text["message"]) > cslog.MAX_MESSAGE_CHARS:
        raise BadInputError(f"a log message is at most {cslog.MAX_MESSAGE_CHARS} characters")
    row = cslog.add(
        op.session,
        cslog.Entry(
            level=MID_EVENTS.get(text["event"], "info"),
            source=agent,
            event=text["event"],
            message=text["message"],
            ecc=text["ecc"][:32],
            agent=agent,
            topic=text["topic"][:100],
            reported_at=text["created_at"][:20],
            reported_by=op.actor.name,
        ),
        op.ts,
    )
    return cslog.to_dict(row)


def policy_document(op: Operation) -> dict[str, object]:
    """The applied policy statement with the highest sequence, its signatures and
    certificates: a claim a MID verifies against its own anchors."""
    session = op.session
    applied = session.scalar(
        select(PolicyStatementRow).order_by(PolicyStatementRow.sequence.desc()).limit(1)
    )
    record = None if applied is None else records.find(session, POLICY_TABLE, applied.record)
    if applied is None or record is None:
        raise NotFoundError(
            "no Code Signing policy statement is applied here: execute the signed Turn On job"
        )
    fields = {f: record.fields.get(f) or "" for f in BUILTIN_CONFIGS[POLICY_TABLE].fields}
    sigs = signatures_of(session, POLICY_TABLE, record.sys_id)
    return {
        "statement": {"sys_id": record.sys_id, "fields": fields},
        "signatures": [s.to_fields() for s in sorted(sigs, key=lambda s: s.sys_id)],
        "certificates": certificate_bundle(session, (s.certificate for s in sigs)),
    }
