"""Names for the strings that carry meaning: ids, fingerprints, encodings."""

from __future__ import annotations

import re
from typing import NewType

from .errors import UsageError

SysId = NewType("SysId", str)
"""32 lowercase hex characters naming a record."""

Fingerprint = NewType("Fingerprint", str)
"""Lowercase hex SHA-256 of a certificate's DER."""

B64 = NewType("B64", str)
"""Standard base64 text."""

HexDigest = NewType("HexDigest", str)
"""Lowercase hex digest (SHA-256 or SHA-512)."""

Timestamp = NewType("Timestamp", str)
"""RFC 3339 UTC with seconds and ``Z``: ``2026-11-27T19:45:00Z``."""

_SYS_ID = re.compile(r"[0-9a-f]{32}")
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")


def sys_id(value: str) -> SysId:
    """Return *value* as a :data:`SysId`, or raise :class:`UsageError`."""
    if not _SYS_ID.fullmatch(value):
        raise UsageError(f"malformed sys_id {value[:40]!r}: expected 32 lowercase hex characters")
    return SysId(value)


def fingerprint(value: str) -> Fingerprint:
    """Return *value* as a :data:`Fingerprint`, or raise :class:`UsageError`."""
    if not _FINGERPRINT.fullmatch(value):
        raise UsageError(
            f"malformed certificate fingerprint {value[:70]!r}: "
            "expected 64 lowercase hex characters"
        )
    return Fingerprint(value)


def new_sys_id() -> SysId:
    """A fresh random sys_id."""
    import secrets

    return SysId(secrets.token_hex(16))
