"""Hostile or broken files through `updateset import`: exit 2, one line, nothing stored."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from tests.cli.conftest import Cli
from tests.updatesets.builders import (
    WHEN,
    document,
    entry_xml,
    header_xml,
    job_entry,
    sid,
    written,
)
from tests.updatesets.io_support import ok, protected_home, sets_json
from trustcircle.updatesets import UpdateSetHeader

OTHER_SET = "0123456789abcdef0123456789abcdef"
BODY = header_xml() + entry_xml(1) + entry_xml(2)


def _billion_laughs() -> bytes:
    lines = ['<!ENTITY lol0 "lol">']
    lines += [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    prolog = "<!DOCTYPE unload [" + "".join(lines) + "]>\n"
    return document(header_xml() + entry_xml(1, payload="&lol9;"), prolog=prolog)


def _truncated() -> bytes:
    data = written([job_entry(i) for i in range(6)])
    return data[: len(data) // 2]


# name -> (file content, words the one-line error must contain)
CASES: dict[str, tuple[Callable[[], bytes], str]] = {
    "internal_dtd": (
        lambda: document(BODY, prolog='<!DOCTYPE unload [<!ENTITY name "x">]>\n'),
        "must not contain a DTD",
    ),
    "external_entity_reading_etc_passwd": (
        lambda: document(
            header_xml() + entry_xml(1, payload="&xxe;"),
            prolog='<!DOCTYPE unload [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n',
        ),
        "must not contain a DTD",
    ),
    "billion_laughs": (_billion_laughs, "must not contain a DTD"),
    "truncated": (_truncated, "not well-formed"),
    "not_xml": (lambda: b"PK\x03\x04 this is a zip file, not an update set", "line 1"),
    "empty": (lambda: b"", "empty or not XML"),
    "unknown_format": (
        lambda: document(
            BODY, unload_attrs=f'format="trustcircle.update-set/v9" unload_date="{WHEN}"'
        ),
        "unknown update set format",
    ),
    "duplicate_entry_sys_id": (
        lambda: document(header_xml() + entry_xml(1) + entry_xml(2) + entry_xml(1, sid(77))),
        f"two entries have sys_id {sid(1)}",
    ),
    "two_entries_for_one_target": (
        lambda: document(header_xml() + entry_xml(1) + entry_xml(2, sid(10_000_001))),
        "an update set may change a record once",
    ),
    "foreign_entry": (
        lambda: document(header_xml() + entry_xml(1) + entry_xml(2, update_set=OTHER_SET)),
        "refusing a foreign entry",
    ),
}


@pytest.fixture
def prod(cli: Cli, tmp_path: Path) -> Path:
    """A protected home that already holds one retrieved set (which must survive)."""
    home = protected_home(cli, tmp_path / "prod")
    header = UpdateSetHeader(OTHER_SET, "Earlier", "", "dev", "", WHEN)
    earlier = tmp_path / "earlier.xml"
    earlier.write_bytes(written([], signature=None, header=header))
    ok(cli("updateset", "import", earlier, "--home", home))
    return home


def _refused(cli: Cli, home: Path, path: Path, words: str) -> None:
    before = sets_json(cli, home)
    result = cli("updateset", "import", path, "--home", home)
    assert result.code == 2, result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("error: ")
    assert words in lines[0]
    assert result.out == ""
    assert sets_json(cli, home) == before


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_file_is_refused_and_nothing_is_stored(
    cli: Cli, prod: Path, tmp_path: Path, case: str
) -> None:
    make, words = CASES[case]
    path = tmp_path / f"{case}.xml"
    path.write_bytes(make())
    _refused(cli, prod, path, words)


def test_external_entity_content_never_reaches_the_error(
    cli: Cli, prod: Path, tmp_path: Path
) -> None:
    path = tmp_path / "xxe.xml"
    path.write_bytes(CASES["external_entity_reading_etc_passwd"][0]())
    result = cli("updateset", "import", path, "--home", prod)
    assert "root:" not in result.err


def _set_property(cli: Cli, home: Path, name: str, value: str) -> None:
    ok(cli("property", "set", f"trustcircle.updateset.import.{name}", value, "--home", home))


def test_file_over_the_size_limit_is_refused(cli: Cli, prod: Path, tmp_path: Path) -> None:
    path = tmp_path / "big.xml"
    path.write_bytes(written([job_entry(i) for i in range(20)]))
    _set_property(cli, prod, "max_file_bytes", "1024")
    _refused(cli, prod, path, "max_file_bytes=1024")


def test_field_over_the_size_limit_is_refused(cli: Cli, prod: Path, tmp_path: Path) -> None:
    path = tmp_path / "wide.xml"
    path.write_bytes(written([job_entry(1), job_entry(2, script="x" * 5000)]))
    _set_property(cli, prod, "max_field_bytes", "4096")
    _refused(cli, prod, path, "trustcircle.updateset.import.max_field_bytes")


def test_more_entries_than_the_limit_are_refused(cli: Cli, prod: Path, tmp_path: Path) -> None:
    path = tmp_path / "many.xml"
    path.write_bytes(written([job_entry(i) for i in range(3)]))
    _set_property(cli, prod, "max_entries", "2")
    _refused(cli, prod, path, "max_entries=2")


def test_missing_file_is_refused(cli: Cli, prod: Path, tmp_path: Path) -> None:
    _refused(cli, prod, tmp_path / "nope.xml", "does not exist")


def test_folder_instead_of_file_is_refused(cli: Cli, prod: Path, tmp_path: Path) -> None:
    _refused(cli, prod, tmp_path, "is a directory")


def test_the_limits_come_from_the_properties(cli: Cli, prod: Path, tmp_path: Path) -> None:
    path = tmp_path / "fine.xml"
    header = UpdateSetHeader(sid(5), "Fine", "", "dev", "", WHEN)
    entries = [replace(job_entry(i), update_set=sid(5)) for i in range(3)]
    path.write_bytes(written(entries, header=header))
    _set_property(cli, prod, "max_entries", "3")
    imported = ok(cli("updateset", "import", path, "--home", prod, "--json")).json()
    assert imported["entries"] == 3
