"""Dashboard figures: status, last scan, MIDs, signed records, certificates, configuration."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from tests.cli.conftest import Cli
from tests.conftest import SessionPki
from tests.health.conftest import Seeded
from trustcircle._time import format_ts, system_clock
from trustcircle.crypto import fingerprint_of
from trustcircle.ecc import mids
from trustcircle.health import figures
from trustcircle.platform import kmf
from trustcircle.platform.context import Instance


def _open(home: Path) -> Instance:
    return Instance.open(home)


def test_overview_counts_come_from_the_last_scan(cli: Cli, seeded: Seeded) -> None:
    scanned = cli("scan", "--home", seeded.home, "--json")
    assert scanned.code == 0, scanned.err
    inst = _open(seeded.home)
    try:
        with inst.db.transaction() as session:
            data = figures.overview(session, inst, system_clock())
    finally:
        inst.close()
    assert data.last_scan is not None
    assert data.last_scan.totals == scanned.json()["totals"]
    assert data.last_scan.signature_states == scanned.json()["signature_states"]
    # signed = the record exists and carries a signature: valid, edited, victim, untrusted,
    # app_record; not the deleted record (orphan) nor the unsigned one
    assert data.signed_by_table == {"sys_script_include": 5}
    assert data.signed_by_application == {"global": 4, "x_acme_tools": 1}
    assert data.status == {
        "plugin": "com.glide.code_signing_enterprise",
        "plugin_active": True,
        "opt_in": True,
        "validation": False,
        "validation_certificates": 0,
        "root_of_trust_disabled": False,
    }
    assert data.role == "trusted"


def test_overview_without_a_scan_has_no_counts(signing_home: Path) -> None:
    inst = _open(signing_home)
    try:
        with inst.db.transaction() as session:
            data = figures.overview(session, inst, system_clock())
    finally:
        inst.close()
    assert data.last_scan is None
    assert data.signed_by_table == {}
    assert data.mids == {"active": 0, "inactive": 0}


def test_mids_active_inactive_and_audit_mode_flagged(signing_home: Path) -> None:
    now = system_clock()
    inst = _open(signing_home)
    try:
        with inst.db.transaction() as session:
            mids.register(session, "mid", mids.CheckIn("alpha", "1.2", "enforcing"), format_ts(now))
            old = format_ts(now - dt.timedelta(minutes=5))
            mids.register(session, "mid", mids.CheckIn("beta", "1.1", "audit"), old)
        with inst.db.transaction() as session:
            data = figures.overview(session, inst, now)
            config = {m["name"]: m for m in figures.mid_configuration(session, now)}
    finally:
        inst.close()
    assert data.mids == {"active": 1, "inactive": 1}
    assert config["alpha"]["audit_mode"] is False
    assert config["beta"]["audit_mode"] is True
    assert (config["beta"]["status"], config["beta"]["version"]) == ("inactive", "1.1")


def test_certificates_show_type_expiry_status_and_chain(
    cli: Cli, signing_home: Path, test_pki: SessionPki
) -> None:
    prop = cli("property", "set", "com.snc.kmf.certificate.expiring_days", "1000",
               "--home", signing_home)  # fmt: skip
    assert prop.code == 0, prop.err
    inst = _open(signing_home)
    now = system_clock()
    try:
        with inst.db.transaction() as session:
            kmf.store_certificate(session, test_pki.expired.cert, "external", "Old leaf")
            kmf.store_certificate(session, test_pki.unknown_ca.cert, "external", "Stranger")
        with inst.db.transaction() as session:
            rows = {c["name"]: c for c in figures.certificates(session, now)}
            leaf = fingerprint_of(test_pki.code_signing.cert)
            chain = figures.certificate_chain(session, leaf, now)
            stranger = figures.certificate_chain(
                session, fingerprint_of(test_pki.unknown_ca.cert), now
            )
    finally:
        inst.close()
    signing = rows["Test code_signing"]
    assert signing["type"] == "Key pair"
    assert signing["module"] == "cm_code_signing"
    assert signing["status"] == "expiring soon"  # 730 days left, warning at 1000
    assert signing["trusted"] is True
    assert rows["Old leaf"]["status"] == "expired"
    assert rows["Old leaf"]["trusted"] is False
    assert rows["Test Intermediate CA"]["type"] == "CA certificate"
    assert rows["Test Root CA"]["type"] == "Trust anchor"
    assert [link["name"] for link in chain] == [
        "Test code_signing",
        "Test Intermediate CA",
        "Test Root CA",
    ]
    assert [link["anchor"] for link in chain] == [False, False, True]
    assert stranger[-1]["role"] == "missing"
    assert "Unknown Root CA" in stranger[-1]["subject"]


def test_configuration_lists_code_signing_settings_with_last_update(
    cli: Cli, signing_home: Path
) -> None:
    prop = cli("property", "set", "com.snc.csf.maximum_update_size", "7000",
               "--home", signing_home)  # fmt: skip
    assert prop.code == 0, prop.err
    inst = _open(signing_home)
    try:
        with inst.db.transaction() as session:
            settings = {s["setting"]: s for s in figures.configuration(session)}
    finally:
        inst.close()
    flag = settings["com.snc.kmf.signature.validation.flag"]
    assert (flag["value"], flag["protected"], flag["last_updated"]) == ("false", True, "")
    size = settings["com.snc.csf.maximum_update_size"]
    assert size["value"] == "7000"
    assert size["last_updated"]
    assert size["updated_by"] == "admin"
    assert "com.glide.codesigning.expanded.tracking.length" in settings
    assert not [name for name in settings if str(name).startswith("trustcircle.")]
