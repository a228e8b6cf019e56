"""The ECC notarization object (DESIGN §7), built one way for the instance and the MID.

The instance signs it when the tracker notarizes a message; a MID rebuilds it from
the message as received and compares it field by field before it checks the
signature. Both call :func:`notarization_object`, so the two cannot drift apart. The
signed bytes are its RFC 8785 serialisation (:func:`~.canonical.canonical_json`). Pure.
"""

from __future__ import annotations

import hashlib

NOTARIZATION_FORMAT = "trustcircle.ecc-notarization/v1"
NOTARIZATION_KEYS = (
    "format",
    "instance",
    "ecc",
    "agent",
    "topic",
    "name",
    "source",
    "payload_sha512",
    "origin",
    "created_at",
    "expires_at",
)
"""Every field of the object, in DESIGN order; a MID refuses any other."""
MAX_ORIGIN = 16
"""Origin entries a MID accepts; the instance keeps the innermost frames."""
MAX_VALIDITY = 86_400
"""The longest a notarization stays fresh (seconds), whatever the instance is set to."""


def notarization_object(
    *,
    instance: str,
    ecc: str,
    agent: str,
    topic: str,
    name: str | None,
    source: str | None,
    payload: str,
    origin: object,
    created_at: object,
    expires_at: object,
) -> dict[str, object]:
    """The object for message *ecc* with *payload* (hashed here). *origin* and the two
    times are the signer's (a MID passes what the notarization carries: the signature
    covers them, and it checks their form separately)."""
    return {
        "format": NOTARIZATION_FORMAT,
        "instance": instance,
        "ecc": ecc,
        "agent": agent,
        "topic": topic,
        "name": name,
        "source": source,
        "payload_sha512": hashlib.sha512(payload.encode("utf-8")).hexdigest(),
        "origin": origin,
        "created_at": created_at,
        "expires_at": expires_at,
    }
