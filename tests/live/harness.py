"""Real processes on loopback: the instance server and MID agents, plus the in-process CLI
that prepares the signed material (trusted home → update set XML → protected home)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from trustcircle.cli.main import main as cli_main

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def run_cli(*args: str | Path) -> Result:
    """``trustcircle ARGS`` in this process; its exit code, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            cli_main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
    return Result(code, out.getvalue(), err.getvalue())


def ok(*args: str | Path) -> Result:
    result = run_cli(*args)
    assert result.code == 0, (args, result.err)
    return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(check: Callable[[], bool], timeout: float, what: str, every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("TRUSTCIRCLE_TOKEN", None)
    return env


def _stop(
    proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM, grace: float = 15
) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@dataclass
class Server:
    """``trustcircle serve`` of one home, on a fixed port (so it can come back on it)."""

    home: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.starts += 1
        log = open(self.home / f"serve-{self.starts}.log", "wb")  # noqa: SIM115 - owned by proc
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "trustcircle",
                "serve",
                "--home",
                str(self.home),
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_env(),
        )
        log.close()
        wait_until(self.healthy, 30, f"the server of {self.home.name} to answer")

    def healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"server exited with {self.proc.returncode}: {self.log()}")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        """Crash it (SIGKILL): an outage as a MID sees it."""
        _stop(self.proc, signal.SIGKILL)

    def stop(self) -> None:
        _stop(self.proc)

    def log(self) -> str:
        return (self.home / f"serve-{self.starts}.log").read_text(errors="replace")[-3000:]

    def request(self, method: str, path: str, token: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kw)


@dataclass
class Mid:
    """A MID agent process (``trustcircle mid start --config``) with its own folder."""

    folder: Path
    name: str
    server: Server
    anchors: Sequence[Path]
    notarizers: Sequence[str]
    token: str
    rules: Sequence[dict[str, Any]] = ()
    jdbc: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def write_config(self) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "token").write_text(self.token + "\n")
        boot = {"security": {"eccFirewall": {"mode": "enforcing", "rules": list(self.rules)}}}
        (self.folder / "boot-config.yaml").write_text(yaml.safe_dump(boot))
        config = {
            "instance_url": self.server.url,
            "name": self.name,
            "token_file": "token",
            "anchors": [str(a) for a in self.anchors],
            "notarizers": list(self.notarizers),
            "work_dir": "work",
            "log_dir": "logs",
            "boot_config": "boot-config.yaml",
            "instance_name": "prod",
            "poll_wait": 2,
            "exec_timeout": 20,
            "workers": 4,
            "jdbc": dict(self.jdbc),
        }
        path = self.folder / "mid.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    def start(self) -> None:
        config = self.write_config()
        self.starts += 1
        out = open(self.folder / f"stdout-{self.starts}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "trustcircle", "mid", "start", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_env(),
        )
        out.close()

    def stop(self) -> None:
        _stop(self.proc)

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def log_file(self) -> Path:
        return self.folder / "logs" / "mid.log"

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def wait_log(self, text: str, timeout: float = 20) -> None:
        wait_until(lambda: text in self.log(), timeout, f"MID {self.name} to log {text!r}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@contextlib.contextmanager
def running(*procs: Server | Mid) -> Iterator[None]:
    try:
        yield
    finally:
        for proc in reversed(procs):
            proc.stop()
