"""The guardrail scan: one verdict per eligible record, with reasons, stored as the last scan."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from sqlalchemy import event

from tests.cli.conftest import Cli
from tests.health.conftest import Seeded, bulk_records
from trustcircle._time import system_clock
from trustcircle.health import history, run_scan
from trustcircle.health.results import CSV_COLUMNS, ScanResult
from trustcircle.platform.context import Instance
from trustcircle.signing import Verdict


def scan(home: Path) -> ScanResult:
    inst = Instance.open(home)
    try:
        return run_scan(inst.db, inst.name, system_clock())
    finally:
        inst.close()


def by_id(result: ScanResult) -> dict[str, Any]:
    return {r.sys_id: r for r in result.rows}


def test_scan_judges_each_seeded_record(seeded: Seeded) -> None:
    rows = by_id(scan(seeded.home))
    assert rows[seeded.valid].verdict is Verdict.VALID
    assert rows[seeded.valid].reasons == ()
    assert rows[seeded.unsigned].verdict is Verdict.MISSING
    assert rows[seeded.unsigned].reasons == ("no_signature",)
    assert rows[seeded.app_record].verdict is Verdict.VALID
    assert rows[seeded.app_record].application == "x_acme_tools"
    assert rows[seeded.valid].application == "global"
    assert rows[seeded.valid].name == "Valid"
    assert rows[seeded.valid].signature
    assert len(rows[seeded.valid].certificate) == 64


def test_record_edited_after_signing_is_invalid(seeded: Seeded) -> None:
    row = by_id(scan(seeded.home))[seeded.edited]
    assert row.verdict is Verdict.INVALID
    assert row.reasons == ("signature_mismatch",)


def test_signature_moved_to_other_record_is_invalid(seeded: Seeded) -> None:
    row = by_id(scan(seeded.home))[seeded.victim]
    assert row.verdict is Verdict.INVALID
    assert "signature_mismatch" in row.reasons


def test_signature_of_deleted_record_is_orphan(seeded: Seeded) -> None:
    row = by_id(scan(seeded.home))[seeded.deleted]
    assert row.verdict is Verdict.ORPHAN
    assert row.reasons == ("record_gone",)
    assert row.signature == seeded.deleted_signature
    assert row.name == ""
    assert row.table == "sys_script_include"


def test_signature_by_certificate_outside_the_trust_store_is_untrusted(seeded: Seeded) -> None:
    row = by_id(scan(seeded.home))[seeded.untrusted]
    assert row.verdict is Verdict.UNTRUSTED
    assert row.reasons
    assert all("signature" not in r for r in row.reasons)


def test_totals_and_signature_states_add_up(seeded: Seeded) -> None:
    result = scan(seeded.home)
    totals = result.totals()
    assert totals["records"] == len(result.rows)
    assert sum(totals[v.value] for v in Verdict) == totals["records"]
    script_rows = [r for r in result.rows if r.table == "sys_script_include"]
    counts = {v: sum(1 for r in script_rows if r.verdict.value == v) for v in ("valid", "invalid")}
    assert counts == {"valid": 2, "invalid": 2}
    # signatures: valid, edited, app_record (trusted); deleted (orphan); unknown CA (untrusted);
    # the copy moved onto the victim is signed by a trusted certificate
    assert result.signature_states == {"trusted": 4, "untrusted": 1, "orphan": 1}
    # certificate records are eligible too (sys_certificate: Circle of Trust), unsigned here
    certs = [r for r in result.rows if r.table == "sys_certificate"]
    assert certs
    assert all(r.verdict is Verdict.MISSING for r in certs)


def test_stored_scan_replaces_the_previous_one(seeded: Seeded, cli: Cli) -> None:
    first = cli("scan", "--home", seeded.home, "--json")
    assert first.code == 0, first.err
    gone = cli("record", "delete", "--home", seeded.home, "--table", "sys_script_include",
               "--id", seeded.unsigned)  # fmt: skip
    assert gone.code == 0, gone.err
    second = cli("scan", "--home", seeded.home, "--json")
    assert second.code == 0, second.err
    inst = Instance.open(seeded.home)
    try:
        with inst.db.transaction() as session:
            last = history.last_scan(session)
            stored = list(history.stored_rows(session))
    finally:
        inst.close()
    assert last is not None
    assert last.totals == second.json()["totals"]
    assert last.totals["missing"] == first.json()["totals"]["missing"] - 1
    assert last.scanned_by == "admin"
    assert seeded.unsigned not in {r.sys_id for r in stored}
    assert [r.to_dict() for r in stored] == second.json()["rows"]


def _statements(home: Path, records: int) -> int:
    if records:
        bulk_records(home, records)
    inst = Instance.open(home)
    count = 0

    def seen(*_args: object) -> None:
        nonlocal count
        count += 1

    event.listen(inst.db.engine, "before_cursor_execute", seen)
    try:
        run_scan(inst.db, inst.name, system_clock(), chunk=5000)
    finally:
        event.remove(inst.db.engine, "before_cursor_execute", seen)
        inst.close()
    return count


def test_scan_reads_signatures_with_a_fixed_number_of_queries(seeded: Seeded) -> None:
    """No query per record: 40 more records (and their signature look-ups) add no query."""
    before = _statements(seeded.home, 0)
    after = _statements(seeded.home, 40)
    assert after == before


def test_csv_has_the_documented_columns_and_one_line_per_record(seeded: Seeded) -> None:
    from trustcircle.health import csv_text

    result = scan(seeded.home)
    lines = list(csv.reader(io.StringIO(csv_text(result.rows), newline="")))
    assert tuple(lines[0]) == CSV_COLUMNS
    assert len(lines) == 1 + len(result.rows)
    index = {line[1]: dict(zip(CSV_COLUMNS, line, strict=True)) for line in lines[1:]}
    edited = index[seeded.edited]
    assert edited["table"] == "sys_script_include"
    assert edited["name"] == "Edited"
    assert edited["verdict"] == "invalid"
    assert edited["reasons"] == "signature_mismatch"
    assert edited["last_scanned"] == result.started_at
    orphan = index[seeded.deleted]
    assert (orphan["verdict"], orphan["reasons"], orphan["signature"]) == (
        "orphan",
        "record_gone",
        seeded.deleted_signature,
    )


def test_csv_formula_in_record_name_is_neutralised(cli: Cli, signing_home: Path) -> None:
    from tests.health.conftest import add

    evil = add(cli, signing_home, "Evil", "application=+SUM(1+1)")
    upd = cli("record", "update", "--home", signing_home, "--table", "sys_script_include",
              "--id", evil, "--field", "name==HYPERLINK(\"http://evil\")")  # fmt: skip
    assert upd.code == 0, upd.err
    out = signing_home / "scan.csv"
    assert cli("scan", "--home", signing_home, "--csv", out).code == 0
    line = next(r for r in csv.reader(out.open(newline="")) if r[1] == evil)
    assert line[2] == '\'=HYPERLINK("http://evil")'
    assert line[3] == "'+SUM(1+1)"


def test_scan_report_lists_totals_and_every_problem(seeded: Seeded, cli: Cli) -> None:
    report = seeded.home / "scan_report.txt"
    result = cli("scan", "--home", seeded.home, "--report", report, "--json")
    assert result.code == 0, result.err
    totals = result.json()["totals"]
    text = report.read_text()
    assert text.startswith("trustcircle guardrail scan report")
    assert "Instance:    dev (trusted)" in text
    for verdict in ("valid", "invalid", "missing", "orphan", "untrusted"):
        assert f"  {verdict:<11}{totals[verdict]:>9}" in text
    assert f"[invalid] sys_script_include {seeded.edited} 'Edited'" in text
    assert "signature_mismatch" in text
    assert f"[orphan] sys_script_include {seeded.deleted}" in text
    assert f"[missing] sys_script_include {seeded.unsigned} 'Unsigned'" in text
    assert "[valid]" not in text
    problems = totals["records"] - totals["valid"]
    assert f"Problems ({problems}:" in text
