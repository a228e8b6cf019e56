"""``init``, ``user add`` and role refusals, as an operator sees them."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

from tests.cli.conftest import Cli, init_home


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_creates_a_complete_home(cli: Cli, tmp_path: Path) -> None:
    home = init_home(cli, tmp_path / "prod", role="protected", name="prod")
    assert (home / "config.toml").is_file()
    assert _mode(home / "master.key") == 0o600
    assert len((home / "master.key").read_bytes()) == 32
    assert _mode(home / "admin.token") == 0o600
    config = (home / "config.toml").read_text()
    assert 'role = "protected"' in config
    assert 'name = "prod"' in config
    with sqlite3.connect(home / "trustcircle.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {
        "sys_record",
        "sn_kmf_record_signature",
        "sys_certificate",
        "sys_audit_log",
        "sn_kmf_signature_config",
        "alembic_version",
    } <= tables


def test_admin_token_is_stored_only_as_a_hash(cli: Cli, home: Path) -> None:
    token = (home / "admin.token").read_text().strip()
    raw = b"".join(p.read_bytes() for p in home.glob("trustcircle.db*"))
    assert token.encode() not in raw


def test_init_refuses_an_existing_home_and_keeps_it(cli: Cli, home: Path) -> None:
    before = (home / "config.toml").read_bytes()
    result = cli("init", "--home", home, "--role", "trusted", "--name", "other")
    assert result.code == 2
    assert "already an instance home" in result.err
    assert (home / "config.toml").read_bytes() == before


def test_init_with_unknown_role_leaves_nothing_behind(cli: Cli, tmp_path: Path) -> None:
    result = cli("init", "--home", tmp_path / "x", "--role", "superuser", "--name", "x")
    assert result.code == 2
    assert "unknown instance role" in result.err
    assert not (tmp_path / "x").exists()


def test_user_add_prints_a_working_token(cli: Cli, home: Path, tmp_path: Path) -> None:
    result = cli("user", "add", "auditor", "--roles", "codesigning_auditor", "--home", home)
    assert result.code == 0
    token_file = tmp_path / "auditor.token"
    token_file.write_text(result.out.strip())
    listed = cli("property", "list", "--home", home, "--token-file", token_file, "--json")
    assert listed.code == 0
    assert any(p["name"] == "com.snc.kmf.signature.validation.flag" for p in listed.json())


def test_role_refusal_names_missing_roles_changes_nothing_and_is_audited(
    cli: Cli, home: Path, tmp_path: Path
) -> None:
    token = cli("user", "add", "reader", "--roles", "codesigning_auditor", "--home", home).out
    token_file = tmp_path / "reader.token"
    token_file.write_text(token.strip())
    result = cli(
        "record",
        "add",
        "--home",
        home,
        "--token-file",
        token_file,
        "--table",
        "sys_script_include",
        "--field",
        "name=x",
    )
    assert result.code == 3
    assert "missing role(s) admin" in result.err
    assert (
        cli("record", "list", "--home", home, "--table", "sys_script_include", "--json").json()
        == []
    )
    entries = cli("audit", "list", "--home", home, "--json").json()
    assert entries[0]["actor"] == "reader"
    assert entries[0]["outcome"] == "refused"
    assert entries[0]["action"] == "record.write"


def test_trust_anchor_add_needs_security_admin_and_crypto_manager(
    cli: Cli, home: Path, tmp_path: Path, test_pki: object
) -> None:
    token = cli("user", "add", "km", "--roles", "sn_kmf.crypto_manager", "--home", home).out
    token_file = tmp_path / "km.token"
    token_file.write_text(token.strip())
    result = cli(
        "trust-anchor",
        "add",
        test_pki.files.root_pem,  # type: ignore[attr-defined]
        "--home",
        home,
        "--token-file",
        token_file,
    )
    assert result.code == 3
    assert "security_admin" in result.err
    assert cli("trust-anchor", "list", "--home", home, "--json").json() == []


def test_bad_token_is_not_authorised(cli: Cli, home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.token"
    bad.write_text("tc_not-a-real-token")
    result = cli("property", "list", "--home", home, "--token-file", bad)
    assert result.code == 3
    assert "not valid" in result.err


def test_unknown_role_is_bad_usage(cli: Cli, home: Path) -> None:
    result = cli("user", "add", "x", "--roles", "root", "--home", home)
    assert result.code == 2
    assert "unknown role 'root'" in result.err


def test_missing_home_is_not_found(cli: Cli, tmp_path: Path) -> None:
    result = cli("property", "list", "--home", tmp_path / "nowhere")
    assert result.code == 4
    assert "not an instance home" in result.err


def test_older_schema_is_refused_until_upgraded(cli: Cli, home: Path) -> None:
    from trustcircle.store.db import head_revision

    with sqlite3.connect(home / "trustcircle.db") as db:
        db.execute("UPDATE alembic_version SET version_num='0001'")
    refused = cli("property", "list", "--home", home)
    assert refused.code == 2
    assert "trustcircle upgrade" in refused.err
    with sqlite3.connect(home / "trustcircle.db") as db:
        db.execute("UPDATE alembic_version SET version_num=?", (head_revision(),))
    assert cli("upgrade", "--home", home).code == 0
    assert cli("property", "list", "--home", home).code == 0


def test_an_admin_cannot_grant_roles_it_does_not_hold(cli: Cli, home: Path, tmp_path: Path) -> None:
    """No escalation through user add: a plain admin cannot make a code signer or a
    security admin (and through it, trust anchors)."""
    made = cli("user", "add", "plain", "--roles", "admin", "--home", home)
    assert made.code == 0, made.err
    token = tmp_path / "plain.token"
    token.write_text(made.out.strip())
    for role in ("security_admin", "codesigning_admin"):
        refused = cli(
            "user", "add", f"new-{role}", "--roles", role, "--home", home, "--token-file", token
        )
        assert refused.code == 3
        assert f"may not grant role(s) {role}" in refused.err
    allowed = cli(
        "user", "add", "helper", "--roles", "admin", "--home", home, "--token-file", token
    )
    assert allowed.code == 0, allowed.err
    audit = cli("audit", "list", "--home", home, "--json").json()
    assert [e["outcome"] for e in audit if e["action"] == "user.add"][:3] == [
        "ok",
        "refused",
        "refused",
    ]


def test_disabled_user_is_locked_out_at_once_and_enabled_with_a_new_token(
    cli: Cli, home: Path, tmp_path: Path
) -> None:
    made = cli("user", "add", "bob", "--roles", "admin", "--home", home)
    assert made.code == 0, made.err
    old = tmp_path / "bob.token"
    old.write_text(made.out.strip())
    assert cli("property", "list", "--home", home, "--token-file", old).code == 0
    disabled = cli("user", "disable", "bob", "--home", home, "--json")
    assert disabled.code == 0, disabled.err
    assert disabled.json() == {"name": "bob", "active": False, "tokens_revoked": 1}
    assert cli("property", "list", "--home", home, "--token-file", old).code == 3
    enabled = cli("user", "enable", "bob", "--home", home, "--json")
    assert enabled.code == 0, enabled.err
    new = tmp_path / "bob-new.token"
    new.write_text(enabled.json()["token"])
    assert cli("property", "list", "--home", home, "--token-file", new).code == 0
    assert cli("property", "list", "--home", home, "--token-file", old).code == 3  # still revoked
    # bob (admin only) cannot lock out the bootstrap admin, who holds more roles
    refused = cli("user", "disable", "admin", "--home", home, "--token-file", new)
    assert refused.code == 3
    assert "may not disable 'admin'" in refused.err
    assert cli("property", "list", "--home", home).code == 0
