"""Preview seals: commit reuses preview's findings while nothing they depend on has changed.

The checklist (:mod:`._checks`) is a pure function of three things: the stored sets
and entries, the local facts (:class:`~._checks.LocalFacts`, with the trust of every
local certificate judged at the time of the check) and that time. A seal records,
authenticated with a key derived from the instance master key:

1. the digest of every input but the time (:class:`InputDigest`: each part's header
   and manifest signature, each stored entry as read, the local facts, the limits,
   the tables this code writes, and the code's version);
2. when the check ran, and the *horizon*: the first moment at or after it when a
   time the checklist compares with "now" is reached (:func:`horizon`: each signature's
   ``signed_at`` less the allowed clock skew and its ``expires_at``, each manifest's,
   and the validity bounds of every certificate a chain may use). Between the two
   every such comparison comes out as it did;
3. the result (:func:`encode` / :func:`decode`) with what commit needs per entry.

Commit recomputes the digest from what it reads in its own transaction and takes the
sealed result only when the MAC, the digest and the time all hold; anything else
(a changed record, a revoked friend, a certificate past its end, a set altered in
the database, another version) means the full checklist runs again. Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from .. import __version__
from ..signing import CLOCK_SKEW
from . import _results as r

PURPOSE = b"preview-seal/v1"
"""What the seal key is derived for (:meth:`~trustcircle.crypto.MasterKey.derive`)."""
FORMAT = "trustcircle.preview-seal/1"
MAX_SEAL_CHARS = 64 * 1024 * 1024

EXISTS, FRIEND, STORED, PARSED = 1, 2, 4, 8
"""Flags of an entry in the sealed result: what commit needs besides the stored row."""


class InputDigest:
    """SHA-256 over the check's inputs, fed in the order the check reads them."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256(f"{FORMAT}\x00{__version__}\x00".encode())

    def add(self, values: Iterable[str | None]) -> None:
        """One row of text values; each is length-prefixed and None is told apart from ""."""
        joined = "\x00".join("\x01" if v is None else f"{len(v)}:{v}" for v in values)
        self._hash.update(joined.encode("utf-8", "surrogatepass") + b"\x02")

    def add_json(self, value: object) -> None:
        """A structure of plain data, in canonical JSON."""
        self.add((json.dumps(value, sort_keys=True, separators=(",", ":"), default=str),))

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


# -- the horizon ----------------------------------------------------------------------------


def horizon(
    checked_at: dt.datetime,
    signed: Iterable[dt.datetime | None],
    expiring: Iterable[dt.datetime | None],
    certificates: Iterable[x509.Certificate],
) -> dt.datetime | None:
    """The first moment at or after *checked_at* when a verdict may change: a time of
    *signed* comes within the clock skew, one of *expiring* passes, or a certificate's
    validity begins or ends. None: no such moment lies ahead. The caller parses each
    time with the parser the checklist uses for it (unparsable times never change)."""
    moments = [at - CLOCK_SKEW for at in signed if at is not None]
    moments += [at for at in expiring if at is not None]
    for cert in certificates:
        moments += (cert.not_valid_before_utc, cert.not_valid_after_utc)
    ahead = [m for m in moments if m >= checked_at]
    return min(ahead) if ahead else None


def holds(checked_at: dt.datetime, until: dt.datetime | None, now: dt.datetime) -> bool:
    """True when every time comparison at *now* comes out as it did at *checked_at*."""
    return checked_at <= now and (until is None or now < until)


# -- the sealed result ----------------------------------------------------------------------


@dataclass(frozen=True)
class Seal:
    """A sealed check: the inputs' digest, when it ran, its horizon and its result."""

    set_id: str
    inputs: str
    checked_at: dt.datetime
    until: dt.datetime | None
    plan: str  # the result, as :func:`encode` wrote it

    def _mac(self, key: bytes) -> str:
        head = json.dumps(
            [
                FORMAT,
                self.set_id,
                self.inputs,
                self.checked_at.isoformat(),
                None if self.until is None else self.until.isoformat(),
                hashlib.sha256(self.plan.encode("utf-8", "surrogatepass")).hexdigest(),
            ]
        )
        return hmac.new(key, head.encode(), "sha256").hexdigest()

    def stored(self, key: bytes) -> str:
        """The seal as stored text: a JSON head line, then the result."""
        head = {
            "format": FORMAT,
            "set": self.set_id,
            "inputs": self.inputs,
            "checked_at": self.checked_at.isoformat(),
            "until": None if self.until is None else self.until.isoformat(),
            "mac": self._mac(key),
        }
        return json.dumps(head) + "\n" + self.plan

    @classmethod
    def parse(cls, key: bytes, set_id: str, text: str | None) -> Seal | None:
        """The stored seal of *set_id* when it is well formed and its MAC holds, else None."""
        if not text or len(text) > MAX_SEAL_CHARS or "\n" not in text:
            return None
        head_text, plan = text.split("\n", 1)
        try:
            head = json.loads(head_text)
            seal = cls(
                set_id=str(head["set"]),
                inputs=str(head["inputs"]),
                checked_at=dt.datetime.fromisoformat(head["checked_at"]),
                until=None if head["until"] is None else dt.datetime.fromisoformat(head["until"]),
                plan=plan,
            )
            mac = str(head["mac"])
            wanted = head["format"] == FORMAT and seal.set_id == set_id
        except (ValueError, TypeError, KeyError):
            return None
        naive = seal.checked_at.tzinfo is None or (
            seal.until is not None and seal.until.tzinfo is None
        )
        if not wanted or naive or not hmac.compare_digest(mac, seal._mac(key)):
            return None
        return seal


def encode(result: r.PreviewResult) -> str:
    """What commit needs of *result* (with ``parsed``), as compact JSON: each part's header
    facts and problems, and one hex digit of flags per entry, in entry order. The
    per-entry verdicts preview shows are not kept."""
    return json.dumps(_encode_part(result), separators=(",", ":"))


def _encode_part(result: r.PreviewResult) -> dict[str, Any]:
    parsed = {p.sys_id: p for p in result.parsed}
    flags: list[str] = []
    same_as: dict[str, str] = {}
    for index, e in enumerate(result.entries):
        p = parsed.get(e.sys_id)
        if p is None:
            flags.append("0")
            continue
        flags.append(
            format(PARSED | EXISTS * p.exists | FRIEND * p.friend | STORED * p.stored, "x")
        )
        if p.same_as is not None:
            same_as[str(index)] = p.same_as
    m = result.manifest
    return {
        "set": result.set_id,
        "name": result.name,
        "origin": result.origin_instance,
        "state": result.state,
        "cot": result.cot,
        "manifest": [m.verdict.value, m.reason, m.certificate, m.signed_at, m.expires_at],
        "problems": [[p.entry, p.type, p.description, p.blocking] for p in result.problems],
        "flags": "".join(flags),
        "same_as": same_as,
        "children": [_encode_part(c) for c in result.children],
    }


@dataclass(frozen=True)
class EntryPlan:
    """What commit needs of one parsed entry besides its stored row."""

    exists: bool
    friend: bool
    stored: bool
    same_as: str | None


@dataclass(frozen=True)
class SealedPart:
    """One part of a sealed result: the result without entries, and its entries' plans
    (None for an entry that did not parse), in entry order."""

    result: r.PreviewResult
    plans: tuple[EntryPlan | None, ...]
    problems: dict[str, tuple[r.Problem, ...]]
    children: tuple[SealedPart, ...]


def decode(plan: str) -> SealedPart:
    """The sealed result as :func:`encode` wrote it.

    Raises ValueError (or KeyError, TypeError) on text :func:`encode` did not write.
    """
    return _decode_part(json.loads(plan))


def _decode_part(data: dict[str, Any]) -> SealedPart:
    problems = tuple(r.Problem(str(a), str(b), str(c), bool(d)) for a, b, c, d in data["problems"])
    by_entry: dict[str, list[r.Problem]] = {}
    for p in problems:
        if p.entry:
            by_entry.setdefault(p.entry, []).append(p)
    same_as: dict[str, str] = data["same_as"]
    plans: list[EntryPlan | None] = []
    for index, digit in enumerate(str(data["flags"])):
        flags = int(digit, 16)
        plans.append(
            EntryPlan(
                bool(flags & EXISTS),
                bool(flags & FRIEND),
                bool(flags & STORED),
                same_as.get(str(index)),
            )
            if flags & PARSED
            else None
        )
    verdict, reason, certificate, signed_at, expires_at = data["manifest"]
    result = r.PreviewResult(
        set_id=data["set"],
        name=data["name"],
        origin_instance=data["origin"],
        state=data["state"],
        cot=bool(data["cot"]),
        manifest=r.ManifestResult(
            r.ManifestVerdict(verdict), reason, certificate, signed_at, expires_at
        ),
        entries=(),
        problems=problems,
    )
    return SealedPart(
        result,
        tuple(plans),
        {k: tuple(v) for k, v in by_entry.items()},
        tuple(_decode_part(c) for c in data["children"]),
    )
