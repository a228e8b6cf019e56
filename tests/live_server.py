"""A real ``trustcircle serve`` process on loopback, for tests that talk HTTP.

``with LiveServer(home) as server:`` starts ``python -m trustcircle serve --home HOME``
on 127.0.0.1 at a free port, waits until ``/healthz`` answers for *that* instance, and
stops the process (SIGTERM, then SIGKILL) on exit. ``server.client(token)`` is an
``httpx.Client`` with the bearer token set. The module-scoped ``live_servers``
fixture starts servers on demand and stops them all when the module ends::

    from tests.live_server import live_servers  # in a conftest.py

    @pytest.fixture(scope="module")
    def prod(live_servers, prod_home): return live_servers(prod_home)
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType

import httpx
import pytest

from trustcircle.platform.home import ADMIN_TOKEN, load_config

STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
_ATTEMPTS = 3


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LiveServer:
    """One ``trustcircle serve`` process serving *home* (see the module doc)."""

    def __init__(self, home: Path, *, startup_timeout: float = STARTUP_TIMEOUT) -> None:
        self.home = Path(home)
        self.instance = load_config(self.home).name
        self.startup_timeout = startup_timeout
        self.log = self.home / "live-server.log"
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_token(self) -> str:
        return (self.home / ADMIN_TOKEN).read_text().strip()

    def client(self, token: str | None = None, *, timeout: float = 60.0) -> httpx.Client:
        """A client for this server; *token* (default: none) goes in ``Authorization``."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def start(self) -> LiveServer:
        for _attempt in range(_ATTEMPTS):
            self.port = free_port()
            if self._spawn_and_wait():
                return self
        raise RuntimeError(f"could not start the server of {self.home}: {self._log_tail()}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _spawn_and_wait(self) -> bool:
        """Start on ``self.port``; True once healthy, False if the port was taken meanwhile."""
        command = [
            sys.executable, "-m", "trustcircle", "serve", "--home", str(self.home),
            "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning",
        ]  # fmt: skip
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with self.log.open("ab") as log:
            self._proc = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
            )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._proc = None
                if "address already in use" in self._log_tail().lower():
                    return False
                raise RuntimeError(f"the server of {self.home} exited: {self._log_tail()}")
            if self._healthy():
                return True
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(
            f"the server of {self.home} did not answer /healthz within "
            f"{self.startup_timeout:g} s: {self._log_tail()}"
        )

    def _healthy(self) -> bool:
        try:
            reply = httpx.get(f"{self.url}/healthz", timeout=1.0)
        except httpx.HTTPError:
            return False
        return reply.status_code == 200 and reply.json().get("instance") == self.instance

    def _log_tail(self) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(text.strip().splitlines()[-15:]) or "(empty log)"


StartServer = Callable[[Path], LiveServer]


@pytest.fixture(scope="module")
def live_servers() -> Iterator[StartServer]:
    """``live_servers(home)`` → a running :class:`LiveServer`; all stop when the module ends."""
    started: list[LiveServer] = []

    def start(home: Path) -> LiveServer:
        server = LiveServer(home).start()
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.stop()
