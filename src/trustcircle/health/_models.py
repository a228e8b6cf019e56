"""Tables of the last guardrail scan (migration ``0005_health_scan``).

Only the newest scan is kept: saving a scan replaces the previous one in the same
transaction, so the dashboard always shows one complete scan.
"""

from __future__ import annotations

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..store.models import FINGERPRINT, NAME, SYS_ID, TS, Base


class ScanRunRow(Base):
    """The last scan: when, by whom, its totals and signature states (JSON objects)."""

    __tablename__ = "health_scan_run"

    sys_id: Mapped[str] = mapped_column(SYS_ID, primary_key=True)
    instance: Mapped[str] = mapped_column(NAME)
    started_at: Mapped[str] = mapped_column(TS)
    finished_at: Mapped[str] = mapped_column(TS)
    duration_ms: Mapped[int] = mapped_column(Integer)
    scanned_by: Mapped[str] = mapped_column(NAME)
    totals: Mapped[str] = mapped_column(Text)
    signature_states: Mapped[str] = mapped_column(Text)


class ScanResultRow(Base):
    """The verdict on one record in the last scan (the columns of the scan CSV)."""

    __tablename__ = "health_scan_result"
    __table_args__ = (Index("ix_health_scan_result_verdict", "verdict"),)

    table_name: Mapped[str] = mapped_column(NAME, primary_key=True)
    sys_id: Mapped[str] = mapped_column(SYS_ID, primary_key=True)
    run: Mapped[str] = mapped_column(SYS_ID)
    name: Mapped[str] = mapped_column(Text)
    application: Mapped[str] = mapped_column(NAME)
    verdict: Mapped[str] = mapped_column(String(20))
    reasons: Mapped[str] = mapped_column(Text)
    signature: Mapped[str] = mapped_column(String(32))
    certificate: Mapped[str] = mapped_column(FINGERPRINT)
    last_scanned: Mapped[str] = mapped_column(TS)
