"""What a guardrail scan found: one row per record, totals, the CSV and ``scan_report.txt``.

CSV format (UTF-8, ``\\r\\n`` line ends, a header line, then one line per record):

==============  ==========================================================================
column          value
==============  ==========================================================================
table           table of the record (``sys_script_include``, ``sys_certificate``, ...)
sys_id          sys_id of the record (for an orphan: the record the signature names)
name            the record's ``name`` (a certificate's name; empty when the record is gone)
application     the record's ``application`` field, ``global`` when it has none
verdict         ``valid``, ``invalid``, ``missing``, ``untrusted`` or ``orphan``
reasons         why, as codes joined by ``;`` (``signature_mismatch;expired``); empty if valid
signature       sys_id of the valid signature, else of the newest one judged; empty if none
certificate     fingerprint of that signature's certificate; empty if none
last_scanned    when the record was judged, RFC 3339 UTC (``2026-11-27T19:45:00Z``)
==============  ==========================================================================

A ``name`` or ``application`` starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return
is written with a leading ``'`` so a spreadsheet shows it as text instead of running it.
The batch signature generator reads this file back (``table`` and ``sys_id`` decide).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from ..signing import Verdict

CSV_COLUMNS = (
    "table",
    "sys_id",
    "name",
    "application",
    "verdict",
    "reasons",
    "signature",
    "certificate",
    "last_scanned",
)
"""The CSV header, in order."""

VERDICTS = tuple(v.value for v in Verdict)
"""Every verdict, in the order reports list them."""

SIGNATURE_STATES = ("trusted", "untrusted", "orphan")
"""States of a signature record: its certificate is trusted now, is not, or it is orphaned
(its record or its certificate is gone)."""

DEFAULT_APPLICATION = "global"
RECORD_GONE = "record_gone"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class ScanRow:
    """The verdict on one record."""

    table: str
    sys_id: str
    name: str
    application: str
    verdict: Verdict
    reasons: tuple[str, ...]
    signature: str
    certificate: str
    last_scanned: str

    @property
    def signed(self) -> bool:
        """The record exists and carries at least one signature."""
        return self.verdict is not Verdict.MISSING and RECORD_GONE not in self.reasons

    def to_dict(self) -> dict[str, object]:
        return {
            "table": self.table,
            "sys_id": self.sys_id,
            "name": self.name,
            "application": self.application,
            "verdict": self.verdict.value,
            "reasons": list(self.reasons),
            "signature": self.signature,
            "certificate": self.certificate,
            "last_scanned": self.last_scanned,
        }


@dataclass(frozen=True)
class ScanResult:
    """A whole scan: its rows (sorted by table, then sys_id) and the signature states."""

    instance: str
    started_at: str
    finished_at: str
    duration_ms: int
    rows: tuple[ScanRow, ...]
    signature_states: Mapping[str, int] = field(default_factory=dict)

    def totals(self) -> dict[str, int]:
        """``records`` and the count of each verdict (every verdict present, 0 when none)."""
        return verdict_counts(self.rows)

    def summary(self) -> dict[str, object]:
        """Everything but the rows: what ``scan --json`` and the dashboard show as counts."""
        return {
            "instance": self.instance,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration_ms": self.duration_ms,
            "totals": self.totals(),
            "signature_states": {s: int(self.signature_states.get(s, 0)) for s in SIGNATURE_STATES},
        }

    def to_dict(self) -> dict[str, object]:
        return {**self.summary(), "rows": [r.to_dict() for r in self.rows]}


def verdict_counts(rows: Iterable[ScanRow]) -> dict[str, int]:
    counts = Counter(r.verdict.value for r in rows)
    return {"records": sum(counts.values()), **{v: counts.get(v, 0) for v in VERDICTS}}


def _cell(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_line(row: ScanRow) -> list[str]:
    """The CSV cells of *row*, in :data:`CSV_COLUMNS` order."""
    return [
        row.table,
        row.sys_id,
        _cell(row.name),
        _cell(row.application),
        row.verdict.value,
        ";".join(row.reasons),
        row.signature,
        row.certificate,
        row.last_scanned,
    ]


def write_csv(rows: Iterable[ScanRow], out: TextIO) -> int:
    """Write the header and one line per row to *out*; return the number of rows."""
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for row in rows:
        writer.writerow(csv_line(row))
        count += 1
    return count


def csv_text(rows: Iterable[ScanRow]) -> str:
    buffer = io.StringIO()
    write_csv(rows, buffer)
    return buffer.getvalue()


def _table_lines(rows: Sequence[ScanRow]) -> list[str]:
    by_table: dict[str, Counter[str]] = {}
    for row in rows:
        by_table.setdefault(row.table, Counter())[row.verdict.value] += 1
    width = max([len("table"), *(len(t) for t in by_table)])
    lines = ["  " + "table".ljust(width) + "".join(f"{v:>11}" for v in VERDICTS)]
    for table in sorted(by_table):
        counts = by_table[table]
        lines.append("  " + table.ljust(width) + "".join(f"{counts[v]:>11}" for v in VERDICTS))
    return lines


def _problem_line(row: ScanRow) -> str:
    name = row.name.replace("\n", " ").replace("\r", " ")[:80]
    line = f"  [{row.verdict.value}] {row.table} {row.sys_id}"
    if name:
        line += f" {name!r}"
    line += f" ({row.application or DEFAULT_APPLICATION})"
    line += ": " + (", ".join(row.reasons) or "no reason recorded")
    if row.signature:
        line += f"; signature {row.signature}"
    if row.certificate:
        line += f"; certificate {row.certificate[:16]}..."
    return line


def report_text(result: ScanResult, *, role: str = "") -> str:
    """``scan_report.txt``: totals, signature states, counts per table, then every problem."""
    totals = result.totals()
    seconds = result.duration_ms / 1000
    lines = [
        "trustcircle guardrail scan report",
        "=================================",
        f"Instance:    {result.instance}" + (f" ({role})" if role else ""),
        f"Started:     {result.started_at}",
        f"Finished:    {result.finished_at} ({seconds:.1f} s)",
        f"Records:     {totals['records']}",
        "",
        "Verdicts",
        *(f"  {v:<11}{totals[v]:>9}" for v in VERDICTS),
        "",
        "Signature records",
        *(f"  {s:<11}{int(result.signature_states.get(s, 0)):>9}" for s in SIGNATURE_STATES),
        "",
        "Records by table",
        *(_table_lines(result.rows) if result.rows else ["  (no eligible records)"]),
        "",
    ]
    problems = [r for r in result.rows if r.verdict is not Verdict.VALID]
    lines.append(f"Problems ({len(problems)}: invalid, missing, untrusted and orphan records)")
    lines.extend(_problem_line(r) for r in problems)
    if not problems:
        lines.append("  none: every eligible record is validly signed")
    return "\n".join(lines) + "\n"
