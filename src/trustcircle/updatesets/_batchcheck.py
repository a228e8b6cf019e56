"""Batches (DESIGN §5): a parent set and its children ``"<name> [i/k]"``, judged as one. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from . import _results as r
from ._batch import parse_child_name

MAX_PARTS = 10_000


def combine(parent: r.PreviewResult, children: Sequence[r.PreviewResult]) -> r.PreviewResult:
    """The batch's result: every part checked, the batch judged CoT when any part is."""
    if not children:
        return parent
    problems = _batch_problems(parent, children)
    cot = parent.cot or any(c.cot for c in children)
    if cot:
        parent = parent.as_cot()
        children = [c.as_cot() for c in children]
    ordered = sorted(children, key=lambda c: (parse_child_name(c.name) or ("", 0, 0))[1:])
    return replace(
        parent, cot=cot, problems=tuple(problems) + parent.problems, children=tuple(ordered)
    )


def standalone(result: r.PreviewResult) -> r.PreviewResult:
    """*result* of a set loaded on its own (no parent, no children), with a blocking
    problem when its name, which the manifest signs, says it is part i of k > 1 of a
    batch: someone emptied its ``parent`` (not signed), and a batch commits whole."""
    part = parse_child_name(result.name)
    if part is None or part[2] < 2 or result.children:
        return result
    base, i, k = part
    problem = r.Problem(
        "",
        r.BATCH,
        f"its signed name says it is part {i} of {k} of batch {base[:80]!r}, but it is loaded "
        "on its own (no parent): import the batch's parent file and every part, then commit "
        "the parent",
        True,
    )
    return replace(result, problems=(problem, *result.problems))


def _batch_problems(
    parent: r.PreviewResult, children: Sequence[r.PreviewResult]
) -> list[r.Problem]:
    out: list[str] = []
    if parent.entries:
        out.append("a batch parent carries no entries of its own, this one has some")
    counts: set[int] = set()
    seen: dict[int, str] = {}
    for child in children:
        part = parse_child_name(child.name)
        if part is None or part[0] != parent.name:
            out.append(
                f"child {child.set_id} is named {child.name[:80]!r}, not "
                f"'{parent.name[:80]} [i/k]': it does not belong to this batch"
            )
            continue
        _base, i, k = part
        counts.add(k)
        if not 1 <= i <= k <= MAX_PARTS:
            out.append(f"child {child.set_id} claims to be part {i} of {k}")
        elif i in seen:
            out.append(f"part {i} is loaded twice ({seen[i]} and {child.set_id})")
        seen.setdefault(i, child.set_id)
        if child.origin_instance != parent.origin_instance:
            out.append(
                f"child {child.set_id} comes from {child.origin_instance!r}, the parent from "
                f"{parent.origin_instance!r}"
            )
    if len(counts) > 1:
        out.append(f"the children disagree on the number of parts ({sorted(counts)})")
    elif counts:
        k = counts.pop()
        missing = [i for i in range(1, min(k, MAX_PARTS) + 1) if i not in seen]
        if missing:
            shown = ", ".join(str(i) for i in missing[:10])
            out.append(
                f"part(s) {shown} of {k} are not loaded: import every "
                f".part-<i>-of-{k}.xml file of the batch"
            )
    out.extend(_shared_targets(children))
    return [r.Problem("", r.BATCH, text, True) for text in out]


def _shared_targets(children: Sequence[r.PreviewResult]) -> list[str]:
    owner: dict[str, str] = {}
    for child in children:
        for entry in child.entries:
            other = owner.setdefault(entry.target_sys_id, child.set_id)
            if other != child.set_id:
                return [
                    f"record {entry.target_sys_id} is changed by two parts ({other} and "
                    f"{child.set_id}): a batch changes each record once"
                ]
    return []
