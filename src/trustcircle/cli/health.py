"""``scan`` (the guardrail scan) and ``batch-sign`` (the batch signature generator)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .._fs import read_limited, write_atomic
from ..errors import UsageError
from ..health import history
from ..health.batchreport import FAILED, SIGNED, SKIPPED, BatchSummary
from ..health.batchsign import ACTION as BATCH_ACTION
from ..health.batchsign import batch_sign
from ..health.csvin import MAX_CSV_BYTES, parse_scan_csv
from ..health.results import VERDICTS, ScanResult, csv_text, report_text
from ..health.scan import run_scan
from ..platform.context import Operation
from ._common import HomeOpt, JsonOpt, TokenOpt, emit_json, err, instance, out, resolve_token

CsvOut = Annotated[
    Path | None, typer.Option("--csv", help="Write the per-record results as CSV here.")
]
ReportOut = Annotated[
    Path | None, typer.Option("--report", help="Write the text report (scan_report.txt) here.")
]
CsvIn = Annotated[
    Path, typer.Option("--csv", help="The scan CSV, possibly edited down to the rows to sign.")
]
OutDir = Annotated[
    Path | None,
    typer.Option("--out-dir", help="Folder for the signed update sets' XML and the summary."),
]


def register(app: typer.Typer) -> None:
    app.command("scan")(scan)
    app.command("batch-sign")(batch_sign_command)


@contextmanager
def _progress(label: str, enabled: bool) -> Iterator[Callable[[int, int], None]]:
    """A Rich progress bar on stderr when it is a terminal (else a no-op callback)."""
    if not enabled:
        yield lambda _done, _total: None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def scan(
    csv: CsvOut = None,
    report: ReportOut = None,
    home: HomeOpt = None,
    token_file: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Check every record a signature configuration makes eligible; store the results."""
    with instance(home) as inst:
        token = resolve_token(inst.home, token_file)
        with inst.operation(token, history.SCAN_ACTION, write=False) as op:
            actor, now = op.actor.name, op.now
        with _progress("Scanning", not json_out and err.is_terminal) as tick:
            result = run_scan(inst.db, inst.name, now, progress=tick)
        with inst.db.transaction() as session:
            history.save(session, result, actor)
        role = inst.config.role.value
    if csv is not None:
        write_atomic(csv, csv_text(result.rows).encode("utf-8"))
    if report is not None:
        write_atomic(report, report_text(result, role=role).encode("utf-8"))
    if json_out:
        emit_json(
            {
                **result.to_dict(),
                "csv": None if csv is None else str(csv),
                "report": None if report is None else str(report),
            }
        )
        return
    _print_totals(result)
    for label, path in (("CSV", csv), ("report", report)):
        if path is not None:
            out.print(f"{label} written to {path}", markup=False)


def _print_totals(result: ScanResult) -> None:
    totals = result.totals()
    out.print(
        f"scanned {totals['records']} record(s) in {result.duration_ms / 1000:.1f} s: "
        + ", ".join(f"{totals[v]} {v}" for v in VERDICTS),
        markup=False,
    )
    states = result.summary()["signature_states"]
    assert isinstance(states, dict)
    out.print(
        "signature records: " + ", ".join(f"{n} {s}" for s, n in states.items()), markup=False
    )


def batch_sign_command(
    csv: CsvIn,
    out_dir: OutDir = None,
    home: HomeOpt = None,
    token_file: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Sign the records the scan CSV lists, in update sets of at most the maximum update size.

    Exit 1 when a listed record could not be signed (the summary says why).
    """
    if out_dir is not None and out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out-dir {str(out_dir)!r} is a file: give a folder")
    rows = parse_scan_csv(read_limited(csv, MAX_CSV_BYTES, "scan CSV"))
    with instance(home) as inst:
        token = resolve_token(inst.home, token_file)

        def open_op(target: str, write: bool) -> AbstractContextManager[Operation]:
            return inst.operation(token, BATCH_ACTION, target, write=write)

        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
        with _progress("Signing", not json_out and err.is_terminal) as tick:
            summary = batch_sign(inst, open_op, rows, out_dir=out_dir, progress=tick)
    if out_dir is not None:
        summary.write(out_dir)
    if json_out:
        emit_json(summary.to_dict())
    else:
        _print_summary(summary, out_dir)
    if summary.counts()[FAILED]:
        raise typer.Exit(1)


def _print_summary(summary: BatchSummary, out_dir: Path | None) -> None:
    counts = summary.counts()
    out.print(
        f"{counts['rows']} row(s): {counts[SIGNED]} signed in {len(summary.sets)} update set(s), "
        f"{counts[SKIPPED]} skipped, {counts[FAILED]} failed "
        f"(maximum update size {summary.maximum_update_size})",
        markup=False,
    )
    for s in summary.sets:
        files = f" -> {', '.join(s.files)}" if s.files else ""
        out.print(f"  {s.name}  {s.sys_id}  {s.signatures} signature(s){files}", markup=False)
    for o in summary.outcomes:
        if o.status != SIGNED:
            out.print(f"  {o.status}: {o.table} {o.sys_id}: {o.detail}", markup=False)
    if out_dir is not None:
        out.print(f"summary written to {out_dir}", markup=False)
