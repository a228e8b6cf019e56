"""Import stores a retrieved set in state loaded, all files or none; delete takes it back out."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from sqlalchemy import select, update

from tests.cli.conftest import Cli
from tests.updatesets.io_support import (
    add_record,
    export,
    new_set,
    ok,
    protected_home,
    read_export,
    sets_json,
    sha512,
)
from trustcircle.platform.context import Instance
from trustcircle.store.models import RemoteUpdateSet, RemoteUpdateXml
from trustcircle.updatesets import ImportLimits, entry_to_record


def _exported_set(cli: Cli, home: Path, out: Path, name: str = "Scripts") -> str:
    set_id = new_set(cli, home, name, description="for production")
    add_record(cli, home, "Alpha", "a < b && c")
    add_record(cli, home, "Beta", "2")
    ok(cli("updateset", "complete", set_id, "--home", home))
    export(cli, home, set_id, out)
    return set_id


def test_import_into_protected_home_gives_a_loaded_retrieved_set(
    cli: Cli, signing_home: Path, tmp_path: Path
) -> None:
    out = tmp_path / "scripts.xml"
    set_id = _exported_set(cli, signing_home, out)
    prod = protected_home(cli, tmp_path / "prod")
    imported = ok(cli("updateset", "import", out, "--home", prod, "--json")).json()
    assert isinstance(imported, dict), "one file gives one object"
    assert imported["sys_id"] == set_id
    assert (imported["name"], imported["entries"], imported["parent"]) == ("Scripts", 2, "")
    assert imported["file_sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()

    [listed] = sets_json(cli, prod)
    assert listed["kind"] == "retrieved"
    assert (listed["sys_id"], listed["state"], listed["entries"]) == (set_id, "loaded", 2)
    assert (listed["origin_instance"], listed["description"]) == ("dev", "for production")
    assert listed["signed"] is True

    exported = read_export(out)
    shown = ok(cli("updateset", "show", set_id, "--home", prod, "--json")).json()
    assert shown["kind"] == "retrieved"
    assert [e["sys_id"] for e in shown["entry_list"]] == [e.sys_id for e in exported.entries]
    assert [e["payload_sha512"] for e in shown["entry_list"]] == [
        sha512(e.payload) for e in exported.entries
    ]


def test_import_stores_parsed_fields_digests_and_the_manifest_signature_as_exported(
    cli: Cli, signing_home: Path, tmp_path: Path
) -> None:
    out = tmp_path / "scripts.xml"
    set_id = _exported_set(cli, signing_home, out)
    prod = protected_home(cli, tmp_path / "prod")
    ok(cli("updateset", "import", out, "--home", prod))
    exported = read_export(out)
    inst = Instance.open(prod)
    try:
        with inst.db.transaction() as session:
            row = session.get(RemoteUpdateSet, set_id)
            assert row is not None
            stored = {
                r.sys_id: (
                    r.table_name,
                    r.target_sys_id,
                    r.action,
                    json.loads(r.fields or "null"),
                    r.problem,
                    r.payload,
                    r.payload_sha512,
                )
                for r in session.scalars(
                    select(RemoteUpdateXml).where(RemoteUpdateXml.remote_update_set == set_id)
                )
            }
            sig = exported.signature
            assert sig is not None
            assert (row.sig_algorithm, row.sig_certificate, row.sig_signature) == (
                sig.algorithm,
                sig.certificate,
                sig.signature,
            )
            assert (row.sig_signed_at, row.sig_expires_at) == (sig.signed_at, sig.expires_at)
            assert (row.entry_count, row.imported_by, row.accepted_remote) == (2, "admin", False)
    finally:
        inst.close()
    assert stored == {
        e.sys_id: (
            e.table,
            e.target_sys_id,
            e.action,
            entry_to_record(e, ImportLimits()),
            None,  # no problem: the payload parsed
            None,  # so only its fields are kept
            sha512(e.payload),
        )
        for e in exported.entries
    }


def test_importing_the_same_file_twice_is_refused_until_deleted(
    cli: Cli, signing_home: Path, tmp_path: Path
) -> None:
    out = tmp_path / "scripts.xml"
    set_id = _exported_set(cli, signing_home, out)
    prod = protected_home(cli, tmp_path / "prod")
    ok(cli("updateset", "import", out, "--home", prod))
    before = sets_json(cli, prod)
    again = cli("updateset", "import", out, "--home", prod)
    assert again.code == 1
    assert "already imported as 'Scripts'; delete it first" in again.err
    assert len(again.err.strip().splitlines()) == 1
    assert sets_json(cli, prod) == before
    deleted = ok(cli("updateset", "delete", set_id, "--home", prod, "--json")).json()
    assert deleted == [{"sys_id": set_id, "name": "Scripts", "entries": 2}]
    assert sets_json(cli, prod) == []
    ok(cli("updateset", "import", out, "--home", prod))
    assert [s["sys_id"] for s in sets_json(cli, prod)] == [set_id]


def test_several_files_import_together_and_json_is_a_list(
    cli: Cli, signing_home: Path, tmp_path: Path
) -> None:
    first, second = tmp_path / "one.xml", tmp_path / "two.xml"
    one = _exported_set(cli, signing_home, first, "One")
    two = _exported_set(cli, signing_home, second, "Two")
    prod = protected_home(cli, tmp_path / "prod")
    imported = ok(cli("updateset", "import", first, second, "--home", prod, "--json")).json()
    assert [(r["sys_id"], r["name"], r["entries"]) for r in imported] == [
        (one, "One", 2),
        (two, "Two", 2),
    ]


def test_a_bad_second_file_stores_neither(cli: Cli, signing_home: Path, tmp_path: Path) -> None:
    good, other = tmp_path / "good.xml", tmp_path / "other.xml"
    _exported_set(cli, signing_home, good, "Good")
    _exported_set(cli, signing_home, other, "Other")
    truncated = tmp_path / "truncated.xml"
    data = other.read_bytes()
    truncated.write_bytes(data[: len(data) * 2 // 3])
    prod = protected_home(cli, tmp_path / "prod")
    result = cli("updateset", "import", good, truncated, "--home", prod)
    assert result.code == 2
    assert result.err.startswith(f"error: {truncated}: ")
    assert len(result.err.strip().splitlines()) == 1
    assert sets_json(cli, prod) == []


def test_the_same_set_twice_in_one_import_is_refused(
    cli: Cli, signing_home: Path, tmp_path: Path
) -> None:
    out = tmp_path / "scripts.xml"
    _exported_set(cli, signing_home, out)
    copy = tmp_path / "copy.xml"
    copy.write_bytes(out.read_bytes())
    prod = protected_home(cli, tmp_path / "prod")
    result = cli("updateset", "import", out, copy, "--home", prod)
    assert result.code == 2
    assert "give each file once" in result.err
    assert sets_json(cli, prod) == []


def test_an_instance_does_not_import_its_own_local_set(
    cli: Cli, signing_home: Path, tmp_path: Path
) -> None:
    out = tmp_path / "scripts.xml"
    _exported_set(cli, signing_home, out)
    before = sets_json(cli, signing_home)
    result = cli("updateset", "import", out, "--home", signing_home)
    assert result.code == 1
    assert "own local set" in result.err
    assert sets_json(cli, signing_home) == before


def test_a_committed_set_cannot_be_deleted_or_imported_again(
    cli: Cli, signing_home: Path, tmp_path: Path
) -> None:
    out = tmp_path / "scripts.xml"
    set_id = _exported_set(cli, signing_home, out)
    prod = protected_home(cli, tmp_path / "prod")
    ok(cli("updateset", "import", out, "--home", prod))
    inst = Instance.open(prod)
    try:
        with inst.db.transaction() as session:
            session.execute(
                update(RemoteUpdateSet)
                .where(RemoteUpdateSet.sys_id == set_id)
                .values(state="committed")
            )
    finally:
        inst.close()
    refused = cli("updateset", "delete", set_id, "--home", prod)
    assert refused.code == 1
    assert "is committed" in refused.err
    again = cli("updateset", "import", out, "--home", prod)
    assert again.code == 1
    assert "cannot be imported again" in again.err
    assert [s["state"] for s in sets_json(cli, prod)] == ["committed"]


def test_delete_names_only_retrieved_sets(cli: Cli, signing_home: Path, tmp_path: Path) -> None:
    local_id = new_set(cli, signing_home, "Mine")
    own = cli("updateset", "delete", local_id, "--home", signing_home)
    assert own.code == 2
    assert "only retrieved update sets can be deleted" in own.err
    missing = cli("updateset", "delete", "f" * 32, "--home", signing_home)
    assert missing.code == 4
    assert [s["sys_id"] for s in sets_json(cli, signing_home)] == [local_id]
