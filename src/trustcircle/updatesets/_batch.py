"""Batches: how a large update set splits into a parent and its children (pure logic).

A set with more than ``maximum`` entries exports as a parent (its own header, no
entries) and ``k`` children of at most ``maximum`` entries each, split in sys_id
order. Child ``i`` is named ``"<name> [i/k]"``, has the parent's sys_id as its
``parent``, a sys_id derived from the parent's (so re-exporting yields the same
children) and is written next to the parent file as ``<stem>.part-<i>-of-<k>.xml``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import UsageError
from .manifest import ManifestEntry
from .xmlformat import UpdateSetHeader

_CHILD_NAME = re.compile(r"(?P<name>.*) \[(?P<index>[1-9][0-9]*)/(?P<count>[1-9][0-9]*)\]")


@dataclass(frozen=True)
class Part:
    """One file of an export: its header, its manifest lines (sys_id order), its path."""

    header: UpdateSetHeader
    lines: tuple[ManifestEntry, ...]
    path: Path


def child_sys_id(parent: str, index: int, count: int) -> str:
    """The sys_id of child *index* of *count* of batch *parent* (stable across exports)."""
    seed = f"trustcircle.update-set-batch/v1:{parent}:{index}:{count}".encode()
    return hashlib.sha256(seed).hexdigest()[:32]


def child_name(name: str, index: int, count: int) -> str:
    return f"{name} [{index}/{count}]"


def parse_child_name(name: str) -> tuple[str, int, int] | None:
    """``(name, i, k)`` of a child named ``"<name> [i/k]"`` with 1 ≤ i ≤ k, else None."""
    found = _CHILD_NAME.fullmatch(name)
    if found is None:
        return None
    index, count = int(found["index"]), int(found["count"])
    if index > count:
        return None
    return found["name"], index, count


def child_path(out: Path, index: int, count: int) -> Path:
    """``x.xml`` → ``x.part-<index>-of-<count>.xml`` in the same folder."""
    stem = out.stem if out.suffix.lower() == ".xml" else out.name
    return out.with_name(f"{stem}.part-{index}-of-{count}.xml")


def plan_parts(
    header: UpdateSetHeader, lines: Sequence[ManifestEntry], maximum: int, out: Path
) -> list[Part]:
    """The files of an export of *header* with *lines*: one, or a parent and its children."""
    if maximum < 1:
        raise UsageError(f"maximum update size {maximum} is not a positive number of entries")
    ordered = tuple(sorted(lines, key=lambda line: line.sys_id))
    if len(ordered) <= maximum:
        return [Part(header, ordered, out)]
    count = -(-len(ordered) // maximum)
    parts = [Part(header, (), out)]
    for index in range(1, count + 1):
        child = replace(
            header,
            sys_id=child_sys_id(header.sys_id, index, count),
            name=child_name(header.name, index, count),
            parent=header.sys_id,
        )
        chunk = ordered[(index - 1) * maximum : index * maximum]
        parts.append(Part(child, chunk, child_path(out, index, count)))
    return parts
