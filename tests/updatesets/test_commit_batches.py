"""Batches: a parent and its children ``"<name> [i/k]"`` preview and commit as one."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tests.cli.conftest import Cli
from tests.conftest import SessionPki
from tests.updatesets.retrieved_sets import SetBuilder, import_file, job_fields, protected_home


@pytest.fixture
def prod(cli: Cli, tmp_path: Path, test_pki: SessionPki) -> Path:
    return protected_home(cli, tmp_path / "prod", test_pki)


def batch(pki: SessionPki, parts: int = 2) -> tuple[SetBuilder, list[SetBuilder], list[str]]:
    parent = SetBuilder(pki, "big release")
    children, jobs = [], []
    for i in range(1, parts + 1):
        child = SetBuilder(pki, f"big release [{i}/{parts}]", parent=parent.header.sys_id)
        job = child.record("sysauto_script", job_fields(f"Job {i}", f"print({i})"))
        child.sign(job)
        if i == 1:
            child.trusted_chain()
        children.append(child)
        jobs.append(job)
    return parent, children, jobs


def files(folder: Path, *builders: SetBuilder) -> list[Path]:
    return [b.write(folder / f"{b.header.sys_id}.xml", b.manifest()) for b in builders]


def test_batch_previews_and_commits_every_part_in_one_go(
    cli: Cli, prod: Path, test_pki: SessionPki
) -> None:
    parent, children, jobs = batch(test_pki, 3)
    sid = import_file(cli, prod, *files(prod.parent, parent, *children))
    assert sid == parent.header.sys_id
    report = cli("updateset", "preview", sid, "--home", prod, "--json").json()
    assert report["problems"] == []
    assert [c["name"] for c in report["children"]] == [c.header.name for c in children]
    assert report["circle_of_trust"] is True
    result = cli("updateset", "commit", sid, "--home", prod, "--json")
    assert result.code == 0, result.err
    assert result.json()["children"] == 3
    for job in jobs:
        shown = cli("record", "show", "--table", "sysauto_script", "--id", job, "--home", prod)
        assert shown.code == 0, shown.err
    listed = cli("updateset", "list", "--home", prod, "--json").json()
    states = {s["sys_id"]: s["state"] for s in listed}
    assert {states[b.header.sys_id] for b in (parent, *children)} == {"committed"}


def test_batch_with_a_part_not_loaded_is_refused(
    cli: Cli, prod: Path, test_pki: SessionPki
) -> None:
    parent, children, jobs = batch(test_pki, 3)
    sid = import_file(cli, prod, *files(prod.parent, parent, children[0], children[2]))
    report = cli("updateset", "preview", sid, "--home", prod, "--json").json()
    problems = [p for p in report["problems"] if p["type"] == "batch"]
    assert problems
    assert problems[0]["blocking"] is True
    assert "part(s) 2 of 3 are not loaded" in problems[0]["description"]
    result = cli("updateset", "commit", sid, "--home", prod, "--accept-remote")
    assert result.code == 1
    assert "not loaded" in result.err
    for job in jobs:
        shown = cli("record", "show", "--table", "sysauto_script", "--id", job, "--home", prod)
        assert shown.code == 4


def test_committing_one_part_alone_is_refused(cli: Cli, prod: Path, test_pki: SessionPki) -> None:
    parent, children, jobs = batch(test_pki, 2)
    import_file(cli, prod, *files(prod.parent, parent, *children))
    result = cli("updateset", "commit", children[0].header.sys_id, "--home", prod)
    assert result.code == 1
    assert f"commit the whole batch with `trustcircle updateset commit {parent.header.sys_id}`" in (
        result.err
    )
    shown = cli("record", "show", "--table", "sysauto_script", "--id", jobs[0], "--home", prod)
    assert shown.code == 4


def test_part_without_manifest_in_a_cot_batch_is_refused(
    cli: Cli, prod: Path, test_pki: SessionPki
) -> None:
    parent, children, _jobs = batch(test_pki, 2)
    unsigned = SetBuilder(test_pki, "big release [2/2]", parent=parent.header.sys_id)
    unsigned.record("sysauto_script", job_fields("Unsigned", "print('no signature')"))
    paths = [*files(prod.parent, parent, children[0]), unsigned.write(prod.parent / "u.xml", None)]
    sid = import_file(cli, prod, *paths)
    report = cli("updateset", "preview", sid, "--home", prod, "--json").json()
    second = report["children"][1]
    assert second["circle_of_trust"] is True
    assert {p["type"] for p in second["problems"] if p["blocking"]} == {"manifest", "signature"}
    assert cli("updateset", "commit", sid, "--home", prod, "--accept-remote").code == 1


def test_part_detached_from_its_batch_is_refused_on_its_own(
    cli: Cli, prod: Path, test_pki: SessionPki
) -> None:
    """``parent`` is not in the signed manifest: emptying it must not let one part of a
    batch commit alone (the batch commits whole)."""
    _parent, children, jobs = batch(test_pki, 2)
    first = children[0]
    signed = first.manifest()  # signed as part 1 of 2
    first.header = dataclasses.replace(first.header, parent="")
    sid = import_file(cli, prod, first.write(prod.parent / "part1.xml", signed))
    report = cli("updateset", "preview", sid, "--home", prod, "--json").json()
    assert report["manifest"]["verdict"] == "valid"
    assert not report["committable"]
    assert any(
        p["type"] == "batch" and "part 1 of 2" in p["description"] for p in report["problems"]
    )
    refused = cli("updateset", "commit", sid, "--home", prod)
    assert refused.code == 1
    assert "loaded on its own" in refused.err
    shown = cli("record", "show", "--table", "sysauto_script", "--id", jobs[0], "--home", prod)
    assert shown.code == 4  # nothing applied
