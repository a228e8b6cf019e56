"""CLI fixtures: run ``trustcircle`` in-process (real SQLite and crypto), and homes for it."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SessionPki
from trustcircle.cli.main import main


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


Cli = Callable[..., Result]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """``cli("record", "add", ...)`` → exit code, stdout, stderr of one in-process run."""

    def run(*args: str | Path) -> Result:
        capsys.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def init_home(cli: Cli, home: Path, role: str = "trusted", name: str = "dev") -> Path:
    result = cli("init", "--home", home, "--role", role, "--name", name)
    assert result.code == 0, result.err
    return home


@pytest.fixture
def home(cli: Cli, tmp_path: Path) -> Path:
    """A fresh trusted instance home."""
    return init_home(cli, tmp_path / "dev")


@pytest.fixture
def signing_home(cli: Cli, home: Path, test_pki: SessionPki) -> Path:
    """A trusted home trusting the test root, with keys in cm_code_signing and cm_code_attest."""
    files = test_pki.files
    assert cli("trust-anchor", "add", files.root_pem, "--home", home).code == 0
    for module, name in (("cm_code_signing", "code_signing"), ("cm_code_attest", "code_attest")):
        result = cli(
            "kmf",
            "import",
            "--home",
            home,
            "--module",
            module,
            "--p12",
            files.p12[name],
            "--password-file",
            files.password_file,
        )
        assert result.code == 0, result.err
    return home


def add_script_include(cli: Cli, home: Path, script: str = 'gs.info("hello")') -> str:
    result = cli(
        "record",
        "add",
        "--home",
        home,
        "--table",
        "sys_script_include",
        "--field",
        "name=Hello",
        "--field",
        "api_name=global.Hello",
        "--field",
        f"script={script}",
        "--field",
        "active=true",
    )
    assert result.code == 0, result.err
    return result.out.strip()
