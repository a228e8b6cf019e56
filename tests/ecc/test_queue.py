"""The queue itself: atomic claims, one result per claim, MIDs bound to their account."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest

from tests.ecc.conftest import Prod
from trustcircle.ecc import cslog, mids, queue, service
from trustcircle.errors import NotFoundError, PolicyError, RefusedError

AGENT = "mid.server.alpha"


def _insert(prod: Prod, count: int, agent: str = AGENT) -> list[str]:
    with prod.op("ecc.write") as op:
        return [
            queue.insert(
                op.session,
                queue.check_message(agent, "Command", f"m{i}", "echo", ""),
                created_by="admin",
                now=op.ts,
            ).sys_id
            for i in range(count)
        ]


def _claim(prod: Prod, token: str, most: int = 20, agent: str = AGENT) -> list[dict[str, Any]]:
    with prod.op("mid.agent", token) as op:
        return service.claim(op, agent, most)


def _post(prod: Prod, token: str, *results: tuple[str, dict[str, Any]]) -> list[dict[str, str]]:
    with prod.op("mid.agent", token) as op:
        return service.post_results(op, list(results))


def _done(output: str = "hi\n") -> dict[str, Any]:
    return {"state": "processed", "output": output, "error_string": "", "denied": False}


def test_two_mids_claiming_at_once_never_get_one_message(prod: Prod) -> None:
    token = prod.mid_token()
    prod.add_mid("alpha", token)
    ids = _insert(prod, 300)
    got: list[list[str]] = [[] for _ in range(4)]

    def worker(slot: int) -> None:
        while batch := _claim(prod, token, 7):
            got[slot].extend(m["sys_id"] for m in batch)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    claimed = [sys_id for part in got for sys_id in part]
    assert sorted(claimed) == sorted(ids)
    assert sum(1 for part in got if part) >= 2


def test_claimed_message_is_processing_and_names_its_mid(prod: Prod) -> None:
    token = prod.mid_token()
    prod.add_mid("alpha", token)
    (sys_id,) = _insert(prod, 1)
    (message,) = _claim(prod, token)
    assert (message["sys_id"], message["state"], message["claimed_by"]) == (
        sys_id,
        "processing",
        "alpha",
    )
    assert _claim(prod, token) == []


def test_result_creates_the_input_record_and_a_second_result_is_refused(prod: Prod) -> None:
    token = prod.mid_token()
    prod.add_mid("alpha", token)
    (sys_id,) = _insert(prod, 1)
    _claim(prod, token)
    (posted,) = _post(prod, token, (sys_id, _done()))
    assert posted["state"] == "processed"
    with prod.op("ecc.read") as op:
        shown: dict[str, Any] = service.show(op, sys_id)
    assert shown["message"]["state"] == "processed"
    assert shown["response"]["payload"] == "hi\n"
    assert shown["response"]["queue"] == "input"
    assert shown["response"]["response_to"] == sys_id
    with pytest.raises(RefusedError, match="already has a result") as refused:
        _post(prod, token, (sys_id, _done("again")))
    assert refused.value.http_status == 409


def test_result_for_a_message_nobody_claimed_is_refused(prod: Prod) -> None:
    token = prod.mid_token()
    prod.add_mid("alpha", token)
    (sys_id,) = _insert(prod, 1)
    with pytest.raises(RefusedError, match="is not claimed"):
        _post(prod, token, (sys_id, _done()))
    with pytest.raises(NotFoundError):
        _post(prod, token, ("f" * 32, _done()))


def test_batch_with_one_refused_result_changes_nothing(prod: Prod) -> None:
    token = prod.mid_token()
    prod.add_mid("alpha", token)
    first, second = _insert(prod, 2)
    _claim(prod, token)
    _post(prod, token, (first, _done()))
    with pytest.raises(RefusedError):
        _post(prod, token, (second, _done()), (first, _done()))
    with prod.op("ecc.read") as op:
        assert queue.get(op.session, second).state == "processing"
        assert queue.response_of(op.session, second) is None


def test_denial_result_is_written_to_the_code_signing_log(prod: Prod) -> None:
    token = prod.mid_token()
    prod.add_mid("alpha", token)
    (sys_id,) = _insert(prod, 1)
    _claim(prod, token)
    denial = "ECC message execution denied: message is not notarized"
    _post(prod, token, (sys_id, {"state": "error", "error_string": denial, "denied": True}))
    with prod.op("codesigning.log") as op:
        entries = cslog.list_entries(op.session, source=AGENT)
    assert [(e["event"], e["ecc"], e["message"]) for e in entries] == [
        ("execution_denied", sys_id, denial)
    ]


def test_another_mid_account_cannot_take_over_a_mid(prod: Prod) -> None:
    alpha = prod.mid_token("alpha-account")
    intruder = prod.mid_token("intruder")
    prod.add_mid("alpha", alpha)
    (sys_id,) = _insert(prod, 1)
    with pytest.raises(PolicyError, match="belongs to another account"):
        _claim(prod, intruder)
    with pytest.raises(PolicyError, match="registered by another account"):
        prod.add_mid("alpha", intruder)
    _claim(prod, alpha)
    with pytest.raises(PolicyError, match="belongs to another account"):
        _post(prod, intruder, (sys_id, _done()))


def test_unvalidated_mid_gets_no_work(prod: Prod) -> None:
    token = prod.mid_token()
    prod.add_mid("alpha", token, validated=False)
    _insert(prod, 1)
    with pytest.raises(PolicyError, match="not validated"):
        _claim(prod, token)


def test_malformed_agent_and_topic_are_refused(prod: Prod) -> None:
    from trustcircle.errors import UsageError

    for agent, topic in (("alpha", "Command"), ("mid.server.", "Command"), (AGENT, "a b")):
        with pytest.raises(UsageError):
            queue.check_message(agent, topic, None, None, None)


TIMEOUT = dt.timedelta(seconds=3900)  # trustcircle.ecc.result_timeout's default


def test_claim_of_a_mid_that_stopped_ends_in_error_and_never_runs_again(prod: Prod) -> None:
    alpha, beta = prod.mid_token("alpha-account"), prod.mid_token("beta-account")
    prod.add_mid("alpha", alpha)
    prod.add_mid("beta", beta)
    (sys_id,) = _insert(prod, 1)
    _claim(prod, alpha)
    with prod.op("ecc.read", later=TIMEOUT - dt.timedelta(seconds=60)) as op:
        (waiting,) = service.list_messages(op, agent=AGENT)
        assert (waiting.state, waiting.claimed_by) == ("processing", "alpha")
    with prod.op("ecc.read", later=TIMEOUT + dt.timedelta(seconds=60)) as op:
        shown: dict[str, Any] = service.show(op, sys_id)
        assert (shown["message"]["state"], shown["response"]) == ("error", None)
        (ended,) = service.list_messages(op, agent=AGENT)
        assert ended.state == "error"
        assert "no result from MID alpha within 3900 s" in ended.error_string
        assert "not run again" in ended.error_string
    with prod.op("mid.agent", beta, later=TIMEOUT + dt.timedelta(seconds=90)) as op:
        assert service.claim(op, "mid.server.beta", 20) == []
        assert queue.get(op.session, sys_id).state == "error"  # not ready for anyone
    with prod.op("codesigning.log") as op:
        logged = cslog.list_entries(op.session, source=cslog.INSTANCE)
    assert [(e["event"], e["ecc"], e["level"]) for e in logged if e["ecc"] == sys_id] == [
        ("result_timeout", sys_id, "error")
    ]


def test_late_result_of_the_claiming_mid_replaces_the_expiry_once(prod: Prod) -> None:
    token = prod.mid_token()
    prod.add_mid("alpha", token)
    (sys_id,) = _insert(prod, 1)
    _claim(prod, token)
    with prod.op("ecc.read", later=TIMEOUT + dt.timedelta(seconds=1)) as op:
        assert service.expire_claims(op) == 1
    (posted,) = _post(prod, token, (sys_id, _done("late but real\n")))
    assert posted["state"] == "processed"
    with prod.op("ecc.read") as op:
        shown: dict[str, Any] = service.show(op, sys_id)
    assert (shown["message"]["state"], shown["message"]["error_string"]) == ("processed", "")
    assert shown["response"]["payload"] == "late but real\n"
    with pytest.raises(RefusedError, match="already has a result"):
        _post(prod, token, (sys_id, _done("again")))


def test_a_result_in_time_is_never_expired(prod: Prod) -> None:
    token = prod.mid_token()
    prod.add_mid("alpha", token)
    (sys_id,) = _insert(prod, 1)
    _claim(prod, token)
    _post(prod, token, (sys_id, _done()))
    with prod.op("ecc.read", later=TIMEOUT * 2) as op:
        assert service.expire_claims(op) == 0
        assert queue.get(op.session, sys_id).state == "processed"


def test_a_heartbeat_of_any_mid_ends_overdue_claims(prod: Prod) -> None:
    alpha, beta = prod.mid_token("alpha-account"), prod.mid_token("beta-account")
    prod.add_mid("alpha", alpha)
    prod.add_mid("beta", beta)
    (sys_id,) = _insert(prod, 1)
    _claim(prod, alpha)
    with prod.op("mid.agent", beta, later=TIMEOUT + dt.timedelta(seconds=5)) as op:
        service.heartbeat(op, mids.CheckIn("beta"))
        assert queue.get(op.session, sys_id).state == "error"
