"""The built-in signature configurations are exactly DESIGN §4's table."""

from __future__ import annotations

import pytest

from trustcircle.errors import PolicyError, UsageError
from trustcircle.signing import (
    BUILTIN_CONFIGS,
    CIRCLE_OF_TRUST,
    CODE_SIGNING,
    WILDCARD,
    WILDCARD_TABLES,
    SignatureConfig,
    check_purpose,
)

DESIGN_TABLE = {
    "sysauto_script": (
        ("name", "script", "run_as", "run_type", "active"),
        ("Circle of Trust", "Code Signing"),
    ),
    "sys_script_include": (("name", "api_name", "script", "active"), ("*", "Code Signing")),
    "sys_script": (
        ("name", "collection", "when", "condition", "script", "active"),
        ("*", "Code Signing"),
    ),
    "mid_script_include": (("name", "script", "active"), ("Code Signing",)),
    "sys_data_source": (("name", "type", "connection_url", "sql_statement"), ("Code Signing",)),
    "sys_rest_message": (
        ("name", "endpoint", "http_method", "headers", "request_body"),
        ("Code Signing",),
    ),
    "sys_ui_action": (("name", "table", "condition", "script", "action_name"), ("Code Signing",)),
    "sys_certificate": (("name", "module", "pem"), ("Circle of Trust",)),
    "cot_policy_statement": (
        ("instance", "state", "sequence", "issued_at", "expires_at"),
        ("Circle of Trust",),
    ),
}


def test_builtin_configs_match_the_design_table() -> None:
    actual = {t: (c.fields, c.purposes) for t, c in BUILTIN_CONFIGS.items()}
    assert actual == DESIGN_TABLE
    assert all(c.table == t for t, c in BUILTIN_CONFIGS.items())


def test_builtin_configs_cannot_be_altered_at_runtime() -> None:
    with pytest.raises(TypeError):
        BUILTIN_CONFIGS["sys_script"] = BUILTIN_CONFIGS["sys_certificate"]  # type: ignore[index]


def test_wildcard_is_reserved_for_script_includes_and_business_rules() -> None:
    assert frozenset({"sys_script_include", "sys_script"}) == WILDCARD_TABLES
    for table in WILDCARD_TABLES:
        check_purpose(BUILTIN_CONFIGS[table], WILDCARD)


def test_wildcard_on_another_table_is_a_policy_refusal() -> None:
    # Even a custom configuration that lists '*' cannot grant it to another table.
    custom = SignatureConfig("sysauto_script", ("name", "script"), (WILDCARD, CODE_SIGNING))
    for config in (BUILTIN_CONFIGS["sysauto_script"], custom):
        with pytest.raises(PolicyError) as caught:
            check_purpose(config, WILDCARD)
        assert caught.value.message == (
            "the wildcard purpose '*' is reserved for sys_script_include and sys_script; "
            "table sysauto_script cannot use it"
        )


def test_unlisted_purpose_is_refused_naming_the_allowed_ones() -> None:
    with pytest.raises(UsageError, match=r"'Circle of Trust'") as caught:
        check_purpose(BUILTIN_CONFIGS["mid_script_include"], CIRCLE_OF_TRUST)
    assert "'Code Signing'" in caught.value.message
    assert "\n" not in caught.value.message


@pytest.mark.parametrize(
    ("fields", "purposes"),
    [((), (CODE_SIGNING,)), (("name", "name"), (CODE_SIGNING,)), (("name",), ())],
)
def test_degenerate_configs_are_refused(fields: tuple[str, ...], purposes: tuple[str, ...]) -> None:
    with pytest.raises(UsageError):
        SignatureConfig("sysauto_script", fields, purposes)
