"""The one ECC notarization object (DESIGN §7) the instance signs and the MID rebuilds."""

from __future__ import annotations

import hashlib

from trustcircle.signing import canonical_json
from trustcircle.signing.notarization import NOTARIZATION_KEYS, notarization_object


def test_object_has_exactly_the_design_fields_and_canonical_bytes() -> None:
    obj = notarization_object(
        instance="prod",
        ecc="a" * 32,
        agent="mid.server.alpha",
        topic="Command",
        name="uptime",
        source="",
        payload="uptime\n",
        origin=[{"table": "sysauto_script", "document_id": "b" * 32, "signature": "c" * 32}],
        created_at="2026-11-28T05:00:00Z",
        expires_at="2026-11-28T06:00:00Z",
    )
    assert tuple(obj) == NOTARIZATION_KEYS
    digest = hashlib.sha512(b"uptime\n").hexdigest()
    assert (
        canonical_json(obj)
        == (
            '{"agent":"mid.server.alpha","created_at":"2026-11-28T05:00:00Z","ecc":"'
            + "a" * 32
            + '","expires_at":"2026-11-28T06:00:00Z","format":"trustcircle.ecc-notarization/v1",'
            '"instance":"prod","name":"uptime","origin":[{"document_id":"'
            + "b" * 32
            + '","signature":"'
            + "c" * 32
            + '","table":"sysauto_script"}],"payload_sha512":"'
            + digest
            + '","source":"","topic":"Command"}'
        ).encode()
    )
