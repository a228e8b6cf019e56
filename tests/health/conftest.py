"""Homes seeded with one record of each verdict, and bulk records for batch tests.

``seeded`` is a trusted home (test root trusted, both signing keys loaded) holding:
``valid`` (signed), ``edited`` (signed, then its script changed), ``unsigned``,
``deleted`` (signed, then deleted: its signature is an orphan), ``untrusted`` (signed by
a certificate that does not chain to the trust store), ``victim`` (carrying a copy of
``valid``'s signature moved onto it) and ``app_record`` (signed, application
``x_acme_tools``). Signing goes through the real CLI and real RSA-4096 keys.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import insert

from tests.cli.conftest import Cli, cli, home, signing_home
from tests.conftest import SessionPki
from trustcircle._time import format_ts, system_clock
from trustcircle._types import Fingerprint, SysId, new_sys_id
from trustcircle.crypto.algorithms import Algorithm
from trustcircle.platform import kmf, signatures
from trustcircle.platform.context import Instance
from trustcircle.signing import BUILTIN_CONFIGS, CODE_SIGNING, sign_record
from trustcircle.store.models import RecordSignatureRow, SysRecord

__all__ = ["cli", "home", "signing_home"]

TABLE = "sys_script_include"


def add(cli: Cli, home: Path, name: str, *extra: str) -> str:
    fields = ["--field", f"name={name}", "--field", f"api_name=global.{name}"]
    fields += ["--field", f"script=gs.info('{name}')", "--field", "active=true"]
    for item in extra:
        fields += ["--field", item]
    result = cli("record", "add", "--home", home, "--table", TABLE, *fields)
    assert result.code == 0, result.err
    sys_id: str = result.out.strip()
    return sys_id


def sign(cli: Cli, home: Path, sys_id: str, table: str = TABLE) -> str:
    result = cli("record", "sign", "--home", home, "--table", table, "--id", sys_id, "--json")
    assert result.code == 0, result.err
    sig: str = result.json()["sys_id"]
    return sig


@dataclass(frozen=True)
class Seeded:
    home: Path
    valid: str
    edited: str
    unsigned: str
    deleted: str
    deleted_signature: str
    untrusted: str
    victim: str
    app_record: str

    def ids(self) -> dict[str, str]:
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in ("home", "deleted_signature")
        }


def seed(cli: Cli, home: Path, pki: SessionPki) -> Seeded:
    valid = add(cli, home, "Valid")
    valid_sig = sign(cli, home, valid)
    edited = add(cli, home, "Edited")
    sign(cli, home, edited)
    upd = cli("record", "update", "--home", home, "--table", TABLE, "--id", edited,
              "--field", "script=gs.info('changed after signing')")  # fmt: skip
    assert upd.code == 0, upd.err
    unsigned = add(cli, home, "Unsigned")
    deleted = add(cli, home, "Deleted")
    deleted_sig = sign(cli, home, deleted)
    gone = cli("record", "delete", "--home", home, "--table", TABLE, "--id", deleted)
    assert gone.code == 0, gone.err
    untrusted = add(cli, home, "Untrusted")
    victim = add(cli, home, "Victim")
    app_record = add(cli, home, "AppScript", "application=x_acme_tools")
    sign(cli, home, app_record)
    inst = Instance.open(home)
    try:
        with inst.db.transaction() as session:
            _sign_with_unknown_ca(session, untrusted, pki)
            _move_signature(session, valid_sig, victim)
    finally:
        inst.close()
    return Seeded(
        home, valid, edited, unsigned, deleted, deleted_sig, untrusted, victim, app_record
    )


def _sign_with_unknown_ca(session: object, sys_id: str, pki: SessionPki) -> None:
    """A signature by a certificate issued by a CA the instance does not trust."""
    from sqlalchemy.orm import Session

    assert isinstance(session, Session)
    cert = kmf.store_certificate(session, pki.unknown_ca.cert, "external", "Unknown CA leaf")
    row = session.get(SysRecord, sys_id)
    assert row is not None
    sig = sign_record(
        table=TABLE,
        document_id=SysId(sys_id),
        fields=json.loads(row.fields),
        config=BUILTIN_CONFIGS[TABLE],
        purpose=CODE_SIGNING,
        key=pki.unknown_ca.key,
        algorithm=Algorithm.RSA_PKCS1_SHA512,
        certificate=Fingerprint(cert.fingerprint),
        signed_at=system_clock(),
        expires_at=None,
    )
    session.add(signatures.to_row(sig))


def _move_signature(session: object, signature: str, victim: str) -> None:
    """Copy a valid signature record onto another record (the attack: reuse a signature)."""
    from sqlalchemy.orm import Session

    assert isinstance(session, Session)
    original = session.get(RecordSignatureRow, signature)
    assert original is not None
    values = {c.name: getattr(original, c.name) for c in RecordSignatureRow.__table__.columns}
    values.update(sys_id=new_sys_id(), document_id=victim)
    session.execute(insert(RecordSignatureRow), [values])


@pytest.fixture
def seeded(cli: Cli, signing_home: Path, test_pki: SessionPki) -> Seeded:
    return seed(cli, signing_home, test_pki)


def bulk_records(home: Path, count: int, prefix: str = "Bulk") -> list[str]:
    """*count* unsigned script includes inserted in one transaction; their sys_ids, sorted."""
    now = format_ts(system_clock())
    ids: list[str] = sorted(new_sys_id() for _ in range(count))
    rows = [
        {
            "sys_id": sid,
            "table_name": TABLE,
            "fields": json.dumps(
                {
                    "active": "true",
                    "api_name": f"global.{prefix}{n}",
                    "name": f"{prefix}{n}",
                    "script": f"gs.info({n})",
                },
                sort_keys=True,
            ),
            "created_on": now,
            "updated_on": now,
            "created_by": "admin",
            "updated_by": "admin",
            "mod_count": 0,
        }
        for n, sid in enumerate(ids)
    ]
    inst = Instance.open(home)
    try:
        with inst.db.transaction() as session:
            for start in range(0, len(rows), 1000):
                session.execute(insert(SysRecord), rows[start : start + 1000])
    finally:
        inst.close()
    return ids
