"""Entry point: builds the command tree and maps errors to exit codes, once.

Exit codes (DESIGN §9): 0 done, 1 refused by verification or policy, 2 bad
usage or bad input file, 3 not authorised, 4 not found.
"""

from __future__ import annotations

import os
import sys

import typer

from ..errors import TrustcircleError
from . import admin, cot, ecc, health, keys, mid, records, serve, updatesets
from ._common import err

app = typer.Typer(
    name="trustcircle",
    help="Circle-of-Trust code signing: sign on a trusted instance, enforce on a protected one.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
admin.register(app)
keys.register(app)
records.register(app)
updatesets.register(app)
cot.register(app)
serve.register(app)
mid.register(app)
ecc.register(app)
health.register(app)

EXIT_INTERNAL = 70


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return (and exit with) the DESIGN §9 exit code."""
    try:
        app(args=argv, standalone_mode=False)
    except TrustcircleError as exc:
        err.print(f"error: {exc.message}", markup=False)
        return _exit(exc.exit_code)
    except typer.Exit as exc:
        return _exit(exc.exit_code)
    except typer.TyperException as exc:  # bad usage: unknown option, missing argument, ...
        _show_usage_error(exc)
        return _exit(2)
    except typer.Abort:
        err.print("aborted", markup=False)
        return _exit(1)
    except KeyboardInterrupt:
        err.print("interrupted", markup=False)
        return _exit(130)
    except Exception as exc:
        if os.environ.get("TRUSTCIRCLE_DEBUG"):
            raise
        err.print(
            f"internal error: {type(exc).__name__}: {exc} "
            "(a bug in trustcircle; rerun with TRUSTCIRCLE_DEBUG=1 for the traceback)",
            markup=False,
        )
        return _exit(EXIT_INTERNAL)
    return _exit(0)


def _show_usage_error(exc: typer.TyperException) -> None:
    """Typer's own rendering (the usage line, a help hint and the error), else one line."""
    show = getattr(exc, "show", None)
    if callable(show):
        show()
    else:
        err.print(f"error: {exc.message}", markup=False)


def _exit(code: int) -> int:
    sys.exit(code)
