"""Export of a local update set: the XML of DESIGN §5, its signed manifest, atomic files."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from sqlalchemy import update

from tests.cli.conftest import Cli
from tests.conftest import SessionPki
from tests.updatesets.io_support import (
    ENTRY_FIELDS,
    HEADER_FIELDS,
    SIGNATURE_FIELDS,
    add_record,
    export,
    manifest_verifies,
    new_set,
    ok,
    protected_home,
    read_export,
    record_fields,
)
from trustcircle._time import parse_ts
from trustcircle.crypto import fingerprint_of
from trustcircle.platform.context import Instance
from trustcircle.store.models import UpdateXml
from trustcircle.updatesets import FORMAT, record_to_payload

TRICKY_SCRIPT = "if (a < b && c > \"d\") { gs.info('<x/>'); }"
SET_NAME = "Release 1 <alpha> & more"


def _captured_set(cli: Cli, home: Path) -> tuple[str, list[str]]:
    set_id = new_set(cli, home, SET_NAME, description="two scripts")
    records = [add_record(cli, home, "First", TRICKY_SCRIPT), add_record(cli, home, "Second", "1")]
    ok(cli("updateset", "complete", set_id, "--home", home))
    return set_id, records


def test_export_writes_design_xml_in_order(cli: Cli, signing_home: Path, tmp_path: Path) -> None:
    set_id, records = _captured_set(cli, signing_home)
    out = tmp_path / "out" / "release.xml"
    result = export(cli, signing_home, set_id, out)
    assert result["files"] == [
        {
            "path": str(out),
            "sys_id": set_id,
            "name": SET_NAME,
            "parent": "",
            "entries": 2,
            "signed": True,
        }
    ]
    raw = out.read_bytes()
    assert raw.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<unload ')
    exported = read_export(out)
    root = exported.root
    assert root.tag == "unload"
    assert root.get("format") == FORMAT
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", root.get("unload_date") or "")
    assert [c.tag for c in root] == [
        "sys_remote_update_set",
        "sys_update_xml",
        "sys_update_xml",
        "update_set_signature",
    ]
    assert [c.tag for c in root[0]] == HEADER_FIELDS
    assert all([c.tag for c in el] == ENTRY_FIELDS for el in list(root)[1:3])
    assert [c.tag for c in root[3]] == SIGNATURE_FIELDS
    header = exported.header
    assert (header.sys_id, header.name, header.description) == (set_id, SET_NAME, "two scripts")
    assert (header.origin_instance, header.parent) == ("dev", "")
    # entries: sys_id order, belonging to the set, each payload the record as stored
    entries = exported.entries
    assert [e.sys_id for e in entries] == sorted(e.sys_id for e in entries)
    assert {e.target_sys_id for e in entries} == set(records)
    for entry in entries:
        assert (entry.update_set, entry.table, entry.action) == (
            set_id,
            "sys_script_include",
            "INSERT_OR_UPDATE",
        )
        fields = record_fields(cli, signing_home, "sys_script_include", entry.target_sys_id)
        assert entry.payload == record_to_payload("sys_script_include", entry.target_sys_id, fields)


def test_payload_travels_as_escaped_text_never_as_markup(
    cli: Cli, signing_home: Path, tmp_path: Path
) -> None:
    set_id, _ = _captured_set(cli, signing_home)
    out = tmp_path / "release.xml"
    export(cli, signing_home, set_id, out)
    raw = out.read_text("utf-8")
    assert "<record_update" not in raw
    assert '&lt;record_update table="sys_script_include"&gt;' in raw
    # the script's own "<" and "&" are escaped inside the payload, then once more as text
    assert "a &amp;lt; b &amp;amp;&amp;amp; c &amp;gt;" in raw
    assert "<name>Release 1 &lt;alpha&gt; &amp; more</name>" in raw
    for element in read_export(out).root.iter("payload"):
        assert len(element) == 0, "a payload holds text, never child elements"


def test_trusted_export_manifest_verifies_with_the_attest_certificate(
    cli: Cli, signing_home: Path, tmp_path: Path, test_pki: SessionPki
) -> None:
    set_id, _ = _captured_set(cli, signing_home)
    out = tmp_path / "release.xml"
    result = export(cli, signing_home, set_id, out)
    exported = read_export(out)
    sig = exported.signature
    assert sig is not None
    attest = test_pki.code_attest.cert
    assert sig.certificate == fingerprint_of(attest) == result["certificate"]
    assert sig.algorithm == "RSASSA_PKCS1_V1_5_SHA_512"
    assert (parse_ts(sig.expires_at) - parse_ts(sig.signed_at)).total_seconds() == 3600
    assert manifest_verifies(exported, attest)
    # the code-signing key did not sign it: the manifest is Circle-of-Trust material
    assert not manifest_verifies(exported, test_pki.code_signing.cert)


def test_payload_edited_after_export_breaks_the_manifest(
    cli: Cli, signing_home: Path, tmp_path: Path, test_pki: SessionPki
) -> None:
    set_id, _ = _captured_set(cli, signing_home)
    out = tmp_path / "release.xml"
    export(cli, signing_home, set_id, out)
    exported = read_export(out)
    index = next(i for i, e in enumerate(exported.entries) if "First" in e.payload)
    first = exported.entries[index]
    edited = replace(first, payload=first.payload.replace("First", "Evil"))
    entries = list(exported.entries)
    entries[index] = edited
    tampered = replace(exported, entries=entries)
    assert first.payload != edited.payload
    assert not manifest_verifies(tampered, test_pki.code_attest.cert)


def test_protected_instance_exports_without_signature(cli: Cli, tmp_path: Path) -> None:
    prod = protected_home(cli, tmp_path / "prod")
    set_id = new_set(cli, prod, "Hotfix")
    add_record(cli, prod, "Fix", "2")
    out = tmp_path / "hotfix.xml"
    result = export(cli, prod, set_id, out)
    assert result["signed"] is False
    assert result["certificate"] is None
    exported = read_export(out)
    assert exported.signature is None
    assert [c.tag for c in exported.root] == ["sys_remote_update_set", "sys_update_xml"]
    assert exported.header.origin_instance == "prod"
    assert "update_set_signature" not in out.read_text("utf-8")


def _folder_listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_trusted_export_without_attest_key_writes_nothing(
    cli: Cli, home: Path, tmp_path: Path
) -> None:
    set_id = new_set(cli, home, "Unsignable")
    add_record(cli, home, "One", "1")
    folder = tmp_path / "exports"
    folder.mkdir()
    result = cli("updateset", "export", set_id, "--out", folder / "x.xml", "--home", home)
    assert result.code == 4
    assert "cm_code_attest holds no key" in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert _folder_listing(folder) == []


def test_failed_export_keeps_the_previous_file_and_leaves_no_temp(
    cli: Cli, signing_home: Path, tmp_path: Path
) -> None:
    set_id, _ = _captured_set(cli, signing_home)
    folder = tmp_path / "exports"
    out = folder / "release.xml"
    export(cli, signing_home, set_id, out)
    before = out.read_bytes()
    # A stored payload XML cannot carry: the writer refuses it half-way through the file.
    inst = Instance.open(signing_home)
    try:
        with inst.db.transaction() as session:
            session.execute(
                update(UpdateXml).where(UpdateXml.update_set == set_id).values(payload="bad\x01")
            )
    finally:
        inst.close()
    result = cli("updateset", "export", set_id, "--out", out, "--home", signing_home)
    assert result.code == 2
    assert "XML 1.0 cannot carry" in result.err
    assert out.read_bytes() == before
    assert _folder_listing(folder) == ["release.xml"]


def test_export_of_unknown_or_malformed_set_id(
    cli: Cli, signing_home: Path, tmp_path: Path
) -> None:
    out = tmp_path / "exports" / "x.xml"
    missing = cli("updateset", "export", "0" * 32, "--out", out, "--home", signing_home)
    assert missing.code == 4
    assert "no local update set" in missing.err
    malformed = cli("updateset", "export", "nope", "--out", out, "--home", signing_home)
    assert malformed.code == 2
    assert not out.exists()


def test_export_to_a_folder_is_refused(cli: Cli, signing_home: Path, tmp_path: Path) -> None:
    set_id, _ = _captured_set(cli, signing_home)
    result = cli("updateset", "export", set_id, "--out", tmp_path, "--home", signing_home)
    assert result.code == 2
    assert "is a folder" in result.err


def test_auditor_may_list_but_not_export(cli: Cli, signing_home: Path, tmp_path: Path) -> None:
    set_id, _ = _captured_set(cli, signing_home)
    token = ok(
        cli("user", "add", "auditor", "--roles", "codesigning_auditor", "--home", signing_home)
    )
    token_file = tmp_path / "auditor.token"
    token_file.write_text(token.out.strip())
    as_auditor = ("--home", signing_home, "--token-file", token_file)
    assert cli("updateset", "list", *as_auditor).code == 0
    refused = cli("updateset", "export", set_id, "--out", tmp_path / "x.xml", *as_auditor)
    assert refused.code == 3
    assert "admin or codesigning_admin" in refused.err
    assert not (tmp_path / "x.xml").exists()
