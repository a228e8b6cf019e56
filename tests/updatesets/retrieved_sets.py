"""Signed update-set files built by hand (real keys of the test PKI), and a protected home.

:class:`SetBuilder` writes what a trusted instance would export — records, their
signature records, certificate records, a manifest signed with the code_attest key —
and lets a test tamper with any of it before the file is written, as an attacker
with the file would.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography import x509

from tests.cli.conftest import Cli, init_home
from tests.conftest import PkiLeaf, SessionPki
from trustcircle._time import format_ts, system_clock
from trustcircle._types import SysId, new_sys_id
from trustcircle.crypto import algorithm_for_key, cert_to_pem, describe_certificate, fingerprint_of
from trustcircle.crypto import algorithms as algs
from trustcircle.crypto.algorithms import PrivateKey
from trustcircle.signing import (
    BUILTIN_CONFIGS,
    CIRCLE_OF_TRUST,
    SIGNATURE_TABLE,
    SignatureRecord,
    sign_record,
)
from trustcircle.updatesets import (
    ACTION_DELETE,
    ACTION_INSERT_OR_UPDATE,
    ManifestSignature,
    UpdateEntry,
    UpdateSetHeader,
    manifest_payload,
    record_to_payload,
    write_update_set,
)

HOUR = dt.timedelta(hours=1)
Fields = dict[str, str | None]


def protected_home(cli: Cli, folder: Path, pki: SessionPki, name: str = "prod") -> Path:
    """A protected home whose only trust is the test root (``trust-anchor add``)."""
    home = init_home(cli, folder, role="protected", name=name)
    result = cli("trust-anchor", "add", pki.files.root_pem, "--home", home)
    assert result.code == 0, result.err
    return home


def job_fields(name: str = "Nightly cleanup", script: str = "print('cleanup')") -> Fields:
    return {
        "name": name,
        "script": script,
        "run_as": "admin",
        "run_type": "on_demand",
        "active": "true",
    }


@dataclass
class _Record:
    table: str
    fields: Fields
    action: str = ACTION_INSERT_OR_UPDATE
    entry_id: str = ""


class SetBuilder:
    """One update set under construction; entries keep insertion order, the file sorts none."""

    def __init__(
        self,
        pki: SessionPki,
        name: str = "signed jobs",
        *,
        sys_id: str | None = None,
        parent: str = "",
        created_on: dt.datetime | None = None,
        origin: str = "dev",
    ) -> None:
        self.pki = pki
        self.now = system_clock()
        self.header = UpdateSetHeader(
            sys_id=sys_id or new_sys_id(),
            name=name,
            description="built by a test",
            origin_instance=origin,
            parent=parent,
            created_on=format_ts(created_on or self.now),
        )
        self.records: dict[str, _Record] = {}

    # -- content -----------------------------------------------------------------------

    def record(
        self, table: str, fields: Mapping[str, str | None], sys_id: str | None = None
    ) -> str:
        sid = sys_id or new_sys_id()
        self.records[sid] = _Record(table, dict(fields), entry_id=new_sys_id())
        return sid

    def delete(self, table: str, sys_id: str, fields: Mapping[str, str | None]) -> None:
        self.records[sys_id] = _Record(table, dict(fields), ACTION_DELETE, new_sys_id())

    def certificate(self, cert: x509.Certificate, module: str) -> str:
        info = describe_certificate(cert)
        return self.record(
            "sys_certificate",
            {
                "name": info.subject,
                "module": module,
                "pem": cert_to_pem(cert),
                "fingerprint": info.fingerprint,
                "subject": info.subject,
                "issuer": info.issuer,
                "not_before": info.not_before,
                "not_after": info.not_after,
            },
        )

    def sign(
        self,
        sys_id: str,
        leaf: PkiLeaf | None = None,
        *,
        purpose: str = CIRCLE_OF_TRUST,
        signed_at: dt.datetime | None = None,
        expires_at: dt.datetime | None = None,
    ) -> str:
        """Sign record *sys_id*'s current fields and add the signature record."""
        leaf = leaf or self.pki.code_attest
        rec = self.records[sys_id]
        signed_at = signed_at or self.now
        sig = sign_record(
            table=rec.table,
            document_id=SysId(sys_id),
            fields=rec.fields,
            config=BUILTIN_CONFIGS[rec.table],
            purpose=purpose,
            key=leaf.key,
            algorithm=algorithm_for_key(leaf.key),
            certificate=fingerprint_of(leaf.cert),
            signed_at=signed_at,
            expires_at=expires_at if expires_at is not None else signed_at + HOUR,
        )
        return self.add_signature(sig)

    def add_signature(self, sig: SignatureRecord) -> str:
        fields: Fields = dict(sig.to_fields())
        fields.pop("sys_id")
        return self.record(SIGNATURE_TABLE, fields, sig.sys_id)

    def trusted_chain(self, leaf: PkiLeaf | None = None, module: str = "cm_code_attest") -> None:
        """The leaf's certificate and its intermediate, each signed for the Circle of Trust."""
        leaf = leaf or self.pki.code_attest
        for cert, mod in ((leaf.cert, module), *((ca, "chain") for ca in leaf.chain)):
            self.sign(self.certificate(cert, mod))

    # -- the file ----------------------------------------------------------------------

    def entries(self) -> list[UpdateEntry]:
        return [
            UpdateEntry(
                rec.entry_id,
                self.header.sys_id,
                rec.table,
                sid,
                rec.action,
                record_to_payload(rec.table, sid, rec.fields),
            )
            for sid, rec in self.records.items()
        ]

    def manifest(
        self,
        key: PrivateKey | None = None,
        certificate: x509.Certificate | None = None,
        *,
        signed_at: dt.datetime | None = None,
        expires_at: dt.datetime | None = None,
        entries: list[UpdateEntry] | None = None,
    ) -> ManifestSignature:
        """A manifest signature over *entries* (default: the entries now in the set)."""
        key = key or self.pki.code_attest.key
        certificate = certificate or self.pki.code_attest.cert
        signed = format_ts(signed_at or self.now)
        expires = format_ts(expires_at or (signed_at or self.now) + HOUR)
        payload = manifest_payload(
            self.header, entries if entries is not None else self.entries(), signed, expires
        )
        alg = algorithm_for_key(key)
        raw = algs.sign(alg, key, payload)
        return ManifestSignature(
            alg.value,
            fingerprint_of(certificate),
            signed,
            expires,
            base64.b64encode(raw).decode("ascii"),
        )

    def write(self, path: Path, signature: ManifestSignature | None) -> Path:
        with path.open("wb") as fh:
            write_update_set(fh, self.header, self.entries(), signature, format_ts(self.now))
        return path


def cot_job_set(pki: SessionPki, job_id: str | None = None) -> tuple[SetBuilder, str]:
    """A valid Circle-of-Trust set: one job signed with code_attest, and its certificates."""
    b = SetBuilder(pki)
    job = b.record("sysauto_script", job_fields(), job_id)
    b.sign(job)
    b.trusted_chain()
    return b, job


def import_file(cli: Cli, home: Path, *paths: Path) -> str:
    """Import *paths* with ``updateset import``; the sys_id of the first set."""
    result = cli("updateset", "import", *paths, "--home", home, "--json")
    assert result.code == 0, result.err
    data = result.json()
    return str((data[0] if isinstance(data, list) else data)["sys_id"])


def with_field(b: SetBuilder, sys_id: str, **changes: str) -> None:
    """Tamper: change fields of record *sys_id* in the set (signatures untouched)."""
    rec = b.records[sys_id]
    b.records[sys_id] = replace(rec, fields={**rec.fields, **changes})
