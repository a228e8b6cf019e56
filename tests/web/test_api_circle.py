"""Two live instances over HTTP: trusted exports are downloaded from the API and uploaded to
the protected instance's API, previewed and committed; signed jobs are checked and executed."""

from __future__ import annotations

import io
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli.conftest import init_home
from tests.conftest import SessionPki
from tests.live_server import LiveServer, StartServer
from tests.updatesets.io_support import bulk_local_set
from tests.web.conftest import Api, error_body, run_cli
from trustcircle.crypto import fingerprint_of
from trustcircle.jobs import TURN_ON_NAME

TABLE = "sys_script_include"
FLAG = "com.snc.kmf.signature.validation.flag"
MAX_FILE = "trustcircle.updateset.import.max_file_bytes"


@dataclass
class Circle:
    dev: Api
    prod: Api

    def new_set(self, api: Api, name: str) -> str:
        created = api.ok("POST", "/api/updatesets", 201, json={"name": name})
        assert created["current"] is True
        return str(created["sys_id"])

    def add_record(self, api: Api, name: str, script: str) -> str:
        fields = {"name": name, "api_name": f"global.{name}", "script": script, "active": "true"}
        created = api.ok("POST", f"/api/records/{TABLE}", 201, json={"fields": fields})
        return str(created["sys_id"])

    def download(self, api: Api, set_id: str) -> httpx.Response:
        reply = api.http.get(f"/api/updatesets/{set_id}/export")
        assert reply.status_code == 200, reply.text
        return reply

    def upload(self, files: list[tuple[str, bytes]]) -> list[dict[str, Any]]:
        parts = [("files", (name, data, "application/xml")) for name, data in files]
        uploaded: list[dict[str, Any]] = self.prod.ok(
            "POST", "/api/updatesets/import", 201, files=parts
        )
        return uploaded

    def bring(self, set_id: str) -> dict[str, Any]:
        """Download from the trusted instance, upload, preview and commit on the protected one."""
        xml = self.download(self.dev, set_id)
        assert xml.headers["x-trustcircle-signed"] == "true"
        (retrieved,) = self.upload([("set.xml", xml.content)])
        preview = self.prod.ok("POST", f"/api/updatesets/{retrieved['sys_id']}/preview")
        assert preview["committable"], preview["summary"]
        committed: dict[str, Any] = self.prod.ok(
            "POST", f"/api/updatesets/{retrieved['sys_id']}/commit", json={}
        )
        return committed


@pytest.fixture(scope="module")
def protected_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return init_home(run_cli, tmp_path_factory.mktemp("web") / "prod", "protected", "prod")


@pytest.fixture(scope="module")
def prod(live_servers: StartServer, protected_home: Path) -> LiveServer:
    return live_servers(protected_home)


@pytest.fixture(scope="module")
def circle(dev_admin: Api, prod: LiveServer, test_pki: SessionPki) -> Iterator[Circle]:
    """The protected instance trusts the root (uploaded) and both certificates (committed)."""
    prod_admin = Api(prod, prod.admin_token)
    root = test_pki.files.root_pem
    prod_admin.ok(
        "POST", "/api/trust-anchors", 201, files={"certificate": (root.name, root.read_bytes())}
    )
    c = Circle(dev_admin, prod_admin)
    for module in ("cm_code_attest", "cm_code_signing"):
        exported = dev_admin.ok("POST", f"/api/certificates/{module}/export-to-production", 201)
        committed = c.bring(exported["update_set"])
        assert committed["circle_of_trust"] is True
    yield c
    prod_admin.close()


def test_certificates_brought_over_the_api_become_trusted_friends(
    circle: Circle, test_pki: SessionPki
) -> None:
    friends = circle.prod.ok("GET", "/api/cot/friends")
    assert {f["fingerprint"] for f in friends} >= {
        fingerprint_of(test_pki.code_attest.cert),
        fingerprint_of(test_pki.code_signing.cert),
    }
    policy = circle.prod.ok("GET", "/api/cot/policy")
    assert policy["validation_flag"] is False


def test_signed_record_travels_by_download_and_upload_and_verifies(circle: Circle) -> None:
    set_id = circle.new_set(circle.dev, "Signed script include")
    sid = circle.add_record(circle.dev, "Travels", 'gs.info("signed")')
    circle.dev.ok("POST", f"/api/records/{TABLE}/{sid}/sign", 201, json={})
    circle.dev.ok("POST", f"/api/updatesets/{set_id}/complete")
    shown = circle.dev.ok("GET", f"/api/updatesets/{set_id}")
    assert shown["state"] == "complete"
    assert {e["table"] for e in shown["entry_list"]} == {TABLE, "sn_kmf_record_signature"}

    xml = circle.download(circle.dev, set_id)
    assert xml.headers["content-type"].startswith("application/xml")
    assert xml.headers["x-trustcircle-files"] == "1"
    assert b"<update_set_signature>" in xml.content
    (retrieved,) = circle.upload([("travels.xml", xml.content)])
    assert retrieved["sys_id"] == set_id
    assert retrieved["entries"] == 2
    assert retrieved["signed"] is True
    assert retrieved["file"] == "travels.xml"

    preview = circle.prod.ok("POST", f"/api/updatesets/{set_id}/preview")
    assert preview["manifest"]["verdict"] == "valid"
    assert preview["blocking"] == 0
    committed = circle.prod.ok("POST", f"/api/updatesets/{set_id}/commit", json={})
    assert committed["inserted"] == 1
    assert committed["signatures"] == 1
    verdict = circle.prod.ok("GET", f"/api/records/{TABLE}/{sid}/verify")
    assert verdict["verdict"] == "valid"
    listed = {s["sys_id"]: s for s in circle.prod.ok("GET", "/api/updatesets")}
    assert listed[set_id]["kind"] == "retrieved"
    assert listed[set_id]["state"] == "committed"


def test_set_edited_after_export_is_refused_at_commit_and_nothing_is_applied(
    circle: Circle,
) -> None:
    set_id = circle.new_set(circle.dev, "Will be tampered")
    sid = circle.add_record(circle.dev, "Tampered", "gs.info('fine')")
    circle.dev.ok("POST", f"/api/records/{TABLE}/{sid}/sign", 201, json={})
    xml = circle.download(circle.dev, set_id).content
    assert xml.count(b"fine") == 1
    (retrieved,) = circle.upload([("tampered.xml", xml.replace(b"fine", b"evil"))])
    preview = circle.prod.ok("POST", f"/api/updatesets/{retrieved['sys_id']}/preview")
    assert preview["blocking"] > 0
    assert preview["committable_with_accept_remote"] is False
    refused = circle.prod.fails(
        "POST", f"/api/updatesets/{set_id}/commit", 409, json={"accept_remote": True}
    )
    assert refused["error"] in {"refused", "verification_failed"}
    circle.prod.fails("GET", f"/api/records/{TABLE}/{sid}", 404)


def test_protected_instance_exports_without_a_signature(circle: Circle) -> None:
    set_id = circle.new_set(circle.prod, "Production change")
    circle.add_record(circle.prod, "ProdOnly", "gs.info(1)")
    reply = circle.download(circle.prod, set_id)
    assert reply.headers["x-trustcircle-signed"] == "false"
    assert b"<update_set_signature>" not in reply.content
    assert b"ProdOnly" in reply.content


def test_signed_turn_on_job_is_checked_and_executed_once_over_the_api(circle: Circle) -> None:
    exported = circle.dev.ok(
        "POST", f"/api/jobs/{TURN_ON_NAME}/export-signed", 201, json={"target": "prod"}
    )
    assert exported["policy_statement"]["state"] == "on"
    circle.bring(exported["update_set"])

    report = circle.prod.ok("POST", f"/api/jobs/{TURN_ON_NAME}/prereq-check")
    assert report["ok"] is True, [c for c in report["checks"] if not c["ok"]]
    assert len(report["checks"]) == 8
    done = circle.prod.ok("POST", f"/api/jobs/{TURN_ON_NAME}/execute", json={})
    assert done["policy_sequence"] == 1
    assert done["changed"][FLAG] == "true"
    assert circle.prod.ok("GET", f"/api/properties/{FLAG}")["value"] == "true"
    shown = circle.prod.ok("GET", f"/api/jobs/{TURN_ON_NAME}")
    assert len(shown["executions"]) == 1

    again = circle.prod.http.post(f"/api/jobs/{TURN_ON_NAME}/execute", json={})
    assert again.status_code == 409, again.text
    body = error_body(again)
    assert "not_replayed" in {c["name"] for c in body["failed_checks"]}
    assert len(circle.prod.ok("GET", f"/api/jobs/{TURN_ON_NAME}")["executions"]) == 1


def test_unsigned_job_execution_is_refused_with_the_failed_checks(circle: Circle) -> None:
    fields = {"name": "Unsigned job", "script": "print(1)", "run_type": "on_demand"}
    circle.prod.ok("POST", "/api/records/sysauto_script", 201, json={"fields": fields})
    refused = circle.prod.http.post("/api/jobs/Unsigned job/execute")
    assert refused.status_code == 409, refused.text
    failed = {c["name"] for c in error_body(refused)["failed_checks"]}
    assert "signature_valid" in failed


def test_job_execution_runs_in_the_threadpool_and_health_stays_responsive(
    circle: Circle, prod: LiveServer
) -> None:
    script = "import time\ntime.sleep(1.5)\nprint('slept')\n"
    fields = {
        "name": "Slow job",
        "script": script,
        "run_type": "on_demand",
        "active": "true",
        "run_as": "admin",
    }
    circle.dev.ok("POST", "/api/records/sysauto_script", 201, json={"fields": fields})
    exported = circle.dev.ok("POST", "/api/jobs/Slow job/export-signed", 201)
    circle.bring(exported["update_set"])
    result: dict[str, Any] = {}

    def run() -> None:
        result["reply"] = circle.prod.http.post("/api/jobs/Slow job/execute", json={})

    worker = threading.Thread(target=run)
    worker.start()
    latencies: list[float] = []
    with httpx.Client(base_url=prod.url) as probe:
        while worker.is_alive() and len(latencies) < 200:
            start = time.monotonic()
            assert probe.get("/healthz").status_code == 200
            latencies.append(time.monotonic() - start)
            time.sleep(0.05)
    worker.join()
    reply = result["reply"]
    assert reply.status_code == 200, reply.text
    assert reply.json()["run"]["output"] == "slept\n"
    assert len(latencies) >= 5
    assert max(latencies) < 0.5


def test_upload_errors_are_clear_and_import_nothing(circle: Circle, protected_home: Path) -> None:
    before = circle.prod.ok("GET", "/api/updatesets")
    not_multipart = circle.prod.fails(
        "POST", "/api/updatesets/import", 422, content=b"<unload/>",
        headers={"content-type": "application/xml"},
    )  # fmt: skip
    assert "multipart/form-data" in not_multipart["message"]
    wrong_field = circle.prod.fails(
        "POST", "/api/updatesets/import", 422, files={"file": ("a.xml", b"<unload/>")}
    )
    assert "'files'" in wrong_field["message"]
    broken = circle.prod.fails(
        "POST", "/api/updatesets/import", 400, files={"files": ("../../broken.xml", b"<unload")}
    )
    assert "broken.xml" in broken["message"]
    assert str(protected_home) not in broken["message"]
    circle.prod.ok("PUT", f"/api/properties/{MAX_FILE}", json={"value": "1024"})
    try:
        too_big = circle.prod.fails(
            "POST", "/api/updatesets/import", 413, files={"files": ("big.xml", b" " * 4096)}
        )
    finally:
        circle.prod.ok("PUT", f"/api/properties/{MAX_FILE}", json={"value": str(256 * 1024**2)})
    assert "big.xml" in too_big["message"]
    assert MAX_FILE in too_big["message"]
    assert circle.prod.ok("GET", "/api/updatesets") == before
    assert not any((protected_home / "tmp").iterdir())


def test_batch_exports_as_a_zip_and_imports_as_one_upload(
    circle: Circle, trusted_home: Path
) -> None:
    circle.dev.ok("PUT", "/api/properties/com.snc.csf.maximum_update_size", json={"value": "6000"})
    set_id = bulk_local_set(trusted_home, "Big batch", 6001)
    reply = circle.download(circle.dev, set_id)
    assert reply.headers["content-type"] == "application/zip"
    assert reply.headers["x-trustcircle-files"] == "3"
    with zipfile.ZipFile(io.BytesIO(reply.content)) as bundle:
        files = [(name, bundle.read(name)) for name in sorted(bundle.namelist())]
    assert [name for name, _ in files] == [
        "Big_batch.part-1-of-2.xml",
        "Big_batch.part-2-of-2.xml",
        "Big_batch.xml",
    ]
    uploaded = circle.upload(files)
    assert sum(u["entries"] for u in uploaded) == 6001
    preview = circle.prod.ok("POST", f"/api/updatesets/{set_id}/preview")
    assert [c["name"] for c in preview["children"]] == ["Big batch [1/2]", "Big batch [2/2]"]
    committed = circle.prod.ok(
        "POST", f"/api/updatesets/{set_id}/commit", json={"accept_remote": True}
    )
    assert committed["entries"] == 6001
    assert committed["children"] == 2
