"""Handlers: what actually runs on the MID host, with time limits and capped output."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.mid.builders import message
from trustcircle._types import new_sys_id
from trustcircle.mid import EccMessage, ExecResult, Handlers, HandlerSettings, ScriptPayload


def _handlers(tmp_path: Path, timeout: float = 10.0, **kw: Any) -> Handlers:
    settings = HandlerSettings(
        exec_timeout=timeout,
        run_dir=tmp_path / "run",
        log_file=tmp_path / "mid.log",
        **kw,
    )
    return Handlers(settings, stats=lambda: {"processed": 7})


def _run(handlers: Handlers, topic: str, payload: Any) -> ExecResult:
    text = payload if isinstance(payload, str) else json.dumps(payload)
    return handlers.run(EccMessage.from_json(message(topic, text)))


def _script(table: str, fields: dict[str, str | None], **parameters: Any) -> ScriptPayload:
    return ScriptPayload(table, new_sys_id(), fields, (), (), parameters)


# -- Command ---------------------------------------------------------------------------


def test_command_argv_runs_without_a_shell(tmp_path: Path) -> None:
    result = _run(_handlers(tmp_path), "Command", {"argv": ["echo", "hi", "$HOME", "|", "x"]})
    assert result.state == "processed"
    assert result.output == "hi $HOME | x\n"


def test_command_line_without_shell_flag_is_not_given_to_a_shell(tmp_path: Path) -> None:
    result = _run(_handlers(tmp_path), "Command", {"command": "echo hi | wc -c; touch pwned"})
    assert result.output == "hi | wc -c; touch pwned\n"
    assert not (tmp_path / "run" / "pwned").exists()


def test_command_runs_in_a_shell_only_when_asked(tmp_path: Path) -> None:
    result = _run(_handlers(tmp_path), "Command", {"command": "echo hi | wc -c", "shell": True})
    assert result.state == "processed"
    assert result.output.strip() == "3"


def test_plain_text_command_line_runs_without_a_shell(tmp_path: Path) -> None:
    assert _run(_handlers(tmp_path), "Command", "echo 'a b' c").output == "a b c\n"


def test_failing_command_is_an_error_with_its_status_and_stderr(tmp_path: Path) -> None:
    result = _run(
        _handlers(tmp_path), "Command", {"command": "echo oops >&2; exit 3", "shell": True}
    )
    assert result.state == "error"
    assert result.error_string == "command exited with status 3: oops"


def test_missing_program_is_an_error(tmp_path: Path) -> None:
    result = _run(_handlers(tmp_path), "Command", {"argv": ["no-such-program-xyz"]})
    assert result.state == "error"
    assert "no-such-program-xyz" in result.error_string


def test_command_is_killed_at_its_time_limit(tmp_path: Path) -> None:
    started = time.monotonic()
    result = _run(_handlers(tmp_path), "Command", {"argv": ["sleep", "30"], "timeout": 0.5})
    assert time.monotonic() - started < 5
    assert result.state == "error"
    assert "timed out after 0.5 s" in result.error_string


def test_payload_cannot_raise_the_mids_time_limit(tmp_path: Path) -> None:
    started = time.monotonic()
    result = _run(
        _handlers(tmp_path, timeout=0.5),
        "Command",
        {"command": "sleep 30 & sleep 30", "shell": True, "timeout": 1000},
    )
    assert time.monotonic() - started < 5
    assert "timed out" in result.error_string


def test_command_output_is_capped(tmp_path: Path) -> None:
    handlers = _handlers(tmp_path, max_output=1000)
    result = _run(handlers, "Command", {"argv": ["head", "-c", "5000000", "/dev/zero"]})
    assert result.state == "processed"
    assert len(result.output) == 1000


def test_malformed_command_payload_is_an_error(tmp_path: Path) -> None:
    result = _run(_handlers(tmp_path), "Command", {"argv": "echo hi"})
    assert result.state == "error"
    assert result.error_string.startswith("malformed payload")


# -- PythonScript ------------------------------------------------------------------------

SCRIPT = "import json, sys\nparams = json.load(sys.stdin)\nprint(params['a'] + params['b'])\n"


def test_python_script_gets_parameters_on_stdin(tmp_path: Path) -> None:
    script = _script(
        "mid_script_include", {"name": "add", "script": SCRIPT, "active": "true"}, a=2, b=3
    )
    result = _handlers(tmp_path).run(EccMessage.from_json(message("PythonScript", "{}")), script)
    assert (result.state, result.output) == ("processed", "5\n")


def test_python_script_runs_isolated_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", "/nonexistent-injected")
    code = "import sys\nprint(any('nonexistent-injected' in p for p in sys.path))\n"
    script = _script("mid_script_include", {"name": "iso", "script": code, "active": "true"})
    result = _handlers(tmp_path).run(EccMessage.from_json(message("PythonScript", "{}")), script)
    assert result.output == "False\n"


def test_python_script_time_limit(tmp_path: Path) -> None:
    code = "import time\ntime.sleep(30)\n"
    script = _script("mid_script_include", {"name": "slow", "script": code, "active": "true"})
    result = _handlers(tmp_path, timeout=0.5).run(
        EccMessage.from_json(message("PythonScript", "{}")), script
    )
    assert "script timed out" in result.error_string


def test_inactive_python_script_does_not_run(tmp_path: Path) -> None:
    code = "open('ran', 'w').write('x')\n"
    script = _script("mid_script_include", {"name": "off", "script": code, "active": "false"})
    result = _handlers(tmp_path).run(EccMessage.from_json(message("PythonScript", "{}")), script)
    assert result.state == "error"
    assert not (tmp_path / "run" / "ran").exists()


# -- JDBCProbe ---------------------------------------------------------------------------


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    path = tmp_path / "inventory.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE hosts (name TEXT, cores INTEGER)")
        db.executemany("INSERT INTO hosts VALUES (?, ?)", [("web1", 4), ("db1", 16)])
    return path


def _sql(sql: str) -> dict[str, str | None]:
    return {"name": "inv", "type": "JDBC", "connection_url": "inventory", "sql_statement": sql}


def test_jdbc_probe_returns_rows_from_a_real_sqlite_file(tmp_path: Path, inventory: Path) -> None:
    handlers = _handlers(tmp_path, jdbc={"inventory": f"sqlite:///{inventory}"})
    script = _script(
        "sys_data_source", _sql("SELECT name, cores FROM hosts WHERE cores > :min"), min=1
    )
    result = handlers.run(EccMessage.from_json(message("JDBCProbe", "{}")), script)
    assert result.state == "processed"
    data = json.loads(result.output)
    assert data["columns"] == ["name", "cores"]
    assert data["rows"] == [{"name": "web1", "cores": 4}, {"name": "db1", "cores": 16}]
    handlers.close()


def test_jdbc_probe_with_unconfigured_connection_is_an_error(tmp_path: Path) -> None:
    script = _script("sys_data_source", dict(_sql("SELECT 1"), connection_url="payroll"))
    result = _handlers(tmp_path).run(EccMessage.from_json(message("JDBCProbe", "{}")), script)
    assert result.state == "error"
    assert "no JDBC connection named 'payroll'" in result.error_string


def test_jdbc_probe_sql_error_is_reported(tmp_path: Path, inventory: Path) -> None:
    handlers = _handlers(tmp_path, jdbc={"inventory": f"sqlite:///{inventory}"})
    script = _script("sys_data_source", _sql("SELECT * FROM nowhere"))
    result = handlers.run(EccMessage.from_json(message("JDBCProbe", "{}")), script)
    assert result.state == "error"
    assert "no such table" in result.error_string


def test_jdbc_probe_time_limit_interrupts_the_query(tmp_path: Path, inventory: Path) -> None:
    handlers = _handlers(tmp_path, timeout=0.5, jdbc={"inventory": f"sqlite:///{inventory}"})
    endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT max(x) FROM c"
    started = time.monotonic()
    result = handlers.run(
        EccMessage.from_json(message("JDBCProbe", "{}")), _script("sys_data_source", _sql(endless))
    )
    assert time.monotonic() - started < 5
    assert "timed out" in result.error_string
    deadline = time.monotonic() + 5
    while any(t.name == "mid-jdbc" for t in threading.enumerate()):  # the query was interrupted
        assert time.monotonic() < deadline, "the timed-out query kept running"
        time.sleep(0.05)


# -- RESTProbe ---------------------------------------------------------------------------


class _Echo(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self._reply()

    def do_POST(self) -> None:
        self._reply()

    def _reply(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.dumps(
            {
                "method": self.command,
                "path": self.path,
                "x_probe": self.headers.get("X-Probe"),
                "body": self.rfile.read(length).decode(),
            }
        ).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def echo_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_rest_probe_sends_the_signed_request(tmp_path: Path, echo_url: str) -> None:
    fields: dict[str, str | None] = {
        "name": "ping",
        "endpoint": f"{echo_url}/api/ping?x=1",
        "http_method": "POST",
        "headers": json.dumps({"X-Probe": "yes"}),
        "request_body": '{"hello": "world"}',
    }
    result = _handlers(tmp_path).run(
        EccMessage.from_json(message("RESTProbe", "{}")), _script("sys_rest_message", fields)
    )
    assert result.state == "processed"
    data = json.loads(result.output)
    assert data["status"] == 201
    assert json.loads(data["body"]) == {
        "method": "POST",
        "path": "/api/ping?x=1",
        "x_probe": "yes",
        "body": '{"hello": "world"}',
    }


def test_rest_probe_to_a_closed_port_is_an_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    fields: dict[str, str | None] = {
        "name": "x",
        "endpoint": f"http://127.0.0.1:{port}/",
        "http_method": "GET",
        "headers": None,
        "request_body": None,
    }
    result = _handlers(tmp_path).run(
        EccMessage.from_json(message("RESTProbe", "{}")), _script("sys_rest_message", fields)
    )
    assert result.state == "error"
    assert "REST request failed" in result.error_string


def test_rest_probe_trickling_its_headers_is_cut_at_the_time_limit(tmp_path: Path) -> None:
    """httpx's timeout is per read: a server sending a header byte every 0.3 s would hold
    the MID's worker for as long as it likes without an overall deadline."""
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    done = threading.Event()

    def trickle() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            while not done.wait(0.3):
                try:
                    conn.sendall(b"a")
                except OSError:
                    return

    threading.Thread(target=trickle, daemon=True).start()
    fields: dict[str, str | None] = {
        "name": "slow",
        "endpoint": f"http://127.0.0.1:{server.getsockname()[1]}/",
        "http_method": "GET",
        "headers": None,
        "request_body": None,
    }
    started = time.monotonic()
    try:
        result = _handlers(tmp_path, timeout=1.5).run(
            EccMessage.from_json(message("RESTProbe", "{}")), _script("sys_rest_message", fields)
        )
    finally:
        done.set()
        server.close()
    assert result.state == "error"
    assert result.error_string == "REST request timed out after 1.5 s"
    assert time.monotonic() - started < 4.0


# -- SystemCommand -----------------------------------------------------------------------


def test_system_commands(tmp_path: Path) -> None:
    handlers = _handlers(tmp_path)
    (tmp_path / "mid.log").write_text("line one\nECC message execution denied: x\n")
    logs = _run(handlers, "SystemCommand", {"command": "grab_logs"})
    assert "ECC message execution denied: x" in logs.output
    stats = json.loads(_run(handlers, "SystemCommand", "queue_stats").output)
    assert stats["processed"] == 7
    assert _run(handlers, "SystemCommand", {"command": "heartbeat"}).state == "processed"
    assert _run(handlers, "SystemCommand", {"command": "reboot"}).state == "error"


def test_unknown_topic_is_an_error(tmp_path: Path) -> None:
    result = _run(_handlers(tmp_path), "SSHCommand", "ls")
    assert result.state == "error"
    assert "no handler for topic" in result.error_string
