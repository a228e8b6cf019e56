"""Live-server fixtures for the JSON API: homes set up in-process, served by real processes.

Homes are prepared with the CLI in-process (as ``tests/cli/conftest.py`` does), once per
module, then served by ``python -m trustcircle serve`` (``tests/live_server.py``); tests
talk to them over HTTP with httpx.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli.conftest import Result, init_home
from tests.conftest import SessionPki
from tests.live_server import LiveServer, StartServer, live_servers
from trustcircle.cli.main import main

__all__ = ["live_servers"]


def run_cli(*args: str | Path) -> Result:
    """One in-process ``trustcircle`` run (no capsys: usable from module-scoped fixtures)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
    return Result(code, out.getvalue(), err.getvalue())


def ok_cli(*args: str | Path) -> Result:
    result = run_cli(*args)
    assert result.code == 0, (args, result.err)
    return result


def load_signing_keys(home: Path, pki: SessionPki) -> None:
    """What ``signing_home`` does: trust the test root, load cm_code_signing/cm_code_attest."""
    files = pki.files
    ok_cli("trust-anchor", "add", files.root_pem, "--home", home)
    for module, name in (("cm_code_signing", "code_signing"), ("cm_code_attest", "code_attest")):
        ok_cli(
            "kmf", "import", "--home", home, "--module", module,
            "--p12", files.p12[name], "--password-file", files.password_file,
        )  # fmt: skip


def add_user(home: Path, name: str, roles: str = "") -> str:
    """Create user *name* with *roles* on *home*; return its API token."""
    result = ok_cli("user", "add", name, "--roles", roles, "--home", home, "--json")
    token: str = result.json()["token"]
    return token


class Api:
    """An httpx client for one live server and one token, with assertion helpers."""

    def __init__(self, server: LiveServer, token: str | None) -> None:
        self.server = server
        self.http = server.client(token)

    def ok(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        """Send; assert the status is *expect*; return the JSON body."""
        reply = self.http.request(method, path, **kwargs)
        assert reply.status_code == expect, (method, path, reply.status_code, reply.text)
        return reply.json()

    def fails(self, method: str, path: str, expect: int, **kwargs: Any) -> dict[str, Any]:
        """Send; assert an error with status *expect* in the contract's shape; return it."""
        reply = self.http.request(method, path, **kwargs)
        assert reply.status_code == expect, (method, path, reply.status_code, reply.text)
        return error_body(reply)

    def close(self) -> None:
        self.http.close()


def error_body(reply: httpx.Response) -> dict[str, Any]:
    """The JSON error of *reply*, checked: ``error`` kind and a one-line ``message``."""
    assert reply.headers["content-type"].startswith("application/json"), reply.text
    body: dict[str, Any] = json.loads(reply.text)
    assert isinstance(body.get("error"), str), body
    assert body["error"], body
    message = body.get("message")
    assert isinstance(message, str), body
    assert message.strip(), body
    assert "\n" not in message, message
    assert "Traceback" not in reply.text, reply.text
    return body


@pytest.fixture(scope="module")
def trusted_home(tmp_path_factory: pytest.TempPathFactory, test_pki: SessionPki) -> Path:
    """A trusted home (``dev``) trusting the test root, with both signing modules loaded."""
    home = init_home(run_cli, tmp_path_factory.mktemp("web") / "dev", "trusted", "dev")
    load_signing_keys(home, test_pki)
    return home


@pytest.fixture(scope="module")
def dev(live_servers: StartServer, trusted_home: Path) -> LiveServer:
    """The trusted home, served."""
    return live_servers(trusted_home)


@pytest.fixture(scope="module")
def dev_admin(dev: LiveServer) -> Iterator[Api]:
    api = Api(dev, dev.admin_token)
    yield api
    api.close()
