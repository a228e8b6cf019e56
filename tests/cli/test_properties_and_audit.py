"""Protected properties and the hash-chained audit log."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from tests.cli.conftest import Cli
from trustcircle.errors import NotAuthenticatedError
from trustcircle.platform.context import Instance, _RefusalBudget

PROTECTED = [
    "com.snc.kmf.signature.validation.flag",
    "com_snc_kmf_signature.validation.flag",
    "com.snc.kmf.signature.validation.certificate",
    "com.snc.kmf.signature.validity_window",
    "com.snc.csf.servicenow_root_of_trust.disabled",
    "com.snc.kmf.signature.validation.optin",
    "com.glide.codesigning.expanded.tracking.length",
    "com.glide.codesigning.tracking.validation.fail_fast",
]


@pytest.mark.parametrize("name", PROTECTED)
def test_admin_cannot_set_a_protected_property(cli: Cli, home: Path, name: str) -> None:
    before = cli("property", "get", name, "--home", home).out
    result = cli("property", "set", name, "true", "--home", home)
    assert result.code == 1
    assert "is protected" in result.err
    assert result.err.count("\n") == 1
    assert cli("property", "get", name, "--home", home).out == before
    last = cli("audit", "list", "--home", home, "--json", "--limit", "1").json()[0]
    assert last["outcome"] == "refused"
    assert last["action"] == "property.write"


def test_seed_spelling_is_an_alias(cli: Cli, home: Path) -> None:
    result = cli(
        "property", "get", "com_snc_kmf_signature.validation.flag", "--home", home, "--json"
    )
    assert result.json() == {
        "name": "com.snc.kmf.signature.validation.flag",
        "value": "false",
        "protected": True,
    }


def test_ordinary_property_set_is_validated(cli: Cli, home: Path) -> None:
    assert (
        cli("property", "set", "com.snc.csf.maximum_update_size", "8000", "--home", home).code == 0
    )
    assert (
        cli("property", "get", "com.snc.csf.maximum_update_size", "--home", home).out.strip()
        == "8000"
    )
    result = cli("property", "set", "com.snc.csf.maximum_update_size", "20000", "--home", home)
    assert result.code == 2
    assert "between 6000 and 10000" in result.err


def _audit_db(home: Path) -> sqlite3.Connection:
    return sqlite3.connect(home / "trustcircle.db")


def _make_entries(cli: Cli, home: Path) -> None:
    for value in ("7000", "8000", "9000"):
        assert (
            cli("property", "set", "com.snc.csf.maximum_update_size", value, "--home", home).code
            == 0
        )


def test_audit_verify_passes_on_an_untouched_log(cli: Cli, home: Path) -> None:
    _make_entries(cli, home)
    result = cli("audit", "verify", "--home", home, "--json")
    assert result.code == 0
    assert result.json()["ok"] is True
    assert result.json()["entries"] >= 4


def test_audit_detects_an_edited_entry(cli: Cli, home: Path) -> None:
    _make_entries(cli, home)
    with _audit_db(home) as db:
        db.execute("UPDATE sys_audit_log SET actor='mallory' WHERE seq=2")
    result = cli("audit", "verify", "--home", home)
    assert result.code == 1
    assert "entry 2 was edited" in result.out


def test_audit_detects_a_deleted_entry(cli: Cli, home: Path) -> None:
    _make_entries(cli, home)
    with _audit_db(home) as db:
        db.execute("DELETE FROM sys_audit_log WHERE seq=2")
    result = cli("audit", "verify", "--home", home)
    assert result.code == 1
    assert "missing" in result.out


def test_audit_detects_removed_newest_entries(cli: Cli, home: Path) -> None:
    _make_entries(cli, home)
    head = cli("audit", "verify", "--home", home, "--json").json()["head"]
    with _audit_db(home) as db:
        last = db.execute("SELECT max(seq) FROM sys_audit_log").fetchone()[0]
        db.execute("DELETE FROM sys_audit_log WHERE seq=?", (last,))
        prev = db.execute("SELECT seq, hash FROM sys_audit_log WHERE seq=?", (last - 1,)).fetchone()
        db.execute("UPDATE sys_audit_head SET seq=?, hash=?", prev)
    # the head row was rewritten too: only the head recorded elsewhere shows it
    result = cli("audit", "verify", "--home", home, "--head", head)
    assert result.code == 1
    assert "does not end at the head you recorded" in result.out


def test_flood_of_bad_tokens_writes_a_bounded_number_of_audit_entries(
    cli: Cli, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Anyone can send bad tokens, and each audit entry takes the write lock: one process
    writes at most its budget per window, and the next entry says how many it left out."""
    monkeypatch.setattr(_RefusalBudget, "WINDOW", 1.0)
    inst = Instance.open(home)
    try:
        for _ in range(_RefusalBudget.PER_WINDOW + 40):
            with pytest.raises(NotAuthenticatedError), inst.operation("bad", "property.read"):
                pass
        time.sleep(1.1)
        with pytest.raises(NotAuthenticatedError), inst.operation("bad", "property.read"):
            pass
    finally:
        inst.close()
    audit = cli("audit", "list", "--home", home, "--json").json()
    refused = [e for e in audit if e["actor"] == "(invalid token)"]
    assert len(refused) == _RefusalBudget.PER_WINDOW + 1
    assert "40 more unauthenticated refusal(s)" in refused[0]["detail"]
    assert cli("audit", "verify", "--home", home).code == 0
