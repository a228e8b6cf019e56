"""The whole seed procedure and the MID act on PostgreSQL instead of embedded SQLite.

Runs when TRUSTCIRCLE_TEST_POSTGRES names a server URL whose role may create databases
(`.ci/run` starts a local PostgreSQL and sets it); each run makes and drops its own databases.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

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
