"""The key management module: trust anchors, key import, certificates and their trust.

Private keys are sealed with the instance master key (AES-256-GCM, the module
and certificate fingerprint as associated data) before they touch the database.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .._types import Fingerprint, new_sys_id
from ..crypto import (
    CertStatus,
    ChainValidator,
    ChainVerificationError,
    MasterKey,
    certificate_status,
    describe_certificate,
    fingerprint_of,
    load_pem_certificates,
    load_pkcs12,
    private_key_from_der,
    private_key_to_der,
)
from ..crypto.algorithms import Algorithm, PrivateKey, algorithm_for_key
from ..errors import NotFoundError, PolicyError, RefusedError, UsageError
from ..signing import CertTrust
from ..store.models import Certificate, CryptoKey, CryptoModule, TrustAnchor
from . import properties
from .context import Operation

SIGNING_MODULES = frozenset({"cm_code_signing", "cm_code_attest"})
RUNTIME_MODULE = "cm_runtime"
"""The protected instance's notarizing key: its certificate never counts as a signer."""
CHAIN_MODULE = "chain"


def _module(session: Session, name: str) -> CryptoModule:
    module = session.get(CryptoModule, name)
    if module is None:
        known = ", ".join(sorted(session.scalars(select(CryptoModule.name))))
        raise UsageError(f"unknown crypto module {name!r}: use one of {known}")
    return module


def anchors(session: Session) -> list[x509.Certificate]:
    return [
        load_pem_certificates(a.pem.encode(), "trust anchor")[0]
        for a in session.scalars(select(TrustAnchor).order_by(TrustAnchor.added_on))
    ]


def validator(session: Session) -> ChainValidator:
    return ChainValidator(anchors(session))


def add_trust_anchor(op: Operation, pem: bytes) -> dict[str, str]:
    """Add the CA certificate in *pem* to the trust store.

    A protected instance takes its first anchor this way and no other: after that its
    trust changes only through verified Circle-of-Trust update sets, so a local
    administrator cannot widen the circle with a CA of their own.
    """
    certs = load_pem_certificates(pem, "CA certificate file")
    if len(certs) != 1:
        raise UsageError(f"the CA file holds {len(certs)} certificates: give one CA per file")
    cert = certs[0]
    ChainValidator([]).validate_anchor(cert, op.now)
    fp = fingerprint_of(cert)
    info = describe_certificate(cert)
    known = set(op.session.scalars(select(TrustAnchor.fingerprint)))
    if op.instance.is_protected and known and fp not in known:
        op.target = info.subject
        op.detail = {"fingerprint": fp, "anchors": len(known)}
        raise PolicyError(
            f"trust anchor {info.subject} refused: protected instance {op.instance.name!r} "
            f"already has its root of trust ({len(known)} anchor(s)), and from then on its "
            "trust changes only through verified Circle-of-Trust update sets: export the "
            "certificates from the trusted instance with `trustcircle cert export-to-production`"
        )
    if fp not in known:
        op.session.add(
            TrustAnchor(
                fingerprint=fp,
                pem=info.pem,
                subject=info.subject,
                not_after=info.not_after,
                added_on=op.ts,
                added_by=op.actor.name,
            )
        )
    op.target = info.subject
    op.detail = {"fingerprint": fp}
    return {"fingerprint": fp, "subject": info.subject, "not_after": info.not_after}


def list_anchors(session: Session) -> list[dict[str, str]]:
    return [
        {
            "fingerprint": a.fingerprint,
            "subject": a.subject,
            "not_after": a.not_after,
            "added_on": a.added_on,
            "added_by": a.added_by,
        }
        for a in session.scalars(select(TrustAnchor).order_by(TrustAnchor.added_on))
    ]


def store_certificate(
    session: Session, cert: x509.Certificate, module: str, name: str
) -> Certificate:
    """The ``sys_certificate`` row of *cert*, created when new."""
    fp = fingerprint_of(cert)
    row = session.scalar(select(Certificate).where(Certificate.fingerprint == fp))
    if row is not None:
        return row
    info = describe_certificate(cert)
    row = Certificate(
        sys_id=new_sys_id(),
        name=name,
        module=module,
        pem=info.pem,
        fingerprint=fp,
        subject=info.subject,
        issuer=info.issuer,
        not_before=info.not_before,
        not_after=info.not_after,
    )
    session.add(row)
    session.flush()
    return row


def _common_name(cert: x509.Certificate) -> str:
    cns = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(cns[0].value) if cns else cert.subject.rfc4514_string()


def import_pkcs12(op: Operation, module: str, data: bytes, password: bytes) -> dict[str, str]:
    """Import the key and certificate of a PKCS#12 file into *module*, after every check."""
    _module(op.session, module)
    if module in SIGNING_MODULES and op.instance.is_protected:
        raise PolicyError(
            f"cannot import a key into {module} here: signing keys never reach a protected "
            "instance (only cm_runtime keys do)"
        )
    bundle = load_pkcs12(data, password)
    chain = validator(op.session).validate_signing_certificate(
        bundle.certificate, bundle.chain, op.now
    )
    fp = fingerprint_of(bundle.certificate)
    other = op.session.scalar(
        select(CryptoKey.module).where(CryptoKey.certificate == fp, CryptoKey.module != module)
    )
    if other is not None:
        raise PolicyError(
            f"this certificate's key is already the key of {other}: each crypto module needs a "
            "key pair of its own (code signing, attestation and notarization stay apart)"
        )
    cert_row = store_certificate(
        op.session, bundle.certificate, module, _common_name(bundle.certificate)
    )
    for ca in chain[1:-1]:
        store_certificate(op.session, ca, CHAIN_MODULE, _common_name(ca))
    key = MasterKey.load(op.instance.master_key_path)
    algorithm = algorithm_for_key(bundle.private_key)
    op.session.execute(update(CryptoKey).where(CryptoKey.module == module).values(active=False))
    key_id = new_sys_id()
    op.session.add(
        CryptoKey(
            sys_id=key_id,
            module=module,
            algorithm=algorithm.value,
            sealed_key=key.seal(private_key_to_der(bundle.private_key), _aad(module, fp)),
            certificate=fp,
            active=True,
            created_on=op.ts,
            created_by=op.actor.name,
        )
    )
    op.target = module
    op.detail = {"certificate": fp, "algorithm": algorithm.value}
    return {
        "module": module,
        "certificate": fp,
        "subject": cert_row.subject,
        "algorithm": algorithm.value,
        "not_after": cert_row.not_after,
    }


def _aad(module: str, fp: str) -> bytes:
    return f"trustcircle.key/v1:{module}:{fp}".encode()


@dataclass(frozen=True)
class SigningKey:
    """A module's active private key, unsealed, with the certificate it signs under."""

    module: str
    key: PrivateKey
    algorithm: Algorithm
    certificate: Fingerprint


def signing_key(op: Operation, module: str) -> SigningKey:
    """Unseal *module*'s active key after checking its certificate is still trusted now."""
    _module(op.session, module)
    row = op.session.scalar(
        select(CryptoKey).where(CryptoKey.module == module, CryptoKey.active.is_(True))
    )
    if row is None:
        raise NotFoundError(
            f"crypto module {module} holds no key: import one with "
            f"`trustcircle kmf import --module {module} --p12 FILE --password-file PF`"
        )
    trust = certificate_trust(op.session, op.now).get(Fingerprint(row.certificate))
    if trust is None or not trust.trusted:
        reason = trust.reason if trust else "certificate_unknown"
        raise RefusedError(
            f"the certificate of {module} is not trusted now ({reason}): import a new key"
        )
    der = MasterKey.load(op.instance.master_key_path).open(
        row.sealed_key, _aad(module, row.certificate)
    )
    key = private_key_from_der(der)
    return SigningKey(module, key, Algorithm(row.algorithm), Fingerprint(row.certificate))


@dataclass(frozen=True)
class TrustSnapshot:
    """What one read of the certificate table and the anchors says, at one time."""

    trust: dict[Fingerprint, CertTrust]
    """Every stored signing certificate's public key and whether it chains to an anchor."""
    signers: dict[Fingerprint, CertTrust]
    """:attr:`trust` for verifying signatures of code and Circle-of-Trust material: the
    runtime certificate is never trusted for that (it notarizes ECC messages only)."""
    sys_ids: dict[str, str]
    """Fingerprint → sys_id of every stored certificate record (chain ones too)."""
    intermediates: tuple[x509.Certificate, ...]
    """The stored chain (CA) certificates, parsed."""
    validator: ChainValidator


def trust_snapshot(session: Session, now: dt.datetime) -> TrustSnapshot:
    """Read every stored certificate and the anchors once and judge each signing
    certificate's chain *now*."""
    rows = list(session.scalars(select(Certificate)))
    parsed = {
        r.fingerprint: load_pem_certificates(r.pem.encode(), "stored certificate")[0] for r in rows
    }
    intermediates = tuple(parsed[r.fingerprint] for r in rows if r.module == CHAIN_MODULE)
    check = validator(session)
    out: dict[Fingerprint, CertTrust] = {}
    for r in rows:
        if r.module == CHAIN_MODULE:
            continue
        cert = parsed[r.fingerprint]
        reason: str | None = None
        try:
            check.validate_signing_certificate(cert, intermediates, now)
        except ChainVerificationError as exc:
            reason = exc.reason
        except RefusedError:
            reason = "chain_refused"
        out[Fingerprint(r.fingerprint)] = CertTrust(
            public_key=cert.public_key(),  # type: ignore[arg-type]
            trusted=reason is None,
            reason=reason,
        )
    ids = {r.fingerprint: r.sys_id for r in rows}
    runtime = {r.fingerprint for r in rows if r.module == RUNTIME_MODULE}
    signers = {
        fp: CertTrust(t.public_key, False, "runtime_certificate") if fp in runtime else t
        for fp, t in out.items()
    }
    return TrustSnapshot(out, signers, ids, intermediates, check)


def certificate_trust(session: Session, now: dt.datetime) -> dict[Fingerprint, CertTrust]:
    """Every known certificate's public key and whether it chains to an anchor *now*."""
    return trust_snapshot(session, now).trust


def signer_trust(session: Session, now: dt.datetime) -> dict[Fingerprint, CertTrust]:
    """:func:`certificate_trust` for verifying signatures: see :attr:`TrustSnapshot.signers`."""
    return trust_snapshot(session, now).signers


def list_modules(session: Session) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for m in session.scalars(select(CryptoModule).order_by(CryptoModule.name)):
        key = session.scalar(
            select(CryptoKey).where(CryptoKey.module == m.name, CryptoKey.active.is_(True))
        )
        out.append(
            {
                "module": m.name,
                "description": m.description,
                "has_key": key is not None,
                "algorithm": key.algorithm if key else None,
                "certificate": key.certificate if key else None,
            }
        )
    return out


def list_certificates(session: Session, now: dt.datetime) -> list[dict[str, object]]:
    days = properties.get_int(session, properties.EXPIRING_DAYS)
    trust = certificate_trust(session, now)
    out: list[dict[str, object]] = []
    for r in session.scalars(select(Certificate).order_by(Certificate.module, Certificate.name)):
        cert = load_pem_certificates(r.pem.encode(), "stored certificate")[0]
        status: CertStatus = certificate_status(cert, now, days)
        t = trust.get(Fingerprint(r.fingerprint))
        out.append(
            {
                "sys_id": r.sys_id,
                "name": r.name,
                "module": r.module,
                "fingerprint": r.fingerprint,
                "subject": r.subject,
                "issuer": r.issuer,
                "not_before": r.not_before,
                "not_after": r.not_after,
                "status": status.value,
                "trusted": None if t is None else t.trusted,
                "trust_reason": None if t is None else t.reason,
            }
        )
    return out
