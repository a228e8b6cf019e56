"""Kill ``updateset commit`` of a 10,000-entry set at random points: all of it or none of it.

One signed Circle-of-Trust set of 10,000 entries (4,997 jobs signed with the test
Ed25519 key, their signature records, three certificates and their signatures) is
imported once into a template protected home. Each round copies the home, starts
``python -m trustcircle updateset commit`` and SIGKILLs it — after a random share of
a full commit's run time, or as soon as the write-ahead log has grown past a random
size (the writes are under way) — then checks that the database holds every record
of the set or none, and that the audit log still verifies.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import SessionPki
from tests.updatesets.retrieved_sets import SetBuilder, job_fields
from trustcircle.cli.main import main
from trustcircle.signing import CODE_SIGNING

JOBS = 4_997  # + their signatures + 3 certificates and their signatures = 10,000 entries
ROUNDS = 5
DB = "trustcircle.db"


@dataclass(frozen=True)
class Template:
    home: Path
    set_id: str
    targets: dict[str, list[str]]  # table -> sys_ids the set writes


def _run(*args: str | Path) -> tuple[int, str, str]:
    """``trustcircle ARGS`` in this process: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in args])
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def _cli(*args: str | Path) -> str:
    """``trustcircle ARGS`` in this process (set-up); its stdout, after checking it succeeded."""
    code, out, err = _run(*args)
    assert code == 0, err
    return out


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, test_pki: SessionPki) -> Template:
    folder = tmp_path_factory.mktemp("crash")
    home = folder / "template"
    _cli("init", "--home", home, "--role", "protected", "--name", "prod")
    _cli("trust-anchor", "add", test_pki.files.root_pem, "--home", home)
    b = SetBuilder(test_pki, "ten thousand signed jobs")
    for i in range(JOBS):
        job = b.record("sysauto_script", job_fields(f"job {i}", f"print({i})\n" + "#" * 500))
        b.sign(job, test_pki.ed25519, purpose=CODE_SIGNING)
    b.trusted_chain()
    b.sign(b.certificate(test_pki.ed25519.cert, "cm_code_signing"))
    assert len(b.records) == 10_000
    path = b.write(folder / "set.xml", b.manifest())
    out = _cli("updateset", "import", path, "--home", home, "--json")
    set_id = re.search(r'"sys_id": "([0-9a-f]{32})"', out)
    assert set_id is not None
    with sqlite3.connect(home / DB) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    targets: dict[str, list[str]] = {}
    for sid, rec in b.records.items():
        targets.setdefault(rec.table, []).append(sid)
    return Template(home, set_id.group(1), targets)


def _copy(template: Template, dest: Path) -> Path:
    shutil.copytree(template.home, dest)
    config = dest / "config.toml"
    config.write_text(re.sub(r'url = ".*"', f'url = "sqlite:///{dest / DB}"', config.read_text()))
    return dest


def _applied(home: Path, template: Template) -> int:
    """How many of the set's records the database holds (a fresh connection: WAL recovery)."""
    tables = {
        "sysauto_script": "sys_record",
        "sn_kmf_record_signature": "sn_kmf_record_signature",
        "sys_certificate": "sys_certificate",
    }
    found = 0
    with contextlib.closing(sqlite3.connect(home / DB)) as conn:
        for table, ids in template.targets.items():
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                marks = ",".join("?" * len(chunk))
                sql = f"SELECT count(*) FROM {tables[table]} WHERE sys_id IN ({marks})"  # noqa: S608
                found += conn.execute(sql, chunk).fetchone()[0]
    return found


def _state(home: Path, set_id: str) -> str:
    with contextlib.closing(sqlite3.connect(home / DB)) as conn:
        row = conn.execute(
            "SELECT state FROM sys_remote_update_set WHERE sys_id = ?", (set_id,)
        ).fetchone()
    return str(row[0])


@contextlib.contextmanager
def _commit(home: Path, set_id: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "trustcircle", "updateset", "commit", set_id, "--home", str(home)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def _watch_wal(proc: subprocess.Popen[bytes], wal: Path) -> int:
    """Wait for *proc*; the largest size its write-ahead log reached meanwhile."""
    largest = 0
    while proc.poll() is None:
        with contextlib.suppress(FileNotFoundError):
            largest = max(largest, wal.stat().st_size)
        time.sleep(0.002)
    return largest


def _kill_after(proc: subprocess.Popen[bytes], delay: float) -> None:
    deadline = time.monotonic() + delay
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)


def _kill_when_wal_grows(proc: subprocess.Popen[bytes], wal: Path, size: int) -> None:
    while proc.poll() is None:
        with contextlib.suppress(FileNotFoundError):
            if wal.stat().st_size > size:
                os.kill(proc.pid, signal.SIGKILL)
                return
        time.sleep(0.002)


def _audit_ok(home: Path) -> bool:
    return _run("audit", "verify", "--home", home)[0] == 0


def test_commit_killed_at_random_points_applies_all_or_nothing(
    template: Template, tmp_path: Path
) -> None:
    total = sum(len(ids) for ids in template.targets.values())
    assert total == 10_000
    full = _copy(template, tmp_path / "full")
    start = time.monotonic()
    with _commit(full, template.set_id) as proc:
        wal_size = _watch_wal(proc, full / f"{DB}-wal")
    run_time = time.monotonic() - start
    assert wal_size > 1 << 20, "the commit wrote less than expected to the write-ahead log"
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    assert _applied(full, template) == total
    assert _state(full, template.set_id) == "committed"

    rng = random.Random(0xC0DE5161)
    outcomes: list[tuple[str, int]] = []
    for i in range(ROUNDS):
        home = _copy(template, tmp_path / f"round-{i}")
        with _commit(home, template.set_id) as proc:
            if i % 2:
                threshold = rng.randint(64 << 10, wal_size * 9 // 10)
                _kill_when_wal_grows(proc, home / f"{DB}-wal", threshold)
            else:
                _kill_after(proc, rng.uniform(0.3, 1.0) * run_time)
            proc.wait(timeout=120)
        applied = _applied(home, template)
        outcomes.append((f"round {i}: exit {proc.returncode}", applied))
        assert applied in (0, total), outcomes
        assert (_state(home, template.set_id) == "committed") == (applied == total), outcomes
        assert _audit_ok(home), outcomes
        shutil.rmtree(home)
    killed = [name for name, _applied in outcomes if name.endswith("exit -9")]
    assert killed, f"no round killed the commit before it finished: {outcomes}"
