"""Keys and certificates for the signing tests: real crypto, made once per session."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from trustcircle._time import format_ts
from trustcircle._types import B64, Fingerprint, SysId, new_sys_id
from trustcircle.crypto import algorithms
from trustcircle.crypto.algorithms import Algorithm, PrivateKey, algorithm_for_key
from trustcircle.signing import (
    BUILTIN_CONFIGS,
    CertTrust,
    RecordVerifier,
    SignatureRecord,
    record_signature_payload,
    sign_record,
)

NOW = dt.datetime(2026, 11, 27, 19, 45, tzinfo=dt.UTC)
DOC = SysId("0123456789abcdef0123456789abcdef")
OTHER_DOC = SysId("fedcba9876543210fedcba9876543210")

JOB_FIELDS: dict[str, str | None] = {
    "name": "Turn on Code Signing Property",
    "script": 'gs.setProperty("com.snc.kmf.signature.validation.flag", "true");\n',
    "run_as": "6816f79cc0a8016401c5a33be04be441",
    "run_type": "on_demand",
    "active": "true",
    "description": "not a signed field",
}


@dataclass(frozen=True)
class Signer:
    """A key with its self-made certificate, as a crypto module would hold it."""

    name: str
    key: PrivateKey
    certificate: x509.Certificate

    @property
    def algorithm(self) -> Algorithm:
        return algorithm_for_key(self.key)

    @property
    def fingerprint(self) -> Fingerprint:
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        return Fingerprint(hashlib.sha256(der).hexdigest())

    def trust(self, trusted: bool = True, reason: str | None = None) -> CertTrust:
        public_key = self.certificate.public_key()  # as the store layer gets it
        assert isinstance(
            public_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
        )
        return CertTrust(public_key, trusted, reason)

    def sign(
        self,
        fields: Mapping[str, str | None] = JOB_FIELDS,
        *,
        table: str = "sysauto_script",
        document_id: SysId = DOC,
        purpose: str = "Circle of Trust",
        signed_at: dt.datetime = NOW - dt.timedelta(hours=1),
        expires_at: dt.datetime | None = NOW + dt.timedelta(hours=1),
        sys_id: SysId | None = None,
    ) -> SignatureRecord:
        return sign_record(
            table=table,
            document_id=document_id,
            fields=fields,
            config=BUILTIN_CONFIGS[table],
            purpose=purpose,
            key=self.key,
            algorithm=self.algorithm,
            certificate=self.fingerprint,
            signed_at=signed_at,
            expires_at=expires_at,
            sys_id=sys_id,
        )

    def sign_unchecked(
        self,
        fields: Mapping[str, str | None] = JOB_FIELDS,
        *,
        table: str = "sysauto_script",
        purpose: str = "Circle of Trust",
        signed_fields: tuple[str, ...] = ("active", "name", "run_as", "run_type", "script"),
    ) -> SignatureRecord:
        """What a key holder gets by bypassing sign_record's policy checks (an attacker's tool)."""
        signed_at = format_ts(NOW - dt.timedelta(hours=1))
        expires_at = format_ts(NOW + dt.timedelta(hours=1))
        payload = record_signature_payload(
            purpose=purpose,
            table=table,
            document_id=DOC,
            fields=fields,
            signed_fields=signed_fields,
            certificate=self.fingerprint,
            signed_at=signed_at,
            expires_at=expires_at,
        )
        raw = algorithms.sign(self.algorithm, self.key, payload)
        return SignatureRecord(
            sys_id=new_sys_id(),
            table_name=table,
            document_id=DOC,
            purpose=purpose,
            algorithm=self.algorithm.value,
            signature=B64(base64.b64encode(raw).decode()),
            certificate=self.fingerprint,
            signed_fields=signed_fields,
            signed_at=signed_at,
            expires_at=expires_at,
        )


def _certificate(name: str, key: PrivateKey) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"trustcircle test {name}")])
    hash_alg: hashes.SHA512 | hashes.SHA384 | None = None
    if isinstance(key, rsa.RSAPrivateKey):
        hash_alg = hashes.SHA512()
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        hash_alg = hashes.SHA384()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=30))
        .not_valid_after(NOW + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hash_alg)
    )


def _signer(name: str, key: PrivateKey) -> Signer:
    return Signer(name, key, _certificate(name, key))


@pytest.fixture(scope="session")
def rsa_signer() -> Signer:
    return _signer("rsa", rsa.generate_private_key(public_exponent=65537, key_size=4096))


@pytest.fixture(scope="session")
def ec_signer() -> Signer:
    return _signer("ec", ec.generate_private_key(ec.SECP384R1()))


@pytest.fixture(scope="session")
def ed_signer() -> Signer:
    return _signer("ed25519", ed25519.Ed25519PrivateKey.generate())


@pytest.fixture(scope="session", params=["rsa", "ec", "ed25519"])
def signer(request: pytest.FixtureRequest) -> Signer:
    """Each test using it runs once per algorithm."""
    fixture = {"rsa": "rsa_signer", "ec": "ec_signer", "ed25519": "ed_signer"}[request.param]
    result: Signer = request.getfixturevalue(fixture)
    return result


@pytest.fixture(scope="session")
def other_signer() -> Signer:
    """A second, independent certificate ("certificate B")."""
    return _signer("other", ec.generate_private_key(ec.SECP384R1()))


def verifier(*trusts: tuple[Signer, CertTrust], now: dt.datetime = NOW) -> RecordVerifier:
    """A verifier that knows the given signers' certificates."""
    return RecordVerifier({s.fingerprint: t for s, t in trusts}, BUILTIN_CONFIGS, now)
