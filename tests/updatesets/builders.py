"""Small builders shared by the update-set tests: hand-written XML and typical entries."""

from __future__ import annotations

import io
from collections.abc import Iterable

from trustcircle.updatesets import (
    ACTION_INSERT_OR_UPDATE,
    ImportLimits,
    ManifestSignature,
    UpdateEntry,
    UpdateSetHeader,
    read_update_set,
    record_to_payload,
    write_update_set,
)

SET_ID = "5e7a0c1d2b3f4a5968778695a4b3c2d1"
WHEN = "2026-11-27T19:45:00Z"
LATER = "2026-11-27T20:45:00Z"
FINGERPRINT = "ab" * 32

HEADER = UpdateSetHeader(
    sys_id=SET_ID,
    name="code_signing_key_publicsigver_cm_code_attest",
    description="certificate export",
    origin_instance="dev-trusted",
    parent="",
    created_on=WHEN,
)

SIGNATURE = ManifestSignature(
    algorithm="ED25519",
    certificate=FINGERPRINT,
    signed_at=WHEN,
    expires_at=LATER,
    signature="c2lnbmF0dXJl",
)


def sid(n: int) -> str:
    """A deterministic sys_id."""
    return f"{n:032x}"


def job_entry(n: int, script: str = "gs.setProperty('x', 'true');") -> UpdateEntry:
    """Entry *n*: a scheduled job whose target is ``sid(10_000_000 + n)``."""
    target = sid(10_000_000 + n)
    payload = record_to_payload(
        "sysauto_script",
        target,
        {"name": f"Turn on Code Signing Property {n}", "script": script, "active": "true"},
    )
    return UpdateEntry(sid(n), SET_ID, "sysauto_script", target, ACTION_INSERT_OR_UPDATE, payload)


def written(
    entries: Iterable[UpdateEntry],
    signature: ManifestSignature | None = SIGNATURE,
    header: UpdateSetHeader = HEADER,
) -> bytes:
    out = io.BytesIO()
    write_update_set(out, header, entries, signature, WHEN)
    return out.getvalue()


def read_all(
    data: bytes, limits: ImportLimits | None = None
) -> list[UpdateSetHeader | UpdateEntry | ManifestSignature]:
    return list(read_update_set(io.BytesIO(data), limits or ImportLimits()))


def header_xml(sys_id: str = SET_ID) -> str:
    return (
        "<sys_remote_update_set>"
        f"<sys_id>{sys_id}</sys_id><name>hand made</name><description></description>"
        f"<origin_instance>dev</origin_instance><parent/><created_on>{WHEN}</created_on>"
        "</sys_remote_update_set>"
    )


def entry_xml(
    n: int,
    target: str | None = None,
    update_set: str = SET_ID,
    action: str = ACTION_INSERT_OR_UPDATE,
    payload: str = '&lt;record_update table="sysauto_script"&gt;&lt;/record_update&gt;',
) -> str:
    return (
        "<sys_update_xml>"
        f"<sys_id>{sid(n)}</sys_id><update_set>{update_set}</update_set>"
        f"<table>sysauto_script</table><target_sys_id>{target or sid(10_000_000 + n)}"
        f"</target_sys_id><action>{action}</action><payload>{payload}</payload>"
        "</sys_update_xml>"
    )


def document(body: str, prolog: str = "", unload_attrs: str | None = None) -> bytes:
    """A hand-written update-set document around *body* (header and entries as XML text)."""
    attrs = (
        unload_attrs
        if unload_attrs is not None
        else f'format="trustcircle.update-set/v1" unload_date="{WHEN}"'
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n{prolog}<unload {attrs}>\n{body}\n</unload>\n'
    ).encode()
