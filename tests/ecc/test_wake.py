"""Waiting polls wake when work for their agent commits, and only then."""

from __future__ import annotations

import asyncio

import pytest

from tests.ecc.conftest import Prod
from trustcircle.ecc import WAKER, queue


def _insert(prod: Prod, agent: str, *, fail: bool = False) -> None:
    with prod.op("ecc.write") as op:
        queue.insert(
            op.session,
            queue.check_message(agent, "Command", "", "ls", ""),
            created_by="admin",
            now=op.ts,
        )
        if fail:
            raise RuntimeError("the transaction fails")


def test_commit_wakes_the_agents_polls_and_a_rollback_does_not(prod: Prod) -> None:
    async def scenario() -> tuple[bool, bool, bool]:
        with WAKER.listen("mid.server.alpha") as alpha, WAKER.listen("mid.server.beta") as beta:
            loop = asyncio.get_running_loop()
            with pytest.raises(RuntimeError):
                await loop.run_in_executor(
                    None, lambda: _insert(prod, "mid.server.alpha", fail=True)
                )
            rolled_back = await alpha.wait(0.3)
            await loop.run_in_executor(None, _insert, prod, "mid.server.alpha")
            woken = await alpha.wait(5)
            other = await beta.wait(0.1)
        return rolled_back, woken, other

    rolled_back, woken, other = asyncio.run(scenario())
    assert (rolled_back, woken, other) == (False, True, False)
    assert WAKER.waiting("mid.server.alpha") == 0
