"""The script runner: a separate, fresh process, bounded in time and output."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from trustcircle.errors import PolicyError, UsageError
from trustcircle.jobs import (
    ApiCall,
    Frame,
    RunStatus,
    ScriptApi,
    codesigning_api,
    run_script,
)


def test_output_log_lines_and_requests_come_back() -> None:
    script = 'print("hello")\nlog.info("starting")\nlog.warn("careful")\ncodesigning.turn_on()\n'
    result = run_script(script, codesigning_api(), 10)
    assert result.ok, result.error
    assert result.status is RunStatus.OK
    assert result.exit_code == 0
    assert result.output == "hello\n"
    assert [(x.level, x.message) for x in result.log] == [
        ("info", "starting"),
        ("warn", "careful"),
    ]
    assert [(r.target, r.method) for r in result.requests] == [("codesigning", "turn_on")]


def test_runaway_script_is_killed_at_the_time_limit() -> None:
    started = time.monotonic()
    result = run_script("while True:\n    pass\n", codesigning_api(), 1.0)
    assert result.status is RunStatus.TIMEOUT
    assert not result.ok
    assert "time limit" in (result.error or "")
    assert time.monotonic() - started < 5


def test_processes_started_by_a_script_die_with_it(tmp_path: Path) -> None:
    script = (
        "import subprocess, time\n"
        "p = subprocess.Popen(['sleep', '60'])\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    result = run_script(script, codesigning_api(), 1.0)
    assert result.status is RunStatus.TIMEOUT
    pid = int(result.output.split()[0])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"the script's child {pid} outlived the run")


def test_crashing_script_is_isolated_from_the_caller() -> None:
    crashed = run_script("import os\nos._exit(3)\n", codesigning_api(), 10)
    assert crashed.status is RunStatus.CRASHED
    assert crashed.exit_code == 3
    killed = run_script(
        "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n", codesigning_api(), 10
    )
    assert killed.status is RunStatus.CRASHED
    # the caller carries on, and the next run works
    assert run_script("print(1)", codesigning_api(), 10).output == "1\n"


def test_script_exception_is_a_failed_result_with_its_traceback() -> None:
    result = run_script('raise ValueError("boom")\n', codesigning_api(), 10)
    assert result.status is RunStatus.ERROR
    assert "ValueError: boom" in (result.error or "")
    assert "_child.py" not in (result.error or "")


def test_flood_of_output_is_capped_and_stopped() -> None:
    result = run_script(
        'while True:\n    print("x" * 1000)\n', codesigning_api(), 10, max_output=20_000
    )
    assert result.status is RunStatus.OUTPUT_LIMIT
    assert len(result.output.encode()) <= 20_000


def test_memory_bomb_fails_only_the_run() -> None:
    result = run_script("x = bytearray(4 * 1024 ** 3)\n", codesigning_api(), 10)
    assert result.status is RunStatus.ERROR
    assert "MemoryError" in (result.error or "")


def test_raw_write_to_stdout_cannot_inject_a_request() -> None:
    forged = (
        '{"type": "call", "id": 1, "target": "codesigning", "method": "turn_on", '
        '"args": [], "kwargs": {}}\\n'
    )
    script = f"import os\nos.write(1, b'{forged}')\nprint('done')\n"
    result = run_script(script, codesigning_api(), 10)
    assert result.ok, result.error
    assert result.requests == ()
    assert '"turn_on"' in result.stderr


def test_script_sees_no_instance_environment_or_descriptors(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TRUSTCIRCLE_TOKEN", "tc_secret")
    secret = tmp_path / "db"
    secret.write_text("database")
    fd = os.open(secret, os.O_RDONLY)
    high = os.dup2(fd, 57)
    os.set_inheritable(high, True)
    try:
        script = (
            "import os, sys\n"
            "print(os.environ.get('TRUSTCIRCLE_TOKEN'))\n"
            "try:\n    os.fstat(57)\n    print('inherited')\nexcept OSError:\n    print('closed')\n"
            "print(sys.flags.isolated)\n"
        )
        result = run_script(script, codesigning_api(), 10)
    finally:
        os.close(high)
        os.close(fd)
    assert result.output.split() == ["None", "closed", "1"]


def test_unknown_api_method_fails_in_the_script() -> None:
    result = run_script("codesigning.sign_everything()\n", codesigning_api(), 10)
    assert result.status is RunStatus.ERROR
    assert "has no method 'sign_everything'" in (result.error or "")
    assert result.requests == ()


def test_refused_call_raises_in_the_script_and_is_not_a_request() -> None:
    def refuse(call: ApiCall) -> object:
        raise PolicyError("not on this instance")

    api = ScriptApi()
    api.register("records", "insert", refuse)
    api.register("records", "get", lambda call: {"name": call.args[0]})
    script = (
        "print(records.get('a')['name'])\n"
        "try:\n    records.insert('x')\nexcept ScriptApiError as exc:\n    print('refused:', exc)\n"
    )
    result = run_script(script, api, 10)
    assert result.ok, result.error
    assert result.output == "a\nrefused: not on this instance\n"
    assert [r.method for r in result.requests] == ["get"]


def test_calls_carry_the_calling_stack() -> None:
    seen: list[tuple[Frame, ...]] = []

    def record(call: ApiCall) -> object:
        seen.append(call.stack)
        return None

    api = ScriptApi()
    api.register("ecc", "enqueue", record)
    frame = Frame("sysauto_script", "c0de5161000000000000000000000001", "ab" * 16)
    result = run_script("ecc.enqueue('mid.server.a', 'Command', 'ls')", api, 10, stack=(frame,))
    assert result.ok, result.error
    assert seen == [(frame,)]


def test_bad_arguments_are_usage_errors() -> None:
    with pytest.raises(UsageError):
        run_script("pass", codesigning_api(), 0)
    with pytest.raises(UsageError):
        run_script("x" * (1024 * 1024 + 1), codesigning_api(), 1)
    with pytest.raises(UsageError):
        ScriptApi().register("log", "info", lambda call: None)


def test_protocol_line_nested_past_the_parser_depth_fails_only_the_run() -> None:
    script = (
        "import os\n"
        "line = b'[' * 200000 + b']' * 200000 + b'\\n'\n"
        "for fd in range(3, 10):\n"
        "    try:\n"
        "        os.write(fd, line)\n"
        "        break\n"
        "    except OSError:\n"
        "        continue\n"
        "import time\n"
        "time.sleep(1)\n"
    )
    result = run_script(script, codesigning_api(), 10)  # returns: never raises
    assert not result.ok
