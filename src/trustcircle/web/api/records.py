"""Records of the signable tables and their KMF signature records (``record``/``signature``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query, status
from pydantic import BaseModel, ConfigDict, Field

from ...jobs.model import name_matcher
from ...platform import records as store
from ...platform import signatures
from ...platform.tables import table_def
from ...signing import CODE_SIGNING
from ..deps import InstanceDep, TokenDep, operation
from ._common import LIST_LIMIT, api_router, parse_id

router = api_router("records")

MAX_FIELDS = 200

Table = Annotated[
    str, Path(max_length=64, description="Table name, e.g. sysauto_script or sys_script_include.")
]
RecordId = Annotated[str, Path(max_length=64, description="sys_id of the record (32 hex).")]


class FieldsBody(BaseModel):
    """Field values of a record: text, or null for an absent value."""

    model_config = ConfigDict(extra="forbid")
    fields: dict[Annotated[str, Field(max_length=100)], str | None] = Field(
        max_length=MAX_FIELDS, description="NAME → value; each value at most 1 MiB of text."
    )


class SignBody(BaseModel):
    """How to sign: the purpose, the crypto module whose key signs, the algorithm."""

    model_config = ConfigDict(extra="forbid")
    purpose: str = Field(CODE_SIGNING, min_length=1, max_length=100)
    module: str = Field("cm_code_signing", min_length=1, max_length=100)
    algorithm: str | None = Field(None, max_length=64, description="Default: the key's.")


@router.post(
    "/records/{table}",
    status_code=status.HTTP_201_CREATED,
    summary="Add a record (captured into your current update set)",
)
def add_record(table: Table, body: FieldsBody, inst: InstanceDep, token: TokenDep) -> Any:
    table_def(table)
    with operation(inst, token, "record.write", table) as op:
        change = store.insert(op.session, table, body.fields, op.actor.name, op.ts)
        op.target = f"{table}:{change.record.sys_id}"
        op.changed(table, change.record.sys_id, "INSERT", change.record.fields)
    return change.record.to_dict()


@router.get("/records/{table}", summary="List records of a table")
def list_records(
    table: Table,
    inst: InstanceDep,
    token: TokenDep,
    name: Annotated[
        str | None,
        Query(
            max_length=100,
            description="Name search: *x contains, %x ends with, =x equals, x starts with.",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=LIST_LIMIT)] = 1000,
) -> Any:
    matcher = name_matcher(name)
    with operation(inst, token, "record.read", write=False) as op:
        if matcher is None:
            rows = store.query(op.session, table, limit=limit)
        else:
            rows = [
                r
                for r in store.query(op.session, table, limit=LIST_LIMIT)
                if matcher.search(r.fields.get("name") or "")
            ][:limit]
    return [r.to_dict() for r in rows]


@router.get("/records/{table}/{sys_id}", summary="Show one record")
def show_record(table: Table, sys_id: RecordId, inst: InstanceDep, token: TokenDep) -> Any:
    sid = parse_id(sys_id)
    with operation(inst, token, "record.read", write=False) as op:
        record = store.get(op.session, table, sid)
    return record.to_dict()


@router.patch("/records/{table}/{sys_id}", summary="Change fields of a record")
def update_record(
    table: Table, sys_id: RecordId, body: FieldsBody, inst: InstanceDep, token: TokenDep
) -> Any:
    sid = parse_id(sys_id)
    with operation(inst, token, "record.write", f"{table}:{sid}") as op:
        change = store.update(op.session, table, sid, body.fields, op.actor.name, op.ts)
        op.detail = {"fields": sorted(body.fields)}
        op.changed(table, sid, "UPDATE", change.record.fields)
    return change.record.to_dict()


@router.delete("/records/{table}/{sys_id}", summary="Delete a record (captured)")
def delete_record(table: Table, sys_id: RecordId, inst: InstanceDep, token: TokenDep) -> Any:
    sid = parse_id(sys_id)
    with operation(inst, token, "record.write", f"{table}:{sid}") as op:
        change = store.delete(op.session, table, sid)
        op.changed(table, sid, "DELETE", change.record.fields)
    return {"table": table, "sys_id": sid, "deleted": True}


@router.post(
    "/records/{table}/{sys_id}/sign",
    status_code=status.HTTP_201_CREATED,
    summary="Sign a record's current values (trusted instances only)",
)
def sign_record(
    table: Table, sys_id: RecordId, body: SignBody, inst: InstanceDep, token: TokenDep
) -> Any:
    sid = parse_id(sys_id)
    with operation(inst, token, "record.sign", f"{table}:{sid}") as op:
        sig = signatures.sign(
            op, table, sid, purpose=body.purpose, module=body.module, algorithm=body.algorithm
        )
    return sig.to_fields() | {"sys_id": sig.sys_id}


@router.get(
    "/records/{table}/{sys_id}/verify",
    summary="Verify a record's signatures",
    description="A report, always 200: `verdict` is valid, invalid, missing, orphan or "
    "untrusted, with the reasons.",
)
def verify_record(
    table: Table,
    sys_id: RecordId,
    inst: InstanceDep,
    token: TokenDep,
    purpose: Annotated[str | None, Query(max_length=100, description="Require it.")] = None,
) -> Any:
    sid = parse_id(sys_id)
    with operation(inst, token, "record.read", write=False) as op:
        result = signatures.verify(op.session, table, sid, op.now, purpose)
    return result.to_dict()


@router.get("/signatures", tags=["signatures"], summary="List KMF signature records")
def list_signatures(
    inst: InstanceDep,
    token: TokenDep,
    purpose: Annotated[str | None, Query(max_length=100)] = None,
    table: Annotated[str | None, Query(max_length=64)] = None,
    certificate: Annotated[str | None, Query(max_length=64, description="Fingerprint.")] = None,
    limit: Annotated[int, Query(ge=1, le=LIST_LIMIT)] = 10_000,
) -> Any:
    with operation(inst, token, "signature.read", write=False) as op:
        rows = signatures.list_signatures(
            op.session, purpose=purpose, table=table, certificate=certificate, limit=limit
        )
    return [r.to_fields() | {"sys_id": r.sys_id} for r in rows]
