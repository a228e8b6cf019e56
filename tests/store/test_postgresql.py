"""The whole seed procedure and the MID act on PostgreSQL instead of embedded SQLite.

Runs when TRUSTCIRCLE_TEST_POSTGRES names a server URL whose role may create databases
(`.ci/run` starts a local PostgreSQL and sets it); each run makes and drops its own databases.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from tests.cli.conftest import Cli, cli, home, signing_home
from tests.conftest import SessionPki
from tests.cot.test_circle import FLAG, make_circle

from trustcircle.cot import execute_job
from trustcircle.errors import TrustcircleError
from trustcircle.jobs import TURN_OFF_ID, TURN_OFF_NAME, TURN_ON_ID, TURN_ON_NAME
from trustcircle.platform.context import Instance
from trustcircle.platform.home import ADMIN_TOKEN

__all__ = ["cli", "home", "signing_home"]

SERVER = os.environ.get("TRUSTCIRCLE_TEST_POSTGRES", "")
DEMO = Path(__file__).resolve().parents[2] / "demo" / "demo.sh"

pytestmark = pytest.mark.skipif(
    not SERVER, reason="TRUSTCIRCLE_TEST_POSTGRES is not set (.ci/run sets it)"
)


@pytest.fixture
def databases() -> Iterator[tuple[str, str]]:
    admin = create_engine(SERVER, isolation_level="AUTOCOMMIT")
    names = [f"tc_test_{secrets.token_hex(4)}_{role}" for role in ("dev", "prod")]
    with admin.connect() as conn:
        for name in names:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    base = SERVER.rsplit("/", 1)[0]
    try:
        yield f"{base}/{names[0]}", f"{base}/{names[1]}"
    finally:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_seed_procedure_and_mid_act_on_postgresql(
    databases: tuple[str, str], tmp_path: Path
) -> None:
    dev_db, prod_db = databases
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "DEMO_OUT": str(tmp_path / "demo"),
        "DEMO_DEV_DB": dev_db,
        "DEMO_PROD_DB": prod_db,
    }
    proc = subprocess.run(
        ["bash", str(DEMO)], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "com_snc_kmf_signature.validation.flag = true" in out
    assert "ECC message execution denied: notarization does not match the payload" in out
    assert "Done: Code Signing is on in prod" in out
    engine = create_engine(prod_db)
    with engine.connect() as conn:
        flag = conn.execute(
            text("SELECT value FROM sys_properties WHERE name = :n"),
            {"n": "com.snc.kmf.signature.validation.flag"},
        ).scalar()
    engine.dispose()
    assert flag == "true"


def test_concurrent_turn_on_and_older_turn_off_never_roll_the_policy_back(
    databases: tuple[str, str], cli: Cli, signing_home: Path, tmp_path: Path, test_pki: SessionPki
) -> None:
    """Two executions at once (READ COMMITTED would let both checks pass): whatever the
    order, the statement applied last is the newest, so the flag ends on (#3, not #2)."""
    _dev_db, prod_db = databases
    protected = tmp_path / "prod"
    made = cli(
        "init", "--home", protected, "--role", "protected", "--name", "prod", "--db", prod_db
    )
    assert made.code == 0, made.err
    circle = make_circle(cli, signing_home, protected, tmp_path, test_pki)
    circle.bring_job(TURN_ON_NAME)  # statement 1
    circle.ok("job", "execute", TURN_ON_NAME, "--home", protected)
    off = circle.export_job(TURN_OFF_NAME)  # statement 2
    on = circle.export_job(TURN_ON_NAME)  # statement 3
    circle.bring(str(off["update_set"]))
    circle.bring(str(on["update_set"]))
    token = (protected / ADMIN_TOKEN).read_text().strip()
    outcome: dict[str, str] = {}

    def execute(job: str, action: str) -> None:
        inst = Instance.open(protected)
        try:
            with inst.operation(token, action, job, deferred=True) as op:
                execute_job(op, job)
            outcome[action] = "applied"
        except TrustcircleError as exc:
            outcome[action] = exc.message
        finally:
            inst.close()

    runs = [
        threading.Thread(target=execute, args=(TURN_ON_ID, "job.turn_on")),
        threading.Thread(target=execute, args=(TURN_OFF_ID, "job.turn_off")),
    ]
    for run in runs:
        run.start()
    for run in runs:
        run.join(120)
    assert outcome["job.turn_on"] == "applied"
    assert circle.prop(FLAG) == "true"
    policy = circle.ok("cot", "policy", "--home", protected, "--json").json()
    assert policy["current_sequence"] == 3
    applied = sorted(policy["applied"], key=lambda a: (a["applied_on"], a["sequence"]))
    sequences = [a["sequence"] for a in applied]
    assert sequences == sorted(sequences)  # never a lower one after a higher one
