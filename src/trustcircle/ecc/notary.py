"""Notarization of ECC messages with the instance's runtime key (DESIGN §7).

The signed bytes are the RFC 8785 serialisation of the object
:func:`trustcircle.signing.notarization.notarization_object` builds (the MID builds it
with the same function), signed by ``cm_runtime`` (purpose ``ECC Notarization``);
``expires_at`` is ``created_at`` plus ``com.glide.codesigning.notarization.validity``
seconds (default 3600).
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Mapping, Sequence

from sqlalchemy.orm import Session

from .._time import format_ts
from ..crypto.algorithms import sign
from ..platform import properties
from ..platform.kmf import SigningKey
from ..signing import canonical_json
from ..signing import notarization as _object
from .queue import NewMessage, Notarization

VALIDITY_PROPERTY = "com.glide.codesigning.notarization.validity"
DEFAULT_VALIDITY = 3600
MIN_VALIDITY, MAX_VALIDITY = 60, _object.MAX_VALIDITY


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
    """The DESIGN §7 object for *message* (``sys_id`` *ecc*) as the MID will recompute it:
    the innermost :data:`~trustcircle.signing.notarization.MAX_ORIGIN` frames of *origin*."""
    return _object.notarization_object(
        instance=instance,
        ecc=ecc,
        agent=message.agent,
        topic=message.topic,
        name=message.name,
        source=message.source,
        payload=message.payload,
        origin=[dict(o) for o in origin[-_object.MAX_ORIGIN :]],
        created_at=format_ts(created_at),
        expires_at=format_ts(created_at + valid_for),
    )


def notarize(obj: Mapping[str, object], key: SigningKey) -> Notarization:
    """Sign the notarization object with the runtime key."""
    raw = sign(key.algorithm, key.key, canonical_json(dict(obj)))
    return Notarization(
        payload=dict(obj),
        algorithm=key.algorithm.value,
        certificate=key.certificate,
        signature=base64.b64encode(raw).decode("ascii"),
    )
