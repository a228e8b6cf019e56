"""What preview finds in a retrieved update set: problems, verdicts, and whether it may commit.

Pure data. A problem is *blocking* (commit is refused whatever the operator says) or
*acceptable* (``updateset commit --accept-remote`` accepts it). Which kinds block
depends on whether the set carries Circle-of-Trust material (see :func:`is_blocking`).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..signing import SignatureRecord


class ManifestVerdict(enum.StrEnum):
    """The verdict on a set's manifest signature (DESIGN §4)."""

    VALID = "valid"
    INVALID = "invalid"
    EXPIRED = "expired"
    MISSING = "missing"
    MISMATCH = "entry set mismatch"


# Problem kinds. Stable codes: stored in sys_update_preview_problem.type and shown by --json.
MANIFEST = "manifest"
BATCH = "batch"
PARSE = "parse"
UNKNOWN_TABLE = "unknown_table"
UNKNOWN_FIELD = "unknown_field"
TABLE_CONFLICT = "table_conflict"
COLLISION = "collision"
MISSING_REFERENCE = "missing_reference"
SIGNATURE = "signature"
CERTIFICATE = "certificate"

_ALWAYS_BLOCKING = frozenset(
    {MANIFEST, BATCH, PARSE, UNKNOWN_TABLE, UNKNOWN_FIELD, TABLE_CONFLICT, CERTIFICATE}
)
_BLOCKING_IN_COT = frozenset({SIGNATURE, MISSING_REFERENCE})


def is_blocking(kind: str, cot: bool) -> bool:
    """True when a problem of *kind* can never be accepted (in a CoT set when *cot*)."""
    return kind in _ALWAYS_BLOCKING or (cot and kind in _BLOCKING_IN_COT)


@dataclass(frozen=True)
class Problem:
    """One problem; ``entry`` is the entry's sys_id, or "" for the whole set."""

    entry: str
    type: str
    description: str
    blocking: bool

    def to_dict(self) -> dict[str, object]:
        return {
            "entry": self.entry,
            "type": self.type,
            "description": self.description,
            "blocking": self.blocking,
        }


@dataclass(frozen=True)
class ManifestResult:
    """The manifest verdict, its reason ("" when valid) and the certificate that signed it."""

    verdict: ManifestVerdict
    reason: str = ""
    certificate: str | None = None
    signed_at: str | None = None
    expires_at: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "verdict": self.verdict.value,
            "reason": self.reason,
            "certificate": self.certificate,
            "signed_at": self.signed_at,
            "expires_at": self.expires_at,
        }


@dataclass(frozen=True)
class EntryResult:
    """One entry: its record-signature verdict (signable tables only), certificate status
    (``sys_certificate`` entries only) and problems."""

    sys_id: str
    table: str
    target_sys_id: str
    action: str
    verdict: str | None = None
    reasons: tuple[str, ...] = ()
    certificate: str | None = None
    problems: tuple[Problem, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "sys_id": self.sys_id,
            "table": self.table,
            "target_sys_id": self.target_sys_id,
            "action": self.action,
            "verdict": self.verdict,
            "reasons": list(self.reasons),
            "certificate": self.certificate,
            "problems": [p.to_dict() for p in self.problems],
        }


@dataclass(frozen=True)
class ParsedEntry:
    """An entry ready to apply: parsed once by preview, reused by commit.

    ``exists`` says the target is stored locally now; ``same_as`` names a local
    certificate with the same fingerprint under another sys_id (nothing to write);
    ``friend`` marks a certificate that joins the trusted friends list on commit;
    ``stored`` says the entry's row holds these fields as JSON (``fields`` column), so
    commit may copy them in SQL.
    """

    sys_id: str
    table: str
    target_sys_id: str
    action: str
    fields: Mapping[str, str | None]
    signature: SignatureRecord | None = None
    exists: bool = False
    same_as: str | None = None
    friend: bool = False
    stored: bool = False


@dataclass(frozen=True)
class PreviewResult:
    """Everything preview found in one retrieved set (and, for a batch, in its children)."""

    set_id: str
    name: str
    origin_instance: str
    state: str
    cot: bool
    manifest: ManifestResult
    entries: tuple[EntryResult, ...]
    problems: tuple[Problem, ...]
    """Every problem of this set: set-wide ones first, then each entry's."""
    children: tuple[PreviewResult, ...] = ()
    parsed: tuple[ParsedEntry, ...] = field(default=(), repr=False, compare=False)

    def all_problems(self) -> tuple[Problem, ...]:
        return self.problems + tuple(p for c in self.children for p in c.all_problems())

    @property
    def blocking(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.all_problems() if p.blocking)

    @property
    def acceptable(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.all_problems() if not p.blocking)

    @property
    def entry_count(self) -> int:
        return len(self.entries) + sum(c.entry_count for c in self.children)

    def committable(self, accept_remote: bool) -> bool:
        return not self.blocking and (accept_remote or not self.acceptable)

    def summary(self) -> str:
        """One line: what preview found and what commit will do."""
        blocking, acceptable = len(self.blocking), len(self.acceptable)
        kind = "Circle-of-Trust set" if self.cot else "update set"
        head = (
            f"{kind} {self.name!r}: {self.entry_count} entries, manifest "
            f"{self.manifest.verdict.value}, {blocking} blocking and {acceptable} acceptable "
            "problem(s)"
        )
        if blocking:
            return head + ": commit is refused until the set is fixed on its source instance"
        if acceptable:
            return head + ": commit needs --accept-remote"
        return head + ": ready to commit"

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.head_dict(),
            "entries": [e.to_dict() for e in self.entries],
            "children": [c.to_dict() for c in self.children],
        }

    def write_json(self, write: Callable[[str], object]) -> None:
        """:meth:`to_dict` as compact JSON with sorted keys, written an entry at a time (a
        20,000-entry report is never held as one text)."""
        head = self.head_dict()
        write("{")
        for i, key in enumerate(sorted([*head, "children", "entries"])):
            write(("," if i else "") + json.dumps(key) + ":")
            if key == "entries":
                write("[")
                for j, entry in enumerate(self.entries):
                    write(("," if j else "") + _compact(entry.to_dict()))
                write("]")
            elif key == "children":
                write("[")
                for j, child in enumerate(self.children):
                    write("," if j else "")
                    child.write_json(write)
                write("]")
            else:
                write(_compact(head[key]))
        write("}")

    def head_dict(self) -> dict[str, Any]:
        """:meth:`to_dict` without ``entries`` and ``children``."""
        return {
            "sys_id": self.set_id,
            "name": self.name,
            "origin_instance": self.origin_instance,
            "state": self.state,
            "circle_of_trust": self.cot,
            "manifest": self.manifest.to_dict(),
            "problems": [p.to_dict() for p in self.problems],
            "blocking": len(self.blocking),
            "acceptable": len(self.acceptable),
            "committable": self.committable(False),
            "committable_with_accept_remote": self.committable(True),
            "summary": self.summary(),
        }

    def as_cot(self) -> PreviewResult:
        """This result judged as part of a Circle-of-Trust batch (a batch is CoT when any
        part is): its manifest becomes required and signature problems block."""
        if self.cot:
            return self
        entries = tuple(
            replace(e, problems=tuple(_as_cot(p) for p in e.problems)) for e in self.entries
        )
        set_wide = [_as_cot(p) for p in self.problems if p.entry == ""]
        if self.manifest.verdict is ManifestVerdict.MISSING:
            set_wide.append(missing_manifest_problem())
        problems = tuple(set_wide) + tuple(p for e in entries for p in e.problems)
        return replace(self, cot=True, entries=entries, problems=problems)


def _compact(value: object) -> str:
    return json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))


def _as_cot(problem: Problem) -> Problem:
    return replace(problem, blocking=is_blocking(problem.type, True))


def missing_manifest_problem() -> Problem:
    return Problem(
        "",
        MANIFEST,
        "the set carries Circle-of-Trust material but no manifest signature: export it again "
        "from the trusted instance, which signs the manifest with cm_code_attest",
        True,
    )
