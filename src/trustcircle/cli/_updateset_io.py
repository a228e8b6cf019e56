"""``updateset list|show|create|use|complete|export|import|delete``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from .._types import sys_id as parse_sys_id
from ..errors import UsageError
from ..updatesets import catalog, local
from ..updatesets.export import export_set
from ..updatesets.importer import delete_retrieved, import_files
from ._common import HomeOpt, JsonOpt, TokenOpt, emit_json, emit_table, operation, out

IdArg = Annotated[str, typer.Argument(help="sys_id of the update set (32 hex).")]
MAX_DESCRIPTION = 4000


def _entries(count: int) -> str:
    return f"{count} entry" if count == 1 else f"{count} entries"


def register(group: typer.Typer) -> None:
    """Add this module's commands to *group*."""
    for name, fn in (
        ("list", list_),
        ("show", show),
        ("create", create),
        ("use", use),
        ("complete", complete),
        ("export", export),
        ("import", import_),
        ("delete", delete),
    ):
        group.command(name)(fn)


def list_(home: HomeOpt = None, token_file: TokenOpt = None, json_out: JsonOpt = False) -> None:
    """List local and retrieved update sets."""
    with operation(home, token_file, "updateset.read", write=False) as op:
        sets = catalog.list_all(op.session, op.instance.name, op.actor.sys_id)
    if json_out:
        emit_json(sets)
        return
    emit_table(
        "Update sets",
        ["sys_id", "kind", "name", "state", "origin", "entries", "parent"],
        [
            [
                s["sys_id"],
                f"{s['kind']}{' (current)' if s.get('current') else ''}",
                s["name"],
                s["state"],
                s["origin_instance"],
                s["entries"],
                s["parent"],
            ]
            for s in sets
        ],
    )


def show(
    id_: IdArg, home: HomeOpt = None, token_file: TokenOpt = None, json_out: JsonOpt = False
) -> None:
    """Show a local or retrieved update set and its entries."""
    sid = parse_sys_id(id_)
    with operation(home, token_file, "updateset.read", write=False) as op:
        detail = catalog.describe(op.session, op.instance.name, sid, op.actor.sys_id)
    if json_out:
        emit_json(detail.to_dict())
        return
    for key, value in detail.summary.items():
        out.print(f"{key}: {'' if value is None else value}", markup=False)
    emit_table(
        f"Entries of {detail.summary['name']}",
        ["sys_id", "table", "target", "action"],
        [[e["sys_id"], e["table"], e["target_sys_id"], e["action"]] for e in detail.entries],
    )


def create(
    name: Annotated[str, typer.Argument(help="Name of the new update set.")],
    description: Annotated[str, typer.Option(help="What the set is for.")] = "",
    home: HomeOpt = None,
    token_file: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Create an in-progress local update set and make it your current one."""
    if len(description) > MAX_DESCRIPTION:
        raise UsageError(f"--description is longer than {MAX_DESCRIPTION} characters: shorten it")
    with operation(home, token_file, "updateset.write", name[:200]) as op:
        row = local.create_set(op.session, name, op.actor.name, op.ts, description=description)
        local.make_current(op.session, op.actor, row)
        op.target = f"{row.name} ({row.sys_id})"
        summary = catalog.local_summary(op.session, op.instance.name, row, op.actor.sys_id)
    if json_out:
        emit_json(summary)
    else:
        out.print(
            f"created update set {row.name!r} ({row.sys_id}); it is now current", markup=False
        )


def use(
    id_: IdArg, home: HomeOpt = None, token_file: TokenOpt = None, json_out: JsonOpt = False
) -> None:
    """Make an in-progress local update set your current one."""
    sid = parse_sys_id(id_)
    with operation(home, token_file, "updateset.write", sid) as op:
        row = local.get_set(op.session, sid)
        local.make_current(op.session, op.actor, row)
        op.target = f"{row.name} ({row.sys_id})"
        summary = catalog.local_summary(op.session, op.instance.name, row, op.actor.sys_id)
    if json_out:
        emit_json(summary)
    else:
        out.print(f"current update set: {row.name!r} ({row.sys_id})", markup=False)


def complete(
    id_: IdArg, home: HomeOpt = None, token_file: TokenOpt = None, json_out: JsonOpt = False
) -> None:
    """Mark a local update set complete: it captures nothing more."""
    sid = parse_sys_id(id_)
    with operation(home, token_file, "updateset.write", sid) as op:
        row = local.get_set(op.session, sid)
        local.complete(op.session, row)
        op.target = f"{row.name} ({row.sys_id})"
        summary = catalog.local_summary(op.session, op.instance.name, row, op.actor.sys_id)
    if json_out:
        emit_json(summary)
    else:
        out.print(f"update set {row.name!r} ({row.sys_id}) is complete", markup=False)


def export(
    id_: IdArg,
    out_file: Annotated[Path, typer.Option("--out", help="XML file to write.")],
    home: HomeOpt = None,
    token_file: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Export a local update set to XML (signed on a trusted instance)."""
    sid = parse_sys_id(id_)
    with operation(home, token_file, "updateset.export", sid) as op:
        result = export_set(op, sid, out_file)
    if json_out:
        emit_json(result.to_dict())
        return
    for f in result.files:
        signed = "signed" if f.signed else "unsigned"
        out.print(f"wrote {f.path} ({f.name}, {_entries(f.entries)}, {signed})", markup=False)


def import_(
    files: Annotated[list[Path], typer.Argument(help="Update set XML file(s).")],
    home: HomeOpt = None,
    token_file: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Import update set XML file(s) as retrieved update sets (state loaded)."""
    with operation(home, token_file, "updateset.write") as op:
        # The CLI runs no threads of its own, so it may fork parsers: one per core.
        results = import_files(op, files, workers=os.cpu_count() or 1)
    if json_out:
        data = [r.to_dict() for r in results]
        emit_json(data[0] if len(data) == 1 else data)
        return
    for r in results:
        signed = "signed" if r.signed else "unsigned"
        parent = f", child of {r.parent}" if r.parent else ""
        out.print(
            f"imported {r.name!r} ({r.sys_id}) from {r.origin_instance}: {_entries(r.entries)}, "
            f"{signed}{parent}; preview it with `trustcircle updateset preview {r.sys_id}`",
            markup=False,
        )


def delete(
    id_: IdArg, home: HomeOpt = None, token_file: TokenOpt = None, json_out: JsonOpt = False
) -> None:
    """Delete a retrieved update set (and its batch children) that is not committed."""
    sid = parse_sys_id(id_)
    with operation(home, token_file, "updateset.write", sid) as op:
        deleted = delete_retrieved(op, sid)
    if json_out:
        emit_json([d.to_dict() for d in deleted])
        return
    for d in deleted:
        out.print(f"deleted retrieved update set {d.name!r} ({d.sys_id})", markup=False)
