"""The MID agent end to end against a fake instance on 127.0.0.1 speaking the issue-4 protocol."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SessionPki
from tests.mid.builders import (
    AGENT,
    message,
    notarize,
    policy_response,
    script_payload,
    write_config,
)
from tests.mid.fake_instance import FakeInstance
from trustcircle._time import system_clock
from trustcircle.crypto import cert_to_pem
from trustcircle.errors import NotAuthenticatedError
from trustcircle.mid import MidAgent, load_boot_config, load_mid_config, read_token
from trustcircle.mid.outbox import Outbox

NOT_NOTARIZED = (
    "ECC message execution denied: message is not notarized (not created by signed code)"
)


class Mid:
    """A MID agent running in a thread of the test, configured through real files."""

    def __init__(
        self, folder: Path, pki: SessionPki, url: str, boot: str = "", extra: str = ""
    ) -> None:
        self.config = load_mid_config(write_config(folder, pki, url, boot, extra))
        self.agent = MidAgent(
            self.config,
            load_boot_config(self.config.boot_config),
            token=read_token(self.config),
            anchors=[pki.root],
            heartbeat_interval=0.2,
            validation_poll=0.1,
            backoff_cap=0.5,
        )
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.agent.run()
        except BaseException as exc:
            self.error = exc

    def stop(self) -> None:
        self.agent.stop()
        self.thread.join(15)
        assert not self.thread.is_alive(), "the MID did not stop"

    @property
    def log(self) -> str:
        return self.config.log_file.read_text()


@pytest.fixture
def instance(test_pki: SessionPki) -> Iterator[FakeInstance]:
    fake = FakeInstance()
    fake.certificates = [
        {"pem": cert_to_pem(c)} for c in (test_pki.runtime.cert, test_pki.intermediate)
    ]
    fake.start()
    yield fake
    fake.stop()


def _signed_command(pki: SessionPki, argv: list[str]) -> dict[str, Any]:
    return notarize(message("Command", json.dumps({"argv": argv})), pki.runtime, system_clock())


def test_registers_waits_for_validation_then_runs_signed_work_and_denies_unsigned(
    tmp_path: Path, test_pki: SessionPki, instance: FakeInstance
) -> None:
    instance.validated = False
    mid = Mid(tmp_path, test_pki, instance.url)
    try:
        instance.wait_for(lambda: bool(instance.registered))
        assert instance.registered[0]["firewall_mode"] == "enforcing"
        instance.wait_for(lambda: bool(instance.heartbeats))
        assert "GET /api/ecc/poll" not in instance.requests
        assert "not validated yet" in mid.log
        instance.validated = True  # an admin runs `mid validate mid1`
        signed = _signed_command(test_pki, ["echo", "hi"])
        unsigned = message("Command", json.dumps({"argv": ["echo", "bad"]}))
        instance.enqueue(signed)
        instance.enqueue(unsigned)
        instance.wait_for(lambda: len(instance.results) == 2)
        ran = instance.results[signed["sys_id"]]
        assert (ran["state"], ran["output"], ran["denied"]) == ("processed", "hi\n", False)
        refused = instance.results[unsigned["sys_id"]]
        assert (refused["state"], refused["denied"], refused["output"]) == ("error", True, "")
        assert refused["error_string"] == NOT_NOTARIZED
        assert NOT_NOTARIZED in mid.log

        instance.enqueue(signed)  # the same message put back on the queue: a replay
        instance.wait_for(lambda: signed["sys_id"] in instance.results)
        replay = instance.results[signed["sys_id"]]
        assert replay["denied"] is True
        assert "already executed (replay)" in replay["error_string"]
    finally:
        mid.stop()
    assert mid.error is None


def test_signed_jdbc_probe_returns_rows_and_an_edited_one_is_denied(
    tmp_path: Path, test_pki: SessionPki, instance: FakeInstance
) -> None:
    db = tmp_path / "inventory.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE hosts (name TEXT)")
        conn.execute("INSERT INTO hosts VALUES ('web1')")
    mid = Mid(tmp_path, test_pki, instance.url, extra=f'jdbc: {{inventory: "sqlite:///{db}"}}\n')
    try:
        now = system_clock()
        fields = {
            "name": "hosts",
            "type": "JDBC",
            "connection_url": "inventory",
            "sql_statement": "SELECT name FROM hosts",
        }
        edited = dict(fields, sql_statement="DROP TABLE hosts")
        chain = [test_pki.intermediate]
        good = script_payload("sys_data_source", fields, test_pki.code_signing, now, chain=chain)
        bad = script_payload(
            "sys_data_source", edited, test_pki.code_signing, now, chain=chain, signed_fields=fields
        )
        signed = notarize(message("JDBCProbe", good), test_pki.runtime, now)
        tampered = notarize(message("JDBCProbe", bad), test_pki.runtime, now)
        instance.enqueue(tampered)
        instance.enqueue(signed)
        instance.wait_for(lambda: len(instance.results) == 2)
        rows = json.loads(instance.results[signed["sys_id"]]["output"])["rows"]
        assert rows == [{"name": "web1"}]
        denied = instance.results[tampered["sys_id"]]
        assert denied["denied"] is True
        assert denied["error_string"].startswith(
            "ECC message execution denied: record signature of sys_data_source"
        )
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT count(*) FROM hosts").fetchone() == (1,)
    finally:
        mid.stop()


def test_signed_turn_off_lets_unsigned_work_run_and_firewall_still_rejects(
    tmp_path: Path, test_pki: SessionPki, instance: FakeInstance
) -> None:
    instance.policy = policy_response(test_pki, "off", 1, system_clock())
    boot = "security:\n  eccFirewall:\n    rules:\n      - {tags: [python], action: reject}\n"
    mid = Mid(tmp_path, test_pki, instance.url, boot)
    try:
        unsigned = message("Command", "echo unsigned-ok")
        now = system_clock()
        script = script_payload(
            "mid_script_include",
            {"name": "s", "script": "print('x')", "active": "true"},
            test_pki.code_signing,
            now,
            chain=[test_pki.intermediate],
        )
        rejected = notarize(message("PythonScript", script), test_pki.runtime, now)
        instance.enqueue(unsigned)
        instance.enqueue(rejected)
        instance.wait_for(lambda: len(instance.results) == 2)
        assert instance.results[unsigned["sys_id"]]["output"] == "unsigned-ok\n"
        denied = instance.results[rejected["sys_id"]]
        assert denied["denied"] is True
        assert denied["error_string"] == (
            "ECC message execution denied: ECC firewall rule 1 (PYTHON: reject) rejects topic "
            "PythonScript"
        )
        assert "validation is off (policy statement sequence 1)" in mid.log
    finally:
        mid.stop()


def test_forged_turn_off_in_the_instance_does_not_stop_enforcement(
    tmp_path: Path, test_pki: SessionPki, instance: FakeInstance
) -> None:
    instance.policy = policy_response(test_pki, "off", 9, system_clock(), signed=False)
    mid = Mid(tmp_path, test_pki, instance.url)
    try:
        unsigned = message("Command", "echo should-not-run")
        instance.enqueue(unsigned)
        instance.wait_for(lambda: unsigned["sys_id"] in instance.results)
        assert instance.results[unsigned["sys_id"]]["error_string"] == NOT_NOTARIZED
        assert "policy statement refused" in mid.log
        instance.wait_for(lambda: any(e["event"] == "policy_refused" for e in instance.logs))
    finally:
        mid.stop()


def test_firewall_accept_runs_unsigned_work_and_reports_the_exception(
    tmp_path: Path, test_pki: SessionPki, instance: FakeInstance
) -> None:
    boot = "security:\n  eccFirewall:\n    rules:\n      - {tags: [SYSTEM], action: accept}\n"
    mid = Mid(tmp_path, test_pki, instance.url, boot)
    try:
        unsigned = message("SystemCommand", json.dumps({"command": "queue_stats"}))
        instance.enqueue(unsigned)
        instance.wait_for(lambda: unsigned["sys_id"] in instance.results)
        result = instance.results[unsigned["sys_id"]]
        assert result["state"] == "processed"
        assert json.loads(result["output"])["firewall_mode"] == "enforcing"
        instance.wait_for(lambda: bool(instance.logs))
        event = instance.logs[0]
        assert (event["event"], event["ecc"], event["agent"]) == (
            "firewall_accept",
            unsigned["sys_id"],
            AGENT,
        )
        assert "ECC firewall accept exception: rule 1 (SYSTEM: accept)" in mid.log
    finally:
        mid.stop()


def test_audit_mode_runs_what_enforcing_would_deny_and_logs_it(
    tmp_path: Path, test_pki: SessionPki, instance: FakeInstance
) -> None:
    boot = "security:\n  eccFirewall:\n    mode: audit\n"
    mid = Mid(tmp_path, test_pki, instance.url, boot)
    try:
        unsigned = message("Command", "echo audited")
        instance.enqueue(unsigned)
        instance.wait_for(lambda: unsigned["sys_id"] in instance.results)
        assert instance.results[unsigned["sys_id"]]["output"] == "audited\n"
        assert instance.registered[0]["firewall_mode"] == "audit"
        assert "ECC firewall audit: enforcing mode would deny: message is not notarized" in mid.log
    finally:
        mid.stop()


def test_unreachable_instance_means_backoff_and_the_outbox_delivers_later(
    tmp_path: Path, test_pki: SessionPki, instance: FakeInstance
) -> None:
    mid = Mid(tmp_path, test_pki, instance.url)
    try:
        slow = _signed_command(test_pki, ["sh", "-c", "sleep 1; echo done"])
        instance.enqueue(slow)
        instance.wait_for(lambda: slow["sys_id"] in instance.claimed)
        instance.stop()  # the instance goes down while the command runs
        outbox = Outbox(mid.config.work_dir)
        instance.wait_for(lambda: "delivering" in mid.log and outbox.count() == 1)
        instance.start()  # back on the same port
        instance.wait_for(lambda: slow["sys_id"] in instance.results)
        assert instance.results[slow["sys_id"]]["output"] == "done\n"
        instance.wait_for(lambda: outbox.count() == 0)
    finally:
        mid.stop()


def test_restart_resends_the_outbox_before_polling(
    tmp_path: Path, test_pki: SessionPki, instance: FakeInstance
) -> None:
    first = Mid(tmp_path, test_pki, instance.url)
    slow = _signed_command(test_pki, ["sh", "-c", "sleep 1; echo kept"])
    instance.enqueue(slow)
    instance.wait_for(lambda: slow["sys_id"] in instance.claimed)
    instance.stop()
    first.stop()  # stopped while the instance is down: the result stays in the outbox
    assert Outbox(first.config.work_dir).count() == 1
    assert first.error is None

    instance.start()
    with instance.cond:
        instance.requests.clear()
    second = Mid(tmp_path, test_pki, instance.url)
    try:
        instance.wait_for(lambda: slow["sys_id"] in instance.results)
        assert instance.results[slow["sys_id"]]["output"] == "kept\n"
        requests = list(instance.requests)
        sent = requests.index("POST /api/ecc/batch_result")
        assert "GET /api/ecc/poll" not in requests[:sent]
    finally:
        second.stop()


def test_refused_token_stops_the_mid_with_a_clear_error(
    tmp_path: Path, test_pki: SessionPki, instance: FakeInstance
) -> None:
    config = load_mid_config(write_config(tmp_path, test_pki, instance.url))
    agent = MidAgent(
        config, load_boot_config(config.boot_config), token="wrong", anchors=[test_pki.root]
    )
    with pytest.raises(NotAuthenticatedError, match="--roles mid_server"):
        agent.run()
    assert "GET /api/ecc/poll" not in instance.requests


def test_message_run_unverified_never_runs_again_once_validation_is_on(
    tmp_path: Path, test_pki: SessionPki, instance: FakeInstance
) -> None:
    """Replay across a policy change: a message run while validation was off keeps its id
    until its (six-hour) notarization can no longer pass, not just for an hour."""
    t0 = test_pki.now
    clock = [t0]
    instance.policy = policy_response(test_pki, "off", 1, t0)
    config = load_mid_config(write_config(tmp_path, test_pki, instance.url))
    agent = MidAgent(
        config,
        load_boot_config(config.boot_config),
        token=read_token(config),
        anchors=[test_pki.root],
        clock=lambda: clock[0],
        backoff_cap=0.5,
    )
    assert agent._start_up()
    sent = notarize(
        message("Command", json.dumps({"argv": ["echo", "ran"]})),
        test_pki.runtime,
        t0,
        validity=dt.timedelta(hours=6),
    )
    assert agent.process(sent) == "processed"  # validation off: runs unverified
    clock[0] = t0 + dt.timedelta(minutes=61)
    instance.policy = policy_response(test_pki, "on", 2, clock[0])
    agent._replay.prune(clock[0])  # what the heartbeat does
    assert agent.process(sent) == "denied"
    agent.stop()


def test_poll_answer_nested_past_the_parser_depth_does_not_stop_the_mid(
    tmp_path: Path, test_pki: SessionPki, instance: FakeInstance
) -> None:
    instance.poll_body = b'{"messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    mid = Mid(tmp_path, test_pki, instance.url)
    try:
        instance.wait_for(lambda: instance.requests.count("GET /api/ecc/poll") >= 3)
        assert mid.thread.is_alive(), mid.error
        instance.poll_body = None  # the instance answers properly again: work still runs
        instance.enqueue(_signed_command(test_pki, ["echo", "hi"]))
        instance.wait_for(lambda: len(instance.results) == 1)
    finally:
        mid.stop()
