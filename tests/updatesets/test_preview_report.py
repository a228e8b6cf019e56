"""The streamed JSON preview report is byte for byte the report as one JSON document."""

from __future__ import annotations

import json

from trustcircle.updatesets._results import (
    EntryResult,
    ManifestResult,
    ManifestVerdict,
    PreviewResult,
    Problem,
)


def _part(name: str, entries: int, children: tuple[PreviewResult, ...] = ()) -> PreviewResult:
    found = tuple(
        EntryResult(
            f"{i:032x}",
            "sysauto_script",
            f"{i + 7:032x}",
            "INSERT_OR_UPDATE",
            "valid" if i % 3 else "invalid",
            () if i % 3 else ("signature_mismatch",),
            None,
            () if i % 3 else (Problem(f"{i:032x}", "signature", "changed «after» signing", True),),
        )
        for i in range(entries)
    )
    return PreviewResult(
        set_id=f"{len(name):032x}",
        name=name,
        origin_instance="dev",
        state="loaded",
        cot=True,
        manifest=ManifestResult(ManifestVerdict.VALID, "", "ab" * 32, "2026-11-28T00:00:00Z"),
        entries=found,
        problems=tuple(p for e in found for p in e.problems),
        children=children,
    )


def test_streamed_report_equals_the_whole_document() -> None:
    batch = _part("batch", 0, (_part("batch [1/2]", 700), _part("batch [2/2]", 3), _part("x", 0)))
    pieces: list[str] = []
    batch.write_json(pieces.append)
    whole = json.dumps(batch.to_dict(), sort_keys=True, default=str, separators=(",", ":"))
    assert "".join(pieces) == whole
    assert len(pieces) > 700, "written an entry at a time"
