"""What every command shares: the home, the token, the output mode."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from .._fs import read_limited
from ..errors import BadInputError, NotAuthenticatedError, UsageError
from ..platform.context import Instance, Operation
from ..platform.home import ADMIN_TOKEN
from ..updatesets.local import capture

HomeOpt = Annotated[
    Path | None,
    typer.Option(
        "--home", envvar="TRUSTCIRCLE_HOME", help="Instance home folder.", show_default=False
    ),
]
TokenOpt = Annotated[
    Path | None,
    typer.Option(
        "--token-file",
        help="File holding the API token to act with "
        "(default: $TRUSTCIRCLE_TOKEN, else HOME/admin.token).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def home_path(home: Path | None) -> Path:
    if home is None:
        raise UsageError("no instance home given: pass --home H or set TRUSTCIRCLE_HOME")
    return home


def _read_token(path: Path) -> str:
    try:
        token = read_limited(path, 4096, "token file").decode("ascii", "replace").strip()
    except BadInputError as exc:
        raise NotAuthenticatedError(f"cannot read the token: {exc.message}") from exc
    if not token:
        raise NotAuthenticatedError(f"token file {str(path)!r} is empty")
    return token


def resolve_token(home: Path, token_file: Path | None) -> str:
    if token_file is not None:
        return _read_token(token_file)
    env = os.environ.get("TRUSTCIRCLE_TOKEN", "").strip()
    if env:
        return _read_token(Path(env)) if Path(env).is_file() else env
    return _read_token(home / ADMIN_TOKEN)


@contextmanager
def instance(home: Path | None) -> Iterator[Instance]:
    inst = Instance.open(home_path(home))
    try:
        yield inst
    finally:
        inst.close()


@contextmanager
def operation(
    home: Path | None,
    token_file: Path | None,
    action: str,
    target: str = "",
    *,
    write: bool = True,
    deferred: bool = False,
) -> Iterator[Operation]:
    """Open the home and run one authorised operation (see :meth:`Instance.operation`)."""
    with instance(home) as inst:
        token = resolve_token(inst.home, token_file)
        with inst.operation(token, action, target, write=write, deferred=deferred) as op:
            yield op
            capture(op)


def emit_json(data: Any) -> None:
    """*data* as indented JSON on stdout (keys sorted)."""
    sys.stdout.write(json.dumps(data, sort_keys=True, default=str, indent=2) + "\n")


def emit_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    table = Table(title=title, show_lines=False)
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    out.print(table)


def parse_fields(items: Sequence[str]) -> dict[str, str]:
    """``k=v`` and ``k=@file`` options → field values (files read as UTF-8, bounded)."""
    fields: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--field {item[:60]!r} is not NAME=VALUE or NAME=@FILE")
        if value.startswith("@"):
            raw = read_limited(Path(value[1:]), 1024 * 1024, f"file for field {key!r}")
            try:
                value = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise BadInputError(f"file for field {key!r} is not UTF-8 text") from exc
        if key in fields:
            raise UsageError(f"field {key!r} is given twice")
        fields[key] = value
    return fields
