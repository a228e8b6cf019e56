"""The figures of the Health and Status dashboard, read from one session at one time.

Overview: the enterprise plugin, opt-in and validation status (properties), the last
scan's verdict counts and signature states, MID servers active vs inactive, signed
records by table and by application. Key pairs and certificates with their validity
and chain; the Code Signing configuration (setting, value, last updated); the MID
server configuration (firewall mode, audit mode flagged, validation, version).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from sqlalchemy import select
from sqlalchemy.orm import Session

from .._time import format_ts
from ..crypto import certificate_status, fingerprint_of, is_self_signed, load_pem_certificate
from ..ecc import mids
from ..errors import NotFoundError
from ..platform import kmf, properties
from ..platform.context import Instance
from ..store.models import Certificate, CryptoKey, TrustAnchor
from . import history

PLUGIN = "com.glide.code_signing_enterprise"
CONFIG_PREFIXES = ("com.glide.codesigning.", "com.snc.kmf.", "com.snc.csf.")
MAX_CHAIN = 8
AUDIT_MODE = "audit"


@dataclass(frozen=True)
class Overview:
    """What the Overview page shows (every count is a plain int)."""

    instance: str
    role: str
    generated_at: str
    status: dict[str, object]
    last_scan: history.LastScan | None
    mids: dict[str, int]
    signed_by_table: dict[str, int]
    signed_by_application: dict[str, int]

    def to_dict(self) -> dict[str, object]:
        return {
            "instance": self.instance,
            "role": self.role,
            "generated_at": self.generated_at,
            "status": self.status,
            "last_scan": None if self.last_scan is None else self.last_scan.to_dict(),
            "mids": self.mids,
            "signed_by_table": self.signed_by_table,
            "signed_by_application": self.signed_by_application,
        }


def status(session: Session) -> dict[str, object]:
    """Plugin, opt-in and validation status from the properties."""
    certs = properties.get_property(session, properties.VALIDATION_CERTIFICATE) or ""
    return {
        "plugin": PLUGIN,
        "plugin_active": True,  # Code Signing is the platform: the plugin is always installed
        "opt_in": properties.get_bool(session, properties.VALIDATION_OPTIN),
        "validation": properties.get_bool(session, properties.VALIDATION_FLAG),
        "validation_certificates": len([c for c in certs.split(",") if c.strip()]),
        "root_of_trust_disabled": properties.get_bool(session, properties.ROOT_OF_TRUST_DISABLED),
    }


def overview(session: Session, instance: Instance, now: dt.datetime) -> Overview:
    listed = mids.list_mids(session, now)
    active = sum(1 for m in listed if m["status"] == "active")
    return Overview(
        instance=instance.name,
        role=instance.config.role.value,
        generated_at=format_ts(now),
        status=status(session),
        last_scan=history.last_scan(session),
        mids={"active": active, "inactive": len(listed) - active},
        signed_by_table=history.signed_counts(session, "table"),
        signed_by_application=history.signed_counts(session, "application"),
    )


def certificates(session: Session, now: dt.datetime) -> list[dict[str, Any]]:
    """Key pairs, certificates and trust anchors: name, module, type, expires, status."""
    keys: dict[str, CryptoKey] = {}
    for row in session.scalars(select(CryptoKey).order_by(CryptoKey.created_on)):
        if row.active or row.certificate not in keys:
            keys[row.certificate] = row
    out: list[dict[str, Any]] = []
    for cert in kmf.list_certificates(session, now):
        key = keys.get(str(cert["fingerprint"]))
        if key is not None:
            kind = "Key pair" + ("" if key.active else " (inactive)")
        elif cert["module"] == kmf.CHAIN_MODULE:
            kind = "CA certificate"
        else:
            kind = "Certificate"
        out.append(
            {
                **cert,
                "type": kind,
                "algorithm": key.algorithm if key else "",
                "expires": cert["not_after"],
            }
        )
    days = properties.get_int(session, properties.EXPIRING_DAYS)
    for anchor in session.scalars(select(TrustAnchor).order_by(TrustAnchor.added_on)):
        parsed = load_pem_certificate(anchor.pem.encode(), "trust anchor")
        out.append(
            {
                "sys_id": "",
                "name": _common_name(parsed),
                "module": "trust store",
                "fingerprint": anchor.fingerprint,
                "subject": anchor.subject,
                "issuer": parsed.issuer.rfc4514_string(),
                "not_before": format_ts(parsed.not_valid_before_utc),
                "not_after": anchor.not_after,
                "expires": anchor.not_after,
                "status": certificate_status(parsed, now, days).value,
                "trusted": True,
                "trust_reason": None,
                "type": "Trust anchor",
                "algorithm": "",
            }
        )
    return out


def certificate_chain(session: Session, fingerprint: str, now: dt.datetime) -> list[dict[str, Any]]:
    """The chain of the stored certificate *fingerprint*: leaf, issuers, then the anchor.

    Issuers are looked up among stored certificates and trust anchors by subject and
    checked by signature; a missing issuer ends the chain with a ``missing`` link.
    """
    pool = _pool(session)
    start = pool.get(fingerprint)
    if start is None:
        raise NotFoundError(
            f"no certificate with fingerprint {fingerprint[:64]!r}: open Key Pair and "
            "Certificates and pick one"
        )
    anchors = set(session.scalars(select(TrustAnchor.fingerprint)))
    days = properties.get_int(session, properties.EXPIRING_DAYS)
    chain: list[dict[str, Any]] = []
    cert: x509.Certificate | None = start[1]
    while cert is not None and len(chain) < MAX_CHAIN:
        fp = fingerprint_of(cert)
        chain.append(_link(cert, fp, pool[fp][0], fp in anchors, now, days))
        if fp in anchors or is_self_signed(cert):
            return chain
        cert = _issuer_of(cert, pool)
    if cert is None:
        chain.append(
            {"subject": chain[-1]["issuer"], "role": "missing", "fingerprint": "", "status": "",
             "name": "issuer not stored", "issuer": "", "not_after": "", "anchor": False}
        )  # fmt: skip
    return chain


def _pool(session: Session) -> dict[str, tuple[str, x509.Certificate]]:
    pool: dict[str, tuple[str, x509.Certificate]] = {}
    for anchor in session.scalars(select(TrustAnchor)):
        pool[anchor.fingerprint] = (
            "trust anchor",
            load_pem_certificate(anchor.pem.encode(), "trust anchor"),
        )
    for row in session.scalars(select(Certificate)):
        pool[row.fingerprint] = (
            row.name,
            load_pem_certificate(row.pem.encode(), "stored certificate"),
        )
    return pool


def _issuer_of(
    cert: x509.Certificate, pool: dict[str, tuple[str, x509.Certificate]]
) -> x509.Certificate | None:
    for _name, candidate in pool.values():
        if candidate.subject != cert.issuer or candidate == cert:
            continue
        try:
            cert.verify_directly_issued_by(candidate)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return candidate
    return None


def _link(
    cert: x509.Certificate, fp: str, name: str, anchor: bool, now: dt.datetime, days: int
) -> dict[str, Any]:
    return {
        "name": _common_name(cert) if name == "trust anchor" else name,
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "fingerprint": fp,
        "not_after": format_ts(cert.not_valid_after_utc),
        "status": certificate_status(cert, now, days).value,
        "role": "trust anchor" if anchor else "certificate",
        "anchor": anchor,
    }


def _common_name(cert: x509.Certificate) -> str:
    cns = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(cns[0].value) if cns else cert.subject.rfc4514_string()


def configuration(session: Session) -> list[dict[str, object]]:
    """The Code Signing settings: name, value, description, protected, last updated."""
    return [
        {
            "setting": p.name,
            "value": p.value,
            "description": p.description,
            "protected": p.protected,
            "last_updated": p.updated_on or "",
            "updated_by": p.updated_by or "",
        }
        for p in properties.list_properties(session)
        if p.name.startswith(CONFIG_PREFIXES)
    ]


def mid_configuration(session: Session, now: dt.datetime) -> list[dict[str, object]]:
    """Every MID: status, validated, firewall mode (``audit`` flagged), version, host."""
    return [
        {
            "name": m["name"],
            "status": m["status"],
            "validated": m["validated"],
            "firewall_mode": m["firewall_mode"] or "",
            "audit_mode": m["firewall_mode"] == AUDIT_MODE,
            "version": m["version"] or "",
            "last_check_in": m["last_check_in"] or "",
            "host": m["host"] or "",
        }
        for m in mids.list_mids(session, now)
    ]
