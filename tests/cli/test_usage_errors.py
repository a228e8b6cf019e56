"""Mistyped command lines are bad usage (exit 2, a usage hint), never an internal error."""

from __future__ import annotations

import pytest

from tests.cli.conftest import Cli


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("updateset", "preview"), "Missing argument 'set_id'"),
        (("updateset", "import"), "Missing argument"),
        (("updateset", "preview", "--bogus"), "No such option: --bogus"),
        (("no-such-command",), "No such command 'no-such-command'"),
        (("audit", "list", "--limit", "many"), "Invalid value for '--limit'"),
    ],
)
def test_a_mistyped_command_line_is_bad_usage_with_a_hint(
    cli: Cli, args: tuple[str, ...], says: str
) -> None:
    result = cli(*args)
    assert result.code == 2, result.err
    assert says in result.err
    assert "--help" in result.err  # where to look next
    assert "internal error" not in result.err
    assert "Traceback" not in result.err


def test_no_arguments_shows_the_commands(cli: Cli) -> None:
    result = cli()
    assert result.code == 2
    assert "updateset" in result.out + result.err
    assert "internal error" not in result.err


def test_help_exits_zero(cli: Cli) -> None:
    result = cli("updateset", "--help")
    assert result.code == 0
    assert "preview" in result.out
