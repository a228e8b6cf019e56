"""The update-set manifest of DESIGN §4: golden bytes, and a real signature over it."""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from trustcircle.crypto.algorithms import Algorithm, sign, verify
from trustcircle.errors import UsageError
from trustcircle.platform import properties
from trustcircle.signing.canonical import canonical_json
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
from trustcircle.updatesets.manifest import (
    _document,
    _fast_line,
    _fast_parts,
    _fast_tail,
    _line,
    manifest_parts,
)
from trustcircle.updatesets.xmlformat import check_header, is_timestamp, shorten

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


def _jcs(document: dict[str, object]) -> bytes:
    """The RFC 8785 serialisation, by the reference library."""
    return rfc8785.dumps(cast(Any, document))


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


# -- the fast path is the reference: same lines, same refusals, same bytes ---------------------


class _Text(str):
    """A str subclass that formats as other text: the fast path must leave it to the reference
    (JCS writes a string's characters, not what ``format`` makes of it)."""

    def __format__(self, spec: str) -> str:
        return "tampered"

    def __str__(self) -> str:
        return "tampered"


_HEX32 = st.text("0123456789abcdef", min_size=32, max_size=32)
_SHA512 = st.binary(max_size=8).map(lambda raw: hashlib.sha512(raw).hexdigest())
_TABLE = st.sampled_from(["sysauto_script", "sys_certificate", "a.b_c9", "t" * 80])
_ACTION = st.sampled_from([ACTION_INSERT_OR_UPDATE, ACTION_DELETE])
_PAYLOAD = st.text(max_size=30) | st.sampled_from(["<a>\ud800</a>", ""])


def _misses(valid: st.SearchStrategy[str], *misses: object) -> st.SearchStrategy[object]:
    """Near misses of *valid*: one character changed, one short, one long, other types."""
    changed = st.tuples(valid, st.integers(0, 200), st.sampled_from("AF_.gé \x00-Z")).map(
        lambda t: t[0][: t[1] % len(t[0])] + t[2] + t[0][t[1] % len(t[0]) + 1 :]
    )
    return st.one_of(
        changed,
        valid.map(lambda v: v[:-1]),
        valid.map(lambda v: v + v[-1]),
        valid.map(_Text),  # still valid, for the reference
        st.sampled_from([None, "", 7, *misses]),
    )


_LINE_FIELDS = {
    "sys_id": (_HEX32, _misses(_HEX32)),
    "table": (_TABLE, _misses(_TABLE, "Sys", "9table", "t" * 81)),
    "target_sys_id": (_HEX32, _misses(_HEX32)),
    "action": (_ACTION, _misses(_ACTION, "delete", "UPDATE")),
    "payload_sha512": (_SHA512, _misses(_SHA512, "ABC")),
}


@st.composite
def _item(draw: st.DrawFn) -> object:
    """A manifest line or an update entry, valid or with a field gone wrong."""
    values: dict[str, Any] = {name: draw(valid) for name, (valid, _) in _LINE_FIELDS.items()}
    for name in draw(st.lists(st.sampled_from(sorted(_LINE_FIELDS)), max_size=1)):
        values[name] = draw(_LINE_FIELDS[name][1])
    kind = draw(st.sampled_from(["line", "entry", "entry", "foreign", "other"]))
    if kind == "line":
        return ManifestEntry(**values)
    if kind == "other":
        return values["sys_id"]
    update_set = SET_ID if kind == "entry" else draw(_HEX32 | st.just(_Text(SET_ID)))
    return UpdateEntry(
        values["sys_id"],
        update_set,
        values["table"],
        values["target_sys_id"],
        values["action"],
        draw(_PAYLOAD),
    )


def _outcome(build: Callable[[], object]) -> object:
    try:
        return build()
    except Exception as exc:  # the reference's refusals, word for word
        return type(exc), str(exc)


def _exact_fields(item: object) -> bool:
    """True for a line or entry whose manifest fields are all exact ``str``."""
    names = ["sys_id", "table", "target_sys_id", "action"]
    if type(item) is ManifestEntry:
        names.append("payload_sha512")
    elif type(item) is not UpdateEntry:
        return False
    return all(type(getattr(item, name)) is str for name in names)


@settings(max_examples=1000, deadline=None)
@given(_item())
def test_fast_line_accepts_exactly_what_the_reference_accepts(item: object) -> None:
    expected = _outcome(lambda: _line(item, SET_ID))  # type: ignore[arg-type]
    fast = _outcome(lambda: _fast_line(item, SET_ID))
    if fast is not None:
        assert fast == expected
    elif isinstance(expected, ManifestEntry):  # left to the reference: only other types
        assert not _exact_fields(item)


def _reference_manifest(
    header: UpdateSetHeader, items: list[object], signed_at: str, expires_at: str
) -> bytes:
    """``manifest_payload`` as it was written before its fast path."""
    check_header(header, UsageError)
    for name, value in (("signed_at", signed_at), ("expires_at", expires_at)):
        if not isinstance(value, str) or not is_timestamp(value):
            raise UsageError(
                f"manifest {name} {shorten(value)} is not an RFC 3339 UTC time like "
                "2026-11-27T19:45:00Z"
            )
    lines: dict[str, ManifestEntry] = {}
    for item in items:
        line = _line(item, header.sys_id)  # type: ignore[arg-type]
        if line.sys_id in lines:
            raise UsageError(f"two manifest entries have sys_id {line.sys_id}: give each its own")
        lines[line.sys_id] = line
    return canonical_json(_document(header, lines, signed_at, expires_at))


_HEADER_TEXT = st.text(max_size=20) | st.sampled_from(["lone \udc80", '\U0001f600\u2028"\\'])
_HEADER_VALUE = _HEADER_TEXT | _HEADER_TEXT.map(_Text) | st.sampled_from([None, 7, ["x"]])


@settings(max_examples=300, deadline=None)
@given(
    items=st.lists(_item(), max_size=12),
    repeat=st.booleans(),
    name=_HEADER_VALUE,
    origin=_HEADER_VALUE,
)
def test_manifest_payload_is_the_reference_byte_for_byte(
    items: list[object], repeat: bool, name: str, origin: str
) -> None:
    if repeat and items:
        items.append(items[0])  # two entries with one sys_id
    header = UpdateSetHeader(SET_ID, name, "d", origin, "", WHEN)
    expected = _outcome(lambda: _reference_manifest(header, items, WHEN, LATER))
    actual = _outcome(lambda: manifest_payload(header, items, WHEN, LATER))  # type: ignore[arg-type]
    assert actual == expected


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(
        st.builds(ManifestEntry, _HEX32, _TABLE, _HEX32, _ACTION, _SHA512),
        max_size=30,
        unique_by=lambda line: line.sys_id,
    ),
    name=st.text(st.characters(codec="utf-8"), max_size=20),
)
def test_valid_manifests_take_the_fast_path_and_are_rfc8785(
    lines: list[ManifestEntry], name: str
) -> None:
    header = UpdateSetHeader(SET_ID, name, "d", "dev-trusted", "", WHEN)
    assert all(_fast_line(line, SET_ID) is line for line in lines)
    by_id = {line.sys_id: line for line in lines}
    tail = _fast_tail(header, WHEN, LATER)
    assert tail is not None
    fast = b"".join(_fast_parts(by_id, tail))
    document = _document(header, by_id, WHEN, LATER)
    assert fast == _jcs(document) == manifest_payload(header, lines, WHEN, LATER)


def test_a_long_manifest_hashed_in_parts_is_the_whole_document() -> None:
    lines = [
        ManifestEntry(sid(i), "sysauto_script", sid(i + 5000), ACTION_DELETE, SHA512_EMPTY)
        for i in range(1, 1300)  # more than two parts of 512 lines
    ]
    parts = list(manifest_parts(HEADER, reversed(lines), WHEN, LATER))
    assert len(parts) == 5  # head, three parts of lines, tail
    by_id = {line.sys_id: line for line in lines}
    assert b"".join(parts) == _jcs(_document(HEADER, by_id, WHEN, LATER))


def test_manifest_entries_are_read_lazily_up_to_the_first_bad_one() -> None:
    good = ManifestEntry(sid(1), "t", sid(2), ACTION_DELETE, SHA512_EMPTY)
    bad = ManifestEntry(sid(3), "T", sid(4), ACTION_DELETE, SHA512_EMPTY)
    consumed: list[ManifestEntry] = []

    def entries() -> Iterator[ManifestEntry]:
        for line in (good, bad, good):
            consumed.append(line)
            yield line

    with pytest.raises(UsageError, match="names table 'T', which is not a table name"):
        manifest_payload(HEADER, entries(), WHEN, LATER)
    assert consumed == [good, bad]


def test_manifests_are_built_alike_on_several_threads() -> None:
    lines = [
        ManifestEntry(sid(n), "sysauto_script", sid(50_000 + n), ACTION_DELETE, SHA512_EMPTY)
        for n in range(2000)
    ]
    expected = _reference_manifest(HEADER, list(lines), WHEN, LATER)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: manifest_payload(HEADER, lines, WHEN, LATER), range(8)))
    assert results == [expected] * 8


def test_lines_of_str_subclasses_are_written_by_their_characters() -> None:
    plain = ManifestEntry(sid(1), "sysauto_script", sid(2), ACTION_DELETE, SHA512_EMPTY)
    odd = ManifestEntry(
        _Text(sid(1)), _Text("sysauto_script"), sid(2), ACTION_DELETE, _Text(SHA512_EMPTY)
    )
    other = ManifestEntry(sid(3), "t", sid(4), ACTION_DELETE, SHA512_ABC)
    assert _fast_line(odd, SET_ID) is None
    expected = manifest_payload(HEADER, [plain, other], WHEN, LATER)
    assert b"tampered" not in expected
    assert manifest_payload(HEADER, [other, odd], WHEN, LATER) == expected
    renamed = UpdateSetHeader(SET_ID, _Text(HEADER.name), "d", "dev-trusted", "", WHEN)
    assert manifest_payload(renamed, [plain, other], WHEN, LATER) == expected
