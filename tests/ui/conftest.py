"""Browser fixtures: two live instances (trusted ``dev``, protected ``prod``) and Chromium.

The homes are prepared in-process with the CLI (init, trust anchor, signing keys on the
trusted one, users with passwords); everything else the tests do through the pages, in
Debian's Chromium driven by Playwright (never ``playwright install``: no downloads).
Screenshots go to ``test-artifacts/ui/`` (gitignored).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.cli.conftest import init_home
from tests.conftest import SessionPki
from tests.live_server import LiveServer, StartServer, live_servers
from tests.web.conftest import add_user, load_signing_keys, ok_cli, run_cli

__all__ = ["live_servers"]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
PASSWORD = "correct horse battery staple (ui)"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"
MIN_PNG_BYTES = 8_000
TIMEOUT_MS = 20_000

ADMIN_ROLES = "admin,security_admin,codesigning_admin,sn_kmf.admin"
"""The seed's roles (security_admin, and sn_kmf.admin) plus admin and codesigning_admin."""


@dataclass(frozen=True)
class Site:
    """A served instance home and the users that may sign in to it."""

    server: LiveServer
    home: Path

    @property
    def url(self) -> str:
        return self.server.url


def _user(home: Path, name: str, roles: str, folder: Path) -> None:
    add_user(home, name, roles)
    secret = folder / f"{name}.password"
    secret.write_text(PASSWORD + "\n")
    ok_cli("user", "passwd", name, "--password-file", secret, "--home", home)


@pytest.fixture(scope="module")
def dev(
    live_servers: StartServer, tmp_path_factory: pytest.TempPathFactory, test_pki: SessionPki
) -> Site:
    """The trusted instance: the test root trusted, both signing keys loaded, alice admin."""
    folder = tmp_path_factory.mktemp("ui-dev")
    home = init_home(run_cli, folder / "dev", "trusted", "dev")
    load_signing_keys(home, test_pki)
    _user(home, "alice", ADMIN_ROLES, folder)
    return Site(live_servers(home), home)


@pytest.fixture(scope="module")
def prod(
    live_servers: StartServer, tmp_path_factory: pytest.TempPathFactory, test_pki: SessionPki
) -> Site:
    """The protected instance: the test root trusted; alice (admin), an auditor, nobody."""
    folder = tmp_path_factory.mktemp("ui-prod")
    home = init_home(run_cli, folder / "prod", "protected", "prod")
    ok_cli("trust-anchor", "add", test_pki.files.root_pem, "--home", home)
    _user(home, "alice", ADMIN_ROLES + ",sn_kmf.cryptographic_manager", folder)
    _user(home, "auditor", "codesigning_auditor", folder)
    _user(home, "nobody", "", folder)
    return Site(live_servers(home), home)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies) at 1280 px, downloads allowed."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    ctx.set_default_timeout(TIMEOUT_MS)
    yield ctx
    ctx.close()


def sign_in(page: Page, site: Site, user: str = "alice") -> None:
    """Open *site*'s sign-in page and sign in as *user*; the header then names the user."""
    page.goto(site.url + "/")
    expect(page).to_have_url(re.compile(r"/login"))
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("user-name")).to_have_text(user)


def navigate(page: Page, section: str, label: str) -> None:
    """Click *label* under *section* in the menu (All › section › label)."""
    nav = page.get_by_role("navigation", name="Application navigator")
    expect(nav.locator(".nav-heading").filter(has_text=section).first).to_be_visible()
    nav.get_by_role("link", name=label, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(label)


def navigator(page: Page, text: str) -> None:
    """Type *text* (e.g. ``sys_properties.list``) in the navigator box and press Enter."""
    box = page.get_by_role("searchbox", name="Navigator")
    box.fill(text)
    box.press("Enter")
    page.wait_for_load_state()


def screenshot(page: Page, name: str, *expected: str) -> Path:
    """Check the page shows every *expected* text, then save ``test-artifacts/ui/NAME.png``."""
    body = page.locator("body")
    for text in expected:
        expect(body).to_contain_text(text)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > MIN_PNG_BYTES, f"{path} is suspiciously small"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return path
