"""Files: the job lock is exclusive, made private, and released on exit."""

from __future__ import annotations

import stat
from pathlib import Path

from trustcircle._fs import exclusive


def test_exclusive_lock_is_refused_while_held_and_free_afterwards(tmp_path: Path) -> None:
    lock = tmp_path / "job.lock"
    with exclusive(lock) as first:
        assert first
        with exclusive(lock) as second:
            assert not second
    assert stat.S_IMODE(lock.stat().st_mode) == 0o600
    with exclusive(lock) as again:
        assert again


def test_exclusive_lock_is_released_when_the_holder_fails(tmp_path: Path) -> None:
    lock = tmp_path / "job.lock"
    try:
        with exclusive(lock) as held:
            assert held
            raise RuntimeError("the job failed")
    except RuntimeError:
        pass
    with exclusive(lock) as again:
        assert again
