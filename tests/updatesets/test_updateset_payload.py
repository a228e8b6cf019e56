"""Record payloads: written deterministically, read back strictly."""

from __future__ import annotations

import pytest

from trustcircle.errors import BadInputError, LimitExceededError, UsageError
from trustcircle.updatesets import (
    ACTION_INSERT_OR_UPDATE,
    ImportLimits,
    UpdateEntry,
    entry_to_record,
    payload_to_record,
    record_to_payload,
)

from .builders import SET_ID, sid

REC = sid(42)
LIMITS = ImportLimits()


def wrap(inner: str, table: str = "sysauto_script") -> str:
    record = f"<{table}><sys_id>{REC}</sys_id>{inner}</{table}>"
    return f'<record_update table="{table}">{record}</record_update>'


def refused(payload: str, limits: ImportLimits = LIMITS) -> BadInputError:
    with pytest.raises(BadInputError) as caught:
        payload_to_record(payload, limits)
    assert "\n" not in caught.value.message
    return caught.value


def test_payload_golden_sys_id_first_fields_sorted_nulls_absent() -> None:
    payload = record_to_payload(
        "sysauto_script",
        REC,
        {"script": "if (a < b && c > d)\r\n  run();", "active": "true", "run_as": "", "x": None},
    )
    assert payload == (
        f'<record_update table="sysauto_script"><sysauto_script><sys_id>{REC}</sys_id>'
        "<active>true</active><run_as></run_as>"
        "<script>if (a &lt; b &amp;&amp; c &gt; d)&#13;\n  run();</script>"
        "</sysauto_script></record_update>"
    )


def test_payload_is_deterministic_whatever_the_field_order() -> None:
    one = record_to_payload("sys_script", REC, {"a": "1", "b": "2", "sys_id": REC})
    two = record_to_payload("sys_script", REC, {"sys_id": REC, "b": "2", "a": "1"})
    assert one == two


def test_absent_field_is_null_and_empty_field_is_empty_text() -> None:
    table, record_id, fields = payload_to_record(wrap("<name></name><run_as/>"), LIMITS)
    assert (table, record_id) == ("sysauto_script", REC)
    assert fields == {"name": "", "run_as": ""}
    assert "script" not in fields


def test_quotes_and_unicode_survive() -> None:
    value = 'l\'été "chaud" — 你好 \U0001f510'
    payload = record_to_payload("sys_script", REC, {"name": value})
    assert payload_to_record(payload, LIMITS)[2] == {"name": value}


@pytest.mark.parametrize(
    "table", ["Sys_Script", "1table", "sys-script", "a b", 'x"><evil', "", "t" * 81]
)
def test_bad_table_name_is_a_usage_error(table: str) -> None:
    with pytest.raises(UsageError, match="table name"):
        record_to_payload(table, REC, {})


@pytest.mark.parametrize("field", ["Name", "na me", "x><y", "", "{urn:x}y"])
def test_bad_field_name_is_a_usage_error(field: str) -> None:
    with pytest.raises(UsageError, match="field name"):
        record_to_payload("sys_script", REC, {field: "v"})


def test_malformed_sys_id_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="32 lowercase hex"):
        record_to_payload("sys_script", REC.upper(), {})


def test_conflicting_sys_id_field_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="differs"):
        record_to_payload("sys_script", REC, {"sys_id": sid(1)})


def test_non_text_value_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="is a bool"):
        record_to_payload("sys_script", REC, {"active": True})  # type: ignore[dict-item]


@pytest.mark.parametrize("bad", ["\x00", "\x07", "\ud800", "\ufffe"])
def test_text_xml_cannot_carry_is_a_usage_error(bad: str) -> None:
    with pytest.raises(UsageError, match=r"XML 1\.0 cannot carry"):
        record_to_payload("sys_script", REC, {"script": f"ok{bad}"})


def test_payload_table_mismatch_is_refused() -> None:
    payload = wrap("<script>evil()</script>").replace(
        'table="sysauto_script"', 'table="sys_script_include"'
    )
    assert "does not match its table attribute" in refused(payload).message


def test_record_claiming_another_entry_target_is_refused() -> None:
    payload = record_to_payload("sysauto_script", sid(99), {"script": "evil()"})
    entry = UpdateEntry(sid(1), SET_ID, "sysauto_script", REC, ACTION_INSERT_OR_UPDATE, payload)
    with pytest.raises(BadInputError, match="but its payload holds"):
        entry_to_record(entry, LIMITS)


def test_record_moved_to_another_table_is_refused() -> None:
    payload = record_to_payload("sys_script_include", REC, {"script": "evil()"})
    entry = UpdateEntry(sid(1), SET_ID, "sysauto_script", REC, ACTION_INSERT_OR_UPDATE, payload)
    with pytest.raises(BadInputError, match="but its payload holds sys_script_include"):
        entry_to_record(entry, LIMITS)


def test_nested_elements_inside_a_field_are_refused() -> None:
    message = refused(wrap("<script>run<b>me</b></script>")).message
    assert "nested elements" in message


def test_nesting_beyond_max_depth_in_payload_is_a_limit() -> None:
    error = refused(wrap("<script><b/></script>"), ImportLimits(max_depth=3))
    assert isinstance(error, LimitExceededError)
    assert "trustcircle.updateset.import.max_depth" in error.message


def test_deeply_nested_payload_is_refused() -> None:
    refused(wrap("<script>" + "<a>" * 5000 + "</a>" * 5000 + "</script>"))


def test_duplicate_field_is_refused() -> None:
    message = refused(wrap("<script>good()</script><script>evil()</script>")).message
    assert "two script fields" in message


def test_second_sys_id_is_refused() -> None:
    assert "two sys_id" in refused(wrap(f"<sys_id>{sid(7)}</sys_id>")).message


def test_missing_sys_id_is_refused() -> None:
    payload = '<record_update table="t"><t><name>x</name></t></record_update>'
    assert "no sys_id" in refused(payload).message


def test_malformed_sys_id_is_refused() -> None:
    payload = wrap("").replace(REC, "../../etc/passwd")
    assert "not 32 lowercase hex" in refused(payload).message


def test_dtd_in_payload_is_refused() -> None:
    payload = '<!DOCTYPE t [<!ENTITY x SYSTEM "file:///etc/passwd">]>' + wrap("<name>&x;</name>")
    assert "DTD" in refused(payload).message


def test_undeclared_entity_in_payload_is_refused() -> None:
    assert "not well-formed" in refused(wrap("<name>&xxe;</name>")).message


def test_truncated_payload_is_refused() -> None:
    assert "not well-formed" in refused(wrap("<name>x</name>")[:-20]).message


def test_oversize_payload_is_refused() -> None:
    payload = record_to_payload("t", REC, {"script": "x" * 5000})
    error = refused(payload, ImportLimits(max_field_bytes=4096))
    assert isinstance(error, LimitExceededError)
    assert "max_field_bytes=4096" in error.message


def test_comment_inside_payload_record_is_refused() -> None:
    assert "comment" in refused(wrap("<!-- hidden --><name>x</name>")).message


def test_attributes_are_refused() -> None:
    assert "attributes" in refused(wrap('<name xml:space="preserve">x</name>')).message
    extra = wrap("").replace('table="sysauto_script"', 'table="sysauto_script" run="1"')
    assert "<record_update" in refused(extra).message


def test_two_records_in_one_payload_are_refused() -> None:
    payload = wrap("").replace("</record_update>", f"<t><sys_id>{REC}</sys_id></t></record_update>")
    assert "exactly one record" in refused(payload).message


def test_stray_text_in_record_is_refused() -> None:
    assert "stray text" in refused(wrap("rm -rf /<name>x</name>")).message


def test_foreign_root_is_refused() -> None:
    assert "record_update" in refused("<html><body/></html>").message
