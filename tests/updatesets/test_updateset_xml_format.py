"""The update-set XML of DESIGN §5: hand-written documents parse, written ones read back."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trustcircle.errors import UsageError
from trustcircle.updatesets import (
    ACTION_DELETE,
    ACTION_INSERT_OR_UPDATE,
    ImportLimits,
    ManifestSignature,
    UpdateEntry,
    UpdateSetHeader,
    entry_to_record,
    payload_to_record,
    read_update_set,
    record_to_payload,
    write_update_set,
)

from .builders import HEADER, SET_ID, SIGNATURE, WHEN, job_entry, read_all, sid, written

JOB = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
CERT = "00112233445566778899aabbccddeeff"
FPR = "3f" * 32

# Built by hand from DESIGN §5, indented as the design shows it.
GOLDEN = f"""<?xml version="1.0" encoding="UTF-8"?>
<unload format="trustcircle.update-set/v1" unload_date="2026-11-27T19:45:00Z">
  <sys_remote_update_set>
    <sys_id>{SET_ID}</sys_id>
    <name>Turn on Code Signing Property</name>
    <description>signed job &amp; its certificates</description>
    <origin_instance>dev-trusted</origin_instance>
    <parent/>
    <created_on>2026-11-27T19:40:00Z</created_on>
  </sys_remote_update_set>
  <sys_update_xml>
    <sys_id>{sid(1)}</sys_id>
    <update_set>{SET_ID}</update_set>
    <table>sysauto_script</table>
    <target_sys_id>{JOB}</target_sys_id>
    <action>INSERT_OR_UPDATE</action>
    <payload>&lt;record_update table="sysauto_script"&gt;&lt;sysauto_script&gt;&lt;sys_id&gt;{JOB}&lt;/sys_id&gt;&lt;name&gt;Turn on Code Signing Property&lt;/name&gt;&lt;script&gt;if (a &amp;lt; b &amp;amp;&amp;amp; c) {{ gs.setProperty('com.snc.kmf.signature.validation.flag', 'true'); }}&lt;/script&gt;&lt;run_as/&gt;&lt;/sysauto_script&gt;&lt;/record_update&gt;</payload>
  </sys_update_xml>
  <sys_update_xml>
    <sys_id>{sid(2)}</sys_id>
    <update_set>{SET_ID}</update_set>
    <table>sys_certificate</table>
    <target_sys_id>{CERT}</target_sys_id>
    <action>DELETE</action>
    <payload><![CDATA[<record_update table="sys_certificate"><sys_certificate><sys_id>{CERT}</sys_id><name>old</name></sys_certificate></record_update>]]></payload>
  </sys_update_xml>
  <update_set_signature>
    <algorithm>RSASSA_PKCS1_V1_5_SHA_512</algorithm>
    <certificate>{FPR}</certificate>
    <signed_at>2026-11-27T19:45:00Z</signed_at>
    <expires_at>2026-11-27T20:45:00Z</expires_at>
    <signature>AAECAwQ=</signature>
  </update_set_signature>
</unload>
""".encode()  # noqa: E501


def test_golden_document_from_design_parses_as_expected() -> None:
    items = read_all(GOLDEN)
    assert items == [
        UpdateSetHeader(
            SET_ID,
            "Turn on Code Signing Property",
            "signed job & its certificates",
            "dev-trusted",
            "",
            "2026-11-27T19:40:00Z",
        ),
        UpdateEntry(
            sid(1),
            SET_ID,
            "sysauto_script",
            JOB,
            ACTION_INSERT_OR_UPDATE,
            f'<record_update table="sysauto_script"><sysauto_script><sys_id>{JOB}</sys_id>'
            "<name>Turn on Code Signing Property</name><script>if (a &lt; b &amp;&amp; c) "
            "{ gs.setProperty('com.snc.kmf.signature.validation.flag', 'true'); }</script>"
            "<run_as/></sysauto_script></record_update>",
        ),
        UpdateEntry(
            sid(2),
            SET_ID,
            "sys_certificate",
            CERT,
            ACTION_DELETE,
            f'<record_update table="sys_certificate"><sys_certificate><sys_id>{CERT}</sys_id>'
            "<name>old</name></sys_certificate></record_update>",
        ),
        ManifestSignature(
            "RSASSA_PKCS1_V1_5_SHA_512",
            FPR,
            "2026-11-27T19:45:00Z",
            "2026-11-27T20:45:00Z",
            "AAECAwQ=",
        ),
    ]
    job = items[1]
    assert isinstance(job, UpdateEntry)
    assert entry_to_record(job, ImportLimits()) == {
        "name": "Turn on Code Signing Property",
        "script": "if (a < b && c) { gs.setProperty('com.snc.kmf.signature.validation.flag', "
        "'true'); }",
        "run_as": "",  # empty element: "", while the absent active field is null
    }


def test_golden_document_from_a_path_parses_the_same(tmp_path: Path) -> None:
    path = tmp_path / "sys_remote_update_set.xml"
    path.write_bytes(GOLDEN)
    assert list(read_update_set(path, ImportLimits())) == read_all(GOLDEN)


def test_written_document_is_byte_exact() -> None:
    header = UpdateSetHeader(SET_ID, "a & b", "line 1\r\nline 2", "dev", sid(9), WHEN)
    payload = record_to_payload("sys_script", sid(3), {"script": "x < 1", "when": None})
    entry = UpdateEntry(sid(1), SET_ID, "sys_script", sid(3), ACTION_INSERT_OR_UPDATE, payload)
    expected = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<unload format="trustcircle.update-set/v1" unload_date="2026-11-27T19:45:00Z">\n'
        "  <sys_remote_update_set>\n"
        f"    <sys_id>{SET_ID}</sys_id>\n"
        "    <name>a &amp; b</name>\n"
        "    <description>line 1&#13;\nline 2</description>\n"
        "    <origin_instance>dev</origin_instance>\n"
        f"    <parent>{sid(9)}</parent>\n"
        "    <created_on>2026-11-27T19:45:00Z</created_on>\n"
        "  </sys_remote_update_set>\n"
        "  <sys_update_xml>\n"
        f"    <sys_id>{sid(1)}</sys_id>\n"
        f"    <update_set>{SET_ID}</update_set>\n"
        "    <table>sys_script</table>\n"
        f"    <target_sys_id>{sid(3)}</target_sys_id>\n"
        "    <action>INSERT_OR_UPDATE</action>\n"
        '    <payload>&lt;record_update table="sys_script"&gt;&lt;sys_script&gt;&lt;sys_id&gt;'
        f"{sid(3)}&lt;/sys_id&gt;&lt;script&gt;x &amp;lt; 1&lt;/script&gt;&lt;/sys_script&gt;"
        "&lt;/record_update&gt;</payload>\n"
        "  </sys_update_xml>\n"
        "</unload>\n"
    ).encode()
    assert written([entry], signature=None, header=header) == expected


def test_signature_is_written_last_and_read_back() -> None:
    items = read_all(written([job_entry(1), job_entry(2)]))
    assert items[0] == HEADER
    assert items[-1] == SIGNATURE
    assert [type(i) for i in items[1:-1]] == [UpdateEntry, UpdateEntry]


def test_empty_update_set_round_trips() -> None:
    assert read_all(written([], signature=None)) == [HEADER]


_SPECIALS = st.sampled_from(["", "<", "&", ">", '"', "'", "\n", "\r", "\r\n", "\t", "]]>", "\x85"])
_TEXT = st.lists(
    st.text(st.characters(exclude_categories=("Cs", "Cc", "Cn")), max_size=12) | _SPECIALS,
    max_size=6,
).map("".join)
_FIELD_NAMES = st.sampled_from(["name", "script", "run_as", "active", "u_note", "x.y", "_z"])


@settings(max_examples=150, deadline=None)
@given(
    fields=st.dictionaries(_FIELD_NAMES, st.none() | _TEXT, max_size=7),
    name=_TEXT,
    description=_TEXT,
)
def test_write_then_read_gives_back_the_same_update_set(
    fields: dict[str, str | None], name: str, description: str
) -> None:
    header = UpdateSetHeader(SET_ID, name, description, "dev", "", WHEN)
    payload = record_to_payload("sysauto_script", sid(7), fields)
    entry = UpdateEntry(sid(1), SET_ID, "sysauto_script", sid(7), ACTION_INSERT_OR_UPDATE, payload)
    items = read_all(written([entry], header=header))
    assert items == [header, entry, SIGNATURE]
    table, record_id, parsed = payload_to_record(payload, ImportLimits())
    assert (table, record_id) == ("sysauto_script", sid(7))
    assert parsed == {k: v for k, v in fields.items() if v is not None}


@settings(max_examples=50, deadline=None)
@given(payload=_TEXT)
def test_any_payload_text_is_carried_exactly(payload: str) -> None:
    """The manifest hashes the payload text: the XML must carry it byte for byte."""
    entry = UpdateEntry(sid(1), SET_ID, "sys_script", sid(2), ACTION_DELETE, payload)
    assert read_all(written([entry]))[1] == entry


def _many(count: int) -> Iterator[UpdateEntry]:
    script = "function run() {\n  return a < b && c > d;\n}\n" * 48
    for n in range(count):
        yield job_entry(n, script=script)


def test_ten_thousand_entries_stream_through_a_file(tmp_path: Path) -> None:
    path = tmp_path / "big.xml"
    with path.open("wb") as out:
        write_update_set(out, HEADER, _many(10_000), SIGNATURE, WHEN)
    count = 0
    last: object = None
    for item in read_update_set(path, ImportLimits()):
        count += isinstance(item, UpdateEntry)
        last = item
    assert count == 10_000
    assert last == SIGNATURE


@pytest.mark.parametrize("bad", ["\x00", "\x1b[31m", "\ud800", "\uffff"])
def test_text_xml_cannot_carry_is_refused_when_writing(bad: str) -> None:
    header = UpdateSetHeader(SET_ID, f"name{bad}", "", "dev", "", WHEN)
    with pytest.raises(UsageError, match=r"XML 1\.0 cannot carry"):
        written([], header=header)
    entry = UpdateEntry(sid(1), SET_ID, "sys_script", sid(2), ACTION_DELETE, f"x{bad}")
    with pytest.raises(UsageError, match=r"XML 1\.0 cannot carry"):
        written([entry])


def test_writer_refuses_what_the_reader_would_refuse() -> None:
    twin = job_entry(2)
    clash = UpdateEntry(sid(3), SET_ID, twin.table, twin.target_sys_id, twin.action, "")
    with pytest.raises(UsageError, match="both target record"):
        written([twin, clash])
    with pytest.raises(UsageError, match="two entries have sys_id"):
        written([job_entry(1), UpdateEntry(sid(1), SET_ID, "t", sid(5), ACTION_DELETE, "")])
    with pytest.raises(UsageError, match="not to"):
        written([UpdateEntry(sid(1), sid(6), "t", sid(5), ACTION_DELETE, "")])
    with pytest.raises(UsageError, match="unknown action"):
        written([UpdateEntry(sid(1), SET_ID, "t", sid(5), "UPSERT", "")])
    with pytest.raises(UsageError, match="unload_date"):
        write_update_set(io.BytesIO(), HEADER, [], None, "yesterday")
    with pytest.raises(UsageError, match="created_on"):
        written([], header=UpdateSetHeader(SET_ID, "n", "", "dev", "", "2026-13-40T00:00:00Z"))
    with pytest.raises(UsageError, match="algorithm"):
        written([], signature=ManifestSignature("MD5", "ab" * 32, WHEN, WHEN, "AA=="))
