"""A person's run of the seed procedure (turn-on-code-signing.txt) through the pages only.

Trusted ``dev``: export each certificate to production, export the signed Turn On job,
Export to XML (downloads). Protected ``prod``: import the downloaded files, preview,
commit, Prerequisite Check, Execute Now, KMF Signature Records filtered to Circle of
Trust, System Properties showing the flag ``true`` and the certificate property. Then a
tampered upload (refused at commit) and the menu at 390 px.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.conftest import SessionPki
from tests.ui.conftest import Site, navigate, navigator, screenshot, sign_in
from trustcircle.crypto.certs import fingerprint_of
from trustcircle.jobs import TURN_OFF_NAME, TURN_ON_NAME

CERT_SETS = (
    "code_signing_key_publicsigver_cm_code_attest",
    "code_signing_key_publicsigver_cm_code_signing",
)
CHECKS = 8


@pytest.fixture(scope="module")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ui-downloads")


def open_job(page: Page, name: str) -> None:
    """Scheduled Jobs › search ``*Turn`` › open *name* (seed steps 1-3, 11-12)."""
    navigate(page, "System Definition", "Scheduled Jobs")
    page.get_by_label("Search name").fill("*Turn")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text=TURN_ON_NAME)).to_have_count(1)
    expect(rows.filter(has_text=TURN_OFF_NAME)).to_have_count(1)
    page.get_by_role("link", name=name, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(name)


def export_xml(page: Page, set_name: str, folder: Path) -> Path:
    """Local Update Sets › open *set_name* › Export to XML; the downloaded file."""
    navigate(page, "System Update Sets", "Local Update Sets")
    page.get_by_role("link", name=set_name, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(set_name)
    with page.expect_download() as info:
        page.get_by_role("button", name="Export to XML").click()
    download = info.value
    assert download.suggested_filename.endswith(".xml"), download.suggested_filename
    path = folder / f"{len(list(folder.iterdir()))}-{download.suggested_filename}"
    download.save_as(path)
    assert path.read_bytes().startswith(b"<?xml"), path
    return path


def import_files(page: Page, files: list[Path]) -> None:
    """Retrieved Update Sets › Import Update Set from XML › Choose File › Upload."""
    navigate(page, "System Update Sets", "Retrieved Update Sets")
    expect(page.get_by_role("heading", name="Import Update Set from XML")).to_be_visible()
    page.get_by_label("Choose File").set_input_files([str(f) for f in files])
    page.get_by_role("button", name="Upload").click()
    expect(page.locator(".msg-success")).to_contain_text("Imported")


def preview_and_commit(page: Page, set_name: str) -> None:
    navigate(page, "System Update Sets", "Retrieved Update Sets")
    page.get_by_role("link", name=set_name, exact=True).click()
    page.get_by_role("button", name="Preview Update Set").click()
    preview = page.get_by_test_id("preview-result")
    expect(preview).to_contain_text("ready to commit")
    expect(preview.locator(".pill-blocking")).to_have_count(0)
    expect(preview.locator(".pill-valid").first).to_be_visible()
    if set_name == TURN_ON_NAME:
        screenshot(page, "protected-preview", "manifest", "valid", "sysauto_script")
    page.get_by_role("button", name="Commit Update Set").click()
    expect(page.get_by_test_id("commit-result")).to_be_visible()
    expect(page.get_by_test_id("set-state")).to_have_text("committed")


def test_seed_procedure_through_the_pages(
    context: BrowserContext, dev: Site, prod: Site, downloads: Path, test_pki: SessionPki
) -> None:
    page = context.new_page()

    # --- trusted instance ------------------------------------------------------------
    sign_in(page, dev)
    expect(page.get_by_test_id("instance-role")).to_have_text("trusted")
    screenshot(page, "trusted-home", "dev", "trusted", "alice")

    navigate(page, "Key Management", "X.509 Certificates")
    for module in ("cm_code_attest", "cm_code_signing"):
        page.get_by_role("button", name=f"Export certificate to production: {module}").click()
        expect(page.get_by_test_id("export-result")).to_contain_text(
            f"code_signing_key_publicsigver_{module}"
        )
    screenshot(page, "trusted-certificates", "valid", "trusted", "cm_code_signing")

    open_job(page, TURN_ON_NAME)
    page.get_by_role("button", name="Export signed job to production").click()
    expect(page.get_by_test_id("export-result")).to_contain_text(TURN_ON_NAME)
    expect(page.get_by_test_id("job-signatures")).to_contain_text("Circle of Trust")
    screenshot(page, "trusted-job-form", "Exported to production", "Prerequisite Check")

    files = [export_xml(page, name, downloads) for name in (*CERT_SETS, TURN_ON_NAME)]
    navigate(page, "System Update Sets", "Local Update Sets")
    screenshot(page, "trusted-local-update-sets", *CERT_SETS, TURN_ON_NAME)

    # --- protected instance ------------------------------------------------------------
    sign_in(page, prod)
    expect(page.get_by_test_id("instance-role")).to_have_text("protected")
    import_files(page, files)
    screenshot(page, "protected-retrieved-update-sets", TURN_ON_NAME, *CERT_SETS)
    for name in (*CERT_SETS, TURN_ON_NAME):
        preview_and_commit(page, name)

    navigate(page, "Key Management", "Crypto Modules")
    page.get_by_label("Module").select_option("cm_runtime")
    page.get_by_label("PKCS#12 file").set_input_files(str(test_pki.files.p12["runtime"]))
    page.get_by_label("Password").fill(test_pki.password.decode())
    page.get_by_role("button", name="Import key").click()
    expect(page.locator(".msg-success")).to_contain_text("into cm_runtime")
    screenshot(page, "protected-crypto-modules", "cm_runtime", "loaded")

    open_job(page, TURN_ON_NAME)
    page.get_by_role("button", name="Prerequisite Check").click()
    report = page.get_by_test_id("prereq-report")
    expect(report.locator("li")).to_have_count(CHECKS)
    expect(report.locator(".pill-fail")).to_have_count(0)
    expect(report.locator("li .pill-pass")).to_have_count(CHECKS)
    screenshot(
        page, "protected-prerequisite-check", "Signature valid", "Instance role is protected"
    )

    page.get_by_role("button", name="Execute Now").click()
    result = page.get_by_test_id("execution-result")
    expect(result).to_contain_text("com.snc.kmf.signature.validation.flag")
    expect(result).to_contain_text("true")
    screenshot(page, "protected-execute-now", "Executed Turn on Code Signing Property")

    navigator(page, "sn_kmf_record_signature.list")
    expect(page.get_by_role("heading", level=1)).to_have_text("KMF Signature Records")
    page.get_by_label("KMF Signature Purpose").select_option("Circle of Trust")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"purpose=Circle\+of\+Trust"))
    rows = page.get_by_test_id("signature-records").locator("tbody tr")
    expect(rows.first).to_be_visible()
    purposes = rows.locator("td:nth-child(3)").all_inner_texts()
    assert purposes, "no signature record listed"
    assert set(purposes) == {"Circle of Trust"}, purposes
    tables = set(rows.locator("td:nth-child(1)").all_inner_texts())
    assert {"sysauto_script", "sys_certificate", "cot_policy_statement"} <= tables, tables
    screenshot(page, "protected-signature-records", "Circle of Trust", "sysauto_script")

    navigator(page, "sys_properties.list")
    expect(page.get_by_role("heading", level=1)).to_have_text("System Properties")
    search = page.get_by_label("Search name")
    search.fill("com_snc_kmf_signature.validation.flag")
    page.get_by_role("button", name="Search").click()
    flag = page.locator('[data-property="com.snc.kmf.signature.validation.flag"]')
    expect(flag.get_by_test_id("value")).to_have_text("true")
    expect(flag).to_contain_text("Protected")
    page.get_by_label("Search name").fill("com_snc_kmf_signature.validation")
    page.get_by_role("button", name="Search").click()
    cert = page.locator('[data-property="com.snc.kmf.signature.validation.certificate"]')
    expect(cert.get_by_test_id("value")).to_contain_text(fingerprint_of(test_pki.code_attest.cert))
    screenshot(page, "protected-system-properties", "validation.flag", "validation.certificate")

    navigate(page, "Code Signing", "Guided Setup")
    checklist = page.get_by_test_id("checklist")
    expect(checklist).to_contain_text("Checklist (4 of 4)")
    screenshot(page, "protected-guided-setup", "Confirm the imported configuration", "Complete")
    for section, label, text in (
        ("MID Server", "MID Servers", "No MID server registered"),
        ("MID Server", "ECC Queue", "No ECC message matches"),
        ("Code Signing", "Code Signing Log", "Code Signing Log"),
        ("Key Management", "X.509 Certificates", "Trust anchors"),
    ):
        navigate(page, section, label)
        screenshot(page, "protected-" + label.lower().replace(" ", "-").replace(".", ""), text)


def test_tampered_update_set_shows_the_problem_and_commit_stays_refused(
    context: BrowserContext, dev: Site, prod: Site, downloads: Path
) -> None:
    page = context.new_page()
    sign_in(page, dev)
    open_job(page, TURN_OFF_NAME)
    page.get_by_role("button", name="Export signed job to production").click()
    expect(page.get_by_test_id("export-result")).to_contain_text(TURN_OFF_NAME)
    exported = export_xml(page, TURN_OFF_NAME, downloads)
    text = exported.read_bytes()
    assert text.count(b"Turning off Code Signing") == 1
    tampered = downloads / "tampered-turn-off.xml"
    tampered.write_bytes(text.replace(b"Turning off Code Signing", b"Turning on Code Signing!"))

    sign_in(page, prod)
    import_files(page, [tampered])
    page.get_by_role("button", name="Preview Update Set").click()
    preview = page.get_by_test_id("preview-result")
    expect(preview).to_contain_text("commit is refused")
    expect(preview.locator(".pill-blocking").first).to_be_visible()
    expect(preview).to_contain_text("record signature invalid")
    expect(preview).to_contain_text("entry set mismatch")
    screenshot(page, "protected-tampered-preview", "blocked", "signature_mismatch")

    page.get_by_label("Accept remote update").check()
    page.get_by_role("button", name="Commit Update Set").click()
    expect(page.locator(".msg-error")).to_contain_text("Commit Update Set refused")
    expect(page.get_by_test_id("set-state")).not_to_have_text("committed")
    expect(page.get_by_test_id("stored-problems")).to_contain_text("signature")


def test_menu_collapses_and_works_at_390_px(context: BrowserContext, prod: Site) -> None:
    page = context.new_page()
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, prod)
    nav = page.get_by_role("navigation", name="Application navigator")
    expect(nav).to_be_hidden()
    toggle = page.get_by_text("☰ Menu")
    expect(toggle).to_be_visible()
    toggle.click()
    expect(nav).to_be_visible()
    screenshot(page, "narrow-menu-open", "Scheduled Jobs", "System Properties")
    nav.get_by_role("link", name="System Properties", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("System Properties")
    expect(nav).to_be_hidden()
    overflow = page.evaluate("document.documentElement.scrollWidth")
    assert overflow <= 390, f"the page is {overflow} px wide at a 390 px viewport"
    screenshot(page, "narrow-system-properties", "com.snc.kmf.signature.validation.flag")
