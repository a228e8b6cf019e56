"""Batches: a set over com.snc.csf.maximum_update_size exports as a signed parent + children."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import Cli
from tests.conftest import SessionPki
from tests.updatesets.io_support import (
    bulk_local_set,
    export,
    manifest_verifies,
    ok,
    protected_home,
    read_export,
    sets_json,
)
from trustcircle.errors import UsageError
from trustcircle.updatesets import ManifestEntry, UpdateEntry, UpdateSetHeader
from trustcircle.updatesets._batch import (
    child_path,
    child_sys_id,
    parse_child_name,
    plan_parts,
)

HEADER = UpdateSetHeader("ab" * 16, "Big", "many", "dev", "", "2026-11-27T19:45:00Z")


def _lines(count: int) -> list[ManifestEntry]:
    return [
        ManifestEntry.of(
            UpdateEntry(f"{n:032x}", HEADER.sys_id, "t", f"{n + 99:032x}", "DELETE", f"<{n}>")
        )
        for n in reversed(range(count))
    ]


def test_twenty_five_entries_of_at_most_ten_make_a_parent_and_three_children() -> None:
    parts = plan_parts(HEADER, _lines(25), 10, Path("/x/big.xml"))
    parent, *children = parts
    assert parent.header == HEADER
    assert parent.lines == ()
    assert parent.path == Path("/x/big.xml")
    assert [len(c.lines) for c in children] == [10, 10, 5]
    assert [c.path.name for c in children] == [
        "big.part-1-of-3.xml",
        "big.part-2-of-3.xml",
        "big.part-3-of-3.xml",
    ]
    assert [c.header.name for c in children] == ["Big [1/3]", "Big [2/3]", "Big [3/3]"]
    assert {c.header.parent for c in children} == {HEADER.sys_id}
    assert len({c.header.sys_id for c in children} | {HEADER.sys_id}) == 4
    # split in sys_id order, each entry exactly once
    flat = [line.sys_id for c in children for line in c.lines]
    assert flat == sorted(line.sys_id for line in _lines(25))


def test_a_set_at_the_maximum_is_one_file() -> None:
    parts = plan_parts(HEADER, _lines(10), 10, Path("a.xml"))
    assert len(parts) == 1
    assert len(parts[0].lines) == 10


def test_child_ids_and_names_are_stable_and_parseable() -> None:
    assert child_sys_id(HEADER.sys_id, 1, 2) == child_sys_id(HEADER.sys_id, 1, 2)
    assert child_sys_id(HEADER.sys_id, 1, 2) != child_sys_id(HEADER.sys_id, 2, 2)
    assert parse_child_name("Release [3/12]") == ("Release", 3, 12)
    assert parse_child_name("Release [13/12]") is None
    assert parse_child_name("Release [0/2]") is None
    assert parse_child_name("Release") is None
    assert child_path(Path("out/x"), 2, 5) == Path("out/x.part-2-of-5.xml")


def test_maximum_must_be_positive() -> None:
    with pytest.raises(UsageError):
        plan_parts(HEADER, _lines(2), 0, Path("a.xml"))


def test_large_set_exports_as_signed_parent_and_children_and_imports_as_a_batch(
    cli: Cli, signing_home: Path, tmp_path: Path, test_pki: SessionPki
) -> None:
    ok(
        cli(
            "property",
            "set",
            "com.snc.csf.maximum_update_size",
            "6000",
            "--home",
            signing_home,
        )
    )
    set_id = bulk_local_set(signing_home, "Mass update", 6001)
    out = tmp_path / "mass.xml"
    result = export(cli, signing_home, set_id, out)
    assert result["batch"] is True
    assert result["entries"] == 6001
    files = result["files"]
    assert [Path(f["path"]).name for f in files] == [
        "mass.xml",
        "mass.part-1-of-2.xml",
        "mass.part-2-of-2.xml",
    ]
    assert [f["entries"] for f in files] == [0, 6000, 1]
    assert all(f["signed"] for f in files)

    parent = read_export(out)
    assert parent.entries == []
    assert parent.header.sys_id == set_id
    assert manifest_verifies(parent, test_pki.code_attest.cert)
    children = [read_export(Path(f["path"])) for f in files[1:]]
    for index, child in enumerate(children, start=1):
        assert child.header.parent == set_id
        assert child.header.name == f"Mass update [{index}/2]"
        assert {e.update_set for e in child.entries} == {child.header.sys_id}
        assert manifest_verifies(child, test_pki.code_attest.cert)
    all_ids = [e.sys_id for child in children for e in child.entries]
    assert all_ids == sorted(all_ids)
    assert len(set(all_ids)) == 6001

    # re-exporting names the children the same: the protected side sees the same batch
    again = export(cli, signing_home, set_id, tmp_path / "again.xml")
    assert [f["sys_id"] for f in again["files"]] == [f["sys_id"] for f in files]

    prod = protected_home(cli, tmp_path / "prod")
    imported = ok(cli("updateset", "import", *(f["path"] for f in files), "--home", prod, "--json"))
    assert [(r["name"], r["entries"], r["parent"]) for r in imported.json()] == [
        ("Mass update", 0, ""),
        ("Mass update [1/2]", 6000, set_id),
        ("Mass update [2/2]", 1, set_id),
    ]
    listed = {s["sys_id"]: s for s in sets_json(cli, prod)}
    assert {s["state"] for s in listed.values()} == {"loaded"}
    assert {s["kind"] for s in listed.values()} == {"retrieved"}

    # deleting the parent deletes its batch
    deleted = ok(cli("updateset", "delete", set_id, "--home", prod, "--json")).json()
    assert sorted(d["sys_id"] for d in deleted) == sorted(listed)
    assert sets_json(cli, prod) == []
