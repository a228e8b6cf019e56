"""MID servers: registration and heartbeats (role mid_server), the list, validation (admin)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field

from ...ecc import mids, service
from ...ecc.mids import CheckIn
from ..deps import InstanceDep, TokenDep, operation
from ._common import api_router

router = api_router("MID servers")

MidName = Annotated[
    str, Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
]
NamePath = Annotated[
    str, Path(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
]
Mode = Literal["enforcing", "audit", ""]


class RegisterBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: MidName
    version: str = Field(default="", max_length=40)
    firewall_mode: Mode = ""
    host: str = Field(default="", max_length=255)


class HeartbeatBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: MidName
    version: str = Field(default="", max_length=40)
    firewall_mode: Mode = ""
    stats: dict[str, Any] = Field(default_factory=dict, max_length=200)


@router.post(
    "/mid/register",
    summary="Register this MID (a new one waits for an admin to validate it)",
    description="The MID's name belongs to the account that registered it first.",
)
def register(body: RegisterBody, inst: InstanceDep, token: TokenDep) -> Any:
    with operation(inst, token, "mid.agent", body.name) as op:
        row = mids.register(
            op.session,
            op.actor.name,
            CheckIn(body.name, body.version, body.firewall_mode, body.host),
            op.ts,
        )
        op.detail = {"validated": row.validated, "firewall_mode": row.firewall_mode}
        return {"name": row.name, "validated": row.validated}


@router.post("/mid/heartbeat", summary="A MID's heartbeat: check-in time, version, stats")
def heartbeat(body: HeartbeatBody, inst: InstanceDep, token: TokenDep) -> Any:
    check_in = CheckIn(body.name, body.version, body.firewall_mode, stats=body.stats)
    with operation(inst, token, "mid.agent", body.name, write=False) as op:
        row = service.heartbeat(op, check_in)
        return {"validated": row.validated}


@router.get(
    "/mid",
    summary="MID servers: status (active when checked in within 60 s), validation, mode",
)
def list_mids(inst: InstanceDep, token: TokenDep) -> Any:
    with operation(inst, token, "mid.read", write=False) as op:
        return mids.list_mids(op.session, op.now)


@router.post("/mid/{name}/validate", summary="Validate a registered MID: it may get work")
def validate(name: NamePath, inst: InstanceDep, token: TokenDep) -> Any:
    return _set(inst, token, name, True)


@router.post("/mid/{name}/invalidate", summary="Withdraw a MID's validation: it gets no work")
def invalidate(name: NamePath, inst: InstanceDep, token: TokenDep) -> Any:
    return _set(inst, token, name, False)


def _set(inst: Any, token: str, name: str, validated: bool) -> Any:
    with operation(inst, token, "mid.admin", name) as op:
        row = mids.set_validated(op.session, name, validated, op.actor.name, op.ts)
        op.detail = {"validated": validated}
        return mids.to_dict(row, op.now)
