"""The child side of the script runner: run one script, talk JSON lines with the parent.

Started as ``python -I -X utf8 _child.py`` in a new session, with a minimal
environment and no inherited file descriptors. Standard library only: it imports
nothing of trustcircle and never sees the instance's database.

Protocol (one JSON object per line, UTF-8):

parent → child, first line::

    {"script": "...", "objects": {"codesigning": ["turn_off", "turn_on"]},
     "include": false, "stack": [...], "max_memory": 536870912, "cpu_seconds": 11}

child → parent::

    {"type": "output", "text": "..."}                     what the script printed
    {"type": "log", "level": "info|warn|error", "message": "..."}
    {"type": "call", "id": 1, "target": "...", "method": "...", "args": [...], "kwargs": {...}}
    {"type": "done", "ok": true} | {"type": "done", "ok": false, "error": "..."}

parent → child, once per call::

    {"id": 1, "ok": true, "result": ...} | {"id": 1, "ok": false, "error": "..."}

With ``"include": true`` the script gets ``include(name)``: a call ``include.enter
[name]`` answered with ``{"script", "token"}``; the child runs that script in a fresh
namespace, then calls ``include.leave``. Functions of the included script are wrapped:
each call is bracketed by ``include.reenter [token]`` and ``include.leave``, so the
parent's calling stack names the included script while its code runs.
"""

from __future__ import annotations

import builtins
import json
import os
import sys
import traceback
from typing import Any, TextIO

_MAX_ERROR = 4000


class ScriptApiError(Exception):
    """The instance refused a call the script made."""


class _Channel:
    def __init__(self, out: TextIO, inp: TextIO) -> None:
        self._out = out
        self._in = inp
        self._next_id = 0

    def send(self, message: dict[str, Any]) -> None:
        self._out.write(json.dumps(message, ensure_ascii=True) + "\n")
        self._out.flush()

    def call(self, target: str, method: str, args: Any, kwargs: Any) -> Any:
        self._next_id += 1
        call_id = self._next_id
        self.send(
            {
                "type": "call",
                "id": call_id,
                "target": target,
                "method": method,
                "args": list(args),
                "kwargs": dict(kwargs),
            }
        )
        line = self._in.readline()
        if not line:
            raise SystemExit(75)  # the parent went away: stop at once
        reply = json.loads(line)
        if reply.get("id") != call_id:
            raise SystemExit(76)
        if not reply.get("ok"):
            raise ScriptApiError(str(reply.get("error", "refused")))
        return reply.get("result")


class _Output:
    """``sys.stdout`` of the script: every write goes to the parent as output."""

    encoding = "utf-8"

    def __init__(self, channel: _Channel) -> None:
        self._channel = channel

    def write(self, text: str) -> int:
        if text:
            self._channel.send({"type": "output", "text": str(text)})
        return len(text)

    def flush(self) -> None:
        return None

    def isatty(self) -> bool:
        return False


class _Log:
    def __init__(self, channel: _Channel) -> None:
        self._channel = channel

    def _send(self, level: str, message: object) -> None:
        self._channel.send({"type": "log", "level": level, "message": str(message)})

    def info(self, message: object) -> None:
        self._send("info", message)

    def warn(self, message: object) -> None:
        self._send("warn", message)

    warning = warn

    def error(self, message: object) -> None:
        self._send("error", message)


class _Proxy:
    """An instance object (``codesigning``, ``records``...): each method is a parent call."""

    def __init__(self, channel: _Channel, name: str, methods: list[str]) -> None:
        self._channel = channel
        self._name = name
        self._methods = frozenset(methods)

    def __getattr__(self, method: str) -> Any:
        if method.startswith("_") or method not in self._methods:
            raise AttributeError(f"{self._name} has no method {method!r}")

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._channel.call(self._name, method, args, kwargs)

        call.__name__ = method
        return call

    def __repr__(self) -> str:
        return f"<instance API {self._name}>"


class _Included:
    """What ``include(name)`` returns: the included script's names; functions are tracked."""

    def __init__(self, channel: _Channel, name: str, token: int, names: dict[str, Any]) -> None:
        self._channel = channel
        self._name = name
        self._token = token
        self._names = names

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") or attr not in self._names:
            raise AttributeError(f"included script {self._name!r} defines no {attr!r}")
        value = self._names[attr]
        if not callable(value):
            return value
        channel, token = self._channel, self._token

        def tracked(*args: Any, **kwargs: Any) -> Any:
            channel.call("include", "reenter", [token], {})
            try:
                return value(*args, **kwargs)
            finally:
                channel.call("include", "leave", [], {})

        tracked.__name__ = attr
        return tracked

    def __repr__(self) -> str:
        return f"<included script {self._name}>"


def _namespace(channel: _Channel, hello: dict[str, Any], name: str) -> dict[str, Any]:
    """A fresh namespace holding the instance API (and ``include`` when offered)."""
    namespace: dict[str, Any] = {
        "__name__": name,
        "__builtins__": builtins,
        "log": _Log(channel),
        "ScriptApiError": ScriptApiError,
    }
    for target, methods in dict(hello.get("objects") or {}).items():
        namespace[str(target)] = _Proxy(channel, str(target), list(methods))
    if hello.get("include"):

        def include(script_name: str) -> _Included:
            reply = channel.call("include", "enter", [str(script_name)], {})
            names = _namespace(channel, hello, "__include__")
            try:
                code = compile(str(reply["script"]), f"<include {script_name}>", "exec")
                exec(code, names)  # noqa: S102 - the parent resolved (and judged) this script
            finally:
                channel.call("include", "leave", [], {})
            return _Included(channel, str(script_name), int(reply["token"]), names)

        namespace["include"] = include
    return namespace


def _limit(hello: dict[str, Any]) -> None:
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return
    memory = int(hello.get("max_memory") or 0)
    cpu = int(hello.get("cpu_seconds") or 0)
    if memory > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    if cpu > 0:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))


def main() -> int:
    proto_out = os.fdopen(os.dup(1), "w", encoding="utf-8", newline="\n")
    os.dup2(2, 1)  # raw writes to fd 1 land in stderr, never in the protocol stream
    channel = _Channel(proto_out, sys.stdin)
    hello = json.loads(sys.stdin.readline())
    _limit(hello)
    namespace = _namespace(channel, hello, "__job__")
    sys.stdout = _Output(channel)
    try:
        code = compile(str(hello["script"]), "<job script>", "exec")
        exec(code, namespace)  # noqa: S102 - running the (verified) script is the point
    except SystemExit as exc:
        if exc.code not in (None, 0):
            channel.send({"type": "done", "ok": False, "error": f"script exited with {exc.code}"})
            return 1
    except BaseException as exc:  # every script failure is reported, not raised
        tb = exc.__traceback__.tb_next if exc.__traceback__ else None  # from the script down
        text = "".join(traceback.format_exception(type(exc), exc, tb))
        channel.send({"type": "done", "ok": False, "error": text[-_MAX_ERROR:]})
        return 1
    channel.send({"type": "done", "ok": True})
    return 0


if __name__ == "__main__":
    sys.exit(main())
