"""Live fixtures: one trusted home per session; per test module a protected home with
validation on, its server (``trustcircle serve``) and MID processes on 127.0.0.1."""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import SessionPki
from tests.live.circle import Protected, Trusted, make_protected, make_trusted
from tests.live.harness import Mid, Server, ok, wait_until
from trustcircle.crypto import fingerprint_of


@dataclass
class Live:
    """A running protected instance and its MIDs."""

    prod: Protected
    server: Server
    folder: Path
    mids: dict[str, Mid] = field(default_factory=dict)

    def mid(self, name: str, folder: str | None = None, **kw: object) -> Mid:
        """Start one MID and wait until it is validated (see :meth:`start_mids`)."""
        return self.start_mids((name, folder or name, kw))[0]

    def start_mids(self, *specs: tuple[str, str, dict[str, object]]) -> list[Mid]:
        """Start MIDs ``(name, folder, options)`` together, wait until each registered,
        validate them, and wait until each works (validated, policy fetched)."""
        started = []
        for name, folder, kw in specs:
            mid = Mid(
                self.folder / folder,
                name,
                self.server,
                [self.prod.trusted.pki.files.root_pem],
                [fingerprint_of(self.prod.trusted.pki.runtime.cert)],
                self.prod.mid_token,
                **kw,  # type: ignore[arg-type]
            )
            mid.start()
            self.mids[folder] = mid
            started.append(mid)
        for name in sorted({s[0] for s in specs}):
            wait_until(functools.partial(self._registered, name), 30, f"MID {name} registered")
            self.prod.on("mid", "validate", name)
        for mid in started:
            mid.wait_log(f"MID {mid.name} is validated", 30)
            mid.wait_log("Code Signing validation is", 30)
        return started

    def _registered(self, name: str) -> bool:
        return any(m["name"] == name for m in self.prod.on("mid", "list", "--json").json())

    def wait_state(
        self, sys_id: str, states: tuple[str, ...] = ("processed", "error"), timeout: float = 30
    ) -> dict[str, object]:
        def done() -> bool:
            message = self.prod.show(sys_id)["message"]
            return message is not None and message["state"] in states

        wait_until(done, timeout, f"message {sys_id} to reach {'/'.join(states)}", every=0.1)
        shown = self.prod.show(sys_id)
        assert shown["message"] is not None
        return shown["message"]

    def by_name(self, name: str) -> dict[str, object]:
        (message,) = [m for m in self.prod.ecc("--queue", "output") if m["name"] == name]
        return message

    def db(self) -> sqlite3.Connection:
        """The protected instance's database file, opened directly (as an attacker would)."""
        return sqlite3.connect(self.prod.home / "trustcircle.db", timeout=30, isolation_level=None)

    def stop(self) -> None:
        for mid in self.mids.values():
            mid.stop()
        self.server.stop()


@pytest.fixture(scope="session")
def trusted(tmp_path_factory: pytest.TempPathFactory, test_pki: SessionPki) -> Trusted:
    folder = tmp_path_factory.mktemp("live-trusted")
    return make_trusted(folder, test_pki, folder / "ran.txt")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, trusted: Trusted) -> Iterator[Live]:
    folder = tmp_path_factory.mktemp("live")
    prod = make_protected(folder, trusted)
    server = Server(prod.home)
    server.start()
    running = Live(prod, server, folder)
    try:
        yield running
    finally:
        running.stop()


def inventory_db(path: Path) -> Path:
    """A real SQLite file the JDBC probes read."""
    with sqlite3.connect(path) as conn:
        conn.execute("create table items (name text, qty integer)")
        conn.executemany("insert into items values (?, ?)", [("bolt", 40), ("nut", 12)])
    return path


__all__ = ["Live", "inventory_db", "live", "ok", "trusted"]
