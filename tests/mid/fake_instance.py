"""A small stand-in for the instance's HTTP API (issue-4 contract), on 127.0.0.1.

It speaks just enough of the protocol for the MID: /healthz, register, heartbeat, the
long poll that claims messages, single and batch results (409 for a second result),
the policy statement, the verification certificates and the Code Signing log. It can be
stopped and started again on the same port to model an outage.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

TOKEN = "mid-secret-token"


class FakeInstance:
    def __init__(self, name: str = "prod", *, validated: bool = True) -> None:
        self.name = name
        self.validated = validated
        self.cond = threading.Condition()
        self.registered: list[dict[str, Any]] = []
        self.heartbeats: list[dict[str, Any]] = []
        self.ready: list[dict[str, Any]] = []
        self.claimed: dict[str, dict[str, Any]] = {}
        self.results: dict[str, dict[str, Any]] = {}
        self.logs: list[dict[str, Any]] = []
        self.requests: list[str] = []
        self.policy: dict[str, Any] | None = None
        self.certificates: list[dict[str, str]] = []
        self.poll_body: bytes | None = None  # served as is instead of a poll's answer
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self._down = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self))
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._down = False
        self._server = server
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        """Go down: stop answering, close the port, end waiting long polls."""
        with self.cond:
            self._down = True
            self.cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def enqueue(self, message: dict[str, Any]) -> None:
        with self.cond:
            self.results.pop(message["sys_id"], None)
            self.ready.append(dict(message, state="ready"))
            self.cond.notify_all()

    def wait_for(self, check: Callable[[], bool], timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not check():
                left = deadline - time.monotonic()
                assert left > 0, "timed out waiting for the MID"
                self.cond.wait(min(left, 0.05))

    # -- request handling (called from server threads) --------------------------------

    def handle(
        self, method: str, path: str, query: dict[str, str], body: Any, auth: str
    ) -> tuple[int, Any]:
        with self.cond:
            self.requests.append(f"{method} {path}")
            self.cond.notify_all()
        if path == "/healthz":
            return 200, {"status": "ok", "instance": self.name, "role": "protected"}
        if auth != f"Bearer {TOKEN}":
            return 401, {"error": "not_authenticated", "message": "bad token"}
        route = (method, path)
        if route == ("POST", "/api/mid/register"):
            with self.cond:
                self.registered.append(body)
                self.cond.notify_all()
            return 200, {"name": body["name"], "validated": self.validated}
        if route == ("POST", "/api/mid/heartbeat"):
            with self.cond:
                self.heartbeats.append(body)
            return 200, {"validated": self.validated}
        if route == ("GET", "/api/ecc/poll"):
            return self._poll(query)
        if route == ("POST", "/api/ecc/batch_result"):
            return self._results(body["results"])
        if method == "POST" and path.startswith("/api/ecc/") and path.endswith("/result"):
            return self._results([dict(body, sys_id=path.split("/")[3])])
        if route == ("GET", "/api/codesigning/policy"):
            if self.policy is None:
                return 404, {"error": "not_found", "message": "no policy statement applied"}
            return 200, self.policy
        if route == ("GET", "/api/sn_kmf/signature/certificates"):
            return 200, self.certificates
        if route == ("POST", "/api/codesigning/log"):
            with self.cond:
                self.logs.append(body)
                self.cond.notify_all()
            return 201, body
        return 404, {"error": "not_found", "message": f"no route {method} {path}"}

    def _poll(self, query: dict[str, str]) -> tuple[int, Any]:
        if not self.validated:
            return 403, {"error": "not_authorised", "message": "MID is not validated"}
        agent, most, wait = query["agent"], int(query["max"]), float(query["wait"])
        deadline = time.monotonic() + min(wait, 30)
        with self.cond:
            while True:
                mine = [m for m in self.ready if m["agent"] == agent][:most]
                if mine or self._down or time.monotonic() >= deadline:
                    break
                self.cond.wait(0.05)
            for msg in mine:
                self.ready.remove(msg)
                msg["state"] = "processing"
                self.claimed[msg["sys_id"]] = msg
            self.cond.notify_all()
        return 200, {"messages": mine}

    def _results(self, results: list[dict[str, Any]]) -> tuple[int, Any]:
        with self.cond:
            for result in results:
                if result["sys_id"] not in self.claimed:
                    return 404, {"error": "not_found", "message": "no such message"}
                if result["sys_id"] in self.results:
                    return 409, {"error": "refused", "message": "result already posted"}
            for result in results:
                self.results[result["sys_id"]] = result
            self.cond.notify_all()
        return 200, {"results": [{"sys_id": r["sys_id"], "status": "ok"} for r in results]}


def _handler(instance: FakeInstance) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def _serve(self) -> None:
            url = urlparse(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            status, data = instance.handle(
                self.command, url.path, query, body, self.headers.get("Authorization", "")
            )
            polled = url.path == "/api/ecc/poll" and instance.poll_body is not None
            out = instance.poll_body if polled and instance.poll_body else json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *_args: object) -> None:
            pass

    return Handler
