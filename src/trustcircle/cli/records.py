"""``record`` and ``signature`` commands."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from .._types import sys_id as parse_sys_id
from ..errors import VerificationError
from ..platform import records as store
from ..platform import signatures
from ..platform.tables import table_def
from ..signing import CODE_SIGNING, Verdict
from ._common import (
    HomeOpt,
    JsonOpt,
    TokenOpt,
    emit_json,
    emit_table,
    operation,
    out,
    parse_fields,
)

TableOpt = Annotated[str, typer.Option("--table", help="Table name, e.g. sysauto_script.")]
IdOpt = Annotated[str, typer.Option("--id", help="sys_id of the record (32 hex).")]
FieldOpt = Annotated[list[str], typer.Option("--field", help="NAME=VALUE or NAME=@FILE; repeat.")]


def register(app: typer.Typer) -> None:
    rec = typer.Typer(help="Records of signable tables.", no_args_is_help=True)
    for name, fn in (
        ("add", add),
        ("update", update),
        ("delete", delete),
        ("show", show),
        ("list", list_),
        ("sign", sign),
        ("verify", verify),
    ):
        rec.command(name)(fn)
    app.add_typer(rec, name="record")
    sig = typer.Typer(help="KMF signature records.", no_args_is_help=True)
    sig.command("list")(signature_list)
    app.add_typer(sig, name="signature")


def add(
    table: TableOpt,
    field: FieldOpt,
    home: HomeOpt = None,
    token_file: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Add a record; prints its sys_id."""
    table_def(table)
    fields = parse_fields(field)
    with operation(home, token_file, "record.write", table) as op:
        change = store.insert(op.session, table, fields, op.actor.name, op.ts)
        op.target = f"{table}:{change.record.sys_id}"
        op.changed(table, change.record.sys_id, "INSERT", change.record.fields)
    if json_out:
        emit_json(change.record.to_dict())
    else:
        sys.stdout.write(change.record.sys_id + "\n")


def update(
    table: TableOpt,
    id_: IdOpt,
    field: FieldOpt,
    home: HomeOpt = None,
    token_file: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Change fields of a record."""
    sid = parse_sys_id(id_)
    fields = parse_fields(field)
    with operation(home, token_file, "record.write", f"{table}:{sid}") as op:
        change = store.update(op.session, table, sid, fields, op.actor.name, op.ts)
        op.detail = {"fields": sorted(fields)}
        op.changed(table, sid, "UPDATE", change.record.fields)
    if json_out:
        emit_json(change.record.to_dict())
    else:
        out.print(f"updated {table} {sid}")


def delete(
    table: TableOpt,
    id_: IdOpt,
    home: HomeOpt = None,
    token_file: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Delete a record (captured into your current update set)."""
    sid = parse_sys_id(id_)
    with operation(home, token_file, "record.write", f"{table}:{sid}") as op:
        change = store.delete(op.session, table, sid)
        op.changed(table, sid, "DELETE", change.record.fields)
    if json_out:
        emit_json({"table": table, "sys_id": sid, "deleted": True})
    else:
        out.print(f"deleted {table} {sid}")


def show(
    table: TableOpt,
    id_: IdOpt,
    home: HomeOpt = None,
    token_file: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Show one record."""
    sid = parse_sys_id(id_)
    with operation(home, token_file, "record.read", write=False) as op:
        record = store.get(op.session, table, sid)
    if json_out:
        emit_json(record.to_dict())
    else:
        emit_table(f"{table} {sid}", ["field", "value"], [[k, v] for k, v in record.fields.items()])


def list_(
    table: TableOpt,
    limit: Annotated[int, typer.Option(help="At most N.")] = 1000,
    home: HomeOpt = None,
    token_file: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List records of a table."""
    with operation(home, token_file, "record.read", write=False) as op:
        rows = store.query(op.session, table, limit=max(1, min(limit, 100_000)))
    if json_out:
        emit_json([r.to_dict() for r in rows])
    else:
        emit_table(
            table,
            ["sys_id", "name", "updated", "mods"],
            [[r.sys_id, r.fields.get("name"), r.updated_on, r.mod_count] for r in rows],
        )


def sign(
    table: TableOpt,
    id_: IdOpt,
    purpose: Annotated[str, typer.Option(help="Signature purpose.")] = CODE_SIGNING,
    module: Annotated[str, typer.Option(help="Crypto module whose key signs.")] = "cm_code_signing",
    algorithm: Annotated[str | None, typer.Option(help="Algorithm (default: the key's).")] = None,
    home: HomeOpt = None,
    token_file: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Sign a record's current values (trusted instances only)."""
    sid = parse_sys_id(id_)
    with operation(home, token_file, "record.sign", f"{table}:{sid}") as op:
        sig = signatures.sign(op, table, sid, purpose=purpose, module=module, algorithm=algorithm)
    if json_out:
        emit_json(sig.to_fields() | {"sys_id": sig.sys_id})
    else:
        out.print(
            f"signed {table} {sid}: signature {sig.sys_id} ({sig.algorithm}, "
            f"certificate {sig.certificate[:16]}...)",
            markup=False,
        )


def verify(
    table: TableOpt,
    id_: IdOpt,
    purpose: Annotated[str | None, typer.Option(help="Require this purpose.")] = None,
    home: HomeOpt = None,
    token_file: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Verify a record's signatures; exit 0 only when the verdict is valid."""
    sid = parse_sys_id(id_)
    with operation(home, token_file, "record.read", write=False) as op:
        result = signatures.verify(op.session, table, sid, op.now, purpose)
    if json_out:
        emit_json(result.to_dict())
    else:
        out.print(
            f"{table} {sid}: {result.verdict.value}"
            + (f" ({', '.join(result.reasons)})" if result.reasons else ""),
            markup=False,
        )
    if result.verdict is not Verdict.VALID:
        raise VerificationError(
            f"record {table} {sid} is {result.verdict.value}: {', '.join(result.reasons) or '-'}"
        )


def signature_list(
    purpose: Annotated[str | None, typer.Option(help="Only this purpose.")] = None,
    table: Annotated[str | None, typer.Option(help="Only this table.")] = None,
    certificate: Annotated[
        str | None, typer.Option(help="Only this certificate fingerprint.")
    ] = None,
    home: HomeOpt = None,
    token_file: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List KMF signature records, filtered by purpose, table or certificate."""
    with operation(home, token_file, "signature.read", write=False) as op:
        rows = signatures.list_signatures(
            op.session, purpose=purpose, table=table, certificate=certificate
        )
    data = [r.to_fields() | {"sys_id": r.sys_id} for r in rows]
    if json_out:
        emit_json(data)
    else:
        emit_table(
            "KMF Signature Records",
            ["sys_id", "table", "document", "purpose", "signed at", "certificate"],
            [
                [
                    d["sys_id"],
                    d["table_name"],
                    d["document_id"],
                    d["purpose"],
                    d["signed_at"],
                    d["certificate"][:16],
                ]
                for d in data
            ],
        )
