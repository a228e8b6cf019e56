"""``updateset`` commands: one group, filled by the I/O and the apply modules."""

from __future__ import annotations

import typer

from . import _updateset_apply, _updateset_io


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        help="Update sets: capture, export, import, preview, commit.", no_args_is_help=True
    )
    _updateset_io.register(group)
    _updateset_apply.register(group)
    app.add_typer(group, name="updateset")
