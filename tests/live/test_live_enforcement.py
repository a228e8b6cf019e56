"""An instance with two MIDs, all real processes on loopback: signed work runs, everything
else is denied and logged. Tests are named after the attack they stop."""

from __future__ import annotations

import json

import pytest

from tests.live.circle import SIGNED_PROBES
from tests.live.conftest import Live, inventory_db

DENIED = "ECC message execution denied: "
ORIGINAL = '{"argv":["echo","signed hello"]}'
PROBES = ("signed-echo", "jdbc-signed", "jdbc-edited", "jdbc-firewalled")


@pytest.fixture(scope="module")
def site(live: Live) -> Live:
    inventory = f"sqlite:///{inventory_db(live.folder / 'inventory.db')}"
    rules = [{"tags": ["jdbc"], "action": "reject"}, {"tags": ["rest"], "action": "accept"}]
    live.start_mids(
        ("alpha", "alpha", {"jdbc": {"inventory": inventory}}),
        ("beta", "beta", {"jdbc": {"inventory": inventory}, "rules": rules}),
    )
    prod = live.prod
    (count,) = [
        r
        for r in prod.on("record", "list", "--table", "sys_data_source", "--json").json()
        if r["fields"]["name"] == "Inventory count"
    ]
    prod.on(
        "record",
        "update",
        "--table",
        "sys_data_source",
        "--id",
        count["sys_id"],
        "--field",
        "sql_statement=select * from secrets",
    )
    prod.run_job(SIGNED_PROBES)
    for name in PROBES:
        live.wait_state(str(live.by_name(name)["sys_id"]))
    return live


def _denial(site: Live, sys_id: str) -> str:
    entries = [
        e for e in site.prod.log() if e["ecc"] == sys_id and e["event"] == "execution_denied"
    ]
    assert entries, f"no Code Signing log entry for {sys_id}"
    return "\n".join(str(e["message"]) for e in entries)  # every denial of the message


def test_signed_command_runs_and_its_output_comes_back(site: Live) -> None:
    message = site.by_name("signed-echo")
    assert message["notarization"] is not None
    shown = site.prod.show(str(message["sys_id"]))
    assert shown["message"] is not None
    assert shown["response"] is not None
    assert shown["message"]["state"] == "processed"
    assert shown["message"]["claimed_by"] == "alpha"
    assert shown["response"]["payload"] == "signed hello\n"


def test_signed_jdbc_probe_returns_rows_from_a_real_sqlite_file(site: Live) -> None:
    shown = site.prod.show(str(site.by_name("jdbc-signed")["sys_id"]))
    assert shown["response"] is not None
    result = json.loads(str(shown["response"]["payload"]))
    assert result["rows"] == [{"name": "bolt", "qty": 40}, {"name": "nut", "qty": 12}]


def test_data_source_sql_edited_after_signing_is_denied(site: Live) -> None:
    message = site.by_name("jdbc-edited")
    assert message["notarization"] is not None  # the tracker vouches for the job, not the SQL
    assert message["state"] == "error"
    error = str(message["error_string"])
    assert error.startswith(DENIED + "record signature of sys_data_source")
    assert "signature_mismatch" in error
    assert "signature_mismatch" in _denial(site, str(message["sys_id"]))
    assert DENIED + "record signature of sys_data_source" in site.mids["alpha"].log()


def test_firewall_reject_rule_blocks_a_signed_jdbc_probe(site: Live) -> None:
    message = site.by_name("jdbc-firewalled")
    assert message["state"] == "error"
    assert message["claimed_by"] == "beta"
    assert str(message["error_string"]) == (
        DENIED + "ECC firewall rule 1 (JDBC: reject) rejects topic JDBCProbe"
    )
    assert "rejects topic JDBCProbe" in _denial(site, str(message["sys_id"]))


def test_unsigned_api_inserted_message_is_denied(site: Live) -> None:
    reply = site.server.request(
        "POST",
        "/api/ecc",
        site.prod.home.joinpath("admin.token").read_text().strip(),
        json={
            "agent": "mid.server.alpha",
            "topic": "Command",
            "name": "forged",
            "payload": '{"argv": ["touch", "/tmp/pwned"]}',
        },
    )
    assert reply.status_code == 201, reply.text
    sys_id = reply.json()["sys_id"]
    message = site.wait_state(sys_id)
    assert message["state"] == "error"
    assert (
        message["error_string"] == DENIED + "message is not notarized (not created by signed code)"
    )
    assert "not notarized" in _denial(site, sys_id)
    assert f"{DENIED}message is not notarized" in site.mids["alpha"].log()


def test_accept_rule_lets_an_unsigned_rest_probe_run_and_is_logged(site: Live) -> None:
    prod = site.prod
    fields = {
        "name": "Health",
        "endpoint": f"{site.server.url}/healthz",
        "http_method": "GET",
        "headers": "{}",
        "request_body": "",
    }
    args = [a for k, v in fields.items() for a in ("--field", f"{k}={v}")]
    rest_id = prod.on("record", "add", "--table", "sys_rest_message", *args).out.strip()
    payload = json.dumps(
        {
            "record": {"table": "sys_rest_message", "sys_id": rest_id, "fields": fields},
            "signatures": [],
            "certificates": [],
            "parameters": {},
        }
    )
    sys_id = prod.on(
        "ecc",
        "enqueue",
        "--agent",
        "mid.server.beta",
        "--topic",
        "RESTProbe",
        "--name",
        "unsigned-rest",
        "--payload",
        payload,
        "--json",
    ).json()["sys_id"]
    message = site.wait_state(sys_id)
    assert message["state"] == "processed", message["error_string"]
    response = prod.show(sys_id)["response"]
    assert response is not None
    answer = json.loads(str(response["payload"]))
    assert answer["status"] == 200
    assert json.loads(answer["body"])["instance"] == "prod"
    accepted = [e for e in prod.log() if e["event"] == "firewall_accept" and e["ecc"] == sys_id]
    assert accepted
    assert accepted[0]["source"] == "mid.server.beta"
    assert "ECC firewall accept exception: rule 2 (REST: accept)" in site.mids["beta"].log()


def test_command_changed_by_one_byte_in_the_database_is_denied(site: Live) -> None:
    sys_id = str(site.by_name("signed-echo")["sys_id"])
    with site.db() as db:
        db.execute(
            "update ecc_queue set payload = ?, state = 'ready', claimed_by = '' where sys_id = ?",
            (ORIGINAL.replace("hello", "hellp"), sys_id),
        )
    message = site.wait_state(sys_id, ("error",))
    reason = "notarization does not match the payload (payload changed after notarization)"
    assert message["error_string"] == DENIED + reason
    assert reason in _denial(site, sys_id)
    assert DENIED + reason in site.mids["alpha"].log()


def test_replayed_message_is_refused(site: Live) -> None:
    sys_id = str(site.by_name("signed-echo")["sys_id"])
    with site.db() as db:  # the very message that ran, put back on the queue untouched
        db.execute(
            "update ecc_queue set payload = ?, state = 'ready', claimed_by = '' where sys_id = ?",
            (ORIGINAL, sys_id),
        )
    message = site.wait_state(sys_id, ("error",))
    assert message["error_string"] == DENIED + f"message {sys_id} was already executed (replay)"
    assert "(replay)" in _denial(site, sys_id)


def test_mid_list_shows_both_mids_active_and_validated(site: Live) -> None:
    listed = {m["name"]: m for m in site.prod.on("mid", "list", "--json").json()}
    for name in ("alpha", "beta"):
        assert listed[name]["status"] == "active"
        assert listed[name]["validated"] is True
        assert listed[name]["firewall_mode"] == "enforcing"
