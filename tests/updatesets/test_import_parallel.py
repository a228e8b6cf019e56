"""Importing several files with parser processes stores exactly what one process stores."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.cli.conftest import Cli
from tests.updatesets.io_support import bulk_local_set, export, protected_home
from trustcircle.errors import BadInputError
from trustcircle.platform.context import Instance
from trustcircle.store.models import RemoteUpdateSet, RemoteUpdateXml
from trustcircle.updatesets.importer import ImportResult, import_files

pytestmark = pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cores to fork")


def _files(cli: Cli, home: Path, folder: Path) -> list[Path]:
    """Three exported sets of different sizes."""
    out = []
    for name, count in (("small", 3), ("large", 2500), ("medium", 700)):
        set_id = bulk_local_set(home, name, count)
        path = folder / f"{name}.xml"
        export(cli, home, set_id, path)
        out.append(path)
    return out


def _import(home: Path, files: list[Path], workers: int) -> list[ImportResult]:
    inst = Instance.open(home)
    try:
        token = (home / "admin.token").read_text().strip()
        with inst.operation(token, "updateset.write") as op:
            return import_files(op, files, workers=workers)
    finally:
        inst.close()


def _stored(home: Path) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    inst = Instance.open(home)
    try:
        with inst.db.transaction() as s:
            sets = [
                (r.sys_id, r.name, r.entry_count, r.file_sha256, r.sig_signature)
                for r in s.scalars(select(RemoteUpdateSet).order_by(RemoteUpdateSet.sys_id))
            ]
            entries = [
                tuple(row)
                for row in s.execute(
                    select(
                        RemoteUpdateXml.remote_update_set,
                        RemoteUpdateXml.sys_id,
                        RemoteUpdateXml.table_name,
                        RemoteUpdateXml.target_sys_id,
                        RemoteUpdateXml.action,
                        RemoteUpdateXml.payload_sha512,
                        RemoteUpdateXml.fields,
                        RemoteUpdateXml.problem,
                        RemoteUpdateXml.payload,
                    ).order_by(RemoteUpdateXml.remote_update_set, RemoteUpdateXml.sys_id)
                )
            ]
            return sets, entries
    finally:
        inst.close()


def test_parser_processes_store_what_one_process_stores(
    cli: Cli, signing_home: Path, tmp_path: Path
) -> None:
    files = _files(cli, signing_home, tmp_path)
    one, two = protected_home(cli, tmp_path / "one"), protected_home(cli, tmp_path / "two")
    alone = _import(one, files, workers=1)
    forked = _import(two, files, workers=2)
    assert [r.name for r in forked] == ["small", "large", "medium"], "results in file order"
    assert [r.to_dict() for r in forked] == [r.to_dict() for r in alone]
    assert _stored(two) == _stored(one)
    assert sum(r.entries for r in forked) == 3203


def test_a_file_a_worker_refuses_names_the_file_and_stores_nothing(
    cli: Cli, signing_home: Path, tmp_path: Path
) -> None:
    files = _files(cli, signing_home, tmp_path)
    truncated = tmp_path / "truncated.xml"
    data = files[1].read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    prod = protected_home(cli, tmp_path / "prod")
    with pytest.raises(BadInputError) as refused:
        _import(prod, [files[0], truncated, files[2]], workers=2)
    assert refused.value.message.startswith(f"{truncated}: ")
    assert _stored(prod) == ([], [])
