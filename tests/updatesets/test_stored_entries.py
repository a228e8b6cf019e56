"""What import stores (parsed fields) and preview keeps (receipts) cannot be turned against commit.

Import parses each payload once and stores the record's fields; preview stores
receipts of the signatures it verified so commit need not verify them again. A
database writer who alters either gains nothing: altered fields no longer match
their signature, and receipts not made with this instance's master key are ignored.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select, update

from tests.cli.conftest import Cli
from tests.conftest import SessionPki
from tests.updatesets.retrieved_sets import cot_job_set, import_file, protected_home
from trustcircle.platform.context import Instance
from trustcircle.store.models import RemoteUpdateSet, RemoteUpdateXml, SysRecord
from trustcircle.updatesets import record_to_payload


@pytest.fixture
def prod(cli: Cli, tmp_path: Path, test_pki: SessionPki) -> Path:
    return protected_home(cli, tmp_path / "prod", test_pki)


def _loaded(cli: Cli, prod: Path, pki: SessionPki) -> tuple[str, str]:
    b, job = cot_job_set(pki)
    sid = import_file(cli, prod, b.write(prod.parent / "set.xml", b.manifest()))
    return sid, job


def _edit(home: Path, set_id: str, target: str, **values: str | None) -> None:
    inst = Instance.open(home)
    try:
        with inst.db.transaction() as s:
            s.execute(
                update(RemoteUpdateXml)
                .where(
                    RemoteUpdateXml.remote_update_set == set_id,
                    RemoteUpdateXml.target_sys_id == target,
                )
                .values(**values)
            )
    finally:
        inst.close()


def _stored(home: Path, set_id: str, target: str) -> RemoteUpdateXml:
    inst = Instance.open(home)
    try:
        with inst.db.transaction() as s:
            row = s.scalars(
                select(RemoteUpdateXml).where(
                    RemoteUpdateXml.remote_update_set == set_id,
                    RemoteUpdateXml.target_sys_id == target,
                )
            ).one()
            s.expunge(row)
            return row
    finally:
        inst.close()


def _previewed_then_altered(cli: Cli, prod: Path, pki: SessionPki, script: str) -> tuple[str, str]:
    """A loaded, previewed set whose job's stored script a database writer then changed."""
    sid, job = _loaded(cli, prod, pki)
    assert cli("updateset", "preview", sid, "--home", prod).code == 0
    fields = json.loads(_stored(prod, sid, job).fields or "")
    fields["script"] = script
    _edit(prod, sid, job, fields=json.dumps(fields, sort_keys=True))
    return sid, job


def _set_receipts(home: Path, set_id: str) -> str | None:
    inst = Instance.open(home)
    try:
        with inst.db.transaction() as s:
            row = s.get(RemoteUpdateSet, set_id)
            assert row is not None
            return row.receipts
    finally:
        inst.close()


def _job_script(home: Path, job: str) -> str | None:
    inst = Instance.open(home)
    try:
        with inst.db.transaction() as s:
            fields = s.scalar(select(SysRecord.fields).where(SysRecord.sys_id == job))
    finally:
        inst.close()
    return None if fields is None else json.loads(fields)["script"]


def test_preview_keeps_receipts_and_commit_applies_the_checked_fields(
    cli: Cli, prod: Path, test_pki: SessionPki
) -> None:
    sid, job = _loaded(cli, prod, test_pki)
    stored = _stored(prod, sid, job)
    assert stored.payload is None  # parsed at import: the fields are kept, not the XML
    assert json.loads(stored.fields or "")["script"] == "print('cleanup')"
    assert cli("updateset", "preview", sid, "--home", prod).code == 0
    receipts = _set_receipts(prod, sid)
    assert receipts is not None
    assert len(receipts.split("\n")) == 3  # the job and the two certificates' signatures
    result = cli("updateset", "commit", sid, "--home", prod, "--json")
    assert result.code == 0, result.err
    assert _job_script(prod, job) == "print('cleanup')"
    assert _set_receipts(prod, sid) is None


def test_fields_altered_in_the_database_after_preview_are_refused_at_commit(
    cli: Cli, prod: Path, test_pki: SessionPki
) -> None:
    sid, job = _previewed_then_altered(cli, prod, test_pki, "import os; os.system('sh')")
    result = cli("updateset", "commit", sid, "--home", prod)
    assert result.code == 1
    assert "signature" in result.err
    assert _job_script(prod, job) is None


def test_receipts_forged_without_the_master_key_are_ignored(
    cli: Cli, prod: Path, test_pki: SessionPki
) -> None:
    sid, job = _previewed_then_altered(cli, prod, test_pki, "print('owned')")
    inst = Instance.open(prod)
    try:
        with inst.db.transaction() as s:
            row = s.get(RemoteUpdateSet, sid)
            assert row is not None
            row.receipts = "\n".join(["0" * 32, "f" * 32, "not a receipt"])
    finally:
        inst.close()
    result = cli("updateset", "commit", sid, "--home", prod)
    assert result.code == 1
    assert _job_script(prod, job) is None


def test_stored_fields_that_are_not_json_block_the_set(
    cli: Cli, prod: Path, test_pki: SessionPki
) -> None:
    sid, job = _loaded(cli, prod, test_pki)
    _edit(prod, sid, job, fields='{"script": ["not", "text"]}')
    preview = cli("updateset", "preview", sid, "--home", prod, "--json")
    assert preview.code == 0, preview.err
    problems = [p for p in preview.json()["problems"] if p["type"] == "parse"]
    assert len(problems) == 1
    assert problems[0]["blocking"] is True
    assert "import its file again" in problems[0]["description"]
    assert cli("updateset", "commit", sid, "--home", prod, "--accept-remote").code == 1


def test_entries_stored_by_an_older_version_are_parsed_at_preview(
    cli: Cli, prod: Path, test_pki: SessionPki
) -> None:
    sid, job = _loaded(cli, prod, test_pki)
    fields = json.loads(_stored(prod, sid, job).fields or "")
    _edit(
        prod,
        sid,
        job,
        fields=None,
        payload=record_to_payload("sysauto_script", job, fields),
    )
    preview = cli("updateset", "preview", sid, "--home", prod, "--json")
    assert preview.code == 0, preview.err
    assert preview.json()["committable"] is True
    result = cli("updateset", "commit", sid, "--home", prod, "--json")
    assert result.code == 0, result.err
    assert _job_script(prod, job) == "print('cleanup')"
