"""Self-contained payloads for script-bearing topics, and certificate bundles.

A script names the record (``{"data_source": "<sys_id or name>", "parameters": {...}}``);
the instance expands it to the issue-4 payload: the record with its current fields, its
signature records and the certificates (signing leaf and intermediates) a MID needs to
verify the record itself against its own pinned anchors. The MID trusts none of it: an
instance that lies changes nothing a MID runs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import NotFoundError, UsageError
from ..platform import records
from ..platform.records import Record
from ..platform.signatures import signatures_of
from ..store.models import Certificate

SCRIPT_TOPICS: Mapping[str, tuple[str, str]] = {
    "PythonScript": ("mid_script_include", "script_include"),
    "JDBCProbe": ("sys_data_source", "data_source"),
    "RESTProbe": ("sys_rest_message", "rest_message"),
}
"""Script-bearing topic → (table of its signed record, the payload key naming it)."""

MAX_CERTIFICATES = 16
MAX_CHAIN = 8
_SYS_ID = re.compile(r"[0-9a-f]{32}")


def find_record(session: Session, table: str, ref: str) -> Record:
    """The *table* record whose sys_id, or else exact ``name``, is *ref*."""
    if not isinstance(ref, str) or not ref or len(ref) > 200:
        raise UsageError(f"a {table} record is named by its sys_id or name (1-200 characters)")
    if _SYS_ID.fullmatch(ref):
        found = records.find(session, table, ref)
        if found is not None:
            return found
    matches = records.query(session, table, {"name": ref}, limit=2)
    if not matches:
        raise NotFoundError(f"no {table} record with sys_id or name {ref[:80]!r}")
    if len(matches) > 1:
        raise UsageError(f"several {table} records are named {ref[:80]!r}: name one by sys_id")
    return matches[0]


def expand(session: Session, topic: str, payload: Mapping[str, object]) -> str:
    """The issue-4 JSON payload of a script-bearing *topic* from a script's reference."""
    table, key = SCRIPT_TOPICS[topic]
    unknown = sorted(set(payload) - {key, "parameters"})
    if unknown:
        raise UsageError(f"{topic} payload takes {key!r} and 'parameters', not {unknown[0][:40]!r}")
    ref = payload.get(key)
    if not isinstance(ref, str):
        raise UsageError(f"{topic} payload must name its {table} record: {{{key!r}: sys_id}}")
    parameters = payload.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise UsageError(f"{topic} parameters must be a JSON object")
    record = find_record(session, table, ref)
    sigs = signatures_of(session, table, record.sys_id)
    document = {
        "record": {"table": table, "sys_id": record.sys_id, "fields": record.fields},
        "signatures": [s.to_fields() for s in sorted(sigs, key=lambda s: s.sys_id)],
        "certificates": certificate_bundle(session, (s.certificate for s in sigs)),
        "parameters": parameters,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def certificate_bundle(session: Session, fingerprints: Iterable[str]) -> list[str]:
    """PEMs of the certificates named by *fingerprints* and of their issuing
    intermediates known here (never anchors' trust: the reader decides), at most 16."""
    wanted = sorted(set(fingerprints))
    if not wanted:
        return []
    by_subject: dict[str, list[Certificate]] = {}
    for cert in session.scalars(select(Certificate)):
        by_subject.setdefault(cert.subject, []).append(cert)
    leaves = session.scalars(select(Certificate).where(Certificate.fingerprint.in_(wanted)))
    out: dict[str, str] = {}
    for leaf in sorted(leaves, key=lambda c: c.fingerprint):
        current: Certificate | None = leaf
        for _ in range(MAX_CHAIN):
            if current is None or current.fingerprint in out:
                break
            out[current.fingerprint] = current.pem
            if current.issuer == current.subject:
                break
            issuers = [c for c in by_subject.get(current.issuer, []) if c is not current]
            current = issuers[0] if issuers else None
    return list(out.values())[:MAX_CERTIFICATES]
