"""Only a signed policy statement switches enforcement off on a MID: a "validation off"
written straight into the instance's database changes nothing, a signed Turn Off does."""

from __future__ import annotations

import json

import pytest

from tests.live.conftest import Live
from tests.live.harness import Mid
from trustcircle._time import format_ts, system_clock
from trustcircle.jobs import TURN_OFF_NAME
from trustcircle.platform import properties

UNSIGNED = '{"argv": ["echo", "unsigned work"]}'
FORGED_ID = "f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0"


@pytest.fixture(scope="module")
def alpha(live: Live) -> Mid:
    return live.mid("alpha")


def _unsigned(live: Live, name: str) -> dict[str, object]:
    sys_id = live.prod.on(
        "ecc",
        "enqueue",
        "--agent",
        "mid.server.alpha",
        "--topic",
        "Command",
        "--name",
        name,
        "--payload",
        UNSIGNED,
        "--json",
    ).json()["sys_id"]
    return live.wait_state(sys_id)


def test_validation_off_written_into_the_database_does_not_stop_enforcement(
    live: Live, alpha: Mid
) -> None:
    now = system_clock()
    fields = {
        "instance": "prod",
        "state": "off",
        "sequence": "99",
        "issued_at": format_ts(now),
        "expires_at": "2099-01-01T00:00:00Z",
    }
    with live.db() as db:  # an attacker with the database file: no key, no signature
        db.execute(
            "update sys_properties set value = 'false' where name = ?",
            (properties.VALIDATION_FLAG,),
        )
        db.execute(
            "insert into sys_record values (?, 'cot_policy_statement', ?, ?, ?, 'admin', "
            "'admin', 0)",
            (FORGED_ID, json.dumps(fields), format_ts(now), format_ts(now)),
        )
        db.execute(
            "insert into cot_policy_statement_log values (99, ?, ?, 'prod', 'off', ?, ?, ?, "
            "'admin')",
            (FORGED_ID, "0" * 32, fields["issued_at"], fields["expires_at"], format_ts(now)),
        )
    try:
        alpha.restart()  # a restart fetches the policy statement at once
        alpha.wait_log("Code Signing policy statement refused")
        alpha.wait_log("Code Signing validation is on (policy statement sequence 1)")
        message = _unsigned(live, "after-forged-off")
        assert message["state"] == "error"
        assert "message is not notarized" in str(message["error_string"])
        refused = [e for e in live.prod.log() if e["event"] == "policy_refused"]
        assert refused
        assert refused[0]["source"] == "mid.server.alpha"
        assert FORGED_ID in str(refused[0]["message"])
    finally:
        with live.db() as db:
            db.execute("delete from cot_policy_statement_log where sequence = 99")
            db.execute("delete from sys_record where sys_id = ?", (FORGED_ID,))
            db.execute(
                "update sys_properties set value = 'true' where name = ?",
                (properties.VALIDATION_FLAG,),
            )


def test_after_a_signed_turn_off_the_mid_accepts_unsigned_work(live: Live, alpha: Mid) -> None:
    executed = live.prod.run_job(TURN_OFF_NAME)
    assert executed["policy_sequence"] == 2
    alpha.restart()
    alpha.wait_log("Code Signing validation is off (policy statement sequence 2)")
    message = _unsigned(live, "after-signed-off")
    assert message["state"] == "processed", message["error_string"]
    response = live.prod.show(str(message["sys_id"]))["response"]
    assert response is not None
    assert response["payload"] == "unsigned work\n"
