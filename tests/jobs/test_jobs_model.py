"""Scheduled jobs: the system jobs every instance ships, look-ups and list search."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import Cli, init_home
from trustcircle._types import Timestamp
from trustcircle.jobs import (
    SYSTEM_JOBS,
    TURN_OFF_ID,
    TURN_ON_ID,
    find_job,
    name_matcher,
    seed_system_jobs,
)
from trustcircle.platform.context import Instance


def _jobs(cli: Cli, home: Path, *extra: str) -> list[dict[str, str]]:
    result = cli("job", "list", "--home", home, "--json", *extra)
    assert result.code == 0, result.err
    rows: list[dict[str, str]] = result.json()
    return rows


def test_system_jobs_have_the_same_ids_and_fields_on_every_instance(
    cli: Cli, tmp_path: Path
) -> None:
    trusted = init_home(cli, tmp_path / "dev")
    protected = init_home(cli, tmp_path / "prod", "protected", "prod")
    shown = []
    for home in (trusted, protected):
        for job_id in (TURN_ON_ID, TURN_OFF_ID):
            result = cli("job", "show", job_id, "--home", home, "--json")
            assert result.code == 0, result.err
            shown.append(result.json()["fields"])
    assert shown[0] == shown[2]
    assert shown[1] == shown[3]
    assert shown[0]["name"] == "Turn on Code Signing Property"
    assert shown[0]["run_type"] == "on_demand"
    assert shown[0]["active"] == "true"
    assert shown[0]["run_as"] == "admin"
    assert "codesigning.turn_on()" in shown[0]["script"]
    assert "codesigning.turn_off()" in shown[1]["script"]


def test_seeding_again_creates_nothing_and_keeps_edits(cli: Cli, home: Path) -> None:
    edited = cli(
        "record",
        "update",
        "--home",
        home,
        "--table",
        "sysauto_script",
        "--id",
        TURN_ON_ID,
        "--field",
        "description=ours",
    )
    assert edited.code == 0, edited.err
    inst = Instance.open(home)
    try:
        with inst.db.transaction() as session:
            assert seed_system_jobs(session, Timestamp("2030-01-01T00:00:00Z")) == []
            assert find_job(session, TURN_ON_ID).fields["description"] == "ours"
    finally:
        inst.close()
    assert len(_jobs(cli, home)) == len(SYSTEM_JOBS)


def test_star_search_means_contains_as_in_the_seed(cli: Cli, home: Path) -> None:
    assert [j["name"] for j in _jobs(cli, home, "--name", "*Turn")] == [
        "Turn off Code Signing Property",
        "Turn on Code Signing Property",
    ]
    assert [j["name"] for j in _jobs(cli, home, "--name", "*on code")] == [
        "Turn on Code Signing Property"
    ]
    assert _jobs(cli, home, "--name", "Signing") == []  # plain text: starts with
    assert len(_jobs(cli, home, "--name", "turn")) == 2
    assert len(_jobs(cli, home, "--name", "%property")) == 2
    assert len(_jobs(cli, home, "--name", "=turn off code signing property")) == 1


@pytest.mark.parametrize("pattern", ["*a.b", "*(x)", "*[", "*.*"])
def test_search_text_is_literal_not_a_regular_expression(pattern: str) -> None:
    matcher = name_matcher(pattern)
    assert matcher is not None
    assert not matcher.search("Turn on Code Signing Property")


def test_job_named_by_name_or_sys_id(cli: Cli, home: Path) -> None:
    by_name = cli("job", "show", "Turn off Code Signing Property", "--home", home, "--json")
    by_id = cli("job", "show", TURN_OFF_ID, "--home", home, "--json")
    assert by_name.code == 0, by_name.err
    assert by_name.json() == by_id.json()
    assert by_name.json()["signatures"] == []
    assert by_name.json()["executions"] == []


def test_unknown_job_is_not_found(cli: Cli, home: Path) -> None:
    result = cli("job", "show", "Sign everything", "--home", home)
    assert result.code == 4
    assert "job list" in result.err
    assert cli("job", "prereq-check", "Sign everything", "--home", home).code == 4
    assert cli("job", "execute", "Sign everything", "--home", home).code == 4


def test_two_jobs_with_one_name_must_be_named_by_sys_id(cli: Cli, home: Path) -> None:
    for _ in range(2):
        added = cli(
            "record",
            "add",
            "--home",
            home,
            "--table",
            "sysauto_script",
            "--field",
            "name=Nightly",
            "--field",
            "script=print(1)",
        )
        assert added.code == 0, added.err
    result = cli("job", "show", "Nightly", "--home", home)
    assert result.code == 2
    assert "by sys_id" in result.err
