"""The last scan, stored: save it (replacing the previous one) and read it back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from .._types import new_sys_id
from ..platform import audit
from ..signing import Verdict
from ._models import ScanResultRow, ScanRunRow
from .results import RECORD_GONE, SIGNATURE_STATES, VERDICTS, ScanResult, ScanRow

SCAN_ACTION = "health.scan"
_INSERT_CHUNK = 1000
_FETCH = 1000
_MAX_APPLICATION = 100


@dataclass(frozen=True)
class LastScan:
    """The stored scan without its rows."""

    sys_id: str
    instance: str
    started_at: str
    finished_at: str
    duration_ms: int
    scanned_by: str
    totals: dict[str, int]
    signature_states: dict[str, int]

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def save(session: Session, result: ScanResult, actor: str) -> str:
    """Store *result* as the last scan (replacing the previous one) and audit it."""
    run_id = new_sys_id()
    session.execute(delete(ScanResultRow))
    session.execute(delete(ScanRunRow))
    summary = result.summary()
    session.add(
        ScanRunRow(
            sys_id=run_id,
            instance=result.instance,
            started_at=result.started_at,
            finished_at=result.finished_at,
            duration_ms=result.duration_ms,
            scanned_by=actor,
            totals=json.dumps(summary["totals"], sort_keys=True),
            signature_states=json.dumps(summary["signature_states"], sort_keys=True),
        )
    )
    chunk: list[dict[str, object]] = []
    for row in result.rows:
        chunk.append(_values(run_id, row))
        if len(chunk) >= _INSERT_CHUNK:
            session.execute(insert(ScanResultRow), chunk)
            chunk = []
    if chunk:
        session.execute(insert(ScanResultRow), chunk)
    audit.append(
        session,
        at=result.finished_at,  # type: ignore[arg-type]
        actor=actor,
        action=SCAN_ACTION,
        target="guardrail scan",
        outcome=audit.OK,
        detail={"scan": run_id, **summary},
    )
    session.flush()
    return run_id


def _values(run_id: str, row: ScanRow) -> dict[str, object]:
    return {
        "table_name": row.table,
        "sys_id": row.sys_id,
        "run": run_id,
        "name": row.name,
        "application": row.application[:_MAX_APPLICATION],
        "verdict": row.verdict.value,
        "reasons": ";".join(row.reasons),
        "signature": row.signature,
        "certificate": row.certificate,
        "last_scanned": row.last_scanned,
    }


def last_scan(session: Session) -> LastScan | None:
    """The stored scan's summary, or None when no scan has run."""
    run = session.scalar(select(ScanRunRow).order_by(ScanRunRow.finished_at.desc()).limit(1))
    if run is None:
        return None
    totals = _counts(run.totals)
    states = _counts(run.signature_states)
    return LastScan(
        sys_id=run.sys_id,
        instance=run.instance,
        started_at=run.started_at,
        finished_at=run.finished_at,
        duration_ms=run.duration_ms,
        scanned_by=run.scanned_by,
        totals={k: totals.get(k, 0) for k in ("records", *VERDICTS)},
        signature_states={s: states.get(s, 0) for s in SIGNATURE_STATES},
    )


def _counts(text: str) -> dict[str, int]:
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): v for k, v in data.items() if isinstance(v, int)}


def _row(r: ScanResultRow) -> ScanRow:
    return ScanRow(
        table=r.table_name,
        sys_id=r.sys_id,
        name=r.name,
        application=r.application,
        verdict=Verdict(r.verdict),
        reasons=tuple(x for x in r.reasons.split(";") if x),
        signature=r.signature,
        certificate=r.certificate,
        last_scanned=r.last_scanned,
    )


def stored_rows(
    session: Session, *, verdict: str | None = None, limit: int | None = None, offset: int = 0
) -> Iterator[ScanRow]:
    """The stored rows by table then sys_id, optionally of one verdict, streamed."""
    stmt = select(ScanResultRow).order_by(ScanResultRow.table_name, ScanResultRow.sys_id)
    if verdict:
        stmt = stmt.where(ScanResultRow.verdict == verdict)
    if offset:
        stmt = stmt.offset(offset)
    if limit is not None:
        stmt = stmt.limit(limit)
    for r in session.scalars(stmt.execution_options(yield_per=_FETCH)):
        yield _row(r)


def stored_result(session: Session) -> ScanResult | None:
    """The whole stored scan, rows included (for the CSV and text report downloads)."""
    last = last_scan(session)
    if last is None:
        return None
    return ScanResult(
        instance=last.instance,
        started_at=last.started_at,
        finished_at=last.finished_at,
        duration_ms=last.duration_ms,
        rows=tuple(stored_rows(session)),
        signature_states=last.signature_states,
    )


def signed_counts(session: Session, column: str) -> dict[str, int]:
    """Signed records of the stored scan per ``table`` or per ``application``."""
    key = ScanResultRow.table_name if column == "table" else ScanResultRow.application
    stmt = (
        select(key, func.count())
        .where(ScanResultRow.verdict != Verdict.MISSING.value)
        .where(ScanResultRow.reasons.not_like(f"%{RECORD_GONE}%"))
        .group_by(key)
        .order_by(func.count().desc(), key)
    )
    return {str(k): int(n) for k, n in session.execute(stmt)}
