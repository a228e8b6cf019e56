"""``ecc``, ``codesigning log`` and ``mid list|validate`` on the command line."""

from __future__ import annotations

import json
from pathlib import Path

from tests.ecc.conftest import Prod


def test_ecc_enqueue_is_a_direct_never_notarized_insert(prod: Prod, tmp_path: Path) -> None:
    payload = tmp_path / "payload.json"
    payload.write_text('{"argv": ["uptime"]}')
    added = prod.cli(
        "ecc",
        "enqueue",
        "--agent",
        "mid.server.alpha",
        "--topic",
        "Command",
        "--name",
        "up",
        "--payload",
        f"@{payload}",
        "--source",
        "10.0.0.1",
        "--home",
        prod.home,
        "--json",
    )
    assert added.code == 0, added.err
    message = added.json()
    assert message["notarization"] is None
    assert (message["payload"], message["source"], message["state"]) == (
        '{"argv": ["uptime"]}',
        "10.0.0.1",
        "ready",
    )
    plain = prod.cli(
        "ecc",
        "enqueue",
        "--agent",
        "mid.server.alpha",
        "--topic",
        "Command",
        "--payload",
        "ls",
        "--home",
        prod.home,
    )
    assert plain.code == 0
    assert "not notarized" in plain.err
    listed = prod.cli("ecc", "list", "--state", "ready", "--home", prod.home, "--json").json()
    assert {m["sys_id"] for m in listed} == {message["sys_id"], plain.out.strip()}
    table = prod.cli("ecc", "list", "--home", prod.home)
    assert table.code == 0
    assert table.out.count("ready") == 2


def test_ecc_show_prints_the_message_and_its_answer(prod: Prod) -> None:
    sys_id = prod.cli(
        "ecc",
        "enqueue",
        "--agent",
        "mid.server.alpha",
        "--topic",
        "SystemCommand",
        "--payload",
        '{"command": "heartbeat"}',
        "--home",
        prod.home,
    ).out.strip()
    shown = prod.cli("ecc", "show", sys_id, "--home", prod.home, "--json").json()
    assert shown["message"]["sys_id"] == sys_id
    assert shown["response"] is None
    text = prod.cli("ecc", "show", sys_id, "--home", prod.home)
    assert "response: none yet" in text.out
    assert "notarized: no" in text.out


def test_ecc_commands_exit_with_the_design_codes(prod: Prod) -> None:
    missing = prod.cli("ecc", "show", "f" * 32, "--home", prod.home)
    assert missing.code == 4
    bad_agent = prod.cli(
        "ecc", "enqueue", "--agent", "alpha", "--topic", "Command", "--home", prod.home
    )
    assert bad_agent.code == 2
    assert "mid.server.<name>" in bad_agent.err
    token = tmp = prod.home / "auditor.token"
    created = prod.cli("user", "add", "aud", "--roles", "codesigning_auditor", "--home", prod.home)
    tmp.write_text(created.out.strip())
    refused = prod.cli(
        "ecc",
        "enqueue",
        "--agent",
        "mid.server.alpha",
        "--topic",
        "Command",
        "--home",
        prod.home,
        "--token-file",
        token,
    )
    assert refused.code == 3
    assert prod.cli("ecc", "list", "--home", prod.home, "--token-file", token).code == 0


def test_codesigning_log_lists_instance_entries(prod: Prod) -> None:
    prod.cli(
        "ecc",
        "enqueue",
        "--agent",
        "mid.server.alpha",
        "--topic",
        "Command",
        "--payload",
        "ls",
        "--home",
        prod.home,
    )
    entries = prod.cli("codesigning", "log", "--home", prod.home, "--json").json()
    assert [(e["source"], e["event"]) for e in entries] == [("instance", "direct_insert")]
    text = prod.cli("codesigning", "log", "--home", prod.home)
    assert "direct_insert" in text.out


def test_mid_validate_and_list(prod: Prod) -> None:
    unknown = prod.cli("mid", "validate", "alpha", "--home", prod.home)
    assert unknown.code == 4
    prod.add_mid("alpha", prod.mid_token(), validated=False)
    listed = prod.cli("mid", "list", "--home", prod.home, "--json").json()
    assert [(m["name"], m["validated"], m["status"]) for m in listed] == [
        ("alpha", False, "active")
    ]
    done = prod.cli("mid", "validate", "alpha", "--home", prod.home, "--json")
    assert done.code == 0, done.err
    assert json.loads(done.out)["validated"] is True
    assert "alpha" in prod.cli("mid", "list", "--home", prod.home).out
    withdrawn = prod.cli("mid", "invalidate", "alpha", "--home", prod.home)
    assert "no longer validated" in withdrawn.out
    audit = prod.cli("audit", "list", "--home", prod.home, "--json").json()
    assert {"mid.admin"} <= {e["action"] for e in audit}
