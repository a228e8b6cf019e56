"""``updateset preview`` and ``updateset commit``: check a retrieved set, then apply it whole."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from .._types import sys_id as parse_sys_id
from ..updatesets._results import PreviewResult
from ..updatesets.commit import commit_set
from ..updatesets.preview import preview_set
from ._common import HomeOpt, JsonOpt, TokenOpt, emit_json, emit_table, operation, out

SetId = Annotated[str, typer.Argument(help="sys_id of the retrieved update set.")]
MAX_ROWS = 500
"""Entries shown in the preview table (problems first); --json lists every one."""


def register(group: typer.Typer) -> None:
    """Add ``preview`` and ``commit`` to the ``updateset`` group."""
    group.command("preview")(preview)
    group.command("commit")(commit)


def preview(
    set_id: SetId,
    home: HomeOpt = None,
    token_file: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Check every entry and the manifest; list verdicts and problems (exit 0: a report)."""
    sid = parse_sys_id(set_id)
    with operation(home, token_file, "updateset.write", sid) as op:
        result = preview_set(op, sid)
    if json_out:
        _emit_report(result)
        return
    for part in (result, *result.children):
        _print_part(part)
    out.print(result.summary(), markup=False)


def commit(
    set_id: SetId,
    accept_remote: Annotated[
        bool,
        typer.Option(
            "--accept-remote",
            help="Accept the acceptable problems preview lists (collisions, signature "
            "problems outside Circle-of-Trust sets); blocking ones are never accepted.",
        ),
    ] = False,
    home: HomeOpt = None,
    token_file: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Apply every entry in one transaction, or refuse (exit 1) and apply nothing."""
    sid = parse_sys_id(set_id)
    with operation(home, token_file, "updateset.commit", sid) as op:
        done = commit_set(op, sid, accept_remote)
    if json_out:
        emit_json(done.to_dict())
        return
    line = (
        f"committed {done.name!r} ({done.set_id}): {done.entries} entries "
        f"({done.inserted} inserted, {done.updated} updated, {done.deleted} deleted, "
        f"{done.signatures} signatures, {done.certificates} certificates)"
    )
    if done.children:
        line += f" in {done.children} parts"
    if done.accepted:
        line += f"; {done.accepted} problem(s) accepted"
    if done.friends:
        line += f"; {len(done.friends)} certificate(s) joined the trusted friends list"
    if done.revoked:
        line += f"; {len(done.revoked)} certificate(s) revoked from the trusted friends list"
    out.print(line, markup=False)


def _emit_report(result: PreviewResult) -> None:
    """The report as JSON; a large one compact, written an entry at a time."""
    if result.entry_count <= MAX_ROWS:
        emit_json(result.to_dict())
        return
    result.write_json(sys.stdout.write)
    sys.stdout.write("\n")


def _print_part(part: PreviewResult) -> None:
    m = part.manifest
    kind = "Circle-of-Trust update set" if part.cot else "update set"
    out.print(
        f"{kind} {part.name!r} ({part.set_id}) from {part.origin_instance!r}, state {part.state}",
        markup=False,
    )
    out.print(f"manifest: {m.verdict.value}" + (f" ({m.reason})" if m.reason else ""), markup=False)
    for p in part.problems:
        if not p.entry:
            tag = "BLOCKING" if p.blocking else "acceptable"
            out.print(f"{tag}: {p.description}", markup=False)
    if not part.entries:
        return
    ranked = sorted(part.entries, key=lambda e: (not e.problems, e.sys_id))
    rows = [
        [
            e.target_sys_id,
            e.table,
            e.action,
            " / ".join(
                v for v in (e.verdict, e.certificate and f"certificate {e.certificate}") if v
            ),
            "; ".join(
                ("BLOCKING " if p.blocking else "acceptable ") + p.description for p in e.problems
            ),
        ]
        for e in ranked[:MAX_ROWS]
    ]
    emit_table(
        f"Entries of {part.name}",
        ["record", "table", "action", "verdict", "problems"],
        rows,
    )
    if len(ranked) > MAX_ROWS:
        out.print(
            f"... {len(ranked) - MAX_ROWS} more entries without problems (use --json to list all)"
            if not ranked[MAX_ROWS].problems
            else f"... {len(ranked) - MAX_ROWS} more entries (use --json to list all)",
            markup=False,
        )
