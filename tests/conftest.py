"""Session-wide fixtures: one test PKI, generated once per test session.

``test_pki`` holds real keys and certificates (no mocks) valid around the real
clock at session start, so CLI tests that use the system clock see the same
validity as library tests that pass ``test_pki.now``. Every object is also on
disk under ``test_pki.files`` for tests that need paths.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from trustcircle._fs import write_atomic, write_secret
from trustcircle._time import system_clock
from trustcircle.crypto.algorithms import PrivateKey
from trustcircle.crypto.certs import cert_to_pem
from trustcircle.crypto.pki import (
    export_pkcs12,
    issue_ca,
    issue_leaf,
    new_ec_key,
    new_ed25519_key,
    new_rsa_key,
    self_signed_leaf,
)

TEST_PKI_PASSWORD = b"correct horse battery staple"
"""The password of every PKCS#12 file of ``test_pki``."""


@dataclass(frozen=True)
class PkiLeaf:
    """One end-entity certificate, its private key, and its PKCS#12 export.

    ``p12`` bundles ``key``, ``cert`` and ``chain`` under ``TEST_PKI_PASSWORD``;
    ``chain`` is the issuing CA certificates the p12 carries (no root for the
    test CA's leaves: the root is the trust anchor).
    """

    name: str
    key: PrivateKey = field(repr=False)
    cert: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    p12: bytes = field(repr=False)


@dataclass(frozen=True)
class PkiFiles:
    """The session PKI on disk (one folder; p12 files and password file are 0600).

    ``p12[name]`` / ``cert_pem[name]`` are keyed by the :class:`SessionPki` leaf
    attribute names (``code_signing``, ``expired``, ...). ``chain_pem`` holds the
    intermediate followed by the root.
    """

    folder: Path
    root_pem: Path
    intermediate_pem: Path
    chain_pem: Path
    other_root_pem: Path
    password_file: Path
    p12: Mapping[str, Path]
    cert_pem: Mapping[str, Path]
    mismatched_p12: Path
    truncated_p12: Path


@dataclass(frozen=True)
class SessionPki:
    """A test PKI: a root CA → intermediate CA → signing leaves, plus bad certificates.

    Good (chain to ``root`` through ``intermediate`` and validate at ``now``):
      ``code_signing``, ``code_attest``, ``runtime`` (RSA-4096, the three crypto
      modules), ``ec_p384``, ``ed25519``.
    Bad (each breaks exactly one rule, otherwise well formed, RSA-3072 unless said):
      ``self_signed``, ``expired`` (ended a day before ``now``), ``not_yet_valid``
      (starts a day after), ``unknown_ca`` (issued by ``other_root``, not trusted),
      ``rsa2048`` (weak key), ``no_digital_signature`` (keyUsage nonRepudiation only),
      ``wrong_eku`` (extendedKeyUsage serverAuth/clientAuth, no codeSigning).
    Broken PKCS#12 files: ``mismatched_p12`` (the code_attest key packed with the
    code_signing certificate), ``truncated_p12`` (code_signing's p12 cut in half).
    """

    now: _dt.datetime
    password: bytes = field(repr=False)
    root: x509.Certificate
    root_key: PrivateKey = field(repr=False)
    intermediate: x509.Certificate
    intermediate_key: PrivateKey = field(repr=False)
    other_root: x509.Certificate
    code_signing: PkiLeaf
    code_attest: PkiLeaf
    runtime: PkiLeaf
    ec_p384: PkiLeaf
    ed25519: PkiLeaf
    self_signed: PkiLeaf
    expired: PkiLeaf
    not_yet_valid: PkiLeaf
    unknown_ca: PkiLeaf
    rsa2048: PkiLeaf
    no_digital_signature: PkiLeaf
    wrong_eku: PkiLeaf
    mismatched_p12: bytes = field(repr=False)
    truncated_p12: bytes = field(repr=False)
    files: PkiFiles

    @property
    def modules(self) -> dict[str, PkiLeaf]:
        """The three crypto-module leaves by module name (``cm_code_signing``, ...)."""
        return {
            "cm_code_signing": self.code_signing,
            "cm_code_attest": self.code_attest,
            "cm_runtime": self.runtime,
        }


_GOOD = ("code_signing", "code_attest", "runtime", "ec_p384", "ed25519")
_BAD = (
    "self_signed",
    "expired",
    "not_yet_valid",
    "unknown_ca",
    "rsa2048",
    "no_digital_signature",
    "wrong_eku",
)


def _parallel_keys(makers: Mapping[str, Callable[[], PrivateKey]]) -> dict[str, PrivateKey]:
    """Generate keys on every core (key generation releases the GIL)."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        futures = {name: pool.submit(make) for name, make in makers.items()}
        return {name: future.result() for name, future in futures.items()}


def build_session_pki(folder: Path, now: _dt.datetime) -> SessionPki:
    """Generate the whole test PKI around *now* and write it to *folder*."""
    keys = _parallel_keys(
        {
            "root": new_rsa_key,
            "intermediate": new_rsa_key,
            "code_signing": new_rsa_key,
            "code_attest": new_rsa_key,
            "runtime": new_rsa_key,
            "other_root": lambda: new_rsa_key(3072),
            "spare": lambda: new_rsa_key(3072),
            "rsa2048": lambda: new_rsa_key(2048),
            "ec_p384": new_ec_key,
            "ed25519": new_ed25519_key,
        }
    )
    day = _dt.timedelta(days=1)
    start, end = now - day, now + 730 * day
    root = issue_ca(
        "Test Root CA", keys["root"], not_before=start, not_after=now + 3650 * day, path_length=1
    )
    inter = issue_ca(
        "Test Intermediate CA",
        keys["intermediate"],
        root,
        keys["root"],
        not_before=start,
        not_after=now + 3000 * day,
        path_length=0,
    )
    other_root = issue_ca(
        "Unknown Root CA", keys["other_root"], not_before=start, not_after=now + 3650 * day
    )
    ca_key = keys["intermediate"]
    spare = keys["spare"]

    def leaf(
        name: str,
        key: PrivateKey,
        cert: x509.Certificate,
        chain: tuple[x509.Certificate, ...] = (inter,),
    ) -> PkiLeaf:
        p12 = export_pkcs12(key, cert, chain, TEST_PKI_PASSWORD, name)
        return PkiLeaf(name=name, key=key, cert=cert, chain=chain, p12=p12)

    def issued(
        name: str,
        key: PrivateKey,
        not_before: _dt.datetime = start,
        not_after: _dt.datetime = end,
        *,
        eku: tuple[x509.ObjectIdentifier, ...] = (ExtendedKeyUsageOID.CODE_SIGNING,),
        digital_signature: bool = True,
    ) -> PkiLeaf:
        cert = issue_leaf(
            f"Test {name}",
            key.public_key(),
            inter,
            ca_key,
            not_before,
            not_after,
            eku=eku,
            digital_signature=digital_signature,
        )
        return leaf(name, key, cert)

    leaves: dict[str, PkiLeaf] = {name: issued(name, keys[name]) for name in _GOOD}
    leaves["self_signed"] = leaf(
        "self_signed", spare, self_signed_leaf("Test self_signed", spare, start, end), ()
    )
    leaves["expired"] = issued("expired", spare, now - 400 * day, now - day)
    leaves["not_yet_valid"] = issued("not_yet_valid", spare, now + day, now + 400 * day)
    unknown = issue_leaf(
        "Test unknown_ca", spare.public_key(), other_root, keys["other_root"], start, end
    )
    leaves["unknown_ca"] = leaf("unknown_ca", spare, unknown, (other_root,))
    leaves["rsa2048"] = issued("rsa2048", keys["rsa2048"])
    leaves["no_digital_signature"] = issued("no_digital_signature", spare, digital_signature=False)
    leaves["wrong_eku"] = issued(
        "wrong_eku",
        spare,
        eku=(ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH),
    )
    mismatched = _key_with_foreign_certificate(
        keys["code_attest"], leaves["code_signing"].cert, inter
    )
    truncated = leaves["code_signing"].p12[: len(leaves["code_signing"].p12) // 2]

    files = _write_files(folder, root, inter, other_root, leaves, mismatched, truncated)
    return SessionPki(
        now=now,
        password=TEST_PKI_PASSWORD,
        root=root,
        root_key=keys["root"],
        intermediate=inter,
        intermediate_key=keys["intermediate"],
        other_root=other_root,
        mismatched_p12=mismatched,
        truncated_p12=truncated,
        files=files,
        **leaves,
    )


def _key_with_foreign_certificate(
    key: PrivateKey, cert: x509.Certificate, inter: x509.Certificate
) -> bytes:
    """A p12 holding *key* with a certificate of another key (as a careless export would)."""
    from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12

    return pkcs12.serialize_key_and_certificates(
        b"mismatched", key, None, [cert, inter], BestAvailableEncryption(TEST_PKI_PASSWORD)
    )


def _write_files(
    folder: Path,
    root: x509.Certificate,
    inter: x509.Certificate,
    other_root: x509.Certificate,
    leaves: Mapping[str, PkiLeaf],
    mismatched: bytes,
    truncated: bytes,
) -> PkiFiles:
    def pem(name: str, *certs: x509.Certificate) -> Path:
        path = folder / name
        write_atomic(path, "".join(cert_to_pem(c) for c in certs).encode("ascii"))
        return path

    def secret(name: str, data: bytes) -> Path:
        write_secret(folder / name, data)
        return folder / name

    return PkiFiles(
        folder=folder,
        root_pem=pem("root-ca.pem", root),
        intermediate_pem=pem("intermediate-ca.pem", inter),
        chain_pem=pem("ca-chain.pem", inter, root),
        other_root_pem=pem("other-root-ca.pem", other_root),
        password_file=secret("password.txt", TEST_PKI_PASSWORD),
        p12=MappingProxyType({n: secret(f"{n}.p12", leaf.p12) for n, leaf in leaves.items()}),
        cert_pem=MappingProxyType({n: pem(f"{n}.pem", leaf.cert) for n, leaf in leaves.items()}),
        mismatched_p12=secret("mismatched.p12", mismatched),
        truncated_p12=secret("truncated.p12", truncated),
    )


@pytest.fixture(scope="session")
def test_pki(tmp_path_factory: pytest.TempPathFactory) -> SessionPki:
    """The session's test PKI (see :class:`SessionPki`), generated once."""
    return build_session_pki(tmp_path_factory.mktemp("pki"), system_clock())
