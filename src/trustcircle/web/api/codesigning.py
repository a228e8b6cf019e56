"""The Code Signing log (instance and MID entries) and the current policy statement."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, status
from pydantic import BaseModel, ConfigDict, Field

from ...ecc import cslog, service
from ..deps import InstanceDep, TokenDep, operation
from ._common import api_router

router = api_router("Code Signing")


class LogReport(BaseModel):
    """What a MID reports: a denial, a firewall accept exception, an audit-mode finding."""

    model_config = ConfigDict(extra="forbid")

    event: str = Field(min_length=1, max_length=60, pattern=r"^[a-z][a-z0-9_]*$")
    message: str = Field(max_length=cslog.MAX_MESSAGE_CHARS)
    agent: str = Field(max_length=100)
    ecc: str = Field(default="", max_length=32)
    topic: str = Field(default="", max_length=100)
    created_at: str = Field(default="", max_length=20)


@router.get("/codesigning/log", summary="Code Signing log entries, newest first")
def log(
    inst: InstanceDep,
    token: TokenDep,
    source: Annotated[str | None, Query(max_length=120)] = None,
    event: Annotated[str | None, Query(max_length=60)] = None,
    ecc: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=cslog.MAX_LIST)] = 1000,
) -> Any:
    with operation(inst, token, "codesigning.log", write=False) as op:
        return cslog.list_entries(op.session, source=source, event_name=event, ecc=ecc, limit=limit)


@router.post(
    "/codesigning/log",
    status_code=status.HTTP_201_CREATED,
    summary="A MID's report for the Code Signing log (role mid_server, own agent only)",
)
def report(body: LogReport, inst: InstanceDep, token: TokenDep) -> Any:
    with operation(inst, token, "mid.agent", body.agent, write=False) as op:
        return service.report(op, body.model_dump())


@router.get(
    "/codesigning/policy",
    summary="The applied Code Signing policy statement, its signatures and certificates",
    description="404 when none was applied. Served from this instance's database: MIDs verify "
    "it against their own pinned anchors and the highest sequence they have seen.",
)
def policy(inst: InstanceDep, token: TokenDep) -> Any:
    with operation(inst, token, "codesigning.policy", write=False) as op:
        return service.policy_document(op)
