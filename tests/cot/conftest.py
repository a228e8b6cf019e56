"""Reuse the CLI fixtures (in-process ``cli``, ``home``, ``signing_home``)."""

from tests.cli.conftest import cli, home, signing_home

__all__ = ["cli", "home", "signing_home"]
