"""The sign-in throttle: a flood of other names never unlocks a throttled one."""

from __future__ import annotations

import pytest

from trustcircle.errors import LimitExceededError
from trustcircle.web.pages import signin


def test_flood_of_other_names_does_not_unlock_a_throttled_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(signin, "_MAX_TRACKED", 50)
    throttle = signin._Throttle()
    for _ in range(signin.MAX_FAILURES):
        throttle.failed("alice")
    with pytest.raises(LimitExceededError):
        throttle.check("alice")
    for i in range(500):  # ten times what it tracks: it must make room, not forget alice
        throttle.failed(f"guess-{i}")
    with pytest.raises(LimitExceededError, match="too many failed sign-ins for 'alice'"):
        throttle.check("alice")
    throttle.check("guess-3")  # one failure each: still allowed
