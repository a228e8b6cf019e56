"""The ECC queue (DESIGN §7): ``output`` messages for MID servers and their ``input`` answers.

Claiming is atomic: the rows are selected ``FOR UPDATE SKIP LOCKED`` (PostgreSQL; SQLite
transactions are ``BEGIN IMMEDIATE`` already, so one writer at a time) and moved from
``ready`` to ``processing`` in the same transaction, so two MIDs never get one message.
A result is accepted once per claim: only a ``processing`` message takes one, and a
second result is refused (409). A claim whose MID sends no result in time (it stopped,
or lost the result) ends in ``error`` (:func:`expire_claims`), never ``ready`` again:
a command that may have run is not run twice. The claiming MID's late result still
replaces that error. Nothing here notarizes: see :mod:`.tracker`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Row, Table, bindparam, select, update
from sqlalchemy import insert as sql_insert
from sqlalchemy.orm import Session

from .._types import Timestamp, new_sys_id
from ..errors import BadInputError, LimitExceededError, NotFoundError, RefusedError, UsageError
from ..store.models import EccQueue
from .wake import wake_on_commit

AGENT_PREFIX = "mid.server."
OUTPUT, INPUT = "output", "input"
READY, PROCESSING, PROCESSED, ERROR = "ready", "processing", "processed", "error"
QUEUES = (OUTPUT, INPUT)
STATES = (READY, PROCESSING, PROCESSED, ERROR)
RESULT_STATES = (PROCESSED, ERROR)
MAX_PAYLOAD_CHARS = 4 * 1024 * 1024
MAX_LABEL_CHARS = 4000
MAX_ERROR_CHARS = 64 * 1024
MAX_CLAIM = 500
MAX_LIST = 10_000
_MID_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,79}")
_TOPIC = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,99}")
_SYS_ID = re.compile(r"[0-9a-f]{32}")
_TABLE = cast(Table, EccQueue.__table__)


def mid_name(agent: str) -> str:
    """The MID name of agent ``mid.server.<name>``; :class:`UsageError` for anything else."""
    name = agent.removeprefix(AGENT_PREFIX) if isinstance(agent, str) else ""
    if not agent.startswith(AGENT_PREFIX) or not _MID_NAME.fullmatch(name):
        raise UsageError(
            f"agent {str(agent)[:100]!r} is not mid.server.<name> (name: 1-80 letters, digits, "
            "'.', '_' or '-')"
        )
    return name


def check_mid_name(name: str) -> str:
    if not isinstance(name, str) or not _MID_NAME.fullmatch(name):
        raise UsageError(
            f"MID name {str(name)[:100]!r} is not allowed: use 1-80 letters, digits, '.', '_' "
            "or '-', starting with a letter or digit"
        )
    return name


@dataclass(frozen=True)
class NewMessage:
    """An output message to put on the queue, checked."""

    agent: str
    topic: str
    name: str
    payload: str
    source: str


def check_message(
    agent: str, topic: str, name: str | None, payload: str | None, source: str | None
) -> NewMessage:
    """Check the fields of a new output message (bounds and shapes); return them."""
    mid_name(agent)
    if not isinstance(topic, str) or not _TOPIC.fullmatch(topic):
        raise UsageError(
            f"topic {str(topic)[:100]!r} is not a topic name such as Command, JDBCProbe, "
            "RESTProbe, PythonScript or SystemCommand"
        )
    for label, value in (("name", name), ("source", source)):
        if value is not None and (not isinstance(value, str) or len(value) > MAX_LABEL_CHARS):
            raise UsageError(f"{label} must be text of at most {MAX_LABEL_CHARS} characters")
    if payload is not None and not isinstance(payload, str):
        raise UsageError("payload must be text")
    if payload is not None and len(payload) > MAX_PAYLOAD_CHARS:
        raise LimitExceededError(f"payload is over {MAX_PAYLOAD_CHARS} characters")
    return NewMessage(agent, topic, name or "", payload or "", source or "")


@dataclass(frozen=True)
class Notarization:
    """The tracker's notarization of a message (DESIGN §7)."""

    payload: Mapping[str, Any]
    algorithm: str
    certificate: str
    signature: str


def insert(
    session: Session,
    message: NewMessage,
    *,
    created_by: str,
    now: Timestamp,
    sys_id: str | None = None,
    notarization: Notarization | None = None,
) -> EccQueue:
    """Put *message* on the output queue (ready); polls of its agent wake at commit."""
    row = EccQueue(
        sys_id=sys_id or new_sys_id(),
        agent=message.agent,
        topic=message.topic,
        name=message.name,
        source=message.source,
        payload=message.payload,
        queue=OUTPUT,
        state=READY,
        response_to="",
        error_string="",
        created_on=now,
        created_by=created_by,
        processed_on="",
        claimed_by="",
        claimed_on="",
        claim_expired=False,
    )
    if notarization is not None:
        row.notarization_payload = json.dumps(
            dict(notarization.payload), sort_keys=True, separators=(",", ":")
        )
        row.notarization_algorithm = notarization.algorithm
        row.notarization_certificate = notarization.certificate
        row.notarization_signature = notarization.signature
    session.add(row)
    wake_on_commit(session, message.agent)
    return row


def to_dict(row: EccQueue | Row[Any]) -> dict[str, object]:
    """The issue-4 JSON shape of an ECC record (API and CLI ``--json``)."""
    notarization: dict[str, object] | None = None
    if row.notarization_payload is not None:
        notarization = {
            "payload": json.loads(row.notarization_payload),
            "algorithm": row.notarization_algorithm,
            "certificate": row.notarization_certificate,
            "signature": row.notarization_signature,
        }
    return {
        "sys_id": row.sys_id,
        "agent": row.agent,
        "topic": row.topic,
        "name": row.name,
        "source": row.source,
        "payload": row.payload,
        "queue": row.queue,
        "state": row.state,
        "response_to": row.response_to,
        "error_string": row.error_string,
        "created_on": row.created_on,
        "processed_on": row.processed_on,
        "claimed_by": row.claimed_by,
        "claimed_on": row.claimed_on,
        "notarization": notarization,
    }


def get(session: Session, sys_id: str) -> EccQueue:
    row = session.get(EccQueue, sys_id) if _SYS_ID.fullmatch(sys_id or "") else None
    if row is None:
        raise NotFoundError(
            f"no ECC message {str(sys_id)[:40]!r}: list them with `trustcircle ecc list`"
        )
    return row


def response_of(session: Session, sys_id: str) -> EccQueue | None:
    """The input record answering output message *sys_id* (the newest, if several)."""
    return session.scalar(
        select(EccQueue)
        .where(EccQueue.response_to == sys_id, EccQueue.queue == INPUT)
        .order_by(EccQueue.created_on.desc(), EccQueue.sys_id)
        .limit(1)
    )


def list_messages(
    session: Session,
    *,
    agent: str | None = None,
    state: str | None = None,
    queue: str | None = None,
    limit: int = 1000,
) -> list[EccQueue]:
    """Messages matching the filters, newest first."""
    if state is not None and state not in STATES:
        raise UsageError(f"state {state[:20]!r} is unknown: use one of {', '.join(STATES)}")
    if queue is not None and queue not in QUEUES:
        raise UsageError(f"queue {queue[:20]!r} is unknown: use output or input")
    if not 1 <= limit <= MAX_LIST:
        raise UsageError(f"limit must be between 1 and {MAX_LIST}")
    stmt = select(EccQueue)
    if agent:
        stmt = stmt.where(EccQueue.agent == agent)
    if state:
        stmt = stmt.where(EccQueue.state == state)
    if queue:
        stmt = stmt.where(EccQueue.queue == queue)
    stmt = stmt.order_by(EccQueue.created_on.desc(), EccQueue.sys_id).limit(limit)
    return list(session.scalars(stmt))


def has_ready(session: Session, agent: str) -> bool:
    """Whether *agent* has a ready output message (a cheap check before claiming)."""
    found = session.scalar(
        select(_TABLE.c.sys_id)
        .where(_TABLE.c.agent == agent, _TABLE.c.queue == OUTPUT, _TABLE.c.state == READY)
        .limit(1)
    )
    return found is not None


def claim(session: Session, agent: str, claimer: str, limit: int, now: Timestamp) -> list[Row[Any]]:
    """Move up to *limit* ready output messages of *agent* to processing, oldest first.

    One ``UPDATE ... WHERE sys_id IN (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING``:
    atomic on its own; returns the claimed rows (attribute access, as :func:`to_dict` takes).
    """
    if not 1 <= limit <= MAX_CLAIM:
        raise UsageError(f"max must be between 1 and {MAX_CLAIM}")
    ready = (
        select(_TABLE.c.sys_id)
        .where(_TABLE.c.agent == agent, _TABLE.c.queue == OUTPUT, _TABLE.c.state == READY)
        .order_by(_TABLE.c.created_on, _TABLE.c.sys_id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    claimed = session.execute(
        update(_TABLE)
        .where(_TABLE.c.sys_id.in_(ready), _TABLE.c.state == READY)
        .values(state=PROCESSING, claimed_by=claimer, claimed_on=now)
        .returning(*_TABLE.c)
    ).all()
    return sorted(claimed, key=lambda row: (row.created_on, row.sys_id))


@dataclass(frozen=True)
class Expired:
    """A claim that ran out: the message, now ``error``, and who had claimed it when."""

    sys_id: str
    agent: str
    topic: str
    claimed_by: str
    claimed_on: str
    error_string: str


def expire_claims(
    session: Session, now: Timestamp, cutoff: Timestamp, timeout: int
) -> list[Expired]:
    """Mark up to :data:`MAX_LIST` output messages claimed before *cutoff* and still
    without a result as ``error``, saying why; the rows it marked (locked as claims are).

    *timeout* is the seconds from claim to *cutoff*, for the message.
    """
    c = _TABLE.c
    stale = session.execute(
        select(c.sys_id, c.agent, c.topic, c.claimed_by, c.claimed_on)
        .where(c.queue == OUTPUT, c.state == PROCESSING, c.claimed_on < cutoff)
        .order_by(c.claimed_on, c.sys_id)
        .limit(MAX_LIST)
        .with_for_update(skip_locked=True)
    ).all()
    expired = [
        Expired(
            row.sys_id,
            row.agent,
            row.topic,
            row.claimed_by,
            row.claimed_on,
            f"no result from MID {row.claimed_by or '?'} within {timeout} s of its claim at "
            f"{row.claimed_on}: it may have stopped or lost the result. The message is not run "
            "again; enqueue it again if it should still run (a late result from that MID "
            "replaces this error)",
        )
        for row in stale
    ]
    if expired:
        session.execute(
            update(_TABLE)
            .where(_TABLE.c.sys_id == bindparam("b_id"), _TABLE.c.state == PROCESSING)
            .values(
                state=ERROR,
                processed_on=now,
                error_string=bindparam("b_error"),
                claim_expired=True,
            ),
            [{"b_id": e.sys_id, "b_error": e.error_string} for e in expired],
        )
    return expired


@dataclass(frozen=True)
class Result:
    """A MID's result for one claimed message."""

    sys_id: str
    state: str
    output: str
    error_string: str
    denied: bool


def parse_result(sys_id: str, data: Mapping[str, object]) -> Result:
    """Check one result body (``state``, ``output``, ``error_string``, ``denied``)."""
    if not isinstance(sys_id, str) or not _SYS_ID.fullmatch(sys_id):
        raise BadInputError(f"result names no valid message sys_id ({str(sys_id)[:40]!r})")
    state = data.get("state")
    if state not in RESULT_STATES:
        raise BadInputError(f"result state {str(state)[:20]!r} is not processed or error")
    output, error = data.get("output", ""), data.get("error_string", "")
    denied = data.get("denied", False)
    if not isinstance(output, str) or not isinstance(error, str) or not isinstance(denied, bool):
        raise BadInputError("result output and error_string must be text, denied true or false")
    if len(output) > MAX_PAYLOAD_CHARS:
        raise LimitExceededError(f"result output is over {MAX_PAYLOAD_CHARS} characters")
    if len(error) > MAX_ERROR_CHARS:
        raise LimitExceededError(f"result error_string is over {MAX_ERROR_CHARS} characters")
    return Result(sys_id, str(state), output, error, denied)


@dataclass(frozen=True)
class Posted:
    """A result taken: the output message (now processed/error) and its new input record."""

    sys_id: str
    agent: str
    topic: str
    state: str
    response: str
    result: Result


def post_results(
    session: Session,
    results: Sequence[Result],
    now: Timestamp,
    *,
    may_report: Callable[[str], None],
) -> list[Posted]:
    """Take every result or none: each must name a claimed (processing) output message,
    or one whose claim ran out (:func:`expire_claims`), whose agent the caller may report
    for (*may_report* raises otherwise)."""
    ids = [r.sys_id for r in results]
    if len(set(ids)) != len(ids):
        raise BadInputError("a batch names one message twice: send each result once")
    rows = {row.sys_id: row for row in _load(session, ids)}
    allowed: set[str] = set()
    for result in results:
        row = rows.get(result.sys_id)
        if row is None or row.queue != OUTPUT:
            raise NotFoundError(f"no ECC output message {result.sys_id}: nothing to answer")
        if row.agent not in allowed:
            may_report(row.agent)
            allowed.add(row.agent)
        if row.state != PROCESSING and not (row.state == ERROR and row.claim_expired):
            if row.state == READY:
                raise RefusedError(f"message {row.sys_id} is not claimed: poll for it first")
            raise RefusedError(
                f"message {row.sys_id} already has a result (state {row.state}): "
                "a message is answered once"
            )
    updates: list[dict[str, object]] = []
    inputs: list[dict[str, object]] = []
    posted: list[Posted] = []
    for result in results:
        row = rows[result.sys_id]
        response = new_sys_id()
        updates.append(
            {
                "sys_id": row.sys_id,
                "state": result.state,
                "processed_on": now,
                "error_string": result.error_string,
                "claim_expired": False,
            }
        )
        inputs.append(
            {
                "sys_id": response,
                "agent": row.agent,
                "topic": row.topic,
                "name": row.name,
                "source": row.source,
                "payload": result.output,
                "queue": INPUT,
                "state": result.state,
                "response_to": row.sys_id,
                "error_string": result.error_string,
                "created_on": now,
                "created_by": row.claimed_by or row.agent,
                "processed_on": now,
                "claimed_by": "",
                "claimed_on": "",
                "claim_expired": False,
            }
        )
        posted.append(Posted(row.sys_id, row.agent, row.topic, result.state, response, result))
    session.execute(update(EccQueue), updates)  # executemany by primary key
    session.execute(sql_insert(EccQueue), inputs)
    return posted


def _load(session: Session, ids: Iterable[str]) -> list[Row[Any]]:
    todo = list(ids)
    rows: list[Row[Any]] = []
    columns = [_TABLE.c[k] for k in ("sys_id", "agent", "topic", "name", "source", "queue",
                                      "state", "claimed_by", "claim_expired")]  # fmt: skip
    for start in range(0, len(todo), 500):
        chunk = todo[start : start + 500]
        rows.extend(session.execute(select(*columns).where(_TABLE.c.sys_id.in_(chunk))))
    return rows
