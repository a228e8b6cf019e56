"""Certificates in Circle-of-Trust sets: friends, duplicates, revoked friends."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select, update

from tests.cli.conftest import Cli
from tests.conftest import SessionPki
from tests.updatesets.retrieved_sets import SetBuilder, cot_job_set, import_file, protected_home
from trustcircle.crypto import fingerprint_of
from trustcircle.platform.context import Instance
from trustcircle.store.models import Certificate, RecordSignatureRow, TrustedFriend


@pytest.fixture
def prod(cli: Cli, tmp_path: Path, test_pki: SessionPki) -> Path:
    return protected_home(cli, tmp_path / "prod", test_pki)


def commit_job_set(cli: Cli, home: Path, pki: SessionPki) -> tuple[int, str, SetBuilder]:
    b, _job = cot_job_set(pki)
    sid = import_file(cli, home, b.write(home.parent / f"{b.header.sys_id}.xml", b.manifest()))
    result = cli("updateset", "commit", sid, "--home", home)
    return result.code, result.err, b


def test_certificate_already_known_under_another_sys_id_is_not_duplicated(
    cli: Cli, prod: Path, test_pki: SessionPki
) -> None:
    imported = cli(
        "kmf", "import", "--home", prod, "--module", "cm_runtime",
        "--p12", test_pki.files.p12["runtime"], "--password-file", test_pki.files.password_file,
    )  # fmt: skip
    assert imported.code == 0, imported.err  # stores the intermediate under its own sys_id
    code, err, b = commit_job_set(cli, prod, test_pki)
    assert code == 0, err
    carried = {
        r.fields["module"]: sid for sid, r in b.records.items() if r.table == "sys_certificate"
    }
    inst = Instance.open(prod)
    try:
        with inst.db.transaction() as s:
            stored = {c.sys_id: c.fingerprint for c in s.scalars(select(Certificate))}
            signed = set(s.scalars(select(RecordSignatureRow.document_id)))
    finally:
        inst.close()
    assert len(stored) == len(set(stored.values())), "one record per certificate"
    assert fingerprint_of(test_pki.intermediate) in stored.values()
    assert carried["chain"] not in stored, "the known intermediate is not stored twice"
    assert carried["chain"] not in signed, "no signature names a record that is not here"
    assert carried["cm_code_attest"] in stored
    assert carried["cm_code_attest"] in signed


def test_set_signed_by_revoked_friend_is_refused(
    cli: Cli, prod: Path, test_pki: SessionPki
) -> None:
    code, err, _first = commit_job_set(cli, prod, test_pki)
    assert code == 0, err
    attest = fingerprint_of(test_pki.code_attest.cert)
    inst = Instance.open(prod)
    try:
        with inst.db.transaction() as s:
            s.execute(
                update(TrustedFriend)
                .where(TrustedFriend.fingerprint == attest)
                .values(revoked=True)
            )
    finally:
        inst.close()
    code, err, again = commit_job_set(cli, prod, test_pki)
    assert code == 1
    assert "revoked" in err
    report = cli("updateset", "preview", again.header.sys_id, "--home", prod, "--json").json()
    assert report["manifest"]["verdict"] == "invalid"
    assert "revoked" in report["manifest"]["reason"]


def test_certificate_carried_twice_is_a_blocking_problem_not_a_crash(
    cli: Cli, prod: Path, test_pki: SessionPki
) -> None:
    b, _job = cot_job_set(test_pki)
    b.sign(b.certificate(test_pki.code_attest.cert, "cm_code_attest"))  # again, other sys_id
    sid = import_file(cli, prod, b.write(prod.parent / "twice.xml", b.manifest()))
    shown = cli("updateset", "preview", sid, "--home", prod, "--json").json()
    assert not shown["committable"]
    assert any(
        p["type"] == "certificate" and "carried twice" in p["description"] and p["blocking"]
        for p in shown["problems"]
    )
    refused = cli("updateset", "commit", sid, "--home", prod)
    assert refused.code == 1
    assert "carried twice" in refused.err
    inst = Instance.open(prod)
    try:
        with inst.db.transaction() as s:
            assert list(s.scalars(select(Certificate))) == []  # nothing applied
    finally:
        inst.close()
