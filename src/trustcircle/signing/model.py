"""The signature record (table ``sn_kmf_record_signature``, DESIGN §4) and its strict parser.

Previewing or committing an update set parses one signature record per signed record,
so :meth:`SignatureRecord.from_fields` first tries a fast path that only *accepts*: exact
``str`` values, the fields that repeat across records (table, purpose, algorithm,
certificate, ``signed_fields``, timestamps) checked once and remembered in bounded
caches, the base64 signature checked with one C pass. Whatever it does not accept goes
to the strict field-by-field parser, which accepts the same records and words every
refusal. ``tests/signing/test_model.py`` proves with hypothesis that both agree.
"""

from __future__ import annotations

import datetime as _dt
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise

from trustcircle._types import B64, Fingerprint, SysId, Timestamp
from trustcircle.errors import BadInputError, LimitExceededError

SIGNATURE_TABLE = "sn_kmf_record_signature"

SIGNATURE_FIELDS = (
    "sys_id",
    "table_name",
    "document_id",
    "purpose",
    "algorithm",
    "signature",
    "certificate",
    "signed_fields",
    "signed_at",
    "expires_at",
)
"""The fields of a signature record in DESIGN order: the keys of ``SignatureRecord.to_fields()``."""

MAX_SIGNED_FIELDS = 64

_MAX_LEN = {
    "sys_id": 32,
    "table_name": 80,
    "document_id": 32,
    "purpose": 100,
    "algorithm": 64,
    "signature": 4096,  # base64 of an RSA-8192 signature is 1368 characters
    "certificate": 64,
    "signed_fields": MAX_SIGNED_FIELDS * 81,
    "signed_at": 20,
    "expires_at": 20,
}
_HEX32 = re.compile(r"[0-9a-f]{32}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"[a-z_][a-z0-9_]{0,79}")
_PURPOSE = re.compile(r"[^\x00-\x1f\x7f\ud800-\udfff]+")
_ALGORITHM = re.compile(r"[A-Za-z0-9_\-]+")
_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})+(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
_EXPECTED = {
    "sys_id": "32 lowercase hex characters",
    "table_name": "a table name of lowercase letters, digits and _",
    "document_id": "32 lowercase hex characters",
    "purpose": "non-empty text without control characters",
    "algorithm": "an algorithm name of letters, digits, _ and -",
    "signature": "non-empty standard base64",
    "certificate": "a certificate fingerprint of 64 lowercase hex characters",
    "signed_fields": "comma-separated field names, sorted, each once",
    "signed_at": "RFC 3339 UTC like 2026-11-27T19:45:00Z",
    "expires_at": "RFC 3339 UTC like 2026-11-27T19:45:00Z, or empty",
}
_PATTERNS = {
    "sys_id": _HEX32,
    "table_name": _NAME,
    "document_id": _HEX32,
    "purpose": _PURPOSE,
    "algorithm": _ALGORITHM,
    "signature": _BASE64,
    "certificate": _HEX64,
    "signed_at": _TIMESTAMP,
    "expires_at": _TIMESTAMP,
}


@dataclass(frozen=True, slots=True)
class SignatureRecord:
    """One signature of one record, as stored and exported (DESIGN §4).

    Built by :func:`~trustcircle.signing.sign_record` or parsed from untrusted data by
    :meth:`from_fields`. It carries claims, not truth: only
    :class:`~trustcircle.signing.RecordVerifier` says whether it is valid.
    """

    sys_id: SysId
    table_name: str
    document_id: SysId
    purpose: str
    algorithm: str
    signature: B64
    certificate: Fingerprint
    signed_fields: tuple[str, ...]
    signed_at: Timestamp
    expires_at: Timestamp | None

    def to_fields(self) -> dict[str, str]:
        """Every field (``sys_id`` included) as stored text: ``expires_at`` is ``""`` when
        null, ``signed_fields`` is comma-joined and sorted."""
        return {
            "sys_id": self.sys_id,
            "table_name": self.table_name,
            "document_id": self.document_id,
            "purpose": self.purpose,
            "algorithm": self.algorithm,
            "signature": self.signature,
            "certificate": self.certificate,
            "signed_fields": ",".join(sorted(self.signed_fields)),
            "signed_at": self.signed_at,
            "expires_at": self.expires_at or "",
        }

    @classmethod
    def from_fields(cls, sys_id: str, fields: Mapping[str, str | None]) -> SignatureRecord:
        """Parse a signature record from untrusted text fields (a database row, an import).

        Keys other than :data:`SIGNATURE_FIELDS` are ignored; a ``sys_id`` key, if
        present, must equal *sys_id*. Raises :class:`BadInputError` naming the field
        on anything malformed (:class:`LimitExceededError` when over-long).
        """
        record = _fast_record(cls, sys_id, fields)
        if record is not None:
            return record
        return _strict_record(cls, sys_id, fields)


def _strict_record(
    cls: type[SignatureRecord], sys_id: str, fields: Mapping[str, str | None]
) -> SignatureRecord:
    """The reference parser: checks field by field in a fixed order, words the first refusal."""
    rid = _text(str(sys_id), "sys_id", sys_id)
    if fields.get("sys_id") not in (None, rid):
        raise BadInputError(
            f"signature record {rid}: field 'sys_id' names another record "
            f"({str(fields.get('sys_id'))[:40]!r}); export the signature record again"
        )
    values = {name: _text(rid, name, fields.get(name)) for name in _PATTERNS if name != "sys_id"}
    expires = fields.get("expires_at")
    return cls(
        sys_id=SysId(rid),
        table_name=values["table_name"],
        document_id=SysId(values["document_id"]),
        purpose=values["purpose"],
        algorithm=values["algorithm"],
        signature=B64(values["signature"]),
        certificate=Fingerprint(values["certificate"]),
        signed_fields=_signed_fields(rid, fields.get("signed_fields")),
        signed_at=Timestamp(values["signed_at"]),
        expires_at=None if expires in (None, "") else Timestamp(values["expires_at"]),
    )


def _fast_record(
    cls: type[SignatureRecord], sys_id: str, fields: Mapping[str, str | None]
) -> SignatureRecord | None:
    """The record when every field is certainly well formed, else None (no refusal of its own).

    Accepts exactly what :func:`_strict_record` accepts from exact ``str`` values; the
    length bounds come first so that no cache holds an over-long key.
    """
    get = fields.get
    table, document_id, purpose = get("table_name"), get("document_id"), get("purpose")
    algorithm, signature, certificate = get("algorithm"), get("signature"), get("certificate")
    names, signed_at, expires_at = get("signed_fields"), get("signed_at"), get("expires_at")
    own_id = get("sys_id")
    if not (
        type(sys_id) is str
        and type(table) is str
        and type(document_id) is str
        and type(purpose) is str
        and type(algorithm) is str
        and type(signature) is str
        and type(certificate) is str
        and type(names) is str
        and type(signed_at) is str
        and (expires_at is None or type(expires_at) is str)
        and (own_id is None or (type(own_id) is str and own_id == sys_id))
        and len(sys_id) == len(document_id) == 32
        and _HEX64.fullmatch(sys_id + document_id) is not None
        and len(table) <= _MAX_LEN["table_name"]
        and len(purpose) <= _MAX_LEN["purpose"]
        and len(algorithm) <= _MAX_LEN["algorithm"]
        and len(certificate) <= _MAX_LEN["certificate"]
        and _repeating_fields_ok(table, purpose, algorithm, certificate)
        and len(signature) <= _MAX_LEN["signature"]
        and _is_base64(signature)
        and _parse_timestamp(signed_at) is not None
        and (not expires_at or _parse_timestamp(expires_at) is not None)
        and len(names) <= _MAX_LEN["signed_fields"]
    ):
        return None
    signed_fields = _sorted_names(names)
    if signed_fields is None:
        return None
    return cls(
        SysId(sys_id),
        table,
        SysId(document_id),
        purpose,
        algorithm,
        B64(signature),
        Fingerprint(certificate),
        signed_fields,
        Timestamp(signed_at),
        Timestamp(expires_at) if expires_at else None,
    )


@functools.lru_cache(maxsize=1024)
def _repeating_fields_ok(table: str, purpose: str, algorithm: str, certificate: str) -> bool:
    """The fields one signer's records share, matched once (callers bound their lengths)."""
    return (
        _NAME.fullmatch(table) is not None
        and _PURPOSE.fullmatch(purpose) is not None
        and _ALGORITHM.fullmatch(algorithm) is not None
        and _HEX64.fullmatch(certificate) is not None
    )


_BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _is_base64(text: str) -> bool:
    """``_BASE64.fullmatch(text)`` for an exact ``str``, in one C pass instead of the regex.

    The regex means: whole quads of the alphabet, at least one, then optionally a final
    padded quad (``xx==`` or ``xxx=``).
    """
    size = len(text)
    if size < 4 or size % 4 or not text.isascii():
        return False
    body = text.rstrip("=")
    padding = size - len(body)
    if padding > 2 or (padding and size < 8):
        return False
    return not body.encode("ascii").translate(None, _BASE64_ALPHABET)


def _bad(rid: str, name: str, value: object, problem: str = "malformed") -> BadInputError:
    return BadInputError(
        f"signature record {rid[:40]!r}: field {name!r} is {problem} "
        f"({str(value)[:40]!r}): expected {_EXPECTED[name]}"
    )


def _text(rid: str, name: str, value: object) -> str:
    """Check one scalar field; ``expires_at`` may be null or empty, nothing else may."""
    if name == "expires_at" and value in (None, ""):
        return ""
    if not isinstance(value, str) or not value:
        raise _bad(rid, name, value, "missing" if value in (None, "") else "not text")
    if len(value) > _MAX_LEN[name]:
        raise LimitExceededError(
            f"signature record {rid[:40]!r}: field {name!r} is longer than "
            f"{_MAX_LEN[name]} characters: expected {_EXPECTED[name]}"
        )
    if not _PATTERNS[name].fullmatch(value):
        raise _bad(rid, name, value)
    if name in ("signed_at", "expires_at") and _parse_timestamp(value) is None:
        raise _bad(rid, name, value, "not a real time")
    return value


def _signed_fields(rid: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, str) or not value:
        raise _bad(rid, "signed_fields", value, "missing" if value in (None, "") else "not text")
    if len(value) > _MAX_LEN["signed_fields"]:
        raise LimitExceededError(
            f"signature record {rid[:40]!r}: field 'signed_fields' is longer than "
            f"{_MAX_LEN['signed_fields']} characters: expected at most {MAX_SIGNED_FIELDS} names"
        )
    names = tuple(value.split(","))
    if len(names) > MAX_SIGNED_FIELDS:
        raise LimitExceededError(
            f"signature record {rid[:40]!r}: field 'signed_fields' names more than "
            f"{MAX_SIGNED_FIELDS} fields"
        )
    if not all(_NAME.fullmatch(n) for n in names):
        raise _bad(rid, "signed_fields", value)
    if any(a >= b for a, b in pairwise(names)):
        raise _bad(rid, "signed_fields", value, "unsorted or repeats a name")
    return names


@functools.lru_cache(maxsize=256)
def _sorted_names(value: str) -> tuple[str, ...] | None:
    """The names of a well-formed ``signed_fields`` text (callers bound its length), or None.

    Records of one table repeat one text, so they share one tuple.
    """
    names = tuple(value.split(","))
    if len(names) > MAX_SIGNED_FIELDS or not all(_NAME.fullmatch(n) for n in names):
        return None
    if any(a >= b for a, b in pairwise(names)):
        return None
    return names


def _parse_timestamp(text: str) -> _dt.datetime | None:
    """The UTC time *text* names in the DESIGN §4 format, or None when it is not one.

    Every well-formed text is 20 characters long; exact ``str`` values of that length are
    remembered (records of one update set share few times, and verification parses each
    signature's times again).
    """
    if type(text) is str and len(text) == 20:
        return _cached_timestamp(text)
    return _timestamp(text)


def _timestamp(text: str) -> _dt.datetime | None:
    if not _TIMESTAMP.fullmatch(text):
        return None
    try:
        return _dt.datetime.fromisoformat(text)
    except ValueError:
        return None


_cached_timestamp = functools.lru_cache(maxsize=4096)(_timestamp)
