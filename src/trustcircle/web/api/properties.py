"""System properties and the hash-chained audit log (``property`` / ``audit``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from ...platform import audit, properties
from ...store.models import AuditEntry
from ..deps import InstanceDep, TokenDep, operation
from ._common import api_router

router = api_router("properties")

MAX_AUDIT = 10_000
Name = Annotated[
    str, Path(min_length=1, max_length=200, description="Property name (seed aliases accepted).")
]


class PropertyValue(BaseModel):
    """The new value of an ordinary (not protected) property."""

    model_config = ConfigDict(extra="forbid")
    value: str = Field(max_length=65536)


@router.get("/properties", summary="List system properties (protected ones marked)")
def list_properties(
    inst: InstanceDep,
    token: TokenDep,
    prefix: Annotated[str, Query(max_length=200, description="Names starting with it.")] = "",
) -> Any:
    with operation(inst, token, "property.read", write=False) as op:
        return [v.to_dict() for v in properties.list_properties(op.session, prefix)]


@router.get("/properties/{name}", summary="One property's value")
def get_property(name: Name, inst: InstanceDep, token: TokenDep) -> Any:
    with operation(inst, token, "property.read", write=False) as op:
        value = properties.require_property(op.session, name)
    return {
        "name": properties.canonical_name(name),
        "value": value,
        "protected": properties.is_protected(name),
    }


@router.put(
    "/properties/{name}",
    summary="Set an ordinary property",
    description="Protected properties change only by executing a verified Circle-of-Trust job: "
    "a PUT on one is refused (403) for every user, admin included, and audited.",
)
def set_property(name: Name, body: PropertyValue, inst: InstanceDep, token: TokenDep) -> Any:
    canonical = properties.canonical_name(name)
    with operation(inst, token, "property.write", canonical) as op:
        stored = properties.set_property(op.session, canonical, body.value, op.actor.name, op.ts)
        op.detail = {"value": stored}
    return {"name": canonical, "value": stored}


@router.get("/audit", tags=["audit"], summary="The newest audit entries")
def audit_list(
    inst: InstanceDep,
    token: TokenDep,
    limit: Annotated[int, Query(ge=1, le=MAX_AUDIT)] = 50,
) -> Any:
    with operation(inst, token, "audit.verify", write=False) as op:
        rows = op.session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(limit))
        return [
            {
                "seq": r.seq,
                "at": r.at,
                "actor": r.actor,
                "action": r.action,
                "target": r.target,
                "outcome": r.outcome,
                "detail": r.detail,
            }
            for r in rows
        ]


@router.get(
    "/audit/verify",
    tags=["audit"],
    summary="Check the audit log's hash chain",
    description="A report, always 200: `ok` is false and `problems` lists every edited, "
    "inserted or removed entry when the chain is broken.",
)
def audit_verify(
    inst: InstanceDep,
    token: TokenDep,
    head: Annotated[
        str | None, Query(max_length=64, description="Head hash you recorded earlier.")
    ] = None,
) -> Any:
    with operation(inst, token, "audit.verify", write=False) as op:
        return audit.verify(op.session, head).to_dict()
