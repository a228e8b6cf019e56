"""Verification receipts: the signatures this instance verified, so it need not verify again.

A receipt is ``HMAC-SHA256(key, fingerprint, signature, payload)`` (the signature's
length given, so the parts cannot shift) cut to 128 bits, in hex. It says one thing
only: the public key of certificate *fingerprint* verified *signature* over the signed
*payload* bytes (DESIGN §4).
Everything else a verdict depends on — the certificate's trust now, purpose, expiry,
which fields are covered, the record's values (they are in the payload) — is judged
again by :class:`~trustcircle.signing.RecordVerifier`, which consults the receipts
(update-set preview keeps them for commit). The key is derived from the instance master
key, so whoever can only write the database cannot mint a receipt; a receipt that
does not match is simply not there, and the signature is verified in full.

Pure apart from the key handed in; safe to use from the verification threads.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable

from .._types import Fingerprint

PURPOSE = b"verification-receipt/v1"
"""What the receipt key is derived for (:meth:`~trustcircle.crypto.MasterKey.derive`)."""
MAX_RECEIPTS = 1_000_000
_TOKEN_HEX = 32


class Receipts:
    """Receipts known from earlier, and the ones made (or confirmed) while verifying now."""

    def __init__(self, key: bytes, known: Iterable[str] = ()) -> None:
        self._key = key
        self._known = frozenset(known)
        self._made: set[str] = set()

    @classmethod
    def parse(cls, key: bytes, stored: str | None) -> Receipts:
        """Receipts from their stored text (one per line); malformed lines are ignored."""
        lines = (stored or "").split("\n", MAX_RECEIPTS)[:MAX_RECEIPTS]
        return cls(key, (t for t in lines if len(t) == _TOKEN_HEX))

    def _token(self, certificate: Fingerprint, signature: bytes, payload: bytes) -> str:
        # The fingerprint is 64 hex characters and the signature's length is given, so the
        # three parts cannot be shifted into one another.
        head = f"{certificate}\n{len(signature)}\n".encode("ascii", "replace")
        return hmac.digest(self._key, head + signature + payload, "sha256").hex()[:_TOKEN_HEX]

    def check(
        self, certificate: Fingerprint, signature: bytes, payload: bytes, verify: Callable[[], bool]
    ) -> bool:
        """True when a receipt says the certificate's key verified *signature* over
        *payload*, or else when *verify()* (the public-key check) says so now; either way
        the receipt is kept among those :meth:`stored` returns."""
        token = self._token(certificate, signature, payload)
        if token not in self._known and not verify():
            return False
        self._made.add(token)
        return True

    def stored(self) -> str:
        """The receipts made since creation, as stored text (sorted, one per line)."""
        return "\n".join(sorted(self._made))

    def __len__(self) -> int:
        return len(self._made)

    @property
    def known(self) -> int:
        """How many receipts were known from earlier."""
        return len(self._known)
