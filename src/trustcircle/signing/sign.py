"""Signing one record: the only place a record signature is made."""

from __future__ import annotations

import base64
import datetime as _dt
from collections.abc import Mapping

from trustcircle._time import format_ts
from trustcircle._types import B64, Fingerprint, SysId, fingerprint, new_sys_id
from trustcircle._types import sys_id as _check_sys_id
from trustcircle.crypto import algorithms
from trustcircle.crypto.algorithms import Algorithm, PrivateKey
from trustcircle.errors import UsageError

from .configs import SignatureConfig, check_purpose
from .model import SignatureRecord
from .payload import record_signature_payload


def sign_record(
    *,
    table: str,
    document_id: SysId,
    fields: Mapping[str, str | None],
    config: SignatureConfig,
    purpose: str,
    key: PrivateKey,
    algorithm: Algorithm,
    certificate: Fingerprint,
    signed_at: _dt.datetime,
    expires_at: _dt.datetime | None,
    sys_id: SysId | None = None,
) -> SignatureRecord:
    """Sign the current values of *config*'s fields of one record.

    Refuses (before touching the key) a config of another table, a purpose the config
    does not allow (the wildcard outside ``sys_script_include``/``sys_script`` is a
    :class:`~trustcircle.errors.PolicyError`), a key below policy, a key that does not fit
    *algorithm*, naive times and an ``expires_at`` not after ``signed_at``.
    """
    if config.table != table:
        raise UsageError(
            f"signature configuration is for table {config.table}, not {table}: "
            f"pass the configuration of {table}"
        )
    check_purpose(config, purpose)
    document = _check_sys_id(document_id)
    cert = fingerprint(certificate)
    record_id = new_sys_id() if sys_id is None else _check_sys_id(sys_id)
    algorithms.check_key_policy(key)
    if signed_at.tzinfo is None or (expires_at is not None and expires_at.tzinfo is None):
        raise UsageError("signing times must be timezone-aware UTC datetimes: pass tzinfo=UTC")
    signed_ts = format_ts(signed_at)
    expires_ts = None if expires_at is None else format_ts(expires_at)
    if expires_ts is not None and expires_ts <= signed_ts:
        raise UsageError(
            f"signature would expire ({expires_ts}) no later than it is made ({signed_ts}): "
            "give an expiry after the signing time"
        )
    signed_fields = tuple(sorted(config.fields))
    payload = record_signature_payload(
        purpose=purpose,
        table=table,
        document_id=document,
        fields=fields,
        signed_fields=signed_fields,
        certificate=cert,
        signed_at=signed_ts,
        expires_at=expires_ts,
    )
    raw = algorithms.sign(algorithm, key, payload)
    return SignatureRecord(
        sys_id=record_id,
        table_name=table,
        document_id=document,
        purpose=purpose,
        algorithm=algorithm.value,
        signature=B64(base64.b64encode(raw).decode("ascii")),
        certificate=cert,
        signed_fields=signed_fields,
        signed_at=signed_ts,
        expires_at=expires_ts,
    )
