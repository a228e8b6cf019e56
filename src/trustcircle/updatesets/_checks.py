"""The preview checklist of a retrieved update set (DESIGN §4 and §5). Pure: no I/O, no clock.

``_parsing.parse_set`` (step 1) and :func:`check_sets` (the rest) judge a set against
a snapshot of the local facts it needs (:class:`LocalFacts`) at a given time, in order:

1. Payloads (§5): each entry's payload is parsed once and must hold the record the
   entry names, of a table this instance knows, with fields that table has;
   signature records and certificates must parse. Otherwise: blocking.
2. Circle-of-Trust material (§4): certificates, policy statements, revocation
   requests, signatures of purpose "Circle of Trust", or anything replacing such a
   local record, make it a CoT set.
3. Certificate trust (§4): carried certificates chain to the trust anchors now,
   through carried or local intermediates; revoked friends are never trusted.
4. Manifest (§4): valid / invalid / expired / missing / entry set mismatch, judged
   over the header and entries present. Blocking unless valid; missing blocks only
   a CoT set.
5. Local state (§5): a target stored here in another table blocks; a local record
   changed after the set was made, with other values, collides (acceptable).
6. References: a signature's record and certificate are in the set or stored here.
7. Record signatures (§4): every record of a signable table the set writes is judged
   with the set's and the local signatures (two threads: verification releases the GIL).
   A valid revocation request is judged again with the trusted friends' trust only: it
   must be signed by a current friend of this instance (commit applies what this says).
8. Certificates: every carried certificate must be trusted (or a chaining CA), and
   carried once: two entries writing one certificate block.

Signature, reference and collision problems are acceptable in other sets and, but for
collisions, blocking in a CoT set (:func:`~._results.is_blocking`).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography import x509

from .._types import Fingerprint
from ..crypto import ChainValidator
from ..platform.rows import CERTIFICATE_TABLE
from ..signing import (
    CIRCLE_OF_TRUST,
    REVOCATION_CONFIG,
    SIGNATURE_TABLE,
    CertTrust,
    Receipts,
    RecordVerifier,
    SignatureConfig,
    SignatureRecord,
    Verdict,
)
from . import _results as r
from ._parsing import ParsedSet, Work
from ._trust import carried_trust, judge_manifest
from ._verdicts import Job, signature_problem, verify_all
from .manifest import ManifestEntry
from .xmlformat import (
    ACTION_DELETE,
    ACTION_INSERT_OR_UPDATE,
    ManifestSignature,
    UpdateSetHeader,
)

POLICY_TABLE = "cot_policy_statement"
REVOCATION_TABLE = REVOCATION_CONFIG.table
COT_TABLES = frozenset({CERTIFICATE_TABLE, POLICY_TABLE, REVOCATION_TABLE})
"""Tables whose every record is Circle-of-Trust material (besides CoT signatures)."""
Fields = Mapping[str, str | None]


@dataclass(frozen=True)
class LocalRecord:
    """A record stored here under a sys_id the set touches."""

    table: str
    updated_on: str  # "" for tables that keep no modification time
    fields: Fields
    cot: bool = False  # Circle-of-Trust material: a certificate, policy statement or CoT signature


@dataclass(frozen=True)
class LocalFacts:
    """What the checker needs to know about this instance, read in one transaction."""

    records: Mapping[str, LocalRecord]
    """By sys_id: every local record the set targets or a carried signature names."""
    signatures: Mapping[tuple[str, str], Sequence[SignatureRecord]]
    """Local signatures of the set's targets, by (table, document_id)."""
    certificates: Mapping[Fingerprint, CertTrust]
    """Every local signing certificate and whether it chains to an anchor now."""
    certificate_ids: Mapping[str, str]
    """Fingerprint → sys_id of every local certificate record."""
    intermediates: Sequence[x509.Certificate]
    validator: ChainValidator
    revoked: frozenset[str]
    configs: Mapping[str, SignatureConfig]
    friends: frozenset[str] = frozenset()
    """Fingerprints of the listed, unrevoked trusted friends."""


@dataclass(frozen=True)
class SetInput:
    """One retrieved set to check: its header, state, manifest signature and parsed entries."""

    header: UpdateSetHeader
    state: str
    signature: ManifestSignature | None
    parsed: ParsedSet


def check_sets(
    parts: Sequence[SetInput],
    facts: LocalFacts,
    now: dt.datetime,
    *,
    for_commit: bool = False,
    receipts: Receipts | None = None,
) -> list[r.PreviewResult]:
    """Steps 2 to 8 of the checklist (module doc) on one set, or on the parts of a batch.

    The parts of a batch are judged together: a certificate, a signature or a record
    carried by one part counts for all (an export splits them by entry sys_id), and
    the batch is a CoT set when any part is; each part's manifest covers its own
    entries. *facts* must cover every part's ``targets`` and ``documents``. With
    *for_commit*, each result also carries its parsed entries, ready to apply; with
    *receipts*, step 7 skips the public-key work they vouch for and records its own.
    """
    works = [p.parsed.work for p in parts]
    every = [w for work in works for w in work]
    cot = any([_is_cot_material(w, facts) for w in every])  # 2
    trust, status = _trust(every, facts, now)  # 3
    manifests = [  # 4
        judge_manifest(part.header, part.signature, _lines(work), trust, now)
        for part, work in zip(parts, works, strict=True)
    ]
    for part, work in zip(parts, works, strict=True):  # 5
        for w in work:
            _local_state(w, part.header, facts)
    _references(every, facts, trust)  # 6
    judged = _verify_records(every, facts, trust, now, receipts)  # 7
    _revocations(judged, facts, trust, now, receipts)  # 7b
    first_entry: dict[str, str] = {}
    for w in every:  # 8
        if w.carried is not None and w.entry.action == ACTION_INSERT_OR_UPDATE:
            first = first_entry.setdefault(w.carried.fingerprint, w.entry.sys_id)
            if first != w.entry.sys_id:
                w.problem(
                    r.CERTIFICATE,
                    f"certificate {w.carried.fingerprint[:16]}... is carried twice (also by "
                    f"entry {first}): a set carries each certificate once; export it again",
                )
            w.certificate = status[w.entry.sys_id]
            if w.certificate not in ("trusted", "intermediate"):
                w.problem(
                    r.CERTIFICATE,
                    f"certificate {w.carried.fingerprint[:16]}... is not trusted here "
                    f"({w.certificate}): it must chain to a trust anchor of this instance, be "
                    "current and not revoked",
                )
    return [
        _result(part.header, part.state, cot, manifest, work, for_commit)
        for part, manifest, work in zip(parts, manifests, works, strict=True)
    ]


def _lines(work: Sequence[Work]) -> list[ManifestEntry]:
    return [ManifestEntry(*w.entry) for w in work]


# -- 2. Circle-of-Trust material -----------------------------------------------------------


def _is_cot_material(w: Work, facts: LocalFacts) -> bool:
    e = w.entry
    local = facts.records.get(e.target_sys_id)
    purpose = w.signature.purpose if w.signature else (w.fields or {}).get("purpose")
    w.cot = (
        e.table in COT_TABLES
        or (e.table == SIGNATURE_TABLE and _payload_purpose(w, purpose) == CIRCLE_OF_TRUST)
        or (local is not None and local.cot)
    )
    return w.cot


def _payload_purpose(w: Work, purpose: str | None) -> str | None:
    if purpose is None and w.names_cot:
        return CIRCLE_OF_TRUST  # unparsable, but it names the purpose: fail closed
    return purpose


# -- 3. certificate trust ------------------------------------------------------------------


def _trust(
    work: Sequence[Work], facts: LocalFacts, now: dt.datetime
) -> tuple[dict[Fingerprint, CertTrust], dict[str, str]]:
    carried = [w.carried for w in work if w.carried and w.entry.action == ACTION_INSERT_OR_UPDATE]
    mine, status = carried_trust(carried, facts.validator, facts.intermediates, facts.revoked, now)
    trust: dict[Fingerprint, CertTrust] = {}
    for fp, t in facts.certificates.items():
        trust[fp] = CertTrust(t.public_key, False, "revoked") if fp in facts.revoked else t
    for fp, t in mine.items():
        if fp not in trust or (t.trusted and not trust[fp].trusted):
            trust[fp] = t
    return trust, status


# -- 5, 6. local state and references ------------------------------------------------------


def _local_state(w: Work, header: UpdateSetHeader, facts: LocalFacts) -> None:
    e = w.entry
    if w.carried is not None:
        other = facts.certificate_ids.get(w.carried.fingerprint)
        w.same_as = other if other not in (None, e.target_sys_id) else None
    local = facts.records.get(e.target_sys_id)
    if local is None:
        return
    if local.table != e.table:
        w.problem(
            r.TABLE_CONFLICT,
            f"this sys_id is a {local.table} record here: refusing to replace a record of "
            "another table",
        )
        return
    w.exists = True
    if not local.updated_on or local.updated_on <= header.created_on:
        return
    if e.action == ACTION_DELETE:
        w.problem(
            r.COLLISION,
            f"the set deletes a record changed here at {local.updated_on}, after the set was "
            f"made ({header.created_on})",
        )
    elif (mine := w.values()) is not None and _values(local.fields) != _values(mine):
        w.problem(
            r.COLLISION,
            f"the record was changed here at {local.updated_on}, after the set was made "
            f"({header.created_on}), and holds other values: committing overwrites them",
        )


def _values(fields: Fields) -> dict[str, str]:
    return {k: v for k, v in fields.items() if v is not None}


def _references(
    work: Sequence[Work], facts: LocalFacts, trust: Mapping[Fingerprint, CertTrust]
) -> None:
    written = {
        w.entry.target_sys_id: w.entry.table
        for w in work
        if w.entry.action == ACTION_INSERT_OR_UPDATE and w.fields is not None
    }
    for w in work:
        sig = w.signature
        if sig is None or w.entry.action != ACTION_INSERT_OR_UPDATE:
            continue
        local = facts.records.get(sig.document_id)
        if written.get(sig.document_id) != sig.table_name and (
            local is None or local.table != sig.table_name
        ):
            w.problem(
                r.MISSING_REFERENCE,
                f"the signature is for {sig.table_name} {sig.document_id}, which is neither in "
                "the set nor stored here",
            )
        if sig.certificate not in trust:
            w.problem(
                r.MISSING_REFERENCE,
                f"the signature's certificate {sig.certificate[:16]}... is neither in the set "
                "nor known here: export the set with its verification certificates",
            )


# -- 7. record signatures ------------------------------------------------------------------


def _verify_records(
    work: Sequence[Work],
    facts: LocalFacts,
    trust: Mapping[Fingerprint, CertTrust],
    now: dt.datetime,
    receipts: Receipts | None,
) -> list[tuple[Work, Job]]:
    """Judge every record a signature configuration covers; each with what it was judged on."""
    replaced = {w.entry.target_sys_id for w in work if w.entry.table == SIGNATURE_TABLE}
    carried: dict[tuple[str, str], list[SignatureRecord]] = defaultdict(list)
    for w in work:
        if w.signature is not None and w.entry.action == ACTION_INSERT_OR_UPDATE:
            carried[(w.signature.table_name, w.signature.document_id)].append(w.signature)
    judged: list[Work] = []
    jobs: list[Job] = []
    for w in work:
        e = w.entry
        if e.action != ACTION_INSERT_OR_UPDATE or w.fields is None or e.table not in facts.configs:
            continue
        key = (e.table, e.target_sys_id)
        local = [s for s in facts.signatures.get(key, ()) if s.sys_id not in replaced]
        judged.append(w)
        jobs.append(Job(e.table, e.target_sys_id, w.fields, carried.get(key, []) + local))
    # Where receipts vouch for (nearly) every signature, what is left is Python work under
    # the GIL, which a second thread only slows down.
    threads = 1 if receipts is not None and receipts.known >= len(jobs) else 2
    verifier = RecordVerifier(trust, facts.configs, now, receipts=receipts)
    outcomes = verify_all(jobs, verifier, threads)
    for w, outcome in zip(judged, outcomes, strict=True):
        if isinstance(outcome, str):
            w.problem(r.SIGNATURE, f"cannot be verified: {outcome}")
            continue
        w.verdict, w.reasons = outcome.verdict, outcome.reasons
        if outcome.verdict is not Verdict.VALID:
            w.problem(r.SIGNATURE, signature_problem(outcome))
    return list(zip(judged, jobs, strict=True))


def _revocations(
    judged: Sequence[tuple[Work, Job]],
    facts: LocalFacts,
    trust: Mapping[Fingerprint, CertTrust],
    now: dt.datetime,
    receipts: Receipts | None,
) -> None:
    """A valid revocation request is judged again with only the trusted friends' trust: a
    member of the circle, and only one, may revoke (the receipts spare the RSA work)."""
    requests = [(w, job) for w, job in judged if job.table == REVOCATION_TABLE]
    if not requests:
        return
    friends = {fp: t for fp, t in trust.items() if fp in facts.friends}
    verifier = RecordVerifier(friends, facts.configs, now, receipts=receipts)
    for w, job in requests:
        if w.verdict is not Verdict.VALID:
            continue  # step 7 said what is wrong
        by_friend = verifier.verify(
            job.table, job.document_id, job.fields, job.signatures, CIRCLE_OF_TRUST
        )
        if by_friend.verdict is not Verdict.VALID:
            w.problem(
                r.SIGNATURE,
                "the revocation request is not signed by a trusted friend of this instance "
                f"({', '.join(by_friend.reasons)}): only a trusted friend of this instance "
                "may revoke",
            )


# -- result --------------------------------------------------------------------------------


def _result(
    header: UpdateSetHeader,
    state: str,
    cot: bool,
    manifest: r.ManifestResult,
    work: Sequence[Work],
    for_commit: bool,
) -> r.PreviewResult:
    set_wide: list[r.Problem] = []
    if manifest.verdict is r.ManifestVerdict.MISSING:
        if cot:
            set_wide.append(r.missing_manifest_problem())
    elif manifest.verdict is not r.ManifestVerdict.VALID:
        set_wide.append(
            r.Problem("", r.MANIFEST, f"manifest {manifest.verdict.value}: {manifest.reason}", True)
        )
    entries: list[r.EntryResult] = []
    parsed: list[r.ParsedEntry] = []
    for w in work:
        e = w.entry
        problems = (
            tuple(r.Problem(e.sys_id, k, text, r.is_blocking(k, cot)) for k, text in w.found)
            if w.found
            else ()
        )
        entries.append(
            r.EntryResult(
                e.sys_id,
                e.table,
                e.target_sys_id,
                e.action,
                w.verdict.value if w.verdict else None,
                w.reasons,
                w.certificate,
                problems,
            )
        )
        if for_commit and w.fields is not None:
            parsed.append(
                r.ParsedEntry(
                    e.sys_id,
                    e.table,
                    e.target_sys_id,
                    e.action,
                    w.fields,
                    w.signature,
                    w.exists,
                    w.same_as,
                    friend=w.certificate == "trusted",
                    stored=w.stored,
                )
            )
    return r.PreviewResult(
        set_id=header.sys_id,
        name=header.name,
        origin_instance=header.origin_instance,
        state=state,
        cot=cot,
        manifest=manifest,
        entries=tuple(entries),
        problems=tuple(set_wide) + tuple(p for e in entries for p in e.problems),
        parsed=tuple(parsed),
    )
