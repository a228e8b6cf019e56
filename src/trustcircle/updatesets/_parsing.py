"""Step 1 of the preview checklist (:mod:`._checks`): parse every entry once. Pure.

Each payload is parsed with :func:`~.record_xml.entry_to_record` and then dropped:
an entry keeps its manifest line (with the payload's SHA-512) and its fields. Short
values and field names are shared, since 10,000 records repeat them and a set's
fields are held until commit has applied them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from sys import intern
from typing import NamedTuple

from ..crypto import fingerprint_of, load_pem_certificate
from ..errors import BadInputError, TrustcircleError
from ..signing import CIRCLE_OF_TRUST, SIGNATURE_TABLE, SignatureRecord, Verdict
from . import _results as r
from ._trust import CarriedCertificate, is_ca
from .record_xml import entry_to_record
from .xmlformat import ImportLimits, UpdateEntry

CERTIFICATE_TABLE = "sys_certificate"
_SHARED_MAX = 64
Fields = Mapping[str, str | None]


class Entry(NamedTuple):
    """An entry without its payload: the manifest line (DESIGN §4) it must match."""

    sys_id: str
    table: str
    target_sys_id: str
    action: str
    payload_sha512: str


@dataclass(slots=True)
class Work:
    """One entry while the checklist runs; its payload is not kept, only its digest."""

    entry: Entry
    fields: Fields | None = None
    signature: SignatureRecord | None = None
    carried: CarriedCertificate | None = None
    names_cot: bool = False  # an unparsable payload that mentions the CoT purpose
    cot: bool = False
    exists: bool = False
    same_as: str | None = None
    verdict: Verdict | None = None
    reasons: tuple[str, ...] = ()
    certificate: str | None = None
    found: list[tuple[str, str]] = field(default_factory=list)

    def problem(self, kind: str, text: str) -> None:
        e = self.entry
        self.found.append((kind, f"{e.table} {e.target_sys_id}: {text}"))


@dataclass(frozen=True)
class ParsedSet:
    """A set's entries after step 1, and the local sys_ids the remaining steps ask about."""

    work: tuple[Work, ...]

    @property
    def targets(self) -> set[str]:
        return {w.entry.target_sys_id for w in self.work}

    @property
    def documents(self) -> set[str]:
        """Records the carried signatures are for."""
        return {w.signature.document_id for w in self.work if w.signature is not None}

    @property
    def signed_targets(self) -> set[tuple[str, str]]:
        """(table, sys_id) of every target whose local signatures step 7 needs."""
        return {(w.entry.table, w.entry.target_sys_id) for w in self.work}


def parse_set(
    entries: Iterable[UpdateEntry], tables: Mapping[str, frozenset[str]], limits: ImportLimits
) -> ParsedSet:
    """Step 1 of the checklist: parse every entry once (:func:`check_sets` does the rest).

    *entries* is consumed one at a time and no payload is kept: memory holds the parsed
    fields, not the XML.
    """
    return ParsedSet(tuple(_parse(e, tables, limits) for e in entries))


def _parse(e: UpdateEntry, tables: Mapping[str, frozenset[str]], limits: ImportLimits) -> Work:
    w = Work(
        Entry(e.sys_id, intern(e.table), e.target_sys_id, intern(e.action), _sha512(e.payload))
    )
    allowed = tables.get(e.table)
    if allowed is None:
        w.problem(r.UNKNOWN_TABLE, _unknown_table(e.table, tables))
        return w
    try:
        fields = entry_to_record(e, limits)
    except TrustcircleError as exc:
        w.names_cot = CIRCLE_OF_TRUST in e.payload
        w.problem(r.PARSE, f"payload refused: {exc.message}")
        return w
    unknown = sorted(set(fields) - allowed)
    if unknown:
        w.names_cot = CIRCLE_OF_TRUST in e.payload
        w.problem(
            r.UNKNOWN_FIELD,
            f"field(s) {', '.join(unknown)[:200]} do not exist in table {e.table} here: "
            "the instances run different versions; upgrade this one first",
        )
        return w
    w.fields = fields = {intern(k): _shared(v) for k, v in fields.items()}
    try:
        if e.table == SIGNATURE_TABLE:
            w.signature = SignatureRecord.from_fields(e.target_sys_id, fields)
        elif e.table == CERTIFICATE_TABLE:
            w.carried = _carried(w.entry, fields)
    except TrustcircleError as exc:
        w.fields = None
        w.names_cot = CIRCLE_OF_TRUST in e.payload
        w.problem(r.PARSE, exc.message)
    return w


def _shared(value: str | None) -> str | None:
    """One copy of each short value (names, flags, times, fingerprints): 10,000 records
    repeat them, and a set's parsed fields are held until commit applies them."""
    return intern(value) if value is not None and len(value) <= _SHARED_MAX else value


def _sha512(text: str) -> str:
    return hashlib.sha512(text.encode("utf-8", "surrogatepass")).hexdigest()


def _unknown_table(table: str, tables: Mapping[str, frozenset[str]]) -> str:
    if table == "sys_properties":
        return (
            "system properties never change through update sets (protected ones only "
            "through a verified Circle-of-Trust job): remove the entry"
        )
    return (
        f"table {table} is unknown here or cannot be written by an update set: it accepts "
        f"{', '.join(sorted(tables))}"
    )


def _carried(e: Entry, fields: Fields) -> CarriedCertificate:
    pem = fields.get("pem") or ""
    cert = load_pem_certificate(pem.encode("utf-8"), f"certificate record {e.target_sys_id}")
    fp = fingerprint_of(cert)
    claimed = fields.get("fingerprint")
    if claimed not in (None, "", fp):
        raise BadInputError(
            f"the record claims fingerprint {str(claimed)[:16]}... but its PEM has {fp[:16]}...: "
            "the record was altered; export it again"
        )
    return CarriedCertificate(e.sys_id, cert, fp, is_ca(cert))
