"""The ECC queue: MIDs long-poll, claim and answer; admins insert directly and read it.

The long poll claims at once when work is ready; otherwise it waits, woken as soon as a
message for the agent is committed in this process, and re-checks the database every
250 ms for messages other processes (the CLI) inserted. MID traffic (polls, results) is
not written to the audit log: the queue records who claimed and answered what.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import Path, Query, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from ...ecc import queue as ecc_queue
from ...ecc import service
from ...ecc.queue import MAX_CLAIM, MAX_ERROR_CHARS, MAX_LABEL_CHARS, MAX_LIST, MAX_PAYLOAD_CHARS
from ...ecc.wake import WAKER
from ...platform.context import Instance
from ..deps import InstanceDep, TokenDep, operation
from ._common import api_router

router = api_router("ECC queue")

MAX_WAIT = 30.0
RECHECK = 0.25
"""Seconds between database re-checks of a waiting poll (inserts by other processes)."""

SysIdPath = Annotated[str, Path(min_length=32, max_length=32, pattern="^[0-9a-f]{32}$")]
Agent = Annotated[str, Field(max_length=100)]


class ResultBody(BaseModel):
    """A MID's result for one claimed message."""

    model_config = ConfigDict(extra="forbid")

    state: Literal["processed", "error"]
    output: str = Field(default="", max_length=MAX_PAYLOAD_CHARS)
    error_string: str = Field(default="", max_length=MAX_ERROR_CHARS)
    denied: bool = False


class BatchItem(ResultBody):
    sys_id: str = Field(min_length=32, max_length=32, pattern="^[0-9a-f]{32}$")


class BatchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    results: list[BatchItem] = Field(min_length=1, max_length=MAX_CLAIM)


class ClaimBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent: Agent
    max: int = Field(default=20, ge=1, le=MAX_CLAIM)


class EnqueueBody(BaseModel):
    """A message inserted directly: never notarized."""

    model_config = ConfigDict(extra="forbid")

    agent: Agent
    topic: str = Field(min_length=1, max_length=100)
    name: str = Field(default="", max_length=MAX_LABEL_CHARS)
    payload: str = Field(default="", max_length=MAX_PAYLOAD_CHARS)
    source: str = Field(default="", max_length=MAX_LABEL_CHARS)


def _claim(inst: Instance, token: str, agent: str, most: int) -> list[dict[str, object]]:
    with operation(inst, token, "mid.agent", agent, write=False) as op:
        return service.claim(op, agent, most)


def _has_ready(inst: Instance, agent: str) -> bool:
    with inst.db.transaction() as session:
        return ecc_queue.has_ready(session, agent)


@router.get(
    "/ecc/poll",
    summary="Long-poll: claim up to `max` ready messages of a validated MID's agent",
    description="Returns at once when work is ready; otherwise waits up to `wait` seconds "
    "(at most 30) and returns as soon as a message for the agent is enqueued. Claimed "
    "messages move to `processing` and belong to the caller: two MIDs never get one message.",
)
async def poll(
    inst: InstanceDep,
    token: TokenDep,
    agent: Annotated[str, Query(max_length=100)],
    max: Annotated[int, Query(ge=1, le=MAX_CLAIM)] = 20,
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT)] = 0.0,
) -> Any:
    deadline = time.monotonic() + wait
    with WAKER.listen(agent) as waiter:
        woken = True  # the first look always claims: it also authorises the caller
        while True:
            waiter.clear()
            if woken or await run_in_threadpool(_has_ready, inst, agent):
                messages = await run_in_threadpool(_claim, inst, token, agent, max)
            else:
                messages = []
            left = deadline - time.monotonic()
            if messages or left <= 0:
                return JSONResponse({"messages": messages})
            woken = await waiter.wait(min(RECHECK, left))


@router.post("/ecc/claim", summary="Claim up to `max` ready messages without waiting")
def claim(body: ClaimBody, inst: InstanceDep, token: TokenDep) -> Any:
    return JSONResponse({"messages": _claim(inst, token, body.agent, body.max)})


@router.post(
    "/ecc/batch_result",
    summary="Answer many claimed messages at once (all or none)",
    description="Same semantics as the single result; one refused result refuses the batch.",
)
def batch_result(body: BatchBody, inst: InstanceDep, token: TokenDep) -> Any:
    items = [(r.sys_id, r.model_dump(exclude={"sys_id"})) for r in body.results]
    with operation(inst, token, "mid.agent", "ecc_queue", write=False) as op:
        return JSONResponse({"results": service.post_results(op, items)})


@router.post(
    "/ecc/{sys_id}/result",
    summary="Answer a claimed message: creates its input record",
    description="Sets the message's state (processed or error), processed_on and "
    "error_string and creates the input record holding the output. A denial (`denied`) is "
    "written to the Code Signing log. A second result for the same message is refused (409).",
)
def result(sys_id: SysIdPath, body: ResultBody, inst: InstanceDep, token: TokenDep) -> Any:
    with operation(inst, token, "mid.agent", f"ecc_queue:{sys_id}", write=False) as op:
        return service.post_results(op, [(sys_id, body.model_dump())])[0]


@router.post(
    "/ecc",
    status_code=status.HTTP_201_CREATED,
    summary="Insert a message directly (admin): never notarized",
    description="MIDs that validate refuse such messages; the insert is in the Code Signing log.",
)
def enqueue(body: EnqueueBody, inst: InstanceDep, token: TokenDep) -> Any:
    with operation(inst, token, "ecc.write", body.agent) as op:
        return service.direct_insert(
            op, body.agent, body.topic, body.name, body.payload, body.source
        )


@router.get("/ecc", summary="List ECC records, newest first")
def list_messages(
    inst: InstanceDep,
    token: TokenDep,
    agent: Annotated[str | None, Query(max_length=100)] = None,
    state: Annotated[str | None, Query(max_length=20)] = None,
    queue: Annotated[str | None, Query(max_length=10)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST)] = 1000,
) -> Any:
    with operation(inst, token, "ecc.read", write=False) as op:
        rows = service.list_messages(op, agent=agent, state=state, queue_name=queue, limit=limit)
        return [ecc_queue.to_dict(r) for r in rows]


@router.get("/ecc/{sys_id}", summary="One ECC record and the input record answering it")
def show(sys_id: SysIdPath, inst: InstanceDep, token: TokenDep) -> Any:
    with operation(inst, token, "ecc.read", write=False) as op:
        return service.show(op, sys_id)
