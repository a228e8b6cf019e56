"""What a MID runs: one handler per ECC topic, each with a time limit and capped output.

``Command`` runs a program without a shell unless the payload asks for one; ``PythonScript``
runs a ``mid_script_include`` in an isolated ``python -I`` subprocess with the parameters
as JSON on stdin; ``JDBCProbe`` runs the SQL of a ``sys_data_source`` through SQLAlchemy
against the URL the MID's ``jdbc`` map gives for its ``connection_url``; ``RESTProbe`` sends
a ``sys_rest_message`` with httpx; ``SystemCommand`` answers heartbeat, grab_logs and
queue_stats. Handlers never raise: every failure is an ``error`` :class:`ExecResult`.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as _dt
import decimal
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import sqlalchemy
from sqlalchemy.pool import NullPool

from trustcircle.errors import BadInputError, TrustcircleError

from .config import jdbc_url
from .payloads import (
    SCRIPT_TOPICS,
    EccMessage,
    ScriptPayload,
    parse_command_payload,
    parse_script_payload,
    parse_system_command,
)

MAX_OUTPUT_BYTES = 1024 * 1024
MAX_ROWS = 10_000
LOG_TAIL_BYTES = 64 * 1024
PROCESSED = "processed"
_GRACE = 2.0
"""Seconds to wait for output after the program exits (a background child may hold it)."""
ERROR = "error"


@dataclass(frozen=True)
class ExecResult:
    """What is reported for one message: ``processed`` with output, or ``error``."""

    state: str
    output: str = ""
    error_string: str = ""

    @classmethod
    def error(cls, reason: str, output: str = "") -> ExecResult:
        return cls(ERROR, output, reason)


@dataclass(frozen=True)
class HandlerSettings:
    exec_timeout: float
    run_dir: Path
    log_file: Path
    jdbc: Mapping[str, str] = field(default_factory=dict)
    max_output: int = MAX_OUTPUT_BYTES


class Handlers:
    """Runs a message's topic handler; thread-safe."""

    def __init__(
        self,
        settings: HandlerSettings,
        stats: Callable[[], Mapping[str, Any]] = dict,
    ) -> None:
        self._settings = settings
        self._stats = stats
        self._engines: dict[str, sqlalchemy.Engine] = {}
        self._lock = threading.Lock()
        self._plain: dict[str, Callable[[EccMessage], ExecResult]] = {
            "Command": self._command,
            "SystemCommand": self._system,
        }
        self._scripts: dict[str, Callable[[ScriptPayload], ExecResult]] = {
            "PythonScript": self._python,
            "JDBCProbe": self._jdbc,
            "RESTProbe": self._rest,
        }

    def run(self, message: EccMessage, script: ScriptPayload | None = None) -> ExecResult:
        """Execute *message*; *script* is its already verified record, if any."""
        topic = message.topic
        try:
            if topic in self._scripts and topic in SCRIPT_TOPICS:
                if script is None:
                    script = parse_script_payload(topic, message.payload)
                return self._scripts[topic](script)
            if topic in self._plain:
                return self._plain[topic](message)
        except TrustcircleError as exc:
            return ExecResult.error(f"malformed payload: {exc.message}")
        return ExecResult.error(f"no handler for topic {topic[:80]!r} on this MID")

    def close(self) -> None:
        with self._lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()

    def _timeout(self, asked: float | None = None) -> float:
        limit = self._settings.exec_timeout
        return limit if asked is None else min(asked, limit)

    # -- Command and PythonScript ----------------------------------------------------

    def _command(self, message: EccMessage) -> ExecResult:
        cmd = parse_command_payload(message.payload)
        argv = ["/bin/sh", "-c", cmd.command or ""] if cmd.shell else list(cmd.argv or ())
        return self._process(argv, None, self._timeout(cmd.timeout), "command")

    def _python(self, script: ScriptPayload) -> ExecResult:
        if (script.fields.get("active") or "true").lower() == "false":
            return ExecResult.error(f"mid_script_include {script.sys_id} is inactive")
        source = script.fields.get("script") or ""
        params = json.dumps(dict(script.parameters)).encode("utf-8")
        run_dir = self._settings.run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        fd, path = tempfile.mkstemp(prefix="script-", suffix=".py", dir=run_dir)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(source)
            return self._process([sys.executable, "-I", path], params, self._timeout(), "script")
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def _process(
        self, argv: list[str], stdin: bytes | None, timeout: float, what: str
    ) -> ExecResult:
        run = run_process(argv, stdin, timeout, self._settings.max_output, self._settings.run_dir)
        out = run.stdout.decode("utf-8", "replace")
        if run.timed_out:
            return ExecResult.error(f"{what} timed out after {timeout:g} s and was killed", out)
        if run.returncode != 0:
            tail = run.stderr.decode("utf-8", "replace").strip().splitlines()
            last = f": {tail[-1][:300]}" if tail else ""
            return ExecResult.error(f"{what} exited with status {run.returncode}{last}", out)
        return ExecResult(PROCESSED, out)

    # -- JDBCProbe ------------------------------------------------------------------

    def _engine(self, name: str, url: str) -> sqlalchemy.Engine:
        with self._lock:
            engine = self._engines.get(name)
            if engine is None:
                try:
                    engine = sqlalchemy.create_engine(url, poolclass=NullPool)
                except (sqlalchemy.exc.ArgumentError, ImportError) as exc:
                    raise BadInputError(
                        f"JDBC connection {name!r} has an unusable URL ({type(exc).__name__}): "
                        "fix the jdbc map of mid.yaml"
                    ) from exc
                self._engines[name] = engine
            return engine

    def _jdbc(self, script: ScriptPayload) -> ExecResult:
        name = script.fields.get("connection_url")
        engine = self._engine(str(name), jdbc_url(self._settings.jdbc, name))
        sql = script.fields.get("sql_statement") or ""
        if not sql.strip():
            return ExecResult.error(f"sys_data_source {script.sys_id} has no sql_statement")
        params = {
            k: v
            for k, v in script.parameters.items()
            if v is None or isinstance(v, str | int | float | bool)
        }
        timeout = self._timeout()
        holder: dict[str, Any] = {}
        worker = threading.Thread(
            target=_query, args=(engine, sql, params, holder), name="mid-jdbc", daemon=True
        )
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            connection = holder.get("dbapi")
            interrupt = getattr(connection, "interrupt", None)
            if callable(interrupt):  # sqlite3; other drivers are left to finish on their own
                with contextlib.suppress(Exception):
                    interrupt()
            return ExecResult.error(f"query timed out after {timeout:g} s")
        if "error" in holder:
            return ExecResult.error(f"query failed: {holder['error']}")
        return ExecResult(PROCESSED, _capped_json(holder["result"], self._settings.max_output))

    # -- RESTProbe ------------------------------------------------------------------

    def _rest(self, script: ScriptPayload) -> ExecResult:
        fields = script.fields
        method = (fields.get("http_method") or "GET").upper()
        endpoint = fields.get("endpoint") or ""
        if not endpoint.startswith(("http://", "https://")):
            return ExecResult.error("REST message endpoint must be an http:// or https:// URL")
        headers = _headers(fields.get("headers"))
        body = fields.get("request_body")
        timeout = self._timeout()
        # httpx's timeout is per read: the whole exchange runs in a thread the handler
        # waits for at most *timeout*, then closes the client under it.
        client = httpx.Client(timeout=timeout, follow_redirects=False)
        request = _RestRequest(client, method, endpoint, headers, body, self._settings.max_output)
        worker = threading.Thread(target=request.run, args=(timeout,), daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            with contextlib.suppress(Exception):
                client.close()
            return ExecResult.error(f"REST request timed out after {timeout:g} s")
        client.close()
        return request.result or ExecResult.error("REST request failed: no result")

    # -- SystemCommand --------------------------------------------------------------

    def _system(self, message: EccMessage) -> ExecResult:
        command = parse_system_command(message.payload)
        if command in ("heartbeat", "queue_stats"):
            stats = dict(self._stats())
            stats["command"] = command
            return ExecResult(PROCESSED, json.dumps(stats, sort_keys=True, default=str))
        if command == "grab_logs":
            return ExecResult(PROCESSED, _tail(self._settings.log_file, LOG_TAIL_BYTES))
        return ExecResult.error(
            f"unknown SystemCommand {command[:60]!r}: use heartbeat, grab_logs or queue_stats"
        )


@dataclass(frozen=True)
class ProcessRun:
    returncode: int | None
    stdout: bytes
    stderr: bytes
    timed_out: bool


def run_process(
    argv: list[str], stdin: bytes | None, timeout: float, cap: int, cwd: Path
) -> ProcessRun:
    """Run *argv* (no shell) in its own process group; kill the group at *timeout*.

    Output beyond *cap* bytes per stream is read and dropped, so a chatty program
    neither blocks nor fills the MID's memory.
    """
    cwd.mkdir(parents=True, exist_ok=True)
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            start_new_session=True,
        )
    except OSError as exc:
        return ProcessRun(
            127, b"", f"cannot start {argv[0][:200]!r}: {exc.strerror}".encode(), False
        )
    assert proc.stdout is not None
    assert proc.stderr is not None
    buffers: tuple[bytearray, bytearray] = (bytearray(), bytearray())
    readers = [
        threading.Thread(target=_drain, args=(stream, buf, cap), daemon=True)
        for stream, buf in ((proc.stdout, buffers[0]), (proc.stderr, buffers[1]))
    ]
    if stdin is not None:
        readers.append(threading.Thread(target=_feed, args=(proc.stdin, stdin), daemon=True))
    for reader in readers:
        reader.start()
    deadline = time.monotonic() + timeout
    timed_out = False
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
    if not timed_out:  # a background grandchild may still hold the pipes open
        for reader in readers:
            reader.join(min(_GRACE, max(0.0, deadline - time.monotonic())))
    if timed_out or any(r.is_alive() for r in readers):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        for reader in readers:
            reader.join(1.0)
    for stream in (proc.stdout, proc.stderr, proc.stdin):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
    return ProcessRun(proc.returncode, bytes(buffers[0]), bytes(buffers[1]), timed_out)


def _drain(stream: IO[bytes], buf: bytearray, cap: int) -> None:
    with contextlib.suppress(OSError, ValueError):
        while chunk := stream.read1(65536):  # type: ignore[attr-defined]
            room = cap - len(buf)
            if room > 0:
                buf.extend(chunk[:room])


def _feed(stream: IO[bytes] | None, data: bytes) -> None:
    if stream is None:
        return
    with contextlib.suppress(OSError, ValueError):
        stream.write(data)
        stream.close()


def _query(
    engine: sqlalchemy.Engine, sql: str, params: Mapping[str, Any], holder: dict[str, Any]
) -> None:
    try:
        with engine.begin() as conn:
            holder["dbapi"] = conn.connection.dbapi_connection
            result = conn.execute(sqlalchemy.text(sql), dict(params))
            if result.returns_rows:
                keys = result.keys()
                columns = [str(c) for c in keys]
                rows = result.fetchmany(MAX_ROWS + 1)
                holder["result"] = {
                    "columns": columns,
                    "rows": [
                        {c: _jsonable(v) for c, v in zip(columns, row, strict=False)}
                        for row in rows[:MAX_ROWS]
                    ],
                    "truncated": len(rows) > MAX_ROWS,
                }
            else:
                holder["result"] = {"rowcount": result.rowcount}
    except Exception as exc:  # any driver error becomes the message's error_string
        holder["error"] = (
            f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
        )


def _jsonable(value: object) -> object:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, _dt.datetime | _dt.date | _dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return str(value)


def _capped_json(data: Mapping[str, Any], cap: int) -> str:
    text = json.dumps(data, sort_keys=True)
    if len(text.encode("utf-8")) <= cap or "rows" not in data:
        return text
    rows = list(data["rows"])
    while rows and len(text.encode("utf-8")) > cap:
        rows = rows[: len(rows) // 2]
        text = json.dumps({**data, "rows": rows, "truncated": True}, sort_keys=True)
    return text


def _headers(text: str | None) -> dict[str, str]:
    if not text or not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise BadInputError("REST message headers are not a JSON object") from exc
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise BadInputError("REST message headers must be a JSON object of text values")
    return data


def _tail(path: Path, size: int) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            end = fh.tell()
            fh.seek(max(0, end - size))
            data = fh.read(size)
    except OSError:
        return ""
    if len(data) == size and b"\n" in data:
        data = data[data.index(b"\n") + 1 :]
    return data.decode("utf-8", "replace")


class _RestRequest:
    """One RESTProbe exchange, run in its own thread (see ``Handlers._rest``)."""

    def __init__(
        self,
        client: httpx.Client,
        method: str,
        endpoint: str,
        headers: dict[str, str],
        body: str | None,
        cap: int,
    ) -> None:
        self._client = client
        self._args = (method, endpoint, headers, body)
        self._cap = cap
        self.result: ExecResult | None = None

    def run(self, timeout: float) -> None:
        method, endpoint, headers, body = self._args
        deadline = time.monotonic() + timeout
        try:
            with self._client.stream(
                method, endpoint, headers=headers, content=body.encode("utf-8") if body else None
            ) as response:
                chunks: list[bytes] = []
                size = 0
                truncated = False
                for chunk in response.iter_bytes():
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > self._cap:
                        truncated = True
                        break
                    if time.monotonic() > deadline:
                        return  # the handler has given up: stop reading, nobody reads on
        except httpx.TimeoutException:
            self.result = ExecResult.error(f"REST request timed out after {timeout:g} s")
            return
        except httpx.HTTPError as exc:
            self.result = ExecResult.error(
                f"REST request failed: {type(exc).__name__}: {exc}"[:500]
            )
            return
        except Exception as exc:  # the client closed under it at the time limit, and the like
            self.result = ExecResult.error(f"REST request failed: {type(exc).__name__}"[:500])
            return
        text = b"".join(chunks)[: self._cap].decode("utf-8", "replace")
        outcome = {
            "status": response.status_code,
            "headers": dict(response.headers),
            "body": text,
            "truncated": truncated,
        }
        self.result = ExecResult(PROCESSED, json.dumps(outcome, sort_keys=True))
