"""``updateset commit``: all or nothing, refused while preview shows unresolved problems.

A valid Circle-of-Trust set commits and its certificates join the trusted friends
list; every attack is refused with nothing applied and the refusal audited.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.cli.conftest import Cli
from tests.conftest import SessionPki
from tests.updatesets.retrieved_sets import (
    HOUR,
    SetBuilder,
    cot_job_set,
    import_file,
    job_fields,
    protected_home,
    with_field,
)
from trustcircle.cot.friends import list_friends
from trustcircle.crypto import fingerprint_of
from trustcircle.platform.context import Instance
from trustcircle.store.models import (
    AuditEntry,
    Certificate,
    PreviewProblem,
    RecordSignatureRow,
    RemoteUpdateSet,
    SysRecord,
    TrustedFriend,
)
from trustcircle.updatesets import ManifestSignature

Attack = Callable[[SessionPki], tuple[SetBuilder, ManifestSignature | None]]


@pytest.fixture
def prod(cli: Cli, tmp_path: Path, test_pki: SessionPki) -> Path:
    return protected_home(cli, tmp_path / "prod", test_pki)


def load(cli: Cli, home: Path, b: SetBuilder, signature: ManifestSignature | None) -> str:
    return import_file(cli, home, b.write(home.parent / f"{b.header.sys_id}.xml", signature))


def counts(home: Path) -> dict[str, int]:
    inst = Instance.open(home)
    try:
        with inst.db.transaction() as s:
            return {
                name: s.scalar(select(func.count()).select_from(model)) or 0
                for name, model in (
                    ("records", SysRecord),
                    ("signatures", RecordSignatureRow),
                    ("certificates", Certificate),
                    ("friends", TrustedFriend),
                )
            }
    finally:
        inst.close()


def state_of(home: Path, set_id: str) -> str:
    inst = Instance.open(home)
    try:
        with inst.db.transaction() as s:
            row = s.get(RemoteUpdateSet, set_id)
            assert row is not None
            return row.state
    finally:
        inst.close()


def test_valid_cot_set_commits_and_certificates_become_friends(
    cli: Cli, prod: Path, test_pki: SessionPki
) -> None:
    b, job = cot_job_set(test_pki)
    sid = load(cli, prod, b, b.manifest())
    assert cli("updateset", "preview", sid, "--home", prod).code == 0
    result = cli("updateset", "commit", sid, "--home", prod, "--json")
    assert result.code == 0, result.err
    done = result.json()
    assert done["circle_of_trust"] is True
    assert done["entries"] == 6
    attest = fingerprint_of(test_pki.code_attest.cert)
    assert done["friends_added"] == [attest]
    shown = cli("record", "show", "--table", "sysauto_script", "--id", job, "--home", prod)
    assert shown.code == 0, shown.err
    assert "print('cleanup')" in shown.out
    assert state_of(prod, sid) == "committed"
    inst = Instance.open(prod)
    try:
        with inst.db.transaction() as s:
            friends = list_friends(s)
    finally:
        inst.close()
    assert [f.fingerprint for f in friends] == [attest]
    assert friends[0].via == f"signed jobs ({sid})"
    verify = cli("record", "verify", "--table", "sysauto_script", "--id", job, "--home", prod)
    assert verify.code == 0, verify.err


def test_committed_set_cannot_be_committed_again(
    cli: Cli, prod: Path, test_pki: SessionPki
) -> None:
    b, _job = cot_job_set(test_pki)
    sid = load(cli, prod, b, b.manifest())
    assert cli("updateset", "commit", sid, "--home", prod).code == 0
    again = cli("updateset", "commit", sid, "--home", prod)
    assert again.code == 1
    assert "already committed" in again.err


def _script_edited(pki: SessionPki) -> tuple[SetBuilder, ManifestSignature | None]:
    b, job = cot_job_set(pki)
    with_field(b, job, script="import os; os.system('rm -rf /')")
    return b, b.manifest()


def _signature_moved(pki: SessionPki) -> tuple[SetBuilder, ManifestSignature | None]:
    b, job = cot_job_set(pki)
    other = b.record("sysauto_script", job_fields("Other", "print('x')"))
    sig = next(sid for sid, r in b.records.items() if r.fields.get("document_id") == job)
    with_field(b, sig, document_id=other)
    return b, b.manifest()


def _manifest_missing_an_entry(pki: SessionPki) -> tuple[SetBuilder, ManifestSignature | None]:
    b, _job = cot_job_set(pki)
    signed = b.manifest()
    b.sign(b.record("sysauto_script", job_fields("Smuggled", "print('owned')")))
    return b, signed


def _entry_not_in_the_file(pki: SessionPki) -> tuple[SetBuilder, ManifestSignature | None]:
    b, _job = cot_job_set(pki)
    dropped = b.record("sysauto_script", job_fields("Dropped", "print('x')"))
    signed = b.manifest()
    del b.records[dropped]
    return b, signed


def _expired_window(pki: SessionPki) -> tuple[SetBuilder, ManifestSignature | None]:
    b = SetBuilder(pki)
    long_ago = b.now - 3 * HOUR
    b.sign(b.record("sysauto_script", job_fields()), signed_at=long_ago)
    b.trusted_chain()
    return b, b.manifest(signed_at=long_ago)


def _unknown_ca(pki: SessionPki) -> tuple[SetBuilder, ManifestSignature | None]:
    rogue = pki.unknown_ca
    b = SetBuilder(pki)
    b.sign(b.record("sysauto_script", job_fields()), rogue)
    b.trusted_chain(rogue)
    return b, b.manifest(rogue.key, rogue.cert)


def _manifest_missing(pki: SessionPki) -> tuple[SetBuilder, ManifestSignature | None]:
    b, _job = cot_job_set(pki)
    return b, None


def _protected_property(pki: SessionPki) -> tuple[SetBuilder, ManifestSignature | None]:
    b = SetBuilder(pki)
    b.record("sys_properties", {"name": "com.snc.kmf.signature.validation.flag", "value": "true"})
    return b, None


ATTACKS: dict[str, Attack] = {
    "job_script_edited_after_signing": _script_edited,
    "signature_moved_to_other_record": _signature_moved,
    "manifest_missing_an_entry": _manifest_missing_an_entry,
    "entry_in_manifest_missing_from_file": _entry_not_in_the_file,
    "expired_validity_window": _expired_window,
    "certificate_chaining_to_unknown_ca": _unknown_ca,
    "manifest_missing_on_cot_set": _manifest_missing,
    "protected_property_in_set": _protected_property,
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
@pytest.mark.parametrize("accept_remote", [False, True], ids=["plain", "accept_remote"])
def test_attack_is_refused_at_commit_with_nothing_applied(
    cli: Cli, prod: Path, test_pki: SessionPki, attack: str, accept_remote: bool
) -> None:
    b, signature = ATTACKS[attack](test_pki)
    sid = load(cli, prod, b, signature)
    before = counts(prod)
    args = ["updateset", "commit", sid, "--home", prod]
    result = cli(*args, *(["--accept-remote"] if accept_remote else []))
    assert result.code == 1, result.out
    assert "refused" in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert counts(prod) == before
    assert state_of(prod, sid) == "loaded"
    inst = Instance.open(prod)
    try:
        with inst.db.transaction() as s:
            last = s.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).one()
    finally:
        inst.close()
    assert (last.action, last.outcome) == ("updateset.commit", "refused")
    assert "refused" in json.loads(last.detail)["reason"]


def test_collision_is_acceptable_only_with_accept_remote_on_non_cot_set(
    cli: Cli, prod: Path, test_pki: SessionPki
) -> None:
    added = cli(
        "record", "add", "--home", prod, "--table", "sys_script_include",
        "--field", "name=Local", "--field", "api_name=global.Local",
        "--field", "script=local()", "--field", "active=true",
    )  # fmt: skip
    assert added.code == 0, added.err
    target = added.out.strip()
    b = SetBuilder(test_pki, "older scripts", created_on=test_pki.now - 24 * HOUR)
    b.record(
        "sys_script_include",
        {"name": "Remote", "api_name": "global.Local", "script": "remote()", "active": "true"},
        target,
    )
    sid = load(cli, prod, b, None)
    report = cli("updateset", "preview", sid, "--home", prod, "--json").json()
    assert report["circle_of_trust"] is False
    assert {p["type"] for p in report["problems"]} == {"collision", "signature"}
    assert not any(p["blocking"] for p in report["problems"])

    refused = cli("updateset", "commit", sid, "--home", prod)
    assert refused.code == 1
    assert "--accept-remote" in refused.err
    shown = cli("record", "show", "--table", "sys_script_include", "--id", target, "--home", prod)
    assert "local()" in shown.out

    accepted = cli("updateset", "commit", sid, "--home", prod, "--accept-remote", "--json")
    assert accepted.code == 0, accepted.err
    assert accepted.json()["updated"] == 1
    assert accepted.json()["accepted_problems"] == 2
    shown = cli("record", "show", "--table", "sys_script_include", "--id", target, "--home", prod)
    assert "remote()" in shown.out
    inst = Instance.open(prod)
    try:
        with inst.db.transaction() as s:
            row = s.get(RemoteUpdateSet, sid)
            assert row is not None
            assert row.accepted_remote is True
            statuses = set(
                s.scalars(
                    select(PreviewProblem.status).where(PreviewProblem.remote_update_set == sid)
                )
            )
    finally:
        inst.close()
    assert statuses == {"accepted"}


def test_delete_entry_removes_the_record(cli: Cli, prod: Path, test_pki: SessionPki) -> None:
    added = cli(
        "record", "add", "--home", prod, "--table", "sys_script_include",
        "--field", "name=Gone", "--field", "api_name=global.Gone", "--field", "script=x()",
    )  # fmt: skip
    target = added.out.strip()
    b = SetBuilder(test_pki, "cleanup")
    b.delete("sys_script_include", target, {"name": "Gone"})
    sid = load(cli, prod, b, None)
    result = cli("updateset", "commit", sid, "--home", prod, "--json")
    assert result.code == 0, result.err
    assert result.json()["deleted"] == 1
    shown = cli("record", "show", "--table", "sys_script_include", "--id", target, "--home", prod)
    assert shown.code == 4
