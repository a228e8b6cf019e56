"""The batch signature generator: sign the records a scan CSV lists, in update-set batches.

Trusted instances only. Every listed row is first checked in one read-only operation
(the record still exists in that table, its table has a signature configuration with a
purpose the generator may use, it is not validly signed already); the rows that pass
are signed with ``cm_code_signing`` in batches of at most
``com.snc.csf.maximum_update_size`` records. Each batch is its own operation (one
transaction, one audit entry) whose signature records are captured into a new local
update set ``Batch signatures <n>/<k>`` (complete, ready to export; the records
themselves travel in their own update sets). Purpose: ``Code Signing``, or ``Circle of
Trust`` where the table's configuration allows only that (certificates), then with the
validity window as expiry. Policy statements are never batch-signed: only the Turn
On/Off jobs make them. A batch that fails is rolled back whole and the run stops.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from .._time import format_ts
from .._types import SysId
from ..cot.policy import STATEMENT_TABLE
from ..errors import TrustcircleError
from ..platform import kmf, properties, rows, signatures
from ..platform.context import Instance, Operation
from ..signing import (
    CIRCLE_OF_TRUST,
    CODE_SIGNING,
    SIGNATURE_FIELDS,
    SIGNATURE_TABLE,
    RecordVerifier,
    SignatureConfig,
    SignatureRecord,
    Verdict,
    sign_record,
)
from ..store.bulk import chunks
from ..store.models import Certificate, RecordSignatureRow, SysRecord, UpdateSet
from ..updatesets import ACTION_INSERT_OR_UPDATE
from ..updatesets.export import ATTEST_MODULE, export_set
from ..updatesets.local import COMPLETE, add_entry, create_set
from .batchreport import FAILED, SIGNED, SKIPPED, BatchSet, BatchSummary, Outcome
from .csvin import ListedRow
from .scan import ProgressFn, record_name, stored_fields

ACTION = "health.batch_sign"
SIGNING_MODULE = "cm_code_signing"
SET_NAME = "Batch signatures {n}/{k}"
_IN_CHUNK = 500

OpenOperation = Callable[[str, bool], AbstractContextManager[Operation]]
"""``open_op(target, write)`` → one authorised operation for action ``health.batch_sign``."""

Fields = dict[str, str | None]


def set_file_name(n: int, k: int) -> str:
    return f"batch-signatures-{n}-of-{k}.xml"


class _Progress:
    """Counts rows dealt with and reports them (done, total)."""

    def __init__(self, total: int, report: ProgressFn | None) -> None:
        self.done = 0
        self.total = total
        self._report = report or (lambda _done, _total: None)

    def to(self, done: int) -> None:
        self.done = done
        self._report(done, self.total)

    def tick(self) -> None:
        self.to(self.done + 1)


def batch_sign(
    instance: Instance,
    open_op: OpenOperation,
    listed: Sequence[ListedRow],
    *,
    out_dir: Path | None = None,
    progress: ProgressFn | None = None,
) -> BatchSummary:
    """Sign the records *listed* (see the module doc); export each set into *out_dir*."""
    tracker = _Progress(len(listed), progress)
    with open_op("plan", False) as op:
        op.instance.require_trusted("run the batch signature generator")
        started = op.ts
        kmf.signing_key(op, SIGNING_MODULE)  # refuse now, not at the first batch
        if out_dir is not None:
            kmf.signing_key(op, ATTEST_MODULE)  # the exports are signed with it
        maximum = properties.get_int(op.session, properties.MAX_UPDATE_SIZE)
        outcomes, todo = _plan(op, listed)
    tracker.to(len(outcomes))
    k = math.ceil(len(todo) / maximum)
    sets: list[BatchSet] = []
    stop: str | None = None
    for n in range(1, k + 1):
        batch = todo[(n - 1) * maximum : n * maximum]
        base = tracker.done
        if stop is not None:
            outcomes.update(_failed(batch, f"not attempted: {stop}"))
        else:
            try:
                made, results = _sign_batch(open_op, batch, n, k, out_dir, tracker.tick)
            except TrustcircleError as exc:
                stop = f"batch {n}/{k} failed: {exc.message}"
                outcomes.update(_failed(batch, exc.message))
            else:
                outcomes.update(results)
                if made is not None:
                    sets.append(made)
        tracker.to(base + len(batch))
    ordered = tuple(outcomes[(r.table, r.sys_id)] for r in listed)
    finished = format_ts(instance.clock())
    return BatchSummary(instance.name, started, finished, maximum, ordered, tuple(sets))


# -- planning ----------------------------------------------------------------------------


def _plan(
    op: Operation, listed: Sequence[ListedRow]
) -> tuple[dict[tuple[str, str], Outcome], list[tuple[ListedRow, str]]]:
    """Skip what cannot or need not be signed; return the outcomes so far and the rest."""
    configs = signatures.configurations(op.session)
    verifier = signatures.verifier(op.session, op.now)
    outcomes: dict[tuple[str, str], Outcome] = {}
    todo: list[tuple[ListedRow, str]] = []
    for chunk in chunks(listed, _IN_CHUNK):
        found = _read_records(op.session, chunk)
        sigs = _signatures_of(op.session, chunk)
        for row in chunk:
            key = (row.table, row.sys_id)
            where = found.get(row.sys_id)
            fields = where[1] if where is not None and where[0] == row.table else None
            reason = _skip_reason(row, configs, where)
            if reason is None and fields is not None:
                reason = _already_valid(verifier, row, fields, sigs.get(key, []))
            name = record_name(row.table, fields) or row.name
            if reason is not None:
                outcomes[key] = Outcome(row.table, row.sys_id, name, SKIPPED, reason)
            else:
                todo.append((row, _purpose(configs[row.table]) or CODE_SIGNING))
    return outcomes, todo


def _already_valid(
    verifier: RecordVerifier, row: ListedRow, fields: Fields, sigs: list[SignatureRecord]
) -> str | None:
    try:
        result = verifier.verify(row.table, SysId(row.sys_id), fields, sigs)
    except TrustcircleError:
        return None  # not judgeable as valid: sign it
    if result.verdict is Verdict.VALID and result.valid_signature is not None:
        return f"already validly signed (signature {result.valid_signature.sys_id})"
    return None


def _skip_reason(
    row: ListedRow, configs: Mapping[str, SignatureConfig], where: tuple[str, Fields] | None
) -> str | None:
    if row.table == SIGNATURE_TABLE:
        return "signature records are not signed themselves"
    if row.table == STATEMENT_TABLE:
        return "policy statements are signed only by exporting the Turn On/Off jobs"
    config = configs.get(row.table)
    if config is None:
        return f"table {row.table} has no active signature configuration on this instance"
    if _purpose(config) is None:
        return (
            f"table {row.table} allows neither {CODE_SIGNING!r} nor {CIRCLE_OF_TRUST!r} "
            "signatures: sign it with `record sign`"
        )
    if where is None:
        return "the record no longer exists (an orphan signature): nothing to sign"
    if where[0] != row.table:
        return f"sys_id {row.sys_id} is a {where[0]} record, not {row.table}: fix the CSV"
    return None


def _purpose(config: SignatureConfig) -> str | None:
    if CODE_SIGNING in config.purposes:
        return CODE_SIGNING
    return CIRCLE_OF_TRUST if CIRCLE_OF_TRUST in config.purposes else None


def _read_records(session: Session, chunk: Sequence[ListedRow]) -> dict[str, tuple[str, Fields]]:
    """sys_id → (table, fields) of the listed records that exist (any table), two queries."""
    ids = sorted({r.sys_id for r in chunk})
    found: dict[str, tuple[str, Fields]] = {}
    stmt = select(SysRecord.sys_id, SysRecord.table_name, SysRecord.fields).where(
        SysRecord.sys_id.in_(ids)
    )
    for sys_id, table, text in session.execute(stmt):
        found[sys_id] = (table, dict(stored_fields(text)))
    for cert in session.scalars(select(Certificate).where(Certificate.sys_id.in_(ids))):
        found[cert.sys_id] = (
            rows.CERTIFICATE_TABLE,
            {k: getattr(cert, k) for k in rows.CERTIFICATE_FIELDS},
        )
    return found


def _signatures_of(
    session: Session, chunk: Sequence[ListedRow]
) -> dict[tuple[str, str], list[SignatureRecord]]:
    ids = sorted({r.sys_id for r in chunk})
    grouped: dict[tuple[str, str], list[SignatureRecord]] = {}
    stmt = select(RecordSignatureRow).where(RecordSignatureRow.document_id.in_(ids))
    for sig_row in session.scalars(stmt):
        try:
            sig = signatures.from_row(sig_row)
        except TrustcircleError:
            continue
        grouped.setdefault((sig.table_name, sig.document_id), []).append(sig)
    return grouped


def _failed(batch: Sequence[tuple[ListedRow, str]], reason: str) -> dict[tuple[str, str], Outcome]:
    return {
        (r.table, r.sys_id): Outcome(r.table, r.sys_id, r.name, FAILED, reason) for r, _ in batch
    }


# -- signing -----------------------------------------------------------------------------


def _sign_batch(
    open_op: OpenOperation,
    batch: Sequence[tuple[ListedRow, str]],
    n: int,
    k: int,
    out_dir: Path | None,
    tick: Callable[[], None],
) -> tuple[BatchSet | None, dict[tuple[str, str], Outcome]]:
    name = SET_NAME.format(n=n, k=k)
    results: dict[tuple[str, str], Outcome] = {}
    with open_op(name, True) as op:
        op.instance.require_trusted("sign records")
        key = kmf.signing_key(op, SIGNING_MODULE)
        configs = signatures.configurations(op.session)
        window = properties.get_int(op.session, properties.VALIDITY_WINDOW)
        set_row = create_set(
            op.session,
            name,
            op.actor.name,
            op.ts,
            state=COMPLETE,
            description=f"Signatures made by the batch signature generator at {op.ts}",
        )
        signed = 0
        for chunk in chunks(batch, _IN_CHUNK):
            found = _read_records(op.session, [r for r, _ in chunk])
            dates: dict[tuple[str, str], dt.datetime] = {}
            for table in {r.table for r, _ in chunk}:
                ids = [r.sys_id for r, _ in chunk if r.table == table]
                for sid, at in signatures.signing_times(
                    op.session, table, ids, key.certificate, op.now
                ).items():
                    dates[(table, sid)] = at
            for row, purpose in chunk:
                where = found.get(row.sys_id)
                fields = where[1] if where is not None and where[0] == row.table else None
                name_shown = record_name(row.table, fields) or row.name
                if fields is None or row.table not in configs:
                    results[(row.table, row.sys_id)] = Outcome(
                        row.table, row.sys_id, name_shown, FAILED,
                        "the record or its signature configuration was removed during the run",
                    )  # fmt: skip
                    tick()
                    continue
                try:
                    sig = sign_record(
                        table=row.table,
                        document_id=SysId(row.sys_id),
                        fields=fields,
                        config=configs[row.table],
                        purpose=purpose,
                        key=key.key,
                        algorithm=key.algorithm,
                        certificate=key.certificate,
                        signed_at=dates[(row.table, row.sys_id)],
                        expires_at=_expiry(op.now, purpose, window),
                    )
                except TrustcircleError as exc:
                    results[(row.table, row.sys_id)] = Outcome(
                        row.table, row.sys_id, name_shown, FAILED, exc.message
                    )
                    tick()
                    continue
                _store(op, set_row, sig)
                signed += 1
                results[(row.table, row.sys_id)] = Outcome(
                    row.table, row.sys_id, name_shown, SIGNED, purpose,
                    sig.sys_id, set_row.sys_id, n,
                )  # fmt: skip
                tick()
        if signed == 0:
            op.session.delete(set_row)
            op.target, op.detail = name, {"signed": 0}
            return None, results
        files: tuple[str, ...] = ()
        if out_dir is not None:
            exported = export_set(op, set_row.sys_id, out_dir / set_file_name(n, k))
            files = tuple(str(f.path) for f in exported.files)
        op.target = f"{name} ({set_row.sys_id})"
        op.detail = {"update_set": set_row.sys_id, "signed": signed, "failed": len(batch) - signed}
    made = BatchSet(n, k, set_row.sys_id, name, signed, files)
    return made, results


def _expiry(now: dt.datetime, purpose: str, window: int) -> dt.datetime | None:
    """Circle-of-Trust material expires after the validity window; code signatures do not."""
    return now + dt.timedelta(seconds=window) if purpose == CIRCLE_OF_TRUST else None


def _store(op: Operation, set_row: UpdateSet, sig: SignatureRecord) -> None:
    op.session.add(signatures.to_row(sig))
    fields = sig.to_fields()
    add_entry(
        op.session,
        set_row,
        SIGNATURE_TABLE,
        sig.sys_id,
        ACTION_INSERT_OR_UPDATE,
        {k: fields[k] for k in SIGNATURE_FIELDS if k != "sys_id"},
        op.actor.name,
        op.ts,
    )
