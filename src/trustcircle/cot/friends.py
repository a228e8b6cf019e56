"""The trusted friends list: certificates admitted through verified Circle-of-Trust sets.

The very first trust comes from ``trust-anchor add``; after that a certificate joins
the list only when a verified Circle-of-Trust update set carrying it is committed.
A friend is trusted for Circle-of-Trust signatures while it is listed, not revoked,
and still chains to a trust anchor at the time of verification. A revoked friend never
comes back (:mod:`.revoke`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from .._types import Fingerprint, Timestamp
from ..platform.kmf import signer_trust
from ..signing import CertTrust
from ..store.models import Certificate, TrustedFriend


@dataclass(frozen=True)
class FriendView:
    fingerprint: str
    name: str
    module: str
    added_on: str
    added_by: str
    via: str
    revoked: bool
    not_after: str

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def add_friend(
    session: Session, cert: Certificate, via: str, actor: str, now: Timestamp
) -> TrustedFriend:
    """Admit *cert* (already stored and verified by the caller) to the list."""
    row = session.get(TrustedFriend, cert.fingerprint)
    if row is None:
        row = TrustedFriend(
            fingerprint=cert.fingerprint,
            certificate=cert.sys_id,
            name=cert.name,
            module=cert.module,
            added_on=now,
            added_by=actor,
            via=via,
            revoked=False,
        )
        session.add(row)
    elif row.revoked:  # revoked stays revoked; the row keeps who revoked it, and when
        if not row.certificate:  # revoked before it arrived: now it has a record here
            row.certificate, row.name, row.module = cert.sys_id, cert.name, cert.module
    else:
        row.via, row.added_on, row.added_by = via, now, actor
    session.flush()
    return row


def list_friends(session: Session) -> list[FriendView]:
    out = []
    for f in session.scalars(select(TrustedFriend).order_by(TrustedFriend.added_on)):
        cert = session.get(Certificate, f.certificate)
        out.append(
            FriendView(
                f.fingerprint,
                f.name,
                f.module,
                f.added_on,
                f.added_by,
                f.via,
                f.revoked,
                cert.not_after if cert else "",
            )
        )
    return out


def friend_trust(session: Session, now: dt.datetime) -> dict[Fingerprint, CertTrust]:
    """Trust for Circle-of-Trust signatures: chain-valid now *and* a listed, unrevoked friend."""
    chain = signer_trust(session, now)
    friends = {f.fingerprint: f for f in session.scalars(select(TrustedFriend))}
    out: dict[Fingerprint, CertTrust] = {}
    for fp, trust in chain.items():
        friend = friends.get(fp)
        if friend is None:
            out[fp] = CertTrust(trust.public_key, False, "not_a_trusted_friend")
        elif friend.revoked:
            out[fp] = CertTrust(trust.public_key, False, "revoked")
        else:
            out[fp] = trust
    return out


__all__ = [
    "FriendView",
    "add_friend",
    "friend_trust",
    "list_friends",
]
