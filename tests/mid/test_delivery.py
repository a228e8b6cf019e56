"""The outbox and its delivery: nothing is lost, one bad entry never blocks the others."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mid.builders import message
from tests.mid.fake_instance import TOKEN, FakeInstance
from trustcircle.mid.client import InstanceClient
from trustcircle.mid.delivery import Sender
from trustcircle.mid.outbox import LOG, RESULT, Outbox


@pytest.fixture
def instance() -> Iterator[FakeInstance]:
    fake = FakeInstance()
    fake.start()
    yield fake
    fake.stop()


def _claimed(instance: FakeInstance) -> str:
    msg = message("Command", "echo x")
    instance.claimed[msg["sys_id"]] = msg
    return str(msg["sys_id"])


def _sender(outbox: Outbox, instance: FakeInstance, token: str = TOKEN) -> Sender:
    client = InstanceClient(instance.url, token)
    return Sender(outbox, client, logging.getLogger("test.mid.delivery"), backoff_cap=0.1)


def _result(output: str) -> dict[str, object]:
    return {"state": "processed", "output": output, "error_string": "", "denied": False}


def test_results_are_delivered_in_one_batch(tmp_path: Path, instance: FakeInstance) -> None:
    outbox = Outbox(tmp_path)
    ids = [_claimed(instance) for _ in range(3)]
    for sys_id in ids:
        outbox.put(RESULT, sys_id, _result(sys_id))
    assert _sender(outbox, instance).flush()
    assert {k: v["output"] for k, v in instance.results.items()} == {i: i for i in ids}
    assert instance.requests.count("POST /api/ecc/batch_result") == 1
    assert outbox.count() == 0


def test_a_result_the_instance_already_has_does_not_block_the_others(
    tmp_path: Path, instance: FakeInstance
) -> None:
    outbox = Outbox(tmp_path)
    done, fresh, gone = _claimed(instance), _claimed(instance), "f" * 32
    instance.results[done] = {"sys_id": done, "output": "first"}
    outbox.put(RESULT, done, _result("second"))
    outbox.put(RESULT, gone, _result("nobody"))
    outbox.put(RESULT, fresh, _result("fresh"))
    assert _sender(outbox, instance).flush()
    assert instance.results[done]["output"] == "first"  # 409: dropped, not overwritten
    assert instance.results[fresh]["output"] == "fresh"
    assert outbox.count() == 0
    assert outbox.dead_count() == 1  # the unknown message is kept aside, not lost


def test_unreachable_instance_keeps_everything_in_the_outbox(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    fake = FakeInstance()
    fake.start()
    fake.stop()  # its port is closed now
    outbox.put(RESULT, "a" * 32, _result("kept"))
    outbox.put(LOG, "b" * 32, {"event": "firewall_accept", "message": "m"})
    assert not _sender(outbox, fake).flush()
    assert outbox.count() == 2
    reopened = Outbox(tmp_path)
    assert [i.kind for i in reopened.pending(10)] == [RESULT, LOG]


def test_refused_token_keeps_results_for_later(tmp_path: Path, instance: FakeInstance) -> None:
    outbox = Outbox(tmp_path)
    outbox.put(RESULT, _claimed(instance), _result("x"))
    assert not _sender(outbox, instance, token="wrong").flush()
    assert outbox.count() == 1
    assert outbox.dead_count() == 0
