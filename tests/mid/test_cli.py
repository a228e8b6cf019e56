"""`trustcircle mid start`: config errors are one line and exit 2; SIGTERM stops it cleanly.

The command group is wired into the main CLI the way the integrator wires it
(``mid.register(app)``), in a real subprocess so that real signals are delivered.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SessionPki
from tests.mid.builders import write_config
from tests.mid.fake_instance import FakeInstance

_LAUNCH = (
    "import sys\n"
    "from trustcircle.cli import main, mid\n"
    "mid.register(main.app)\n"
    "main.main(sys.argv[1:])\n"
)


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _LAUNCH, "mid", "start", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def instance() -> Iterator[FakeInstance]:
    fake = FakeInstance()
    fake.start()
    yield fake
    fake.stop()


def test_config_error_is_one_line_and_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "mid.yaml"
    config.write_text("name: mid1\n")
    proc = _start("--config", str(config))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert err.strip().count("\n") == 0
    assert "key instance_url is missing" in err


def test_unknown_firewall_tag_refuses_to_start(
    tmp_path: Path, test_pki: SessionPki, instance: FakeInstance
) -> None:
    boot = "security:\n  eccFirewall:\n    rules:\n      - {tags: [TELNET], action: reject}\n"
    proc = _start("--config", str(write_config(tmp_path, test_pki, instance.url, boot)))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "unknown ECC firewall tag 'TELNET'" in err
    assert not instance.registered


def test_sigterm_stops_the_mid_cleanly(
    tmp_path: Path, test_pki: SessionPki, instance: FakeInstance
) -> None:
    proc = _start("--config", str(write_config(tmp_path, test_pki, instance.url)))
    try:
        instance.wait_for(lambda: "GET /api/ecc/poll" in instance.requests, timeout=60)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, err
    assert time.monotonic() - started < 10
    log = (tmp_path / "logs" / "mid.log").read_text()
    assert "signal SIGTERM: stopping" in log
    assert log.rstrip().endswith("MID mid1 stopped")
