"""Two MID processes sharing one agent name compete for one queue: every one of 1,000
signed messages runs exactly once; and a MID that loses its instance keeps its result."""

from __future__ import annotations

import collections

import pytest

from tests.live.circle import MANY, MANY_COUNT, SLOW
from tests.live.conftest import Live
from tests.live.harness import Mid, wait_until

AGENT = "mid.server.pool"


@pytest.fixture(scope="module")
def pool(live: Live) -> list[Mid]:
    return live.start_mids(("pool", "pool-1", {}), ("pool", "pool-2", {}))


def _finished(live: Live) -> int:
    with live.db() as db:
        row = db.execute(
            "select count(*) from ecc_queue where agent = ? and queue = 'output' "
            "and state in ('processed', 'error')",
            (AGENT,),
        ).fetchone()
    return int(row[0])


def test_thousand_messages_over_two_mids_each_run_exactly_once(live: Live, pool: list[Mid]) -> None:
    ran = live.prod.trusted.folder / "ran.txt"
    live.prod.run_job(MANY)
    wait_until(lambda: _finished(live) >= MANY_COUNT, 120, "1000 results", every=0.25)
    with live.db() as db:
        states = dict(
            db.execute(
                "select state, count(*) from ecc_queue where agent = ? and queue = 'output' "
                "group by state",
                (AGENT,),
            ).fetchall()
        )
        answers = db.execute(
            "select count(*), count(distinct response_to) from ecc_queue "
            "where agent = ? and queue = 'input'",
            (AGENT,),
        ).fetchone()
        unnotarized = db.execute(
            "select count(*) from ecc_queue where agent = ? and queue = 'output' "
            "and notarization_signature is null",
            (AGENT,),
        ).fetchone()[0]
    assert states == {"processed": MANY_COUNT}
    assert answers == (MANY_COUNT, MANY_COUNT)
    assert unnotarized == 0
    lines = ran.read_text().splitlines()
    runs = collections.Counter(int(line.split()[0]) for line in lines)
    assert runs == collections.Counter(range(MANY_COUNT))  # each index exactly once
    workers = {line.split()[1] for line in lines}
    assert workers == {str(mid.folder / "work" / "run") for mid in pool}  # both MIDs worked


def test_mid_that_cannot_reach_the_instance_retries_and_loses_no_result(
    live: Live, pool: list[Mid]
) -> None:
    live.prod.run_job(SLOW)
    sys_id = str(live.by_name("slow")["sys_id"])
    live.wait_state(sys_id, ("processing",))
    live.server.kill()  # the instance crashes while the command runs
    wait_until(
        lambda: any("instance unreachable while delivering" in m.log() for m in pool),
        30,
        "a MID to fail to deliver its result",
    )
    assert all(m.alive() for m in pool)
    live.server.start()  # back on the same port
    message = live.wait_state(sys_id, timeout=60)
    assert message["state"] == "processed"
    response = live.prod.show(sys_id)["response"]
    assert response is not None
    assert response["payload"] == "survived\n"
    assert any("retrying with backoff" in m.log() for m in pool)
