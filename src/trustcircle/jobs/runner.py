"""Run a job's Python script in a separate, fresh process, with a time limit.

The child (``python -I``, a new session, a minimal environment, no inherited file
descriptors, so none of the instance's database connections) runs the script and
talks JSON lines with the parent (protocol in :mod:`trustcircle.jobs._child`). It is
not a sandbox: the child runs as the instance's OS user and could open the files that
user can. That is why only signed code runs in it: the job itself, and each script it
includes (:meth:`trustcircle.ecc.tracker.Tracker.resolve_include` refuses the others).
Everything the script may do to the instance is a *call* the parent answers through
a :class:`ScriptApi`: the script only asks, the parent decides. ``log`` is built in.

The parent enforces the time limit (a watchdog kills the whole process group),
caps output, line length and the number of calls, and always returns a
:class:`RunResult`: a script error, a crash or a timeout never raises into the caller.

Extending: register more objects on a :class:`ScriptApi` (``records``, ``ecc``...);
each call carries the calling *stack* (which script, signed by what, called which)
so a tracker can judge the whole chain. With :meth:`ScriptApi.set_includes` the script
also gets ``include(name)``: the parent resolves the name to a script and a
:class:`Frame`, pushes the frame, and the child runs the script in the same process;
calls made while it runs (and through the functions it defines) carry the longer stack.
"""

from __future__ import annotations

import contextlib
import enum
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import TrustcircleError, UsageError

CHILD = Path(__file__).with_name("_child.py")
DEFAULT_TIME_LIMIT = 10.0
MAX_TIME_LIMIT = 600.0
DEFAULT_MAX_OUTPUT = 64 * 1024
MAX_SCRIPT_CHARS = 1024 * 1024
MAX_LINE = 1024 * 1024
MAX_CALLS = 10_000
MAX_INCLUDE_DEPTH = 32
INCLUDE = "include"
MAX_STDERR = 16 * 1024
DEFAULT_MAX_MEMORY = 512 * 1024 * 1024
LOG_LEVELS = ("info", "warn", "error")


class RunStatus(enum.StrEnum):
    """How a run ended."""

    OK = "ok"
    ERROR = "error"  # the script raised (or exited non-zero)
    TIMEOUT = "timeout"  # killed at the time limit
    CRASHED = "crashed"  # the process died without reporting
    OUTPUT_LIMIT = "output_limit"  # killed: printed or logged more than allowed
    PROTOCOL_ERROR = "protocol_error"  # killed: spoke something other than the protocol


@dataclass(frozen=True)
class Frame:
    """One script on the calling stack: which record, and the signature it ran under."""

    table: str
    document_id: str
    signature: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {"table": self.table, "document_id": self.document_id, "signature": self.signature}


@dataclass(frozen=True)
class ApiCall:
    """One request a script made of the instance."""

    target: str
    method: str
    args: tuple[object, ...]
    kwargs: Mapping[str, object]
    stack: tuple[Frame, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "target": self.target,
            "method": self.method,
            "args": list(self.args),
            "kwargs": dict(self.kwargs),
        }


Handler = Callable[[ApiCall], object]
"""Answers one call (a JSON-ready result) or raises a TrustcircleError to refuse it."""


@dataclass(frozen=True)
class Include:
    """A script another script includes, and the frame it runs under."""

    script: str
    frame: Frame


IncludeResolver = Callable[[str, tuple[Frame, ...]], Include]
"""Resolves ``include(name)`` called with the given stack, or raises a TrustcircleError."""


class ScriptApi:
    """The objects and methods a script sees, each answered by a handler in the parent."""

    def __init__(self) -> None:
        self._handlers: dict[str, dict[str, Handler]] = {}
        self._includes: IncludeResolver | None = None

    def register(self, target: str, method: str, handler: Handler) -> None:
        if not target.isidentifier() or not method.isidentifier() or method.startswith("_"):
            raise UsageError(f"{target}.{method} is not a usable script API name")
        if target in ("log", INCLUDE):
            raise UsageError(f"'{target}' is built into every script")
        self._handlers.setdefault(target, {})[method] = handler

    def set_includes(self, resolver: IncludeResolver) -> None:
        """Offer ``include(name)`` to scripts, resolved by *resolver*."""
        self._includes = resolver

    @property
    def includes(self) -> IncludeResolver | None:
        return self._includes

    def exposed(self) -> dict[str, list[str]]:
        return {t: sorted(methods) for t, methods in sorted(self._handlers.items())}

    def handle(self, call: ApiCall) -> object:
        handler = self._handlers.get(call.target, {}).get(call.method)
        if handler is None:
            raise UsageError(f"the instance offers no {call.target}.{call.method}")
        return handler(call)


def recording_api(*objects: tuple[str, Sequence[str]]) -> ScriptApi:
    """An API whose methods only record the request (the caller acts on them after the run)."""
    api = ScriptApi()
    for target, methods in objects:
        for method in methods:
            api.register(target, method, lambda _call: None)
    return api


def codesigning_api() -> ScriptApi:
    """``codesigning.turn_on()`` / ``turn_off()``: requests the job executor acts on."""
    return recording_api(("codesigning", ("turn_on", "turn_off")))


@dataclass(frozen=True)
class LogLine:
    level: str
    message: str


@dataclass(frozen=True)
class RunResult:
    """What a run produced; ``requests`` are the calls the parent answered successfully."""

    status: RunStatus
    exit_code: int | None
    output: str
    log: tuple[LogLine, ...]
    requests: tuple[ApiCall, ...]
    error: str | None
    stderr: str
    duration: float

    @property
    def ok(self) -> bool:
        return self.status is RunStatus.OK

    def to_dict(self) -> dict[str, object]:
        return {
            "status": self.status.value,
            "ok": self.ok,
            "exit_code": self.exit_code,
            "output": self.output,
            "log": [{"level": x.level, "message": x.message} for x in self.log],
            "requests": [r.to_dict() for r in self.requests],
            "error": self.error,
            "stderr": self.stderr,
            "duration": round(self.duration, 3),
        }


@dataclass
class _Run:
    """Mutable state of one run, owned by the parent's main thread."""

    max_output: int
    output: list[str] = field(default_factory=list)
    log: list[LogLine] = field(default_factory=list)
    requests: list[ApiCall] = field(default_factory=list)
    frames: list[Frame] = field(default_factory=list)
    base_depth: int = 0
    entered: list[Frame] = field(default_factory=list)
    used: int = 0
    calls: int = 0
    status: RunStatus | None = None
    error: str | None = None

    def fail(self, status: RunStatus, error: str) -> None:
        if self.status is None:
            self.status, self.error = status, error

    def spend(self, text: str) -> bool:
        self.used += len(text.encode("utf-8", "replace"))
        if self.used > self.max_output:
            self.fail(RunStatus.OUTPUT_LIMIT, f"output over {self.max_output} bytes: stopped")
            return False
        return True


def run_script(
    script: str,
    api: ScriptApi,
    time_limit: float = DEFAULT_TIME_LIMIT,
    *,
    max_output: int = DEFAULT_MAX_OUTPUT,
    max_memory: int = DEFAULT_MAX_MEMORY,
    stack: Sequence[Frame] = (),
) -> RunResult:
    """Run *script* in a fresh child process; never raises for anything the script does."""
    if not isinstance(script, str) or len(script) > MAX_SCRIPT_CHARS:
        raise UsageError(f"a job script must be text of at most {MAX_SCRIPT_CHARS} characters")
    if not 0 < time_limit <= MAX_TIME_LIMIT:
        raise UsageError(f"a time limit must be between 0 and {MAX_TIME_LIMIT} seconds")
    started = time.monotonic()
    frames = tuple(stack)
    run = _Run(max_output=max(1, max_output), frames=list(frames), base_depth=len(frames))
    with tempfile.TemporaryDirectory(prefix="trustcircle-job-") as workdir:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-X", "utf8", str(CHILD)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=workdir,
            env={"PATH": os.defpath, "LANG": "C.UTF-8"},
            close_fds=True,
            start_new_session=True,
        )
        group = _Group(proc)
        watchdog = threading.Timer(time_limit, group.expire)
        watchdog.daemon = True
        watchdog.start()
        lines: queue.Queue[bytes | None] = queue.Queue()
        stderr_buf = bytearray()
        readers = [
            threading.Thread(target=_read_lines, args=(proc, lines), daemon=True),
            threading.Thread(target=_read_stderr, args=(proc, stderr_buf), daemon=True),
        ]
        for reader in readers:
            reader.start()
        try:
            hello = {
                "script": script,
                "objects": api.exposed(),
                "include": api.includes is not None,
                "stack": [f.to_dict() for f in frames],
                "max_memory": max_memory,
                "cpu_seconds": int(time_limit) + 1,
            }
            if _send(proc, hello):
                _converse(group, lines, api, run, started + time_limit + 1.0)
        finally:
            watchdog.cancel()
            _close_stdin(proc)
            group.reap()
            for reader in readers:
                reader.join(timeout=2.0)
        exit_code = proc.returncode
    if group.timed_out and run.status is None:
        run.fail(RunStatus.TIMEOUT, f"time limit of {time_limit:g} s exceeded: the run was killed")
    if run.status is None:
        run.fail(RunStatus.CRASHED, f"the script process died without reporting (exit {exit_code})")
    return RunResult(
        status=run.status or RunStatus.CRASHED,
        exit_code=exit_code,
        output="".join(run.output),
        log=tuple(run.log),
        requests=tuple(run.requests),
        error=run.error,
        stderr=bytes(stderr_buf).decode("utf-8", "replace"),
        duration=time.monotonic() - started,
    )


def _converse(
    group: _Group,
    lines: queue.Queue[bytes | None],
    api: ScriptApi,
    run: _Run,
    deadline: float,
) -> None:
    """Answer the child until it reports done, dies, or misbehaves."""
    while True:
        try:
            raw = lines.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            group.kill()
            return
        if raw is None:
            return
        message = _parse(raw)
        if message is None:
            run.fail(RunStatus.PROTOCOL_ERROR, "the script process broke the protocol: stopped")
            group.kill()
            return
        kind = message.get("type")
        if kind == "done":
            ok = message.get("ok") is True
            if ok:
                run.status = run.status or RunStatus.OK
            else:
                run.fail(RunStatus.ERROR, str(message.get("error") or "script failed")[-4000:])
            return
        if kind == "output":
            text = str(message.get("text", ""))
            if not run.spend(text):
                group.kill()
                return
            run.output.append(text)
        elif kind == "log":
            level = str(message.get("level"))
            text = str(message.get("message", ""))
            if not run.spend(text):
                group.kill()
                return
            run.log.append(LogLine(level if level in LOG_LEVELS else "info", text))
        elif kind == "call":
            run.calls += 1
            if run.calls > MAX_CALLS:
                run.fail(RunStatus.ERROR, f"more than {MAX_CALLS} instance calls: stopped")
                group.kill()
                return
            if not _send(group.proc, _answer(message, api, run)):
                return
        else:
            run.fail(RunStatus.PROTOCOL_ERROR, f"unknown message type {str(kind)[:40]!r}")
            group.kill()
            return


def _answer(message: Mapping[str, Any], api: ScriptApi, run: _Run) -> dict[str, object]:
    call_id = message.get("id")
    args, kwargs = message.get("args"), message.get("kwargs")
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        return {"id": call_id, "ok": False, "error": "malformed call"}
    target, method = str(message.get("target")), str(message.get("method"))
    call = ApiCall(target, method, tuple(args), kwargs, tuple(run.frames))
    try:
        if call.target == INCLUDE and api.includes is not None:
            return {"id": call_id, "ok": True, "result": _include(call, api.includes, run)}
        result = api.handle(call)
    except TrustcircleError as exc:
        return {"id": call_id, "ok": False, "error": exc.message}
    run.requests.append(call)
    return {"id": call_id, "ok": True, "result": result}


def _include(call: ApiCall, resolver: IncludeResolver, run: _Run) -> object:
    """``include`` protocol: ``enter`` (by name), ``reenter`` (a function of an included
    script is called: its frame again, by token) and ``leave``. The parent keeps the stack;
    the child can never pop below the frames the run started with."""
    if call.method == "leave" and not call.args:
        if len(run.frames) <= run.base_depth:
            raise UsageError("include.leave without a matching enter")
        run.frames.pop()
        return None
    if len(run.frames) >= MAX_INCLUDE_DEPTH:
        raise UsageError(f"includes nested deeper than {MAX_INCLUDE_DEPTH} levels: stopped")
    if call.method == "enter" and len(call.args) == 1 and isinstance(call.args[0], str):
        included = resolver(call.args[0], tuple(run.frames))
        run.entered.append(included.frame)
        run.frames.append(included.frame)
        return {"script": included.script, "token": len(run.entered) - 1}
    if call.method == "reenter" and len(call.args) == 1 and type(call.args[0]) is int:
        token = call.args[0]
        if not 0 <= token < len(run.entered):
            raise UsageError("include.reenter names no included script")
        run.frames.append(run.entered[token])
        return None
    raise UsageError(f"the instance offers no include.{call.method} with these arguments")


def _parse(raw: bytes) -> dict[str, Any] | None:
    if not raw.endswith(b"\n"):
        return None  # over MAX_LINE, or cut short
    try:
        message = json.loads(raw)
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
        return None
    return message if isinstance(message, dict) else None


def _send(proc: subprocess.Popen[bytes], message: Mapping[str, object]) -> bool:
    if proc.stdin is None:
        return False
    try:
        proc.stdin.write(json.dumps(message, ensure_ascii=True).encode("ascii") + b"\n")
        proc.stdin.flush()
    except (OSError, ValueError):  # the child is gone (broken pipe, closed)
        return False
    return True


def _close_stdin(proc: subprocess.Popen[bytes]) -> None:
    if proc.stdin is not None:
        with contextlib.suppress(OSError, ValueError):
            proc.stdin.close()


def _read_lines(proc: subprocess.Popen[bytes], lines: queue.Queue[bytes | None]) -> None:
    stream = proc.stdout
    if stream is None:
        lines.put(None)
        return
    try:
        while True:
            raw = stream.readline(MAX_LINE)
            if not raw:
                break
            lines.put(raw)
            if not raw.endswith(b"\n"):
                break  # an over-long line: the parent stops the run
    except (OSError, ValueError):
        pass
    finally:
        lines.put(None)


def _read_stderr(proc: subprocess.Popen[bytes], buf: bytearray) -> None:
    stream = proc.stderr
    if stream is None:
        return
    with contextlib.suppress(OSError, ValueError):
        while chunk := stream.read(8192):
            if len(buf) < MAX_STDERR:
                buf.extend(chunk[: MAX_STDERR - len(buf)])


class _Group:
    """The child's process group: killed at the deadline, reaped once.

    The group is killed only while its leader is unreaped (running or a zombie), so
    its id cannot yet name another process group.
    """

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.timed_out = False
        self._lock = threading.Lock()
        self._reaped = False

    def expire(self) -> None:
        with self._lock:
            if not self._reaped:
                self.timed_out = True
                self._killpg()

    def kill(self) -> None:
        with self._lock:
            if not self._reaped:
                self._killpg()

    def reap(self, grace: float = 2.0) -> None:
        """Wait (briefly) for the leader to exit, kill what is left of the group, reap."""
        end = time.monotonic() + grace
        while time.monotonic() < end and not self._exited():
            time.sleep(0.01)
        with self._lock:
            self._killpg()
            self.proc.wait()
            self._reaped = True

    def _exited(self) -> bool:
        try:
            info = os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return info is not None

    def _killpg(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
