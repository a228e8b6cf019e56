"""The ECC, MID and Code Signing routers over HTTP (in-process ASGI client)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.ecc.conftest import Prod
from trustcircle.web import create_app
from trustcircle.web.api import ecc as ecc_router

AGENT = "mid.server.alpha"


@pytest.fixture
def api(prod: Prod) -> Iterator[TestClient]:
    with TestClient(create_app(prod.home)) as client:
        yield client


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _registered(api: TestClient, prod: Prod, *, validate: bool = True) -> dict[str, str]:
    mid = _auth(prod.mid_token())
    reply = api.post(
        "/api/mid/register",
        json={"name": "alpha", "version": "0.1.0", "firewall_mode": "audit", "host": "h1"},
        headers=mid,
    )
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"name": "alpha", "validated": False}
    if validate:
        done = api.post("/api/mid/alpha/validate", headers=_auth(prod.admin_token))
        assert done.status_code == 200, done.text
    return mid


def _insert(api: TestClient, prod: Prod, payload: str = '{"argv": ["true"]}') -> dict[str, Any]:
    reply = api.post(
        "/api/ecc",
        json={"agent": AGENT, "topic": "Command", "name": "t", "payload": payload},
        headers=_auth(prod.admin_token),
    )
    assert reply.status_code == 201, reply.text
    body: dict[str, Any] = reply.json()
    return body


def test_unvalidated_mid_is_refused_work_until_an_admin_validates_it(
    api: TestClient, prod: Prod
) -> None:
    mid = _registered(api, prod, validate=False)
    refused = api.get("/api/ecc/poll", params={"agent": AGENT, "wait": 0}, headers=mid)
    assert refused.status_code == 403
    assert refused.json()["error"] == "policy"
    assert "trustcircle mid validate alpha" in refused.json()["message"]
    beat = api.post("/api/mid/heartbeat", json={"name": "alpha", "stats": {"n": 1}}, headers=mid)
    assert beat.json() == {"validated": False}
    api.post("/api/mid/alpha/validate", headers=_auth(prod.admin_token))
    assert api.post("/api/mid/heartbeat", json={"name": "alpha"}, headers=mid).json() == {
        "validated": True
    }


def test_mid_list_shows_status_validation_and_audit_mode(api: TestClient, prod: Prod) -> None:
    _registered(api, prod)
    (row,) = api.get("/api/mid", headers=_auth(prod.admin_token)).json()
    assert row["name"] == "alpha"
    assert row["status"] == "active"
    assert row["validated"] is True
    assert row["firewall_mode"] == "audit"
    assert row["version"] == "0.1.0"


def test_mid_account_cannot_validate_itself_or_insert_messages(api: TestClient, prod: Prod) -> None:
    mid = _registered(api, prod, validate=False)
    assert api.post("/api/mid/alpha/validate", headers=mid).status_code == 403
    inserted = api.post("/api/ecc", json={"agent": AGENT, "topic": "Command"}, headers=mid)
    assert inserted.status_code == 403
    assert inserted.json()["missing_roles"] == ["admin"]


def test_long_poll_returns_as_soon_as_a_message_is_enqueued(
    api: TestClient, prod: Prod, monkeypatch: pytest.MonkeyPatch
) -> None:
    mid = _registered(api, prod)
    monkeypatch.setattr(ecc_router, "RECHECK", 20.0)  # only the wake-up can end the wait early
    got: dict[str, Any] = {}

    def poll() -> None:
        started = time.monotonic()
        got["reply"] = api.get(
            "/api/ecc/poll", params={"agent": AGENT, "max": 5, "wait": 15}, headers=mid
        )
        got["elapsed"] = time.monotonic() - started

    thread = threading.Thread(target=poll)
    thread.start()
    time.sleep(0.5)
    inserted = _insert(api, prod)
    thread.join(10)
    assert not thread.is_alive()
    messages = got["reply"].json()["messages"]
    assert [m["sys_id"] for m in messages] == [inserted["sys_id"]]
    assert messages[0]["state"] == "processing"
    assert got["elapsed"] < 5


def test_poll_with_nothing_waits_then_returns_empty(api: TestClient, prod: Prod) -> None:
    mid = _registered(api, prod)
    started = time.monotonic()
    reply = api.get("/api/ecc/poll", params={"agent": AGENT, "wait": 0.6}, headers=mid)
    assert reply.json() == {"messages": []}
    assert 0.5 <= time.monotonic() - started < 5


def test_direct_insert_is_never_notarized_and_is_logged(api: TestClient, prod: Prod) -> None:
    message = _insert(api, prod)
    assert message["notarization"] is None
    assert message["state"] == "ready"
    log = api.get("/api/codesigning/log", headers=_auth(prod.admin_token)).json()
    assert [(e["event"], e["ecc"]) for e in log] == [("direct_insert", message["sys_id"])]


def test_result_round_trip_and_second_result_is_409(api: TestClient, prod: Prod) -> None:
    mid = _registered(api, prod)
    first, second = _insert(api, prod), _insert(api, prod)
    claimed = api.post("/api/ecc/claim", json={"agent": AGENT, "max": 5}, headers=mid).json()
    assert len(claimed["messages"]) == 2
    body = {"state": "processed", "output": "ok\n", "error_string": "", "denied": False}
    one = api.post(f"/api/ecc/{first['sys_id']}/result", json=body, headers=mid)
    assert one.status_code == 200, one.text
    again = api.post(f"/api/ecc/{first['sys_id']}/result", json=body, headers=mid)
    assert again.status_code == 409
    assert again.json()["error"] == "refused"
    batch = api.post(
        "/api/ecc/batch_result",
        json={"results": [{"sys_id": second["sys_id"], **body}]},
        headers=mid,
    )
    assert batch.status_code == 200, batch.text
    shown = api.get(f"/api/ecc/{second['sys_id']}", headers=_auth(prod.admin_token)).json()
    assert shown["message"]["state"] == "processed"
    assert shown["response"]["payload"] == "ok\n"
    listed = api.get("/api/ecc", params={"queue": "input"}, headers=_auth(prod.admin_token)).json()
    assert {m["response_to"] for m in listed} == {first["sys_id"], second["sys_id"]}


def test_mid_reports_reach_the_code_signing_log(api: TestClient, prod: Prod) -> None:
    mid = _registered(api, prod)
    report = {
        "event": "firewall_accept",
        "message": "ECC firewall accept exception: rule 1 (REST: accept) lets RESTProbe run",
        "agent": AGENT,
        "ecc": "a" * 32,
        "topic": "RESTProbe",
        "created_at": "2026-11-28T10:00:00Z",
    }
    posted = api.post("/api/codesigning/log", json=report, headers=mid)
    assert posted.status_code == 201, posted.text
    stranger = dict(report, agent="mid.server.beta")
    assert api.post("/api/codesigning/log", json=stranger, headers=mid).status_code == 404
    (entry,) = api.get(
        "/api/codesigning/log", params={"source": AGENT}, headers=_auth(prod.admin_token)
    ).json()
    assert entry["level"] == "warn"
    assert entry["reported_at"] == "2026-11-28T10:00:00Z"


def test_policy_is_404_until_a_statement_is_applied(api: TestClient, prod: Prod) -> None:
    mid = _registered(api, prod)
    reply = api.get("/api/codesigning/policy", headers=mid)
    assert reply.status_code == 404
    assert "Turn On" in reply.json()["message"]


def test_malformed_requests_get_one_line_errors(api: TestClient, prod: Prod) -> None:
    admin = _auth(prod.admin_token)
    assert api.get("/api/ecc/" + "f" * 32, headers=admin).status_code == 404
    assert api.get("/api/ecc/not-an-id", headers=admin).status_code == 422
    bad = api.post("/api/ecc", json={"agent": "alpha", "topic": "Command"}, headers=admin)
    assert bad.status_code == 422
    assert "mid.server.<name>" in bad.json()["message"]
    assert api.get("/api/ecc", headers={}).status_code == 401
