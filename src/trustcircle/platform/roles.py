"""Roles and the one table that says which roles each action needs (DESIGN §8).

A requirement is a tuple of clauses; every clause must be satisfied, and a clause
is satisfied by holding any one of its roles. ``(("security_admin",),
("sn_kmf.cryptographic_manager", "sn_kmf.admin"))`` reads "security_admin and
either cryptographic manager or KMF admin". Every command and endpoint calls
:func:`authorize` with its action name; nothing else decides access.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..errors import NotAuthorisedError, UsageError

ROLES: Mapping[str, str] = {
    "admin": "Administrator of the instance",
    "security_admin": "Elevated security administrator",
    "sn_kmf.cryptographic_manager": "Manages keys and certificates in the key management module",
    "sn_kmf.admin": "Administers the key management module",
    "codesigning_admin": "Signs records and update sets, runs Circle-of-Trust jobs",
    "codesigning_manager": "Manages Code Signing configuration",
    "codesigning_auditor": "Reads Code Signing dashboards, logs and signatures",
    "sn_cse.quorum_requester": "Requests quorum approvals",
    "approver_user": "Approves requests",
    "mid_server": "A MID server agent",
}

ELEVATED_ROLES = frozenset({"security_admin"})

ALIASES: Mapping[str, str] = {"sn_kmf.crypto_manager": "sn_kmf.cryptographic_manager"}

Requirement = tuple[tuple[str, ...], ...]

_CRYPTO = ("sn_kmf.cryptographic_manager", "sn_kmf.admin")
_READERS = (
    "admin",
    "codesigning_admin",
    "codesigning_manager",
    "codesigning_auditor",
    "security_admin",
)
_KMF_READERS = (*_CRYPTO, *_READERS)

ACTIONS: Mapping[str, Requirement] = {
    # users
    "user.add": (("admin",),),
    "user.passwd": (("admin",),),
    "user.disable": (("admin",),),
    # key management
    "kmf.import": (_CRYPTO,),
    "kmf.read": (_KMF_READERS,),
    "trust_anchor.add": (("security_admin",), ("sn_kmf.cryptographic_manager",)),
    "trust_anchor.read": (_KMF_READERS,),
    "certificate.read": ((*_KMF_READERS, "mid_server"),),
    # records and signatures
    "record.write": (("admin",),),
    "record.read": (_READERS,),
    "record.sign": (("codesigning_admin",),),
    "signature.read": (_READERS,),
    # properties and audit
    "property.read": (_READERS,),
    "property.write": (("admin",),),
    "audit.verify": (("admin", "security_admin", "codesigning_auditor"),),
    # update sets, Circle of Trust, jobs
    "updateset.read": (("admin", "codesigning_admin", "codesigning_auditor"),),
    "updateset.write": (("admin",),),
    "updateset.export": (("admin", "codesigning_admin"),),
    "updateset.commit": (("admin",),),
    "updateset.sign": (("codesigning_admin",),),
    "cert.export": (("codesigning_admin",), _CRYPTO),
    "cot.read": (_READERS,),
    "job.read": (_READERS,),
    "job.write": (("admin",),),
    "job.export_signed": (("codesigning_admin",),),
    "job.execute": (("admin",),),
    "job.turn_on": (("security_admin",), ("codesigning_admin",)),
    "job.turn_off": (("admin",), ("codesigning_admin",)),
    "cot.revoke": (("security_admin",), ("codesigning_admin",)),
    # ECC and MID servers
    "mid.agent": (("mid_server",),),
    "mid.admin": (("admin",),),
    "mid.read": (_READERS,),
    "mid.firewall": (("security_admin",),),
    "ecc.read": (_READERS,),
    "ecc.write": (("admin",),),
    "codesigning.log": (_READERS,),
    "codesigning.policy": (("mid_server", *_READERS),),
    # Health and Status dashboard, guardrail scan, batch signature generator
    "health.read": (("admin", "codesigning_admin", "codesigning_manager", "codesigning_auditor"),),
    "health.scan": (("admin", "codesigning_admin", "codesigning_manager", "codesigning_auditor"),),
    "health.batch_sign": (("codesigning_admin",),),
}


def canonical_role(name: str) -> str:
    """The role *name* stands for (aliases resolved), or :class:`UsageError`."""
    role = ALIASES.get(name, name)
    if role not in ROLES:
        known = ", ".join(sorted(ROLES))
        raise UsageError(f"unknown role {name!r}: use one of {known}")
    return role


def missing_roles(held: Iterable[str], action: str) -> tuple[str, ...]:
    """The clauses of *action* the roles *held* do not satisfy, each as ``a`` or ``a|b``."""
    try:
        requirement = ACTIONS[action]
    except KeyError as exc:  # a programming error, not a user's
        raise UsageError(f"unknown action {action!r}") from exc
    have = {ALIASES.get(r, r) for r in held}
    return tuple("|".join(clause) for clause in requirement if not have.intersection(clause))


def authorize(user: str, held: Iterable[str], action: str) -> None:
    """Raise :class:`NotAuthorisedError` naming the missing roles unless *held* allows *action*."""
    missing = missing_roles(held, action)
    if missing:
        needs = " and ".join(m.replace("|", " or ") for m in missing)
        raise NotAuthorisedError(
            f"user {user!r} may not {action}: missing role(s) {needs}; ask an admin to grant them",
            missing,
        )


def describe(action: str) -> str:
    """The requirement of *action* in words (for pages and help)."""
    return " and ".join(" or ".join(clause) for clause in ACTIONS[action])
