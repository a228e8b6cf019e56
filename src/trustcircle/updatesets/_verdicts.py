"""Step 7 of the preview checklist: record-signature verdicts (DESIGN §4) on two threads.

Verification releases the GIL in ``cryptography``, so two threads use two cores for
the expensive part; the verdict logic itself is :class:`~trustcircle.signing.RecordVerifier`.
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple

from ..errors import TrustcircleError
from ..signing import RecordVerifier, SignatureRecord, Verdict
from ..store.bulk import chunks

THREADS = 2
_CHUNK = 256


@dataclass(frozen=True, slots=True)
class Job:
    """One record to judge with the signatures gathered for it."""

    table: str
    document_id: str
    fields: Mapping[str, str | None]
    signatures: Sequence[SignatureRecord]


class Outcome(NamedTuple):
    """What step 7 keeps of a verification: the verdict and its reasons."""

    verdict: Verdict
    reasons: tuple[str, ...]


def verify_all(
    jobs: Sequence[Job], verifier: RecordVerifier, threads: int = THREADS
) -> list[Outcome | str]:
    """Each job's outcome, in order, or the message of why it cannot be judged."""
    parts = list(chunks(jobs, _CHUNK))
    if len(parts) <= 1 or threads <= 1:
        return [item for part in parts for item in _run(verifier, part)]
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="verify") as pool:
        done = pool.map(lambda part: _run(verifier, part), parts)
        return [item for outcomes in done for item in outcomes]


def _run(verifier: RecordVerifier, chunk: Sequence[Job]) -> list[Outcome | str]:
    out: list[Outcome | str] = []
    for job in chunk:
        try:
            v = verifier.verify(job.table, job.document_id, job.fields, job.signatures)
        except TrustcircleError as exc:
            out.append(exc.message)
        else:
            out.append(Outcome(v.verdict, v.reasons))
    return out


def signature_problem(v: Outcome) -> str:
    """One line saying what is wrong with a record whose verdict is not ``valid``."""
    reasons = ", ".join(v.reasons) or "no reason given"
    hint = {
        Verdict.MISSING: "sign it on the trusted instance and export it with its signature",
        Verdict.ORPHAN: "export the set with the signing certificate",
        Verdict.UNTRUSTED: "its certificate does not chain to a trust anchor of this instance",
    }.get(
        v.verdict,
        "the record or its signature changed after signing, or the signature belongs to "
        "another record",
    )
    return f"record signature {v.verdict.value} ({reasons}): {hint}"
