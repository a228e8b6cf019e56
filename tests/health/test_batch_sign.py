"""The batch signature generator: signs exactly what the (edited) scan CSV lists, in batches."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.cli.conftest import Cli, init_home
from tests.conftest import SessionPki
from tests.health.conftest import Seeded, add, bulk_records
from tests.updatesets.io_support import manifest_verifies, read_export
from trustcircle.platform.context import Instance
from trustcircle.signing import SIGNATURE_TABLE
from trustcircle.store.models import RecordSignatureRow, UpdateSet, UpdateXml


def scan_csv(cli: Cli, home: Path, out: Path) -> dict[str, Any]:
    result = cli("scan", "--home", home, "--csv", out, "--json")
    assert result.code == 0, result.err
    data: dict[str, Any] = result.json()
    return data


def keep_rows(source: Path, target: Path, keep: set[str]) -> list[list[str]]:
    """Write *target* with the header and only the lines of *source* whose sys_id is kept."""
    lines = list(csv.reader(source.open(newline="")))
    kept = [lines[0]] + [line for line in lines[1:] if line[1] in keep]
    with target.open("w", newline="") as fh:
        csv.writer(fh, lineterminator="\r\n").writerows(kept)
    return kept


def verdicts(cli: Cli, home: Path) -> dict[str, str]:
    result = cli("scan", "--home", home, "--json")
    assert result.code == 0, result.err
    return {r["sys_id"]: r["verdict"] for r in result.json()["rows"]}


def count(home: Path, stmt: Any) -> int:
    inst = Instance.open(home)
    try:
        with inst.db.transaction() as session:
            return int(session.scalar(stmt) or 0)
    finally:
        inst.close()


def test_batch_sign_signs_exactly_the_rows_left_in_an_edited_csv(
    cli: Cli, seeded: Seeded, tmp_path: Path, test_pki: SessionPki
) -> None:
    home = seeded.home
    unlisted = add(cli, home, "Unlisted")
    data = scan_csv(cli, home, tmp_path / "scan.csv")
    cert_row = next(r for r in data["rows"] if r["table"] == "sys_certificate")
    listed = {seeded.edited, seeded.unsigned, seeded.victim, seeded.untrusted, cert_row["sys_id"]}
    skipped = {seeded.valid, seeded.deleted}
    keep_rows(tmp_path / "scan.csv", tmp_path / "edited.csv", listed | skipped)
    out = tmp_path / "signed"
    result = cli("batch-sign", "--home", home, "--csv", tmp_path / "edited.csv",
                 "--out-dir", out, "--json")  # fmt: skip
    assert result.code == 0, result.err
    summary = result.json()
    assert summary["counts"] == {"rows": 7, "signed": 5, "skipped": 2, "failed": 0}
    status = {r["sys_id"]: (r["status"], r["detail"]) for r in summary["rows"]}
    assert {s for s, (st, _) in status.items() if st == "signed"} == listed
    assert status[cert_row["sys_id"]] == ("signed", "Circle of Trust")
    assert status[seeded.edited] == ("signed", "Code Signing")
    assert status[seeded.valid][1].startswith("already validly signed")
    assert "no longer exists" in status[seeded.deleted][1]
    [made] = summary["update_sets"]
    assert (made["name"], made["signatures"]) == ("Batch signatures 1/1", 5)

    after = verdicts(cli, home)
    assert {s: after[s] for s in listed} == dict.fromkeys(listed, "valid")
    assert after[unlisted] == "missing"  # not listed: not signed
    assert after[seeded.deleted] == "orphan"

    exported = read_export(out / "batch-signatures-1-of-1.xml")
    assert exported.header.name == "Batch signatures 1/1"
    assert {e.table for e in exported.entries} == {SIGNATURE_TABLE}
    signed_ids = {r["signature"] for r in summary["rows"] if r["status"] == "signed"}
    assert {e.target_sys_id for e in exported.entries} == signed_ids
    assert manifest_verifies(exported, test_pki.code_attest.cert)
    text = (out / "batch_summary.txt").read_text()
    assert "Signed:              5 in 1 update set(s)" in text
    assert f"{seeded.valid} 'Valid': already validly signed" in text
    assert json.loads((out / "batch_summary.json").read_text())["counts"]["signed"] == 5


def test_batch_sign_respects_the_maximum_update_size(
    cli: Cli, home: Path, tmp_path: Path, test_pki: SessionPki
) -> None:
    """6,001 listed records with a maximum of 6,000 make two sets: 6,000 and 1 signatures."""
    files = test_pki.files
    assert cli("trust-anchor", "add", files.root_pem, "--home", home).code == 0
    p12 = files.p12["ed25519"]
    imported = cli("kmf", "import", "--home", home, "--module", "cm_code_signing",
                   "--p12", p12, "--password-file", files.password_file)  # fmt: skip
    assert imported.code == 0, imported.err
    prop = cli("property", "set", "com.snc.csf.maximum_update_size", "6000", "--home", home)
    assert prop.code == 0, prop.err
    ids = bulk_records(home, 6003)
    scan_csv(cli, home, tmp_path / "scan.csv")
    dropped = {ids[10], ids[5000]}
    kept = keep_rows(tmp_path / "scan.csv", tmp_path / "edited.csv", set(ids) - dropped)
    assert len(kept) == 1 + 6001

    started = time.monotonic()
    result = cli("batch-sign", "--home", home, "--csv", tmp_path / "edited.csv", "--json")
    elapsed = time.monotonic() - started
    assert result.code == 0, result.err
    summary = result.json()
    assert summary["counts"] == {"rows": 6001, "signed": 6001, "skipped": 0, "failed": 0}
    assert summary["maximum_update_size"] == 6000
    assert [(s["name"], s["signatures"]) for s in summary["update_sets"]] == [
        ("Batch signatures 1/2", 6000),
        ("Batch signatures 2/2", 1),
    ]
    for made in summary["update_sets"]:
        entries = count(
            home, select(func.count()).select_from(UpdateXml).where(
                UpdateXml.update_set == made["sys_id"], UpdateXml.table_name == SIGNATURE_TABLE
            ),
        )  # fmt: skip
        assert entries == made["signatures"]
    assert count(home, select(func.count()).select_from(RecordSignatureRow)) == 6001
    after = verdicts(cli, home)
    assert {after[i] for i in ids if i not in dropped} == {"valid"}
    assert {after[i] for i in dropped} == {"missing"}
    assert elapsed < 120, f"batch signing 6,001 records took {elapsed:.0f} s"


def test_batch_sign_is_refused_on_a_protected_instance(cli: Cli, tmp_path: Path) -> None:
    prod = init_home(cli, tmp_path / "prod", role="protected", name="prod")
    data = scan_csv(cli, prod, tmp_path / "scan.csv")
    assert data["totals"]["missing"] >= 1  # the scan itself runs on a protected instance
    result = cli("batch-sign", "--home", prod, "--csv", tmp_path / "scan.csv")
    assert result.code == 1
    assert "protected instance never signs code" in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert count(prod, select(func.count()).select_from(RecordSignatureRow)) == 0
    assert count(prod, select(func.count()).select_from(UpdateSet)) == 0


def _csv_with(tmp_path: Path, body: bytes) -> Path:
    path = tmp_path / "bad.csv"
    path.write_bytes(body)
    return path


HEADER = b"table,sys_id,name,application,verdict,reasons,signature,certificate,last_scanned\r\n"
GOOD_ID = b"0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"", "the scan CSV is empty"),
        (b"name,verdict\r\nx,valid\r\n", "lacks column 'table'"),
        (b"table,sys_id,colour\r\n", "unknown column 'colour'"),
        (HEADER + b"sys_script_include,XYZ,n,global,missing,,,,\r\n", "line 2: sys_id 'XYZ'"),
        (HEADER + b"sys_script_include," + GOOD_ID + b",n\r\n", "line 2: has 3 cells"),
        (HEADER + b"DROP TABLE," + GOOD_ID + b",n,g,missing,,,,\r\n", "is not a table name"),
        (HEADER + b"sys_script," + GOOD_ID + b",n,g,great,,,,\r\n", "verdict 'great'"),
        (
            HEADER + (b"sys_script," + GOOD_ID + b",n,g,missing,,,,\r\n") * 2,
            "line 3: repeats sys_script",
        ),
        (HEADER + b"sys_script,\xff\xfe,n,g,missing,,,,\r\n", "not UTF-8"),
        (HEADER + b'sys_script,"' + GOOD_ID + b"\r\n", "line 2: not valid CSV"),
    ],
    ids=[
        "empty",
        "no-table",
        "unknown-column",
        "bad-sys-id",
        "ragged",
        "bad-table",
        "bad-verdict",
        "duplicate",
        "not-utf8",
        "open-quote",
    ],
)
def test_malformed_csv_is_refused_with_one_line(
    cli: Cli, signing_home: Path, tmp_path: Path, body: bytes, says: str
) -> None:
    result = cli("batch-sign", "--home", signing_home, "--csv", _csv_with(tmp_path, body))
    assert result.code == 2, result.err
    assert says in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert count(signing_home, select(func.count()).select_from(RecordSignatureRow)) == 0


def test_batch_sign_needs_codesigning_admin(cli: Cli, seeded: Seeded, tmp_path: Path) -> None:
    made = cli("user", "add", "carol", "--roles", "codesigning_auditor,admin",
               "--home", seeded.home, "--json")  # fmt: skip
    assert made.code == 0, made.err
    token = tmp_path / "carol.token"
    token.write_text(made.json()["token"])
    scan_csv(cli, seeded.home, tmp_path / "scan.csv")
    result = cli("batch-sign", "--home", seeded.home, "--csv", tmp_path / "scan.csv",
                 "--token-file", token)  # fmt: skip
    assert result.code == 3
    assert "codesigning_admin" in result.err
    assert verdicts(cli, seeded.home)[seeded.unsigned] == "missing"
