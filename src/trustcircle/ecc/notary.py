"""Notarization of ECC messages with the instance's runtime key (DESIGN §7).

The signed bytes are the RFC 8785 serialisation of exactly::

    {"format": "trustcircle.ecc-notarization/v1", "instance", "ecc", "agent", "topic",
     "name", "source", "payload_sha512", "origin": [{"table", "document_id", "signature"}],
     "created_at", "expires_at"}

signed by ``cm_runtime`` (purpose ``ECC Notarization``); ``expires_at`` is ``created_at``
plus ``com.glide.codesigning.notarization.validity`` seconds (default 3600).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence

from sqlalchemy.orm import Session

from .._time import format_ts
from ..crypto.algorithms import sign
from ..platform import properties
from ..platform.kmf import SigningKey
from ..signing import canonical_json
from .queue import NewMessage, Notarization

NOTARIZATION_FORMAT = "trustcircle.ecc-notarization/v1"
RUNTIME_MODULE = "cm_runtime"
VALIDITY_PROPERTY = "com.glide.codesigning.notarization.validity"
DEFAULT_VALIDITY = 3600
MIN_VALIDITY, MAX_VALIDITY = 60, 86_400
MAX_ORIGIN = 16
"""Origin entries a MID accepts; the innermost frames are kept."""


def validity(session: Session) -> dt.timedelta:
    """How long a notarization stays fresh (the property, bounded; default one hour)."""
    text = properties.get_property(session, VALIDITY_PROPERTY)
    try:
        seconds = int(text) if text is not None else DEFAULT_VALIDITY
    except ValueError:
        seconds = DEFAULT_VALIDITY
    return dt.timedelta(seconds=min(MAX_VALIDITY, max(MIN_VALIDITY, seconds)))


def notarization_object(
    *,
    instance: str,
    ecc: str,
    message: NewMessage,
    origin: Sequence[Mapping[str, str]],
    created_at: dt.datetime,
    valid_for: dt.timedelta,
) -> dict[str, object]:
    """The DESIGN §7 object for *message* (``sys_id`` *ecc*) as the MID will recompute it."""
    return {
        "format": NOTARIZATION_FORMAT,
        "instance": instance,
        "ecc": ecc,
        "agent": message.agent,
        "topic": message.topic,
        "name": message.name,
        "source": message.source,
        "payload_sha512": hashlib.sha512(message.payload.encode("utf-8")).hexdigest(),
        "origin": [dict(o) for o in origin[-MAX_ORIGIN:]],
        "created_at": format_ts(created_at),
        "expires_at": format_ts(created_at + valid_for),
    }


def notarize(obj: Mapping[str, object], key: SigningKey) -> Notarization:
    """Sign the notarization object with the runtime key."""
    raw = sign(key.algorithm, key.key, canonical_json(dict(obj)))
    return Notarization(
        payload=dict(obj),
        algorithm=key.algorithm.value,
        certificate=key.certificate,
        signature=base64.b64encode(raw).decode("ascii"),
    )
