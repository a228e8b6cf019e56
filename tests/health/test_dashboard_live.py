"""The dashboard over HTTP from a live ``trustcircle serve``: counts, Rescan, API, batch page.

The home is seeded in-process (``tests/health/conftest.py``), served by a real server
process; pages are fetched after signing in with a password, like a browser would.
"""

from __future__ import annotations

import csv
import io
import re
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import lxml.html
import pytest

from tests.cli.conftest import init_home
from tests.conftest import SessionPki
from tests.health.conftest import Seeded, seed
from tests.live_server import LiveServer, StartServer, live_servers
from tests.web.conftest import add_user, load_signing_keys, ok_cli, run_cli
from trustcircle.health.results import CSV_COLUMNS

__all__ = ["live_servers"]

PASSWORD = "correct horse battery staple (health)"
POLL_SECONDS = 60.0


@dataclass(frozen=True)
class Site:
    server: LiveServer
    seeded: Seeded
    folder: Path

    @property
    def home(self) -> Path:
        return self.seeded.home


@pytest.fixture(scope="module")
def site(
    live_servers: StartServer, tmp_path_factory: pytest.TempPathFactory, test_pki: SessionPki
) -> Site:
    folder = tmp_path_factory.mktemp("health-live")
    home = init_home(run_cli, folder / "dev", "trusted", "dev")
    load_signing_keys(home, test_pki)
    seeded = seed(run_cli, home, test_pki)
    secret = folder / "password"
    secret.write_text(PASSWORD + "\n")
    for name, roles in (("alice", "admin,codesigning_admin"), ("auditor", "codesigning_auditor"),
                        ("nobody", "")):  # fmt: skip
        add_user(home, name, roles)
        ok_cli("user", "passwd", name, "--password-file", secret, "--home", home)
    return Site(live_servers(home), seeded, folder)


class Browser:
    """An httpx client signed in to the pages with a password (cookies kept)."""

    def __init__(self, server: LiveServer, user: str) -> None:
        self.http = httpx.Client(base_url=server.url, timeout=60.0)
        form = self.http.get("/login")
        reply = self.http.post(
            "/login",
            data={"csrf_token": csrf(form.text), "user_name": user, "password": PASSWORD},
        )
        assert reply.status_code == 303, reply.text
        self.csrf = csrf(self.http.get("/").text)

    def page(self, path: str, expect: int = 200) -> lxml.html.HtmlElement:
        reply = self.http.get(path)
        assert reply.status_code == expect, (path, reply.status_code, reply.text[:500])
        return lxml.html.fromstring(reply.text)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        data = {"csrf_token": self.csrf, **kwargs.pop("data", {})}
        return self.http.post(path, data=data, **kwargs)

    def wait(self, status_path: str) -> dict[str, Any]:
        deadline = time.monotonic() + POLL_SECONDS
        while time.monotonic() < deadline:
            job: dict[str, Any] = self.http.get(status_path).json()
            if job["state"] != "running":
                return job
            time.sleep(0.1)
        raise AssertionError(f"{status_path} still running after {POLL_SECONDS} s")


def csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


@pytest.fixture
def alice(site: Site) -> Iterator[Browser]:
    browser = Browser(site.server, "alice")
    yield browser
    browser.http.close()


def by_testid(page: lxml.html.HtmlElement, name: str) -> str:
    found = page.xpath(f'//*[@data-testid="{name}"]')
    assert found, f"no data-testid={name}"
    return str(found[0].text_content()).strip()


def cli_scan(site: Site) -> dict[str, Any]:
    data: dict[str, Any] = ok_cli("scan", "--home", site.home, "--json").json()
    return data


def chart_values(page: lxml.html.HtmlElement, chart: str, cls: str) -> dict[str, int]:
    box = page.xpath(f'//*[@data-testid="{chart}"]')[0]
    return {
        str(g.get("data-label")): int(str(g.get("data-value")))
        for g in box.iter()
        if isinstance(g.tag, str) and g.tag.endswith("g") and g.get("class") == cls
    }


def test_dashboard_counts_match_the_cli_scan(site: Site) -> None:
    scanned = cli_scan(site)
    auditor = Browser(site.server, "auditor")
    overview = auditor.page("/health")
    totals = scanned["totals"]
    assert int(by_testid(overview, "count-records")) == totals["records"]
    for verdict in ("valid", "invalid", "missing", "untrusted", "orphan"):
        assert int(by_testid(overview, f"count-{verdict}")) == totals[verdict], verdict
    for state, count in scanned["signature_states"].items():
        assert int(by_testid(overview, f"signatures-{state}")) == count
    assert by_testid(overview, "last-scanned") == scanned["finished_at"]
    drawn = chart_values(overview, "chart-verdicts", "legend")
    assert drawn == {v: totals[v] for v in drawn}
    assert len(drawn) == 5
    signed = sum(1 for r in scanned["rows"] if r["verdict"] != "missing"
                 and "record_gone" not in r["reasons"])  # fmt: skip
    assert sum(chart_values(overview, "chart-by-table", "bar").values()) == signed
    assert chart_values(overview, "chart-by-application", "bar")["x_acme_tools"] == 1
    assert "Active" in by_testid(overview, "status-plugin")
    assert "Off" in by_testid(overview, "status-validation")


def test_verification_status_lists_each_record_with_its_verdict(site: Site) -> None:
    cli_scan(site)
    page = Browser(site.server, "auditor").page("/health/verification?verdict=invalid")
    rows = {tr.get("data-sys-id"): tr.text_content() for tr in page.xpath("//tr[@data-sys-id]")}
    assert set(rows) == {site.seeded.edited, site.seeded.victim}
    assert "Edited" in rows[site.seeded.edited]
    assert "signature_mismatch" in rows[site.seeded.edited]
    assert page.xpath('//*[@data-testid="rescan"]'), "an auditor may rescan"


def test_rescan_runs_in_the_background_and_reports_progress(site: Site, alice: Browser) -> None:
    before = alice.page("/health/verification")
    started = alice.post("/health/scan")
    assert started.status_code == 303
    job_id = started.headers["location"].split("job=")[1]
    job = alice.wait(f"/health/scan/status?job={job_id}")
    assert job["state"] == "done", job
    assert job["done"] == job["total"] == job["result"]["totals"]["records"]
    after = alice.page("/health/verification")
    assert by_testid(after, "last-scanned") >= by_testid(before, "last-scanned")
    assert job["result"]["totals"] == cli_scan(site)["totals"]


def test_downloads_are_the_stored_scan(site: Site, alice: Browser) -> None:
    scanned = cli_scan(site)
    reply = alice.http.get("/health/scan_report.csv")
    assert reply.status_code == 200
    assert 'filename="scan_report.csv"' in reply.headers["content-disposition"]
    lines = list(csv.reader(io.StringIO(reply.text, newline="")))
    assert tuple(lines[0]) == CSV_COLUMNS
    assert len(lines) - 1 == scanned["totals"]["records"]
    report = alice.http.get("/health/scan_report.txt")
    assert report.text.startswith("trustcircle guardrail scan report")
    assert f"Records:     {scanned['totals']['records']}" in report.text


def test_rescan_without_csrf_token_is_refused(site: Site, alice: Browser) -> None:
    reply = alice.http.post("/health/scan", data={})
    assert reply.status_code == 403
    assert "CSRF token is missing or wrong" in reply.text


def test_dashboard_names_the_roles_it_needs(site: Site) -> None:
    nobody = Browser(site.server, "nobody")
    page = nobody.page("/health", expect=403)
    text = page.text_content()
    for role in ("codesigning_admin", "codesigning_manager", "codesigning_auditor"):
        assert role in text
    batch = Browser(site.server, "auditor").page("/health/batch")
    assert "codesigning_admin" in by_testid(batch, "batch-roles")


def test_api_scan_start_poll_and_download(site: Site) -> None:
    api = site.server.client(site.server.admin_token)
    started = api.post("/api/health/scan")
    assert started.status_code == 202, started.text
    job = started.json()
    deadline = time.monotonic() + POLL_SECONDS
    while job["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.1)
        job = api.get(f"/api/health/scan/{job['id']}").json()
    assert job["state"] == "done", job
    status = api.get("/api/health/scan").json()
    assert status["last_scan"]["totals"] == job["result"]["totals"]
    listing = api.get("/api/health/scan/report.csv")
    assert listing.text.splitlines()[0] == ",".join(CSV_COLUMNS)
    assert api.get("/api/health/overview").json()["last_scan"]["totals"] == job["result"]["totals"]
    refused = site.server.client().post("/api/health/scan")
    assert refused.status_code == 401
    api.close()


def test_batch_page_signs_the_uploaded_csv_and_offers_the_sets(site: Site, alice: Browser) -> None:
    scanned = cli_scan(site)
    wanted = {site.seeded.unsigned, site.seeded.edited}
    text = io.StringIO(newline="")
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in scanned["rows"]:
        if row["sys_id"] in wanted:
            writer.writerow([row[c] if c != "reasons" else ";".join(row[c]) for c in CSV_COLUMNS])
    reply = alice.post(
        "/health/batch", files={"csv_file": ("scan.csv", text.getvalue(), "text/csv")}
    )
    assert reply.status_code == 303, reply.text[:500]
    job_id = reply.headers["location"].split("job=")[1]
    job = alice.wait(f"/health/batch/status?job={job_id}")
    assert job["state"] == "done", job
    assert job["result"]["counts"] == {"rows": 2, "signed": 2, "skipped": 0, "failed": 0}
    page = alice.page(f"/health/batch?job={job_id}")
    assert "2 signed in 1 update set(s)" in by_testid(page, "batch-done")
    archive = alice.http.get(f"/health/batch/{job_id}/download")
    assert archive.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(archive.content)).namelist()
    assert sorted(names) == ["batch-signatures-1-of-1.xml", "batch_summary.json",
                             "batch_summary.txt"]  # fmt: skip
    after = {r["sys_id"]: r["verdict"] for r in cli_scan(site)["rows"]}
    assert {after[s] for s in wanted} == {"valid"}


def test_batch_page_refuses_a_malformed_csv(site: Site, alice: Browser) -> None:
    bad = "table,sys_id\r\nsys_script_include,not-an-id\r\n"
    reply = alice.post("/health/batch", files={"csv_file": ("scan.csv", bad, "text/csv")})
    assert reply.status_code == 400
    assert "scan CSV line 2: sys_id" in reply.text
