"""Preview's seal: commit reuses preview's findings only while every input still holds.

Each test previews a valid Circle-of-Trust set, changes one thing preview depended on,
and shows that commit notices: the change is judged again, never waved through by the
seal.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import select, update

from tests.cli.conftest import Cli
from tests.conftest import SessionPki
from tests.updatesets.retrieved_sets import (
    HOUR,
    SetBuilder,
    cot_job_set,
    import_file,
    job_fields,
    protected_home,
)
from trustcircle._time import system_clock
from trustcircle.crypto import MasterKey
from trustcircle.platform.context import Instance
from trustcircle.signing import CLOCK_SKEW
from trustcircle.store.models import RemoteUpdateSet, RemoteUpdateXml, SysRecord
from trustcircle.updatesets import _seal
from trustcircle.updatesets.preview import get_retrieved, sealed


@pytest.fixture
def prod(cli: Cli, tmp_path: Path, test_pki: SessionPki) -> Path:
    return protected_home(cli, tmp_path / "prod", test_pki)


def _previewed(cli: Cli, home: Path, pki: SessionPki) -> tuple[str, SetBuilder, str]:
    """A valid CoT job set, imported and previewed: (set sys_id, builder, job sys_id)."""
    b, job = cot_job_set(pki)
    sid = import_file(cli, home, b.write(home.parent / f"{b.header.sys_id}.xml", b.manifest()))
    result = cli("updateset", "preview", sid, "--home", home, "--json")
    assert result.code == 0, result.err
    assert result.json()["committable"] is True
    return sid, b, job


def _commit_checks(cli: Cli, home: Path) -> str:
    """How the last commit checked its set, as its audit entry says."""
    audit = cli("audit", "list", "--home", home, "--json").json()
    commits = [e for e in audit if e["action"] == "updateset.commit"]
    assert len(commits) == 1
    detail = commits[0]["detail"]
    return str((json.loads(detail) if isinstance(detail, str) else detail)["checks"])


def _job_stored(home: Path, job: str) -> bool:
    inst = Instance.open(home)
    try:
        with inst.db.transaction() as s:
            return s.get(SysRecord, job) is not None
    finally:
        inst.close()


def test_commit_takes_the_sealed_result_when_nothing_changed(
    cli: Cli, prod: Path, test_pki: SessionPki
) -> None:
    sid, _b, job = _previewed(cli, prod, test_pki)
    result = cli("updateset", "commit", sid, "--home", prod)
    assert result.code == 0, result.err
    assert _commit_checks(cli, prod) == "preview's sealed result"
    assert _job_stored(prod, job)


def test_database_tampering_after_preview_is_caught_at_commit(
    cli: Cli, prod: Path, test_pki: SessionPki
) -> None:
    """The job's stored fields are rewritten in the database after a clean preview."""
    sid, _b, job = _previewed(cli, prod, test_pki)
    inst = Instance.open(prod)
    try:
        with inst.db.transaction() as s:
            evil = json.dumps(job_fields(script="gs.setProperty('x', 'evil');"))
            s.execute(
                update(RemoteUpdateXml)
                .where(RemoteUpdateXml.target_sys_id == job)
                .values(fields=evil)
            )
    finally:
        inst.close()
    result = cli("updateset", "commit", sid, "--home", prod)
    assert result.code == 1
    assert "signature" in result.err
    assert not _job_stored(prod, job), "nothing applied"


def test_local_record_stored_after_preview_is_judged_at_commit(
    cli: Cli, prod: Path, test_pki: SessionPki
) -> None:
    """A record of another table appears under the job's sys_id after preview."""
    sid, _b, job = _previewed(cli, prod, test_pki)
    inst = Instance.open(prod)
    try:
        with inst.db.transaction() as s:
            s.add(
                SysRecord(
                    sys_id=job,
                    table_name="cot_policy_statement",
                    fields="{}",
                    created_on="2026-01-01T00:00:00Z",
                    updated_on="2026-01-01T00:00:00Z",
                    created_by="admin",
                    updated_by="admin",
                    mod_count=0,
                )
            )
    finally:
        inst.close()
    result = cli("updateset", "commit", sid, "--home", prod)
    assert result.code == 1
    assert "another table" in result.err


def _sealed_at(home: Path, sid: str, now: dt.datetime) -> bool:
    inst = Instance.open(home)
    try:
        key = MasterKey.load(inst.master_key_path).derive(_seal.PURPOSE)
        with inst.db.transaction() as s:
            return sealed(s, get_retrieved(s, sid), now, key) is not None
    finally:
        inst.close()


def test_seal_ends_when_a_signature_or_the_manifest_expires(
    cli: Cli, prod: Path, test_pki: SessionPki
) -> None:
    """The job's signature and the manifest expire an hour after signing."""
    sid, b, _job = _previewed(cli, prod, test_pki)
    now = system_clock()
    assert _sealed_at(prod, sid, now)
    assert not _sealed_at(prod, sid, b.now + HOUR + dt.timedelta(seconds=1))
    assert not _sealed_at(prod, sid, now - dt.timedelta(minutes=10)), "clock turned back"


def test_forged_or_moved_seal_is_ignored(cli: Cli, prod: Path, test_pki: SessionPki) -> None:
    first, _b, _job = _previewed(cli, prod, test_pki)
    second, _b2, _job2 = _previewed(cli, prod, test_pki)
    inst = Instance.open(prod)
    try:
        with inst.db.transaction() as s:
            seal = s.scalar(
                select(RemoteUpdateSet.preview_seal).where(RemoteUpdateSet.sys_id == first)
            )
            assert seal is not None
            head, plan = seal.split("\n", 1)
            s.execute(  # the first set's seal on the second set
                update(RemoteUpdateSet)
                .where(RemoteUpdateSet.sys_id == second)
                .values(preview_seal=seal)
            )
            forged = json.loads(head)
            forged["until"] = None  # a seal that never ends
            s.execute(
                update(RemoteUpdateSet)
                .where(RemoteUpdateSet.sys_id == first)
                .values(preview_seal=json.dumps(forged) + "\n" + plan)
            )
    finally:
        inst.close()
    now = system_clock()
    assert not _sealed_at(prod, first, now)
    assert not _sealed_at(prod, second, now)


def test_horizon_is_the_first_time_ahead_a_verdict_turns_on() -> None:
    checked = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
    signed_soon = checked + dt.timedelta(minutes=10)  # not yet valid: within skew at +5 min
    expires = checked + HOUR
    past = checked - HOUR
    assert _seal.horizon(checked, [past], [past], []) is None
    assert _seal.horizon(checked, [signed_soon], [expires], []) == signed_soon - CLOCK_SKEW
    assert _seal.horizon(checked, [None], [expires, None], []) == expires
    assert _seal.holds(checked, expires, checked)
    assert not _seal.holds(checked, expires, expires)
    assert not _seal.holds(checked, checked, checked), "a time reached at the check itself"
    assert not _seal.holds(checked, None, past)
