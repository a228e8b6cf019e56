"""Records, signatures, key management, properties and the audit log over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SessionPki
from tests.live_server import LiveServer
from tests.web.conftest import Api, add_user
from trustcircle.crypto import fingerprint_of
from trustcircle.signing import CIRCLE_OF_TRUST, CODE_SIGNING

TABLE = "sys_script_include"
FLAG = "com.snc.kmf.signature.validation.flag"
FLAG_ALIAS = "com_snc_kmf_signature.validation.flag"


def _add(api: Api, name: str, script: str = 'gs.info("hi")') -> dict[str, object]:
    fields = {"name": name, "api_name": f"global.{name}", "script": script, "active": "true"}
    created: dict[str, object] = api.ok(
        "POST", f"/api/records/{TABLE}", 201, json={"fields": fields}
    )
    return created


@pytest.fixture(scope="module")
def auditor(dev: LiveServer, trusted_home: Path) -> Iterator[Api]:
    api = Api(dev, add_user(trusted_home, "auditor", "codesigning_auditor"))
    yield api
    api.close()


def test_record_lifecycle_add_list_show_update_delete(dev_admin: Api) -> None:
    record = _add(dev_admin, "Lifecycle")
    sid = str(record["sys_id"])
    assert record["table"] == TABLE
    assert record["fields"]["name"] == "Lifecycle"  # type: ignore[index]
    listed = dev_admin.ok("GET", f"/api/records/{TABLE}", params={"name": "*cycle"})
    assert [r["sys_id"] for r in listed] == [sid]
    assert dev_admin.ok("GET", f"/api/records/{TABLE}", params={"name": "=lifecycle"})
    assert dev_admin.ok("GET", f"/api/records/{TABLE}", params={"name": "Nope"}) == []
    shown = dev_admin.ok("GET", f"/api/records/{TABLE}/{sid}")
    assert shown["fields"]["script"] == 'gs.info("hi")'
    changed = dev_admin.ok(
        "PATCH", f"/api/records/{TABLE}/{sid}", json={"fields": {"script": "gs.info(2)"}}
    )
    assert changed["fields"]["script"] == "gs.info(2)"
    assert changed["mod_count"] == 1
    deleted = dev_admin.ok("DELETE", f"/api/records/{TABLE}/{sid}")
    assert deleted == {"table": TABLE, "sys_id": sid, "deleted": True}
    dev_admin.fails("GET", f"/api/records/{TABLE}/{sid}", 404)


def test_signed_record_verifies_and_an_edit_after_signing_is_invalid(
    dev_admin: Api, auditor: Api
) -> None:
    sid = str(_add(dev_admin, "Signed")["sys_id"])
    unsigned = auditor.ok("GET", f"/api/records/{TABLE}/{sid}/verify")
    assert unsigned["verdict"] == "missing"
    sig = dev_admin.ok("POST", f"/api/records/{TABLE}/{sid}/sign", 201, json={})
    assert sig["purpose"] == CODE_SIGNING
    assert sig["document_id"] == sid
    assert sig["algorithm"] == "RSASSA_PKCS1_V1_5_SHA_512"
    valid = auditor.ok("GET", f"/api/records/{TABLE}/{sid}/verify")
    assert valid["verdict"] == "valid"
    assert valid["valid_signature"]["certificate"] == sig["certificate"]
    dev_admin.ok("PATCH", f"/api/records/{TABLE}/{sid}", json={"fields": {"script": "evil()"}})
    tampered = auditor.ok("GET", f"/api/records/{TABLE}/{sid}/verify")
    assert tampered["verdict"] == "invalid"
    listed = auditor.ok("GET", "/api/signatures", params={"table": TABLE, "purpose": CODE_SIGNING})
    assert sig["sys_id"] in {s["sys_id"] for s in listed}
    assert auditor.ok("GET", "/api/signatures", params={"purpose": CIRCLE_OF_TRUST}) == []


def test_signing_needs_codesigning_admin(dev: LiveServer, trusted_home: Path, auditor: Api) -> None:
    sid = str(_add(Api(dev, dev.admin_token), "NotMine")["sys_id"])
    refused = auditor.fails("POST", f"/api/records/{TABLE}/{sid}/sign", 403, json={})
    assert refused["missing_roles"] == ["codesigning_admin"]


def test_kmf_modules_certificates_and_trust_anchors(
    dev_admin: Api, auditor: Api, test_pki: SessionPki
) -> None:
    modules = {m["module"]: m for m in auditor.ok("GET", "/api/kmf/modules")}
    signing = fingerprint_of(test_pki.code_signing.cert)
    assert modules["cm_code_signing"]["certificate"] == signing
    assert modules["cm_runtime"]["has_key"] is False
    certs = {c["fingerprint"]: c for c in auditor.ok("GET", "/api/kmf/certificates")}
    assert certs[signing]["status"] == "valid"
    assert certs[signing]["trusted"] is True
    anchors = auditor.ok("GET", "/api/trust-anchors")
    assert [a["fingerprint"] for a in anchors] == [fingerprint_of(test_pki.root)]
    refused = auditor.fails(
        "POST",
        "/api/trust-anchors",
        403,
        files={"certificate": ("other.pem", test_pki.files.other_root_pem.read_bytes())},
    )
    assert "security_admin" in refused["message"]
    not_pem = dev_admin.fails(
        "POST", "/api/trust-anchors", 400, files={"certificate": ("x.pem", b"not a pem")}
    )
    assert not_pem["error"] == "bad_input"


def test_verification_certificates_carry_pem_and_are_readable_by_a_mid(
    dev: LiveServer, trusted_home: Path, test_pki: SessionPki
) -> None:
    mid = Api(dev, add_user(trusted_home, "mid1", "mid_server"))
    try:
        rows = mid.ok("GET", "/api/sn_kmf/signature/certificates")
    finally:
        mid.close()
    by_fp = {r["fingerprint"]: r for r in rows}
    attest = by_fp[fingerprint_of(test_pki.code_attest.cert)]
    assert set(attest) == {
        "sys_id", "name", "module", "pem", "fingerprint",
        "subject", "issuer", "not_before", "not_after",
    }  # fmt: skip
    assert attest["module"] == "cm_code_attest"
    assert attest["pem"].startswith("-----BEGIN CERTIFICATE-----")
    assert fingerprint_of(test_pki.intermediate) in by_fp


def test_kmf_import_refuses_a_wrong_password_then_imports_with_the_right_one(
    dev_admin: Api, test_pki: SessionPki
) -> None:
    p12 = test_pki.files.p12["runtime"].read_bytes()
    wrong = dev_admin.fails(
        "POST",
        "/api/kmf/import",
        400,
        data={"module": "cm_runtime", "password": "wrong"},
        files={"p12": ("runtime.p12", p12)},
    )
    assert "password" in wrong["message"].lower()
    imported = dev_admin.ok(
        "POST",
        "/api/kmf/import",
        201,
        data={"module": "cm_runtime", "password": test_pki.password.decode()},
        files={"p12": ("runtime.p12", p12)},
    )
    assert imported["certificate"] == fingerprint_of(test_pki.runtime.cert)


def test_properties_list_get_alias_and_set(dev_admin: Api, auditor: Api) -> None:
    listed = {
        p["name"]: p for p in auditor.ok("GET", "/api/properties", params={"prefix": "com.snc.kmf"})
    }
    assert listed[FLAG]["protected"] is True
    assert auditor.ok("GET", f"/api/properties/{FLAG_ALIAS}") == {
        "name": FLAG,
        "value": "false",
        "protected": True,
    }
    days = "com.snc.kmf.certificate.expiring_days"
    assert dev_admin.ok("PUT", f"/api/properties/{days}", json={"value": "45"}) == {
        "name": days,
        "value": "45",
    }
    assert auditor.ok("GET", f"/api/properties/{days}")["value"] == "45"
    out_of_range = dev_admin.fails("PUT", f"/api/properties/{days}", 422, json={"value": "0"})
    assert "between 1 and 3650" in out_of_range["message"]


@pytest.mark.parametrize(
    "name", [FLAG, FLAG_ALIAS, "com.glide.codesigning.expanded.tracking.length"]
)
def test_protected_property_put_is_refused_for_admin_and_audited(dev_admin: Api, name: str) -> None:
    refused = dev_admin.fails("PUT", f"/api/properties/{name}", 403, json={"value": "true"})
    assert refused["error"] == "policy"
    assert "is protected" in refused["message"]
    assert dev_admin.ok("GET", f"/api/properties/{FLAG}")["value"] == "false"
    newest = dev_admin.ok("GET", "/api/audit", params={"limit": 1})[0]
    assert newest["action"] == "property.write"
    assert newest["outcome"] == "refused"
    assert newest["actor"] == "admin"
    assert "is protected" in newest["detail"]


def test_audit_chain_verifies(auditor: Api) -> None:
    report = auditor.ok("GET", "/api/audit/verify")
    assert report["ok"] is True
    assert report["problems"] == []
    assert report["entries"] > 0


def test_policy_statements_cannot_be_written_through_the_records_api(dev_admin: Api) -> None:
    """Only Circle-of-Trust jobs and update sets write them: a statement with a huge
    sequence would otherwise block every later Turn On/Off at the MIDs."""
    fields = {
        "instance": "*",
        "state": "off",
        "sequence": "999999999999999999",
        "issued_at": "2026-11-28T00:00:00Z",
        "expires_at": "2026-11-29T00:00:00Z",
    }
    refused = dev_admin.fails(
        "POST", "/api/records/cot_policy_statement", 403, json={"fields": fields}
    )
    assert "only Circle-of-Trust jobs" in refused["message"]
    newest = dev_admin.ok("GET", "/api/audit", params={"limit": 1})[0]
    assert (newest["action"], newest["outcome"]) == ("record.write", "refused")
    assert dev_admin.ok("GET", "/api/records/cot_policy_statement") == []


@pytest.mark.parametrize("escaped", ["n\\ud800", "a\\u0000b"])
def test_text_no_database_can_store_is_bad_input_not_a_server_error(
    dev_admin: Api, escaped: str
) -> None:
    body = '{"fields": {"name": "' + escaped + '"}}'  # JSON escapes: a lone surrogate, NUL
    refused = dev_admin.fails(
        "POST",
        "/api/records/sys_script_include",
        400,
        content=body.encode(),
        headers={"Content-Type": "application/json"},
    )
    assert "plain UTF-8 text" in refused["message"]
