"""ECC fixtures: a protected home with a runtime key, signed records written straight into
its database (as a committed update set would leave them), operations as its admin."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli.conftest import Cli, cli, home, init_home, signing_home
from tests.conftest import PkiLeaf, SessionPki
from trustcircle._time import system_clock
from trustcircle._types import SysId
from trustcircle.crypto import algorithm_for_key, fingerprint_of
from trustcircle.ecc import mids
from trustcircle.ecc.mids import CheckIn
from trustcircle.platform import kmf, records, signatures
from trustcircle.platform.context import Instance, Operation
from trustcircle.platform.home import ADMIN_TOKEN
from trustcircle.signing import BUILTIN_CONFIGS, CODE_SIGNING, sign_record

__all__ = ["Prod", "cli", "home", "prod", "signing_home"]


@dataclass
class Prod:
    """A protected home: trusts the test root, holds cm_runtime, knows the signing certs."""

    home: Path
    pki: SessionPki
    cli: Cli

    @contextmanager
    def op(
        self,
        action: str = "record.write",
        token: str | None = None,
        *,
        later: dt.timedelta = dt.timedelta(0),
    ) -> Iterator[Operation]:
        """An operation as the holder of *token* (default: admin), *later* than now."""
        inst = Instance.open(self.home, lambda: system_clock() + later)
        try:
            with inst.operation(token or self.admin_token, action, "test") as op:
                yield op
        finally:
            inst.close()

    @property
    def admin_token(self) -> str:
        return (self.home / ADMIN_TOKEN).read_text().strip()

    def record(self, table: str, fields: Mapping[str, str | None]) -> SysId:
        with self.op() as op:
            change = records.insert(op.session, table, dict(fields), "admin", op.ts)
            return change.record.sys_id

    def sign(
        self,
        table: str,
        sys_id: str,
        leaf: PkiLeaf | None = None,
        *,
        purpose: str = CODE_SIGNING,
        at: dt.datetime | None = None,
    ) -> str:
        """Sign the record's current fields with *leaf* (default: code_signing)."""
        leaf = leaf or self.pki.code_signing
        with self.op() as op:
            record = records.get(op.session, table, sys_id)
            sig = sign_record(
                table=table,
                document_id=record.sys_id,
                fields=record.fields,
                config=BUILTIN_CONFIGS[table],
                purpose=purpose,
                key=leaf.key,
                algorithm=algorithm_for_key(leaf.key),
                certificate=fingerprint_of(leaf.cert),
                signed_at=at or system_clock(),
                expires_at=None,
            )
            op.session.add(signatures.to_row(sig))
            return sig.sys_id

    def signed(self, table: str, fields: Mapping[str, str | None]) -> SysId:
        sys_id = self.record(table, fields)
        self.sign(table, sys_id)
        return sys_id

    def update(self, table: str, sys_id: str, fields: Mapping[str, str | None]) -> None:
        with self.op() as op:
            records.update(op.session, table, sys_id, dict(fields), "admin", op.ts)

    def set_property(self, name: str, value: str) -> None:
        from trustcircle.platform import properties

        with self.op() as op:
            properties.set_protected(op.session, name, value, "test", op.ts)

    def mid_token(self, user: str = "midsrv") -> str:
        result = self.cli("user", "add", user, "--roles", "mid_server", "--home", self.home)
        assert result.code == 0, result.err
        return result.out.strip()

    def add_mid(self, name: str, token: str, *, validated: bool = True) -> None:
        with self.op("mid.agent", token) as op:
            mids.register(op.session, op.actor.name, CheckIn(name, "0.1.0", "enforcing"), op.ts)
            if validated:
                mids.set_validated(op.session, name, True, "admin", op.ts)


def script_include(name: str, script: str) -> dict[str, str | None]:
    return {"name": name, "api_name": f"global.{name}", "script": script, "active": "true"}


def job(name: str, script: str) -> dict[str, str | None]:
    return {
        "name": name,
        "script": script,
        "run_as": "admin",
        "run_type": "on_demand",
        "active": "true",
    }


@pytest.fixture
def prod(cli: Cli, tmp_path: Path, test_pki: SessionPki) -> Prod:
    home = init_home(cli, tmp_path / "prod", "protected", "prod")
    files = test_pki.files
    assert cli("trust-anchor", "add", files.root_pem, "--home", home).code == 0
    imported = cli(
        "kmf",
        "import",
        "--home",
        home,
        "--module",
        "cm_runtime",
        "--p12",
        files.p12["runtime"],
        "--password-file",
        files.password_file,
    )
    assert imported.code == 0, imported.err
    p = Prod(home, test_pki, cli)
    with p.op() as op:
        for leaf, module in (
            (test_pki.code_signing, "cm_code_signing"),
            (test_pki.code_attest, "cm_code_attest"),
        ):
            kmf.store_certificate(op.session, leaf.cert, module, leaf.name)
    return p
