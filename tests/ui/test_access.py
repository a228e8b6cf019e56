"""Who may do what on the pages: missing roles are named, a form without its CSRF token is
refused (plain httpx: a browser always sends the token), sessions end at sign-out."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from playwright.sync_api import Browser, BrowserContext, FilePayload, expect
from sqlalchemy import select

from tests.ui.conftest import PASSWORD, Site, navigate, screenshot, sign_in
from tests.web.conftest import ok_cli
from trustcircle.platform.context import Instance
from trustcircle.store.models import AuditEntry

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
ORDINARY = "com.snc.csf.maximum_update_size"


def _token(html: str) -> str:
    found = _TOKEN.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)


@contextmanager
def _signed_in(site: Site, user: str = "alice") -> Iterator[tuple[httpx.Client, str]]:
    """An httpx client signed in through the sign-in form, and the session's CSRF token."""
    with httpx.Client(base_url=site.url, timeout=30.0) as client:
        yield _sign_in(client, user)


def _sign_in(client: httpx.Client, user: str) -> tuple[httpx.Client, str]:
    form = client.get("/login")
    reply = client.post(
        "/login",
        data={"user_name": user, "password": PASSWORD, "csrf_token": _token(form.text)},
    )
    assert reply.status_code == 303, reply.text
    cookie = reply.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    page = client.get("/properties")
    assert page.status_code == 200
    return client, _token(page.text)


def _audit(site: Site) -> list[dict[str, object]]:
    """The audit log, newest first."""
    inst = Instance.open(site.home)
    try:
        with inst.db.transaction() as session:
            rows = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(20))
            return [{"action": e.action, "outcome": e.outcome, "detail": e.detail} for e in rows]
    finally:
        inst.close()


def _value(client: httpx.Client, name: str) -> str:
    page = client.get("/properties", params={"name": f"={name}"}).text
    row = page.split(f'data-property="{name}"', 1)[1]
    found = re.search(r'name="value" value="([^"]*)"', row)
    assert found, row[:500]
    return found.group(1)


def test_user_without_roles_sees_which_roles_are_missing(
    context: BrowserContext, browser: Browser, prod: Site
) -> None:
    page = context.new_page()
    sign_in(page, prod, "nobody")
    nav = page.get_by_role("navigation", name="Application navigator")
    nav.get_by_role("link", name="Scheduled Jobs", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    expect(page.get_by_test_id("error-message")).to_contain_text("missing role(s)")
    expect(page.get_by_test_id("roles-needed")).to_have_text(
        "admin or codesigning_admin or codesigning_manager or codesigning_auditor or security_admin"
    )
    screenshot(page, "forbidden-missing-roles", "Not allowed", "You hold", "no roles")

    auditor = browser.new_context()
    other = auditor.new_page()
    sign_in(other, prod, "auditor")
    navigate(other, "System Update Sets", "Retrieved Update Sets")
    upload: FilePayload = {"name": "set.xml", "mimeType": "application/xml", "buffer": b"<x/>"}
    other.get_by_label("Choose File").set_input_files(files=[upload])
    other.get_by_role("button", name="Upload").click()
    expect(other.get_by_role("heading", level=1)).to_have_text("Not allowed")
    expect(other.get_by_test_id("roles-needed")).to_have_text("admin")
    expect(other.get_by_test_id("error-message")).to_contain_text("may not updateset.write")
    auditor.close()


def test_form_post_without_csrf_token_is_refused(prod: Site) -> None:
    with _signed_in(prod) as (client, token):
        before = _value(client, ORDINARY)
        for sent in ({}, {"csrf_token": "not-the-token"}):
            reply = client.post(f"/properties/{ORDINARY}", data={"value": "7000", **sent})
            assert reply.status_code == 403, reply.text
            assert reply.headers["content-type"].startswith("text/html")
            assert "CSRF token is missing or wrong" in reply.text
        assert _value(client, ORDINARY) == before
        upload = client.post(
            "/updatesets/retrieved/import", files={"files": ("x.xml", b"<unload/>")}
        )
        assert upload.status_code == 403, upload.text
        assert "CSRF token" in upload.text
        refused = [e for e in _audit(prod)[:3] if e["outcome"] == "refused"]
        assert [e["action"] for e in refused] == ["updateset.write", "page.csrf", "page.csrf"]
        assert all("CSRF token" in str(e["detail"]) for e in refused)

        done = client.post(f"/properties/{ORDINARY}", data={"value": "7000", "csrf_token": token})
        assert done.status_code == 303, done.text
        assert _value(client, ORDINARY) == "7000"


def test_sign_in_form_needs_its_token_and_sign_out_ends_the_session(prod: Site) -> None:
    with httpx.Client(base_url=prod.url, timeout=30.0) as stranger:
        stranger.get("/login")
        reply = stranger.post("/login", data={"user_name": "alice", "password": PASSWORD})
        assert reply.status_code == 403, reply.text
        assert "CSRF token" in reply.text
        wrong = stranger.post(
            "/login",
            data={
                "user_name": "alice",
                "password": "not the password at all",
                "csrf_token": _token(stranger.get("/login").text),
            },
        )
        assert wrong.status_code == 401
        assert "wrong user name or password" in wrong.text

    with _signed_in(prod) as (client, token):
        assert client.get("/").status_code == 200
        out = client.post("/logout", data={"csrf_token": token})
        assert out.status_code == 303
        again = client.get("/jobs")
        assert again.status_code == 303
        assert again.headers["location"].startswith("/login")


def test_api_keeps_its_json_errors(prod: Site) -> None:
    with httpx.Client(base_url=prod.url, timeout=30.0) as client:
        reply = client.get("/api/properties")
        assert reply.status_code == 401
        assert reply.json()["error"] == "not_authenticated"
        missing = client.get("/api/no-such-endpoint", headers={"accept": "text/html"})
        assert missing.status_code == 404
        assert missing.json()["error"] == "not_found"


def test_a_new_password_ends_the_sessions_of_the_old_one(prod: Site, tmp_path: Path) -> None:
    with _signed_in(prod, "auditor") as (client, _):
        assert client.get("/").status_code == 200
        secret = tmp_path / "auditor.password"
        secret.write_text(PASSWORD + "\n")  # the same text: still a new password hash
        ok_cli("user", "passwd", "auditor", "--password-file", secret, "--home", prod.home)
        again = client.get("/")
        assert again.status_code == 303
        assert again.headers["location"].startswith("/login")
