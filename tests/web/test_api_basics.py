"""The server itself: health, OpenAPI, token auth and roles, and the shape of every error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.live_server import LiveServer
from tests.web.conftest import Api, add_user, error_body

SCRIPT_INCLUDE = {
    "name": "Hello",
    "api_name": "global.Hello",
    "script": 'gs.info("hello")',
    "active": "true",
}


def test_healthz_names_the_instance_without_a_token(dev: LiveServer) -> None:
    reply = httpx.get(f"{dev.url}/healthz")
    assert reply.status_code == 200
    assert reply.json() == {"status": "ok", "instance": "dev", "role": "trusted"}


def test_openapi_and_docs_are_served_with_every_area_tagged(dev: LiveServer) -> None:
    spec = httpx.get(f"{dev.url}/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/api/records/{table}",
        "/api/records/{table}/{sys_id}/verify",
        "/api/signatures",
        "/api/kmf/import",
        "/api/trust-anchors",
        "/api/sn_kmf/signature/certificates",
        "/api/properties/{name}",
        "/api/updatesets/import",
        "/api/updatesets/{set_id}/export",
        "/api/jobs/{name}/execute",
        "/api/cot/policy",
        "/api/audit/verify",
    ):
        assert path in paths, path
    tags = {t for ops in paths.values() for op in ops.values() for t in op.get("tags", [])}
    assert {"records", "key management", "properties", "update sets", "jobs"} <= tags
    upload = paths["/api/updatesets/import"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in upload
    docs = httpx.get(f"{dev.url}/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer tc_not-a-real-token"}, {"Authorization": "Basic abc"}],
    ids=["no token", "bad token", "wrong scheme"],
)
def test_request_without_a_valid_token_is_401(dev: LiveServer, headers: dict[str, str]) -> None:
    reply = httpx.get(f"{dev.url}/api/records/sys_script_include", headers=headers)
    assert reply.status_code == 401
    assert error_body(reply)["error"] == "not_authenticated"


def test_user_without_roles_is_refused_403_naming_the_roles_and_nothing_changes(
    dev: LiveServer, dev_admin: Api, trusted_home: Path
) -> None:
    nobody = Api(dev, add_user(trusted_home, "nobody"))
    try:
        before = dev_admin.ok("GET", "/api/records/sys_script_include")
        refused = nobody.fails(
            "POST", "/api/records/sys_script_include", 403, json={"fields": SCRIPT_INCLUDE}
        )
        assert refused["error"] == "not_authorised"
        assert refused["missing_roles"] == ["admin"]
        assert "missing role(s) admin" in refused["message"]
        assert dev_admin.ok("GET", "/api/records/sys_script_include") == before
        read = nobody.fails("GET", "/api/properties", 403)
        assert "codesigning_auditor" in read["message"]
        audit = dev_admin.ok("GET", "/api/audit", params={"limit": 10})
        assert any(
            e["actor"] == "nobody" and e["outcome"] == "refused" and e["action"] == "record.write"
            for e in audit
        )
    finally:
        nobody.close()


def test_unknown_endpoint_and_wrong_method_are_json_errors(dev_admin: Api) -> None:
    missing = dev_admin.fails("GET", "/api/no-such-thing", 404)
    assert missing["error"] == "not_found"
    assert "/docs" in missing["message"]
    wrong = dev_admin.fails("PUT", "/api/signatures", 405)
    assert wrong["error"] == "usage"


def test_bad_input_errors_are_one_line_json(dev_admin: Api) -> None:
    bad_id = dev_admin.fails("GET", "/api/records/sys_script_include/not-an-id", 422)
    assert "malformed sys_id" in bad_id["message"]
    unknown = dev_admin.fails("GET", "/api/records/no_such_table", 422)
    assert "unknown table 'no_such_table'" in unknown["message"]
    not_found = dev_admin.fails("GET", f"/api/records/sys_script_include/{'0' * 32}", 404)
    assert not_found["error"] == "not_found"
    broken = dev_admin.fails(
        "POST",
        "/api/records/sys_script_include",
        422,
        content=b'{"fields": {',
        headers={"content-type": "application/json"},
    )
    assert broken["error"] == "bad_input"
    wrong_type = dev_admin.fails(
        "POST", "/api/records/sys_script_include", 422, json={"fields": {"name": 5}}
    )
    assert wrong_type["message"].startswith("body.fields.name")
    unknown_field = dev_admin.fails(
        "POST",
        "/api/records/sys_script_include",
        422,
        json={"fields": {**SCRIPT_INCLUDE, "colour": "red"}},
    )
    assert "has no field(s) colour" in unknown_field["message"]


def test_oversized_body_is_refused_413_before_it_is_read(dev_admin: Api) -> None:
    huge = {"fields": {"name": "x" * (17 * 1024 * 1024)}}
    refused = dev_admin.fails("POST", "/api/records/sys_script_include", 413, json=huge)
    assert refused["error"] == "limit_exceeded"


def test_oversized_chunked_body_without_a_length_is_refused_413(dev_admin: Api) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"fields": {"name": "'
        for _ in range(17):
            yield b"x" * (1024 * 1024)
        yield b'"}}'

    refused = dev_admin.fails(
        "POST",
        "/api/records/sys_script_include",
        413,
        content=chunks(),
        headers={"content-type": "application/json"},
    )
    assert "larger than 16777216 bytes" in refused["message"]
