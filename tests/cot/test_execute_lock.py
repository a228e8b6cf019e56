"""A signed job's run does not hold the instance's write lock while its script only reads.

Each test starts ``job execute`` in its own process with a script that marks a file and
waits for the test's go-ahead; the test acts on the protected home meanwhile. A job that
held the lock from the start would hold up that action until the script gave up.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.cot.test_circle import Circle, _add_job, _executions, circle

__all__ = ["circle"]

WAIT = 25  # seconds a script waits for the test's go-ahead (the CLI waits 30 for a lock)


def _script(marker: Path, tail: str = "") -> str:
    """Mark *marker*, wait for ``<marker>.go`` (the test's go-ahead), then run *tail*."""
    go = f"{marker}.go"
    return (
        "import os, time\n"
        f"open({str(marker)!r}, 'w').write('running')\n"
        f"deadline = time.monotonic() + {WAIT}\n"
        f"while not os.path.exists({go!r}):\n"
        "    if time.monotonic() > deadline:\n"
        "        raise TimeoutError('no go-ahead: the instance was held up')\n"
        "    time.sleep(0.05)\n"
        f"{tail}"
    )


def _go(marker: Path) -> None:
    Path(f"{marker}.go").write_text("go")


@contextmanager
def _running(c: Circle, name: str, marker: Path) -> Iterator[subprocess.Popen[str]]:
    """``job execute NAME`` in another process, yielded once its script runs."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "trustcircle", "job", "execute", name, "--home", str(c.protected),
         "--time-limit", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the job's script never started"
            time.sleep(0.05)
        yield proc
    finally:
        if proc.poll() is None:
            proc.wait(timeout=120)


def test_other_writers_go_ahead_while_a_job_script_runs(circle: Circle) -> None:
    marker = circle.tmp / "slow.started"
    _add_job(circle, "Slow", _script(marker))
    circle.bring_job("Slow")
    with _running(circle, "Slow", marker) as job:
        _bystander(circle)  # goes ahead while the script waits: no lock is held yet
        _go(marker)
        _out, err = job.communicate(timeout=120)
    assert job.returncode == 0, err
    assert [e["outcome"] for e in _executions(circle, "Slow")] == ["ok"]


def test_job_edited_on_production_while_it_runs_applies_nothing(circle: Circle) -> None:
    """The prerequisites are judged again under the write lock, after the run."""
    marker = circle.tmp / "edited.started"
    _add_job(circle, "Edited", _script(marker))
    circle.bring_job("Edited")
    with _running(circle, "Edited", marker) as job:
        circle.ok(
            "record", "update", "--home", circle.protected, "--table", "sysauto_script",
            "--id", _job_id(circle, "Edited"), "--field", "script=print('swapped')",
        )  # fmt: skip
        _go(marker)
        _out, err = job.communicate(timeout=120)
    assert job.returncode == 1
    assert "changed after it was signed" in err
    assert _executions(circle, "Edited") == []


def test_script_that_writes_then_fails_applies_nothing(circle: Circle) -> None:
    marker = circle.tmp / "writer.started"
    tail = "records.insert('sys_data_source', {'name': 'half', 'type': 'JDBC'})\nraise ValueError"
    _add_job(circle, "Writer", _script(marker, tail))
    circle.bring_job("Writer")
    with _running(circle, "Writer", marker) as job:
        _bystander(circle)
        _go(marker)
        _out, err = job.communicate(timeout=120)
    assert job.returncode == 1, err
    assert "ValueError" in err, "the script wrote, then failed"
    listed = circle.ok(
        "record", "list", "--table", "sys_data_source", "--home", circle.protected, "--json"
    ).json()
    assert [r for r in listed if r["fields"].get("name") == "half"] == []
    assert _executions(circle, "Writer") == []


def _job_id(c: Circle, name: str) -> str:
    shown = c.ok("job", "show", name, "--home", c.protected, "--json").json()
    return str(shown["sys_id"])


def _bystander(c: Circle) -> None:
    c.ok("user", "add", "bystander", "--roles", "approver_user", "--home", c.protected)
