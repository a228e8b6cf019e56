"""Step 1 of the preview checklist (:mod:`._checks`): read every stored entry once. Pure.

Import parsed each payload (:func:`~.record_xml.parse_payload`) and stored the
record's fields as JSON, or the reason the payload was refused; an entry stored by
an older version (payload only) is parsed here. An entry keeps its manifest line
(with the payload's SHA-512, taken at import) and its fields.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from sys import intern
from types import MappingProxyType
from typing import NamedTuple

from ..crypto import fingerprint_of, is_ca, load_pem_certificate
from ..errors import BadInputError, TrustcircleError
from ..platform.rows import CERTIFICATE_TABLE
from ..signing import CIRCLE_OF_TRUST, SIGNATURE_TABLE, SignatureRecord, Verdict
from . import _results as r
from ._trust import CarriedCertificate
from .record_xml import parse_payload
from .xmlformat import ImportLimits, UpdateEntry

IN_SIGNATURE: Fields = MappingProxyType({})
_SHARED_MAX = 100
Fields = Mapping[str, str | None]
_CORRUPT = (
    "the fields stored at import are not a JSON object of text values: the database was "
    "altered; delete the set and import its file again"
)


class StoredEntry(NamedTuple):
    """An entry as import stored it: ``fields`` (JSON) or ``problem``; ``payload`` only
    when it was refused (or stored by a version that did not parse at import)."""

    sys_id: str
    update_set: str
    table: str
    target_sys_id: str
    action: str
    payload_sha512: str
    fields: str | None
    problem: str | None
    payload: str | None


class Entry(NamedTuple):
    """An entry without its payload: the manifest line (DESIGN §4) it must match."""

    sys_id: str
    table: str
    target_sys_id: str
    action: str
    payload_sha512: str


@dataclass(slots=True)
class Work:
    """One entry while the checklist runs; its payload is not kept, only its digest.

    ``fields`` is None when the payload did not parse. A signature record keeps its
    values in ``signature`` only (``fields`` is then empty): 10,000 signatures would
    otherwise hold each value twice. :meth:`values` gives the fields either way.
    """

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
    stored: bool = False  # the fields came from the row's ``fields`` column as they stand
    found: list[tuple[str, str]] = field(default_factory=list)

    def problem(self, kind: str, text: str) -> None:
        e = self.entry
        self.found.append((kind, f"{e.table} {e.target_sys_id}: {text}"))

    def values(self) -> Fields | None:
        """The record's fields (a signature record's from its parsed signature)."""
        if self.signature is not None:
            values: dict[str, str | None] = dict(self.signature.to_fields())
            values.pop("sys_id", None)
            return values
        return self.fields


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
    entries: Iterable[StoredEntry], tables: Mapping[str, frozenset[str]], limits: ImportLimits
) -> ParsedSet:
    """Step 1 of the checklist: read every entry once (:func:`check_sets` does the rest).

    *entries* is consumed one at a time; only the parsed fields are kept.
    """
    return ParsedSet(tuple(_parse(e, tables, limits) for e in entries))


def _parse(e: StoredEntry, tables: Mapping[str, frozenset[str]], limits: ImportLimits) -> Work:
    w = Work(Entry(e.sys_id, intern(e.table), e.target_sys_id, intern(e.action), e.payload_sha512))
    allowed = tables.get(e.table)
    if allowed is None:
        w.problem(r.UNKNOWN_TABLE, _unknown_table(e.table, tables))
        return w
    text, refused = e.fields, e.problem
    if text is None and refused is None:  # stored by a version that parsed at preview
        payload = e.payload or ""
        entry = UpdateEntry(e.sys_id, e.update_set, e.table, e.target_sys_id, e.action, payload)
        text, refused = parse_payload(entry, limits)
    if text is None:
        w.names_cot = CIRCLE_OF_TRUST in (e.payload or "")
        w.problem(r.PARSE, refused or "payload refused")
        return w
    fields = loads(text)
    if fields is None:
        w.problem(r.PARSE, _CORRUPT)
        return w
    unknown = sorted(set(fields) - allowed)
    if unknown:
        w.names_cot = CIRCLE_OF_TRUST in text
        w.problem(
            r.UNKNOWN_FIELD,
            f"field(s) {', '.join(unknown)[:200]} do not exist in table {e.table} here: "
            "the instances run different versions; upgrade this one first",
        )
        return w
    w.fields = fields
    w.stored = e.fields is not None
    try:
        if e.table == SIGNATURE_TABLE:
            w.signature = SignatureRecord.from_fields(e.target_sys_id, fields)
            w.fields = IN_SIGNATURE
        elif e.table == CERTIFICATE_TABLE:
            w.carried = _carried(w.entry, fields)
    except TrustcircleError as exc:
        w.fields = None
        w.names_cot = CIRCLE_OF_TRUST in text
        w.problem(r.PARSE, exc.message)
    return w


def loads(text: str) -> dict[str, str | None] | None:
    """The stored fields, or None when they are not a JSON object of strings.

    Names and short values are shared (:func:`sys.intern`): 10,000 records repeat them,
    and a set's fields are held until it is judged (or, by commit, applied).
    """
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if type(value) is not dict:
        return None
    out: dict[str, str | None] = {}
    for k, v in value.items():
        if type(v) is not str:
            return None
        out[intern(k)] = intern(v) if len(v) <= _SHARED_MAX else v
    return out


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
