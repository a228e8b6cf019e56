"""The ECC firewall: tag hierarchy, first match wins, unknown tags refused, case-insensitive."""

from __future__ import annotations

from pathlib import Path

import pytest

from trustcircle.errors import UsageError
from trustcircle.mid import Firewall, FirewallAction, FirewallMode, FirewallRule, load_boot_config


def _fw(*rules: tuple[list[str], str], mode: FirewallMode = FirewallMode.ENFORCING) -> Firewall:
    return Firewall([FirewallRule.of(tags, action) for tags, action in rules], mode)


def test_reject_on_parent_databases_blocks_jdbc_probe() -> None:
    decision = _fw((["DATABASES"], "reject")).decide("JDBCProbe")
    assert decision.action is FirewallAction.REJECT
    assert decision.rule == 0
    assert decision.tag == "JDBC"


def test_accept_on_parent_http_covers_rest_probe_but_not_command() -> None:
    fw = _fw((["HTTP"], "accept"))
    assert fw.decide("RESTProbe").action is FirewallAction.ACCEPT
    assert fw.decide("Command").action is FirewallAction.NONE


def test_rule_on_child_does_not_cover_parent_or_sibling() -> None:
    fw = _fw((["SOAP"], "reject"))
    assert fw.decide("RESTProbe").action is FirewallAction.NONE


def test_first_matching_rule_wins() -> None:
    fw = _fw((["jdbc"], "accept"), (["DATABASES"], "reject"))
    assert fw.decide("JDBCProbe").action is FirewallAction.ACCEPT
    fw = _fw((["DATABASES"], "reject"), (["jdbc"], "accept"))
    decision = fw.decide("JDBCProbe")
    assert (decision.action, decision.rule) == (FirewallAction.REJECT, 0)


def test_later_rule_matches_when_earlier_do_not() -> None:
    fw = _fw((["PYTHON"], "reject"), (["COMMAND", "SYSTEM"], "accept"))
    decision = fw.decide("SystemCommand")
    assert (decision.action, decision.rule, decision.tag) == (FirewallAction.ACCEPT, 1, "SYSTEM")


def test_tags_match_case_insensitively() -> None:
    fw = _fw((["Rest"], "ACCEPT"), (["python"], "Reject"))
    assert fw.decide("RESTProbe").action is FirewallAction.ACCEPT
    assert fw.decide("PythonScript").action is FirewallAction.REJECT


def test_unknown_tag_is_refused_naming_it() -> None:
    with pytest.raises(UsageError, match="JDCB"):
        FirewallRule.of(["JDCB"], "reject")


def test_unknown_topic_matches_no_rule() -> None:
    assert _fw((["COMMAND"], "reject")).decide("Nonsense").action is FirewallAction.NONE


def _boot(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "boot-config.yaml"
    path.write_text(text)
    return path


def test_boot_config_reads_mode_and_ordered_rules(tmp_path: Path) -> None:
    boot = load_boot_config(
        _boot(
            tmp_path,
            "security:\n  eccFirewall:\n    mode: audit\n    rules:\n"
            "      - {tags: [jdbc], action: reject}\n      - {tags: [http], action: accept}\n",
        )
    )
    fw = boot.firewall()
    assert fw.mode is FirewallMode.AUDIT
    assert fw.decide("JDBCProbe").action is FirewallAction.REJECT
    assert fw.decide("RESTProbe").action is FirewallAction.ACCEPT


def test_boot_config_without_firewall_is_enforcing_with_no_rules(tmp_path: Path) -> None:
    boot = load_boot_config(_boot(tmp_path, "other: 1\n"))
    assert boot.mode is FirewallMode.ENFORCING
    assert boot.rules == ()


def test_boot_config_with_unknown_tag_refuses_to_start_naming_the_tag(tmp_path: Path) -> None:
    path = _boot(
        tmp_path,
        "security:\n  eccFirewall:\n    rules:\n      - {tags: [SQL], action: reject}\n",
    )
    with pytest.raises(UsageError, match=r"'SQL'.*rules\[0\]"):
        load_boot_config(path)


def test_boot_config_with_unknown_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="permissive"):
        load_boot_config(_boot(tmp_path, "security:\n  eccFirewall:\n    mode: permissive\n"))


def test_boot_config_with_unknown_action_is_refused(tmp_path: Path) -> None:
    path = _boot(
        tmp_path, "security:\n  eccFirewall:\n    rules:\n      - {tags: [SSH], action: allow}\n"
    )
    with pytest.raises(UsageError, match="allow"):
        load_boot_config(path)


def test_boot_config_yaml_objects_are_not_constructed(tmp_path: Path) -> None:
    from trustcircle.errors import BadInputError

    path = _boot(tmp_path, "!!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(BadInputError, match="not valid YAML"):
        load_boot_config(path)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("security:\n  ecc_firewall:\n    rules: []\n", "security.ecc_firewall"),
        ("security:\n  ECCFirewall:\n    rules: []\n", "security.ECCFirewall"),
        ("Security:\n  eccFirewall:\n    rules: []\n", "Security"),
    ],
)
def test_misspelt_firewall_section_is_refused_not_ignored(
    tmp_path: Path, text: str, named: str
) -> None:
    with pytest.raises(UsageError, match=f"key {named} is not"):
        load_boot_config(_boot(tmp_path, text))
