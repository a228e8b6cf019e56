"""``trustcircle mid``: the MID server agent.

``mid start --config mid.yaml`` runs a MID in the foreground until SIGTERM or SIGINT.
``mid list``, ``mid validate NAME`` and ``mid invalidate NAME`` act on an instance home.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from .._time import system_clock
from ._common import HomeOpt, JsonOpt, TokenOpt, emit_json, emit_table, operation, out

mid_app = typer.Typer(
    help="MID servers: agents that run only signed work from a protected instance.",
    no_args_is_help=True,
)

ConfigOpt = Annotated[
    Path,
    typer.Option(
        "--config",
        help="The MID's mid.yaml (instance_url, name, token_file, anchors, notarizers, ...).",
        show_default=False,
    ),
]


@mid_app.command("start")
def start(config: ConfigOpt) -> None:
    """Run a MID server in the foreground (stop it with SIGTERM or Ctrl-C)."""
    from ..mid import MidAgent, load_anchors, load_boot_config, load_mid_config, read_token

    settings = load_mid_config(config)
    boot = load_boot_config(settings.boot_config)
    anchors = load_anchors(settings, system_clock())
    token = read_token(settings)
    agent = MidAgent(settings, boot, token=token, anchors=anchors, echo=True)
    stops = 0

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        nonlocal stops
        stops += 1
        if stops > 1:  # a second signal: leave now (undelivered results stay in the outbox)
            sys.stderr.write("MID stopped without waiting\n")
            os._exit(128 + signum)
        agent.log.info(
            "signal %s: stopping after the current long poll (up to %g s); signal again to "
            "stop at once",
            signal.Signals(signum).name,
            settings.poll_wait,
        )
        agent.stop()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        agent.run()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


NameArg = Annotated[str, typer.Argument(help="The MID's name (from its mid.yaml).")]


@mid_app.command("list")
def list_(home: HomeOpt = None, token_file: TokenOpt = None, json_out: JsonOpt = False) -> None:
    """MID servers: status (active = checked in within 60 s), validation, version, firewall."""
    from ..ecc import mids

    with operation(home, token_file, "mid.read", write=False) as op:
        rows = mids.list_mids(op.session, op.now)
    if json_out:
        emit_json(rows)
        return
    emit_table(
        "MID servers",
        ["name", "status", "validated", "last_check_in", "version", "firewall_mode", "host"],
        [
            [
                r["name"],
                r["status"],
                "yes" if r["validated"] else "no",
                r["last_check_in"],
                r["version"],
                r["firewall_mode"],
                r["host"],
            ]
            for r in rows
        ],
    )


@mid_app.command("validate")
def validate(
    name: NameArg, home: HomeOpt = None, token_file: TokenOpt = None, json_out: JsonOpt = False
) -> None:
    """Validate a registered MID (admin): from now on it gets work."""
    _set_validated(name, True, home, token_file, json_out)


@mid_app.command("invalidate")
def invalidate(
    name: NameArg, home: HomeOpt = None, token_file: TokenOpt = None, json_out: JsonOpt = False
) -> None:
    """Withdraw a MID's validation (admin): it gets no more work."""
    _set_validated(name, False, home, token_file, json_out)


def _set_validated(
    name: str, validated: bool, home: Path | None, token_file: Path | None, json_out: bool
) -> None:
    from ..ecc import mids

    with operation(home, token_file, "mid.admin", name) as op:
        row = mids.set_validated(op.session, name, validated, op.actor.name, op.ts)
        op.detail = {"validated": validated}
        shown = mids.to_dict(row, op.now)
    if json_out:
        emit_json(shown)
    else:
        word = "validated" if validated else "no longer validated"
        out.print(f"MID {name} is {word} ({shown['status']})", markup=False)


def register(app: typer.Typer) -> None:
    """Add the ``mid`` command group to *app*."""
    app.add_typer(mid_app, name="mid")
