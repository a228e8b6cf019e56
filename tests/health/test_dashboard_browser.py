"""The Health and Status pages in Chromium: charts, Rescan, View chain, the batch generator.

Uses the browser fixtures of ``tests/ui/conftest.py`` (Debian's Chromium through
Playwright, screenshots in ``test-artifacts/ui/``). The progress bars are exercised for
real: the batch run is long enough that the page polls and reloads itself when done.
"""

from __future__ import annotations

import csv
import io
import re
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.cli.conftest import init_home
from tests.conftest import SessionPki
from tests.health.conftest import Seeded, bulk_records, seed
from tests.live_server import LiveServer, StartServer, live_servers
from tests.ui.conftest import PASSWORD, browser, context, screenshot, sign_in
from tests.web.conftest import add_user, load_signing_keys, ok_cli, run_cli

__all__ = ["browser", "context", "live_servers"]

BULK = 1500
"""Unsigned records added so the batch run takes long enough to show its progress bar."""


@dataclass(frozen=True)
class Site:
    server: LiveServer
    seeded: Seeded
    bulk: tuple[str, ...]

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="module")
def site(
    live_servers: StartServer, tmp_path_factory: pytest.TempPathFactory, test_pki: SessionPki
) -> Site:
    folder = tmp_path_factory.mktemp("health-ui")
    home = init_home(run_cli, folder / "dev", "trusted", "dev")
    load_signing_keys(home, test_pki)
    seeded = seed(run_cli, home, test_pki)
    bulk = bulk_records(home, BULK)
    add_user(home, "alice", "admin,codesigning_admin")
    secret = folder / "password"
    secret.write_text(PASSWORD + "\n")
    ok_cli("user", "passwd", "alice", "--password-file", secret, "--home", home)
    return Site(live_servers(home), seeded, tuple(bulk))


def tab(page: Page, label: str) -> None:
    page.get_by_role("list", name="Health and Status pages").get_by_role("link", name=label).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(label)


def test_health_and_status_pages_in_a_browser(
    context: BrowserContext, site: Site, tmp_path: Path
) -> None:
    page = context.new_page()
    sign_in(page, site)  # type: ignore[arg-type]
    nav = page.get_by_role("navigation", name="Application navigator")
    nav.get_by_role("link", name="Health and Status", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Health and Status")
    expect(page.get_by_test_id("no-scan")).to_be_visible()

    tab(page, "Signature Verification Status")
    page.get_by_test_id("rescan").click()
    expect(page.get_by_test_id("last-scanned")).to_be_visible()
    page.get_by_label("Verdict").select_option("invalid")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_test_id("verification-table")).to_contain_text("signature_mismatch")
    screenshot(page, "health-verification", "Signature Verification Status", "Edited", "invalid")
    with page.expect_download() as download:
        page.get_by_test_id("download-csv").click()
    scan_csv = tmp_path / "scan.csv"
    download.value.save_as(scan_csv)

    tab(page, "Overview")
    records = int(page.get_by_test_id("count-records").inner_text())
    assert records == sum(1 for _ in csv.reader(scan_csv.open(newline=""))) - 1
    expect(page.get_by_test_id("chart-verdicts").locator("svg")).to_be_visible()
    screenshot(page, "health-overview", "Records by verdict", "Signed records by type", "Active")

    tab(page, "Key Pair and Certificates")
    row = page.get_by_role("row").filter(has_text="Test code_signing")
    expect(row).to_contain_text("Key pair")
    screenshot(page, "health-certificates", "cm_code_signing", "Trust anchor", "View chain")
    row.get_by_role("link", name="View chain").click()
    expect(page.get_by_test_id("chain")).to_contain_text("Test Root CA")
    screenshot(page, "health-certificate-chain", "Test Intermediate CA", "trust anchor")

    tab(page, "Code Signing Configuration")
    screenshot(page, "health-configuration", "com.snc.kmf.signature.validation.flag", "protected")
    tab(page, "MID Server Configuration")
    screenshot(page, "health-mid-configuration", "No MID server has registered yet")

    edited = tmp_path / "to-sign.csv"
    wanted = set(site.bulk) | {site.seeded.unsigned}
    lines = list(csv.reader(scan_csv.open(newline="")))
    with edited.open("w", newline="") as fh:
        csv.writer(fh).writerows([lines[0], *(r for r in lines[1:] if r[1] in wanted)])
    tab(page, "Batch Signature Generator")
    page.get_by_test_id("batch-csv").set_input_files(str(edited))
    page.get_by_test_id("batch-run").click()
    # the progress bar while it runs, or the result when the run beat the page load
    expect(
        page.get_by_test_id("job-progress").or_(page.get_by_test_id("batch-done"))
    ).to_be_visible()
    expect(page.get_by_test_id("batch-done")).to_contain_text(
        f"{len(wanted)} signed in 1 update set(s)", timeout=120_000
    )  # the script polled the status and reloaded the page when the run ended
    with page.expect_download() as download:
        page.get_by_test_id("batch-download").click()
    names = zipfile.ZipFile(io.BytesIO(Path(download.value.path()).read_bytes())).namelist()
    assert "batch-signatures-1-of-1.xml" in names
    screenshot(page, "health-batch-signature-generator", "Batch signatures 1/1", "Skipped")

    tab(page, "Signature Verification Status")
    page.get_by_test_id("rescan").click()
    expect(page.get_by_test_id("verification-table")).to_be_visible()
    _wait_for_scan(page, site.url)
    # a fresh tab: the first one reloads itself when it sees the rescan finish
    fresh = page.context.new_page()
    fresh.goto(site.url + "/health/verification?verdict=missing")
    expect(fresh.get_by_test_id("verification-table")).to_be_visible()
    assert site.seeded.unsigned not in fresh.content()
    fresh.close()


def _wait_for_scan(page: Page, url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = page.request.get(url + "/health/scan/status").json()
        if status["state"] != "running":
            assert status["state"] == "done", status
            return
        time.sleep(0.2)
    raise AssertionError("the rescan did not finish within 60 s")


def test_overview_at_390_px(browser: object, site: Site) -> None:
    from playwright.sync_api import Browser

    assert isinstance(browser, Browser)
    narrow = browser.new_context(viewport={"width": 390, "height": 844})
    page = narrow.new_page()
    try:
        sign_in(page, site)  # type: ignore[arg-type]
        page.goto(site.url + "/health")
        expect(page.get_by_role("heading", level=1)).to_contain_text("Health and Status")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390 + 1, f"the Overview scrolls sideways at 390 px ({width} px wide)"
        screenshot(page, "narrow-health-overview", "Health and Status")
        assert re.search(r"/health$", page.url)
    finally:
        narrow.close()
