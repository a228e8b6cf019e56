"""``ecc`` (the ECC queue) and ``codesigning log`` commands."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from .._fs import read_limited
from .._types import sys_id as parse_sys_id
from ..ecc import cslog, service
from ..ecc import queue as ecc_queue
from ..errors import BadInputError
from ._common import HomeOpt, JsonOpt, TokenOpt, emit_json, emit_table, operation, out

LimitOpt = Annotated[int, typer.Option(help="Most rows to show, newest first.")]
_SHOWN = (
    "sys_id",
    "agent",
    "topic",
    "name",
    "source",
    "queue",
    "state",
    "response_to",
    "created_on",
    "processed_on",
    "claimed_by",
    "error_string",
)


def register(app: typer.Typer) -> None:
    """Add the ``ecc`` and ``codesigning`` groups to *app*."""
    ecc_app = typer.Typer(help="The ECC queue: work for MID servers.", no_args_is_help=True)
    ecc_app.command("enqueue")(enqueue)
    ecc_app.command("list")(list_)
    ecc_app.command("show")(show)
    app.add_typer(ecc_app, name="ecc")
    cs_app = typer.Typer(
        help="Code Signing: the log of tracker and MID decisions.", no_args_is_help=True
    )
    cs_app.command("log")(log)
    app.add_typer(cs_app, name="codesigning")


def _payload(value: str | None) -> str | None:
    """``@FILE`` reads the payload from a file (UTF-8); anything else is the payload."""
    if value is None or not value.startswith("@"):
        return value
    raw = read_limited(Path(value[1:]), ecc_queue.MAX_PAYLOAD_CHARS, "payload file")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInputError(f"payload file {value[1:]!r} is not UTF-8 text") from exc


def enqueue(
    agent: Annotated[str, typer.Option(help="mid.server.<name>")],
    topic: Annotated[str, typer.Option(help="Command, JDBCProbe, RESTProbe, PythonScript...")],
    name: Annotated[str, typer.Option(help="Name of the message.")] = "",
    payload: Annotated[
        str | None, typer.Option(help="The payload text, or @FILE to read it from a file.")
    ] = None,
    source: Annotated[str, typer.Option(help="Source of the message.")] = "",
    home: HomeOpt = None,
    token_file: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Insert a message directly (admin). It is never notarized: MIDs that validate refuse it."""
    text = _payload(payload)
    with operation(home, token_file, "ecc.write", agent) as op:
        message = service.direct_insert(op, agent, topic, name, text, source)
    if json_out:
        emit_json(message)
    else:
        sys.stdout.write(f"{message['sys_id']}\n")
        sys.stderr.write(
            "note: inserted directly, so not notarized: MIDs that validate will refuse it\n"
        )


def list_(
    agent: Annotated[str | None, typer.Option(help="Only this agent (mid.server.<name>).")] = None,
    state: Annotated[
        str | None, typer.Option(help="ready, processing, processed or error.")
    ] = None,
    queue: Annotated[str | None, typer.Option(help="output or input.")] = None,
    limit: LimitOpt = 1000,
    home: HomeOpt = None,
    token_file: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List ECC records, newest first."""
    with operation(home, token_file, "ecc.read", write=False) as op:
        rows = [
            ecc_queue.to_dict(r)
            for r in service.list_messages(
                op, agent=agent, state=state, queue_name=queue, limit=limit
            )
        ]
    if json_out:
        emit_json(rows)
        return
    emit_table(
        "ECC queue",
        ["sys_id", "agent", "topic", "name", "queue", "state", "notarized"],
        [
            [
                r["sys_id"],
                r["agent"],
                r["topic"],
                r["name"],
                r["queue"],
                r["state"],
                "yes" if r["notarization"] else "no",
            ]
            for r in rows
        ],
    )


def show(
    id_: Annotated[str, typer.Argument(help="sys_id of the ECC record (32 hex).")],
    home: HomeOpt = None,
    token_file: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Show an ECC record and the input record that answers it."""
    sid = parse_sys_id(id_)
    with operation(home, token_file, "ecc.read", write=False) as op:
        detail = service.show(op, sid)
    if json_out:
        emit_json(detail)
        return
    for title, record in (("message", detail["message"]), ("response", detail["response"])):
        if not isinstance(record, dict):
            out.print(f"{title}: none yet", markup=False)
            continue
        out.print(f"{title}:", markup=False)
        for key in _SHOWN:
            out.print(f"  {key}: {record[key]}", markup=False)
        notarized = record["notarization"]
        out.print(f"  notarized: {'yes' if notarized else 'no'}", markup=False)
        out.print("  payload:", markup=False)
        out.print("    " + str(record["payload"]).replace("\n", "\n    "), markup=False)


def log(
    source: Annotated[
        str | None, typer.Option(help="Only entries from 'instance' or 'mid.server.<name>'.")
    ] = None,
    event: Annotated[str | None, typer.Option(help="Only this event.")] = None,
    ecc: Annotated[str | None, typer.Option(help="Only entries about this ECC message.")] = None,
    limit: LimitOpt = 1000,
    home: HomeOpt = None,
    token_file: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """The Code Signing log: unsigned scripts, refused enqueues, MID denials and exceptions."""
    with operation(home, token_file, "codesigning.log", write=False) as op:
        entries = cslog.list_entries(
            op.session, source=source, event_name=event, ecc=ecc, limit=limit
        )
    if json_out:
        emit_json(entries)
        return
    if not entries:
        out.print("the Code Signing log is empty", markup=False)
    for e in reversed(entries):  # oldest first, like a log file
        about = f" [ecc {e['ecc']}]" if e["ecc"] else ""
        out.print(
            f"{e['created_on']} {str(e['level']).upper():5} {e['source']} {e['event']}{about}: "
            f"{e['message']}",
            markup=False,
        )
