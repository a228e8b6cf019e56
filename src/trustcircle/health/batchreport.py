"""What a batch signature run did: per-row outcomes, the update sets, the summary report."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .._fs import write_atomic

SIGNED = "signed"
SKIPPED = "skipped"
FAILED = "failed"
OUTCOMES = (SIGNED, SKIPPED, FAILED)
SUMMARY_TEXT = "batch_summary.txt"
SUMMARY_JSON = "batch_summary.json"


@dataclass(frozen=True, slots=True)
class Outcome:
    """One listed row: signed (``detail`` is the purpose), skipped or failed (``detail`` says
    why); a signed row names its signature, update set and batch number."""

    table: str
    sys_id: str
    name: str
    status: str
    detail: str
    signature: str = ""
    update_set: str = ""
    batch: int = 0

    def to_dict(self) -> dict[str, object]:
        return {
            "table": self.table,
            "sys_id": self.sys_id,
            "name": self.name,
            "status": self.status,
            "detail": self.detail,
            "signature": self.signature,
            "update_set": self.update_set,
            "batch": self.batch,
        }


@dataclass(frozen=True, slots=True)
class BatchSet:
    """The local update set of one batch (``files``: its exported XML, when exported)."""

    number: int
    of: int
    sys_id: str
    name: str
    signatures: int
    files: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "number": self.number,
            "of": self.of,
            "sys_id": self.sys_id,
            "name": self.name,
            "signatures": self.signatures,
            "files": list(self.files),
        }


@dataclass(frozen=True)
class BatchSummary:
    """The whole run: every listed row's outcome (CSV order) and the sets made."""

    instance: str
    started_at: str
    finished_at: str
    maximum_update_size: int
    outcomes: tuple[Outcome, ...]
    sets: tuple[BatchSet, ...]

    def counts(self) -> dict[str, int]:
        counts = Counter(o.status for o in self.outcomes)
        return {"rows": len(self.outcomes), **{s: counts.get(s, 0) for s in OUTCOMES}}

    def to_dict(self) -> dict[str, object]:
        return {
            "instance": self.instance,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "maximum_update_size": self.maximum_update_size,
            "counts": self.counts(),
            "update_sets": [s.to_dict() for s in self.sets],
            "rows": [o.to_dict() for o in self.outcomes],
        }

    def report_text(self) -> str:
        """The summary report: counts, the update sets, then every skipped and failed row."""
        counts = self.counts()
        lines = [
            "trustcircle batch signature generator: summary",
            "==============================================",
            f"Instance:            {self.instance}",
            f"Started:             {self.started_at}",
            f"Finished:            {self.finished_at}",
            f"Maximum update size: {self.maximum_update_size}",
            f"Rows in the CSV:     {counts['rows']}",
            f"Signed:              {counts[SIGNED]} in {len(self.sets)} update set(s)",
            f"Skipped:             {counts[SKIPPED]}",
            f"Failed:              {counts[FAILED]}",
            "",
            "Update sets",
        ]
        lines += [f"  {s.name}  {s.sys_id}  {s.signatures} signature(s)" for s in self.sets] or [
            "  none"
        ]
        for status, title in ((SKIPPED, "Skipped (not signed)"), (FAILED, "Failed")):
            rows = [o for o in self.outcomes if o.status == status]
            lines += ["", f"{title}: {len(rows)}"]
            lines += [_line(o) for o in rows] or ["  none"]
        return "\n".join(lines) + "\n"

    def write(self, folder: Path) -> tuple[Path, Path]:
        """Write ``batch_summary.txt`` and ``batch_summary.json`` into *folder*."""
        text, data = folder / SUMMARY_TEXT, folder / SUMMARY_JSON
        write_atomic(text, self.report_text().encode("utf-8"))
        payload = json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"
        write_atomic(data, payload.encode("utf-8"))
        return text, data


def _line(o: Outcome) -> str:
    name = o.name.replace("\n", " ").replace("\r", " ")[:80]
    shown = f" {name!r}" if name else ""
    return f"  {o.table} {o.sys_id}{shown}: {o.detail}"
