"""Signed material for MID tests: notarized ECC messages, signed records, policy statements.

Everything is made with real keys of the session ``test_pki`` and the same library
functions the instance uses (sign_record, canonical_json), following DESIGN §4 and §7.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cryptography import x509

from tests.conftest import PkiLeaf, SessionPki
from tests.mid.fake_instance import TOKEN
from trustcircle._time import format_ts
from trustcircle._types import SysId, new_sys_id
from trustcircle.crypto import algorithm_for_key, cert_to_pem, fingerprint_of, sign
from trustcircle.signing import (
    BUILTIN_CONFIGS,
    CIRCLE_OF_TRUST,
    CODE_SIGNING,
    SignatureRecord,
    canonical_json,
    sign_record,
)

INSTANCE = "prod"
MID = "mid1"
AGENT = f"mid.server.{MID}"
HOUR = dt.timedelta(hours=1)


def message(
    topic: str,
    payload: str,
    *,
    agent: str = AGENT,
    name: str = "test",
    source: str = "",
    sys_id: str | None = None,
) -> dict[str, Any]:
    """An ECC output message as ``GET /api/ecc/poll`` returns it, not notarized."""
    return {
        "sys_id": sys_id or new_sys_id(),
        "agent": agent,
        "topic": topic,
        "name": name,
        "source": source,
        "payload": payload,
        "queue": "output",
        "state": "processing",
        "response_to": "",
        "error_string": "",
        "created_on": "",
        "processed_on": "",
        "claimed_by": MID,
        "notarization": None,
    }


def notarize(
    msg: dict[str, Any],
    leaf: PkiLeaf,
    now: dt.datetime,
    *,
    instance: str = INSTANCE,
    validity: dt.timedelta = HOUR,
    origin: Sequence[Mapping[str, str]] | None = None,
) -> dict[str, Any]:
    """*msg* with a DESIGN §7 notarization signed by *leaf* (the runtime key)."""
    obj = {
        "format": "trustcircle.ecc-notarization/v1",
        "instance": instance,
        "ecc": msg["sys_id"],
        "agent": msg["agent"],
        "topic": msg["topic"],
        "name": msg["name"],
        "source": msg["source"],
        "payload_sha512": hashlib.sha512(msg["payload"].encode("utf-8")).hexdigest(),
        "origin": list(origin)
        if origin is not None
        else [
            {"table": "sys_script_include", "document_id": new_sys_id(), "signature": new_sys_id()}
        ],
        "created_at": format_ts(now),
        "expires_at": format_ts(now + validity),
    }
    algorithm = algorithm_for_key(leaf.key)
    raw = sign(algorithm, leaf.key, canonical_json(obj))
    notarized = dict(msg)
    notarized["notarization"] = {
        "payload": obj,
        "algorithm": algorithm.value,
        "certificate": fingerprint_of(leaf.cert),
        "signature": base64.b64encode(raw).decode("ascii"),
    }
    return notarized


def sign_fields(
    table: str,
    document_id: SysId,
    fields: Mapping[str, str | None],
    leaf: PkiLeaf,
    now: dt.datetime,
    *,
    purpose: str = CODE_SIGNING,
) -> SignatureRecord:
    return sign_record(
        table=table,
        document_id=document_id,
        fields=fields,
        config=BUILTIN_CONFIGS[table],
        purpose=purpose,
        key=leaf.key,
        algorithm=algorithm_for_key(leaf.key),
        certificate=fingerprint_of(leaf.cert),
        signed_at=now - dt.timedelta(minutes=1),
        expires_at=None,
    )


def script_payload(
    table: str,
    fields: Mapping[str, str | None],
    leaf: PkiLeaf,
    now: dt.datetime,
    *,
    chain: Sequence[x509.Certificate] = (),
    parameters: Mapping[str, Any] | None = None,
    signed_fields: Mapping[str, str | None] | None = None,
) -> str:
    """The JSON payload of a script-bearing topic; *signed_fields* (if given) is what was
    signed, *fields* what is carried (to model an edit after signing)."""
    sys_id = new_sys_id()
    signature = sign_fields(table, sys_id, signed_fields or fields, leaf, now)
    return json.dumps(
        {
            "record": {"table": table, "sys_id": sys_id, "fields": dict(fields)},
            "signatures": [signature.to_fields()],
            "certificates": [cert_to_pem(c) for c in (leaf.cert, *chain)],
            "parameters": dict(parameters or {}),
        }
    )


def policy_response(
    pki: SessionPki,
    state: str,
    sequence: int,
    now: dt.datetime,
    *,
    leaf: PkiLeaf | None = None,
    instance: str = INSTANCE,
    expires: dt.timedelta = HOUR,
    signed: bool = True,
    sys_id: str | None = None,
) -> dict[str, Any]:
    """A ``GET /api/codesigning/policy`` body signed with cm_code_attest (or *leaf*)."""
    leaf = leaf or pki.code_attest
    rid = SysId(sys_id or new_sys_id())
    fields = {
        "instance": instance,
        "state": state,
        "sequence": str(sequence),
        "issued_at": format_ts(now - dt.timedelta(minutes=1)),
        "expires_at": format_ts(now + expires),
    }
    signatures = (
        [
            sign_fields(
                "cot_policy_statement", rid, fields, leaf, now, purpose=CIRCLE_OF_TRUST
            ).to_fields()
        ]
        if signed
        else []
    )
    return {
        "statement": {"sys_id": rid, "fields": fields},
        "signatures": signatures,
        "certificates": [cert_to_pem(c) for c in (leaf.cert, *leaf.chain)],
    }


def write_config(folder: Path, pki: SessionPki, url: str, boot: str = "", extra: str = "") -> Path:
    """mid.yaml, boot-config.yaml and the token file in *folder*; returns mid.yaml."""
    folder.mkdir(exist_ok=True)
    (folder / "mid.token").write_text(TOKEN + "\n")
    (folder / "boot-config.yaml").write_text(boot)
    (folder / "mid.yaml").write_text(
        f"instance_url: {url}\nname: {MID}\ntoken_file: mid.token\n"
        f"anchors: [{pki.files.root_pem}]\n"
        f"notarizers: [{fingerprint_of(pki.runtime.cert)}]\ninstance_name: {INSTANCE}\n"
        "work_dir: work\nlog_dir: logs\n"
        "boot_config: boot-config.yaml\npoll_wait: 1\nexec_timeout: 10\n" + extra
    )
    return folder / "mid.yaml"
