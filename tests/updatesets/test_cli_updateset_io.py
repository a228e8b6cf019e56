"""`updateset list|show|create|use|complete|export|import|delete` as an operator uses them."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import Cli
from tests.updatesets.io_support import (
    add_record,
    export,
    new_set,
    ok,
    protected_home,
    sets_json,
)

LIST_KEYS = {"sys_id", "name", "state", "origin_instance", "kind", "entries", "parent"}


def _by_name(cli: Cli, home: Path) -> dict[str, dict[str, object]]:
    return {str(s["name"]): s for s in sets_json(cli, home)}


def test_changes_are_captured_into_the_current_set(cli: Cli, home: Path) -> None:
    first = new_set(cli, home, "First", description="scripts")
    add_record(cli, home, "One", "1")
    second = new_set(cli, home, "Second")
    add_record(cli, home, "Two", "2")
    add_record(cli, home, "Three", "3")
    sets = _by_name(cli, home)
    assert (sets["First"]["entries"], sets["First"]["current"]) == (1, False)
    assert (sets["Second"]["entries"], sets["Second"]["current"]) == (2, True)
    used = ok(cli("updateset", "use", first, "--home", home, "--json")).json()
    assert (used["sys_id"], used["current"]) == (first, True)
    add_record(cli, home, "Four", "4")
    assert _by_name(cli, home)["First"]["entries"] == 2
    done = ok(cli("updateset", "complete", first, "--home", home, "--json")).json()
    assert (done["state"], done["current"]) == ("complete", False)
    # a complete set captures nothing more and cannot become current again
    refused = cli("updateset", "use", first, "--home", home)
    assert refused.code == 1
    assert "only an in-progress set can" in refused.err
    add_record(cli, home, "Five", "5")
    sets = _by_name(cli, home)
    assert sets["First"]["entries"] == 2
    assert sets["Default"]["entries"] == 1
    assert sets["Second"]["sys_id"] == second


def test_list_json_shows_local_and_retrieved_sets(
    cli: Cli, signing_home: Path, tmp_path: Path
) -> None:
    set_id = new_set(cli, signing_home, "Outbound")
    add_record(cli, signing_home, "One", "1")
    export(cli, signing_home, set_id, tmp_path / "outbound.xml")
    prod = protected_home(cli, tmp_path / "prod")
    mine = new_set(cli, prod, "Local fix")
    ok(cli("updateset", "import", tmp_path / "outbound.xml", "--home", prod))
    listed = sets_json(cli, prod)
    assert all(set(s) >= LIST_KEYS for s in listed)
    summary = [(s["kind"], s["sys_id"], s["origin_instance"], s["state"]) for s in listed]
    assert summary == [
        ("local", mine, "prod", "in progress"),
        ("retrieved", set_id, "dev", "loaded"),
    ]
    assert [s["entries"] for s in listed] == [0, 1]
    assert [s["parent"] for s in listed] == ["", ""]


def test_show_works_for_local_and_retrieved_ids(
    cli: Cli, signing_home: Path, tmp_path: Path
) -> None:
    set_id = new_set(cli, signing_home, "Outbound")
    record = add_record(cli, signing_home, "One", "1")
    local = ok(cli("updateset", "show", set_id, "--home", signing_home, "--json")).json()
    assert (local["kind"], local["name"], local["entries"]) == ("local", "Outbound", 1)
    [entry] = local["entry_list"]
    assert (entry["table"], entry["target_sys_id"], entry["action"]) == (
        "sys_script_include",
        record,
        "INSERT_OR_UPDATE",
    )
    text = ok(cli("updateset", "show", set_id, "--home", signing_home))
    assert "Outbound" in text.out
    assert "INSERT_OR_UPDATE" in text.out

    export(cli, signing_home, set_id, tmp_path / "outbound.xml")
    prod = protected_home(cli, tmp_path / "prod")
    ok(cli("updateset", "import", tmp_path / "outbound.xml", "--home", prod))
    retrieved = ok(cli("updateset", "show", set_id, "--home", prod, "--json")).json()
    assert (retrieved["kind"], retrieved["state"]) == ("retrieved", "loaded")
    assert [e["sys_id"] for e in retrieved["entry_list"]] == [entry["sys_id"]]
    assert retrieved["entry_list"][0]["payload_sha512"] == entry["payload_sha512"]


def test_unknown_and_malformed_ids(cli: Cli, home: Path) -> None:
    for command in ("show", "use", "complete", "delete"):
        missing = cli("updateset", command, "a" * 32, "--home", home)
        assert missing.code == 4, (command, missing.err)
        assert len(missing.err.strip().splitlines()) == 1
        malformed = cli("updateset", command, "../etc", "--home", home)
        assert malformed.code == 2, (command, malformed.err)
        assert "malformed sys_id" in malformed.err


def test_create_refuses_an_empty_name(cli: Cli, home: Path) -> None:
    result = cli("updateset", "create", "   ", "--home", home)
    assert result.code == 2
    assert sets_json(cli, home) == []


def test_export_and_import_print_what_they_did(
    cli: Cli, signing_home: Path, tmp_path: Path
) -> None:
    set_id = new_set(cli, signing_home, "Outbound")
    add_record(cli, signing_home, "One", "1")
    out = tmp_path / "outbound.xml"
    exported = ok(cli("updateset", "export", set_id, "--out", out, "--home", signing_home))
    assert exported.out.strip() == f"wrote {out} (Outbound, 1 entry, signed)"
    prod = protected_home(cli, tmp_path / "prod")
    imported = ok(cli("updateset", "import", out, "--home", prod))
    assert f"imported 'Outbound' ({set_id}) from dev: 1 entry, signed" in imported.out
    deleted = ok(cli("updateset", "delete", set_id, "--home", prod))
    assert f"deleted retrieved update set 'Outbound' ({set_id})" in deleted.out


def test_export_from_a_trusted_instance_needs_the_right_to_sign(
    cli: Cli, signing_home: Path, tmp_path: Path
) -> None:
    """Exports there carry the attest key's manifest signature: updateset.sign needs
    codesigning_admin, which a plain admin does not hold."""
    set_id = new_set(cli, signing_home, "Outbound")
    add_record(cli, signing_home, "One", "1")
    made = ok(cli("user", "add", "plain", "--roles", "admin", "--home", signing_home))
    token = tmp_path / "plain.token"
    token.write_text(made.out.strip())
    out = tmp_path / "outbound.xml"
    refused = cli(
        "updateset", "export", set_id, "--out", out, "--home", signing_home, "--token-file", token
    )
    assert refused.code == 3
    assert "codesigning_admin" in refused.err
    assert not out.exists()
    audit = ok(cli("audit", "list", "--home", signing_home, "--json")).json()
    assert (audit[0]["action"], audit[0]["outcome"], audit[0]["actor"]) == (
        "updateset.export",
        "refused",
        "plain",
    )
