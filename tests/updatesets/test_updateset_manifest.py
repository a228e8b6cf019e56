"""The update-set manifest of DESIGN §4: golden bytes, and a real signature over it."""

from __future__ import annotations

import base64
import hashlib
import io

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from trustcircle.crypto.algorithms import Algorithm, sign, verify
from trustcircle.errors import UsageError
from trustcircle.platform import properties
from trustcircle.updatesets import (
    ACTION_DELETE,
    ACTION_INSERT_OR_UPDATE,
    LIMIT_PROPERTIES,
    ImportLimits,
    ManifestEntry,
    ManifestSignature,
    UpdateEntry,
    UpdateSetHeader,
    manifest_payload,
    read_update_set,
    write_update_set,
)

from .builders import FINGERPRINT, LATER, SET_ID, WHEN, job_entry, sid

SHA512_ABC = (
    "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
    "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
)
SHA512_EMPTY = (
    "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
    "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
)
HEADER = UpdateSetHeader(
    SET_ID, "Turn on Code Signing Property — prod", "not signed", "dev-trusted", "", WHEN
)


def test_manifest_payload_golden_bytes() -> None:
    first = UpdateEntry(sid(1), SET_ID, "sysauto_script", sid(11), ACTION_INSERT_OR_UPDATE, "abc")
    second = ManifestEntry(sid(2), "sys_certificate", sid(12), ACTION_DELETE, SHA512_EMPTY)
    expected = (
        '{"entries":['
        '{"action":"INSERT_OR_UPDATE","payload_sha512":"' + SHA512_ABC + '",'
        f'"sys_id":"{sid(1)}","table":"sysauto_script","target_sys_id":"{sid(11)}"}},'
        '{"action":"DELETE","payload_sha512":"' + SHA512_EMPTY + '",'
        f'"sys_id":"{sid(2)}","table":"sys_certificate","target_sys_id":"{sid(12)}"}}],'
        '"expires_at":"2026-11-27T20:45:00Z",'
        '"format":"trustcircle.update-set-manifest/v1",'
        '"name":"Turn on Code Signing Property — prod",'
        '"origin_instance":"dev-trusted",'
        '"signed_at":"2026-11-27T19:45:00Z",'
        f'"update_set":"{SET_ID}"}}'
    ).encode("utf-8")
    # given out of order, and as a mix of entries and manifest lines
    assert manifest_payload(HEADER, [second, first], WHEN, LATER) == expected


def test_manifest_entry_of_hashes_the_payload_text_as_utf8() -> None:
    entry = UpdateEntry(sid(1), SET_ID, "t", sid(2), ACTION_DELETE, "<a>é</a>")
    line = ManifestEntry.of(entry)
    assert line == ManifestEntry(
        sid(1), "t", sid(2), ACTION_DELETE, hashlib.sha512("<a>é</a>".encode()).hexdigest()
    )
    assert manifest_payload(HEADER, [entry], WHEN, LATER) == manifest_payload(
        HEADER, [line], WHEN, LATER
    )


def test_entry_of_another_update_set_cannot_enter_a_manifest() -> None:
    foreign = UpdateEntry(sid(1), sid(3), "t", sid(2), ACTION_DELETE, "")
    with pytest.raises(UsageError, match="not to"):
        manifest_payload(HEADER, [foreign], WHEN, LATER)


def test_duplicate_manifest_entries_are_refused() -> None:
    line = ManifestEntry(sid(1), "t", sid(2), ACTION_DELETE, SHA512_EMPTY)
    with pytest.raises(UsageError, match="two manifest entries"):
        manifest_payload(HEADER, [line, line], WHEN, LATER)


def test_malformed_manifest_inputs_are_refused() -> None:
    with pytest.raises(UsageError, match="signed_at"):
        manifest_payload(HEADER, [], "now", LATER)
    bad_digest = ManifestEntry(sid(1), "t", sid(2), ACTION_DELETE, "ABC")
    with pytest.raises(UsageError, match="payload_sha512"):
        manifest_payload(HEADER, [bad_digest], WHEN, LATER)


def _signed_export(key: ed25519.Ed25519PrivateKey, entries: list[UpdateEntry]) -> bytes:
    payload = manifest_payload(HEADER, entries, WHEN, LATER)
    raw = sign(Algorithm.ED25519, key, payload)
    signature = ManifestSignature(
        Algorithm.ED25519.value, FINGERPRINT, WHEN, LATER, base64.b64encode(raw).decode()
    )
    out = io.BytesIO()
    write_update_set(out, HEADER, entries, signature, WHEN)
    return out.getvalue()


def _manifest_verifies(data: bytes, key: ed25519.Ed25519PublicKey) -> bool:
    items = list(read_update_set(io.BytesIO(data), ImportLimits()))
    header, signature = items[0], items[-1]
    assert isinstance(header, UpdateSetHeader)
    assert isinstance(signature, ManifestSignature)
    entries = [item for item in items if isinstance(item, UpdateEntry)]
    rebuilt = manifest_payload(header, entries, signature.signed_at, signature.expires_at)
    return verify(Algorithm.ED25519, key, base64.b64decode(signature.signature), rebuilt)


def test_signed_manifest_verifies_after_export_and_import() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    data = _signed_export(key, [job_entry(1), job_entry(2)])
    assert _manifest_verifies(data, key.public_key())


def test_payload_edited_in_transit_breaks_the_manifest_signature() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    data = _signed_export(key, [job_entry(1, script="gs.info('hello');")])
    tampered = data.replace(b"gs.info(", b"gs.eval(")
    assert tampered != data
    assert not _manifest_verifies(tampered, key.public_key())


def test_entry_dropped_in_transit_breaks_the_manifest_signature() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    data = _signed_export(key, [job_entry(1), job_entry(2)])
    start = data.rindex(b"  <sys_update_xml>", 0, data.index(f"<sys_id>{sid(1)}".encode()))
    end = data.index(b"</sys_update_xml>\n", start) + len(b"</sys_update_xml>\n")
    dropped = data[:start] + data[end:]
    kept = [
        i
        for i in read_update_set(io.BytesIO(dropped), ImportLimits())
        if isinstance(i, UpdateEntry)
    ]
    assert [entry.sys_id for entry in kept] == [sid(2)]
    assert not _manifest_verifies(dropped, key.public_key())


def test_limit_property_names_match_the_platform_definitions() -> None:
    assert LIMIT_PROPERTIES == {
        "max_file_bytes": properties.IMPORT_MAX_FILE_BYTES,
        "max_depth": properties.IMPORT_MAX_DEPTH,
        "max_field_bytes": properties.IMPORT_MAX_FIELD_BYTES,
        "max_entries": properties.IMPORT_MAX_ENTRIES,
    }
    limits = ImportLimits()
    for name, prop in LIMIT_PROPERTIES.items():
        assert properties.DEFINITIONS[prop].default == str(getattr(limits, name))
