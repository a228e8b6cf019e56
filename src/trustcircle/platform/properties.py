"""System properties, their defaults, and the protected set of DESIGN §6.

A protected property changes only through a verified Circle-of-Trust job
(:func:`set_protected`, called by ``cot``); :func:`set_property` refuses it for
every user, admin included, and the caller audits the refusal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from .._types import Timestamp
from ..errors import NotFoundError, PolicyError, UsageError
from ..store.models import SystemProperty

VALIDATION_FLAG = "com.snc.kmf.signature.validation.flag"
VALIDATION_CERTIFICATE = "com.snc.kmf.signature.validation.certificate"
VALIDITY_WINDOW = "com.snc.kmf.signature.validity_window"
VALIDATION_OPTIN = "com.snc.kmf.signature.validation.optin"
ROOT_OF_TRUST_DISABLED = "com.snc.csf.servicenow_root_of_trust.disabled"
TRACKING_LENGTH = "com.glide.codesigning.expanded.tracking.length"
TRACKING_EXCLUSIONS = "com.glide.codesigning.tracking.agent.validation.exclusion.list"
TRACKING_FAIL_FAST = "com.glide.codesigning.tracking.validation.fail_fast"
EXPIRING_DAYS = "com.snc.kmf.certificate.expiring_days"
MAX_UPDATE_SIZE = "com.snc.csf.maximum_update_size"
IMPORT_MAX_FILE_BYTES = "trustcircle.updateset.import.max_file_bytes"
IMPORT_MAX_DEPTH = "trustcircle.updateset.import.max_depth"
IMPORT_MAX_FIELD_BYTES = "trustcircle.updateset.import.max_field_bytes"
IMPORT_MAX_ENTRIES = "trustcircle.updateset.import.max_entries"
ECC_RESULT_TIMEOUT = "trustcircle.ecc.result_timeout"

_PROTECTED_PREFIXES = ("com.glide.codesigning.",)
PROTECTED: frozenset[str] = frozenset(
    {
        VALIDATION_FLAG,
        VALIDATION_CERTIFICATE,
        VALIDITY_WINDOW,
        ROOT_OF_TRUST_DISABLED,
        VALIDATION_OPTIN,
    }
)

ALIASES: Mapping[str, str] = {
    "com_snc_kmf_signature.validation.flag": VALIDATION_FLAG,
    "com_snc_kmf_signature.validation.certificate": VALIDATION_CERTIFICATE,
}


@dataclass(frozen=True)
class PropertyDef:
    """A known property: its type, default, bounds and meaning."""

    type: str  # "boolean" | "integer" | "string"
    default: str | None
    description: str
    minimum: int | None = None
    maximum: int | None = None


DEFINITIONS: Mapping[str, PropertyDef] = {
    VALIDATION_FLAG: PropertyDef("boolean", "false", "MID servers validate signed code"),
    VALIDATION_CERTIFICATE: PropertyDef(
        "string", None, "Fingerprints of the certificates trusted for Code Signing (set by Turn On)"
    ),
    VALIDITY_WINDOW: PropertyDef(
        "integer", "3600", "Seconds a Circle-of-Trust signature stays valid", 60, 31_536_000
    ),
    VALIDATION_OPTIN: PropertyDef("boolean", "true", "Code Signing opt-in"),
    ROOT_OF_TRUST_DISABLED: PropertyDef("boolean", "false", "Vendor root of trust disabled"),
    TRACKING_LENGTH: PropertyDef(
        "integer", "3", "Calling-stack levels whose scripts must be signed", 1, 64
    ),
    TRACKING_EXCLUSIONS: PropertyDef(
        "string", "", "Comma-separated MID names exempt from tracker validation"
    ),
    TRACKING_FAIL_FAST: PropertyDef(
        "boolean", "false", "Refuse to enqueue (instead of storing unnotarized) on a bad stack"
    ),
    EXPIRING_DAYS: PropertyDef(
        "integer", "30", "Days before expiry a certificate counts as expiring soon", 1, 3650
    ),
    MAX_UPDATE_SIZE: PropertyDef(
        "integer", "10000", "Entries per update set before batching", 6000, 10000
    ),
    IMPORT_MAX_FILE_BYTES: PropertyDef(
        "integer", str(256 * 1024 * 1024), "Largest update-set XML accepted", 1024, 2**34
    ),
    IMPORT_MAX_DEPTH: PropertyDef("integer", "8", "Deepest XML nesting accepted", 4, 64),
    IMPORT_MAX_FIELD_BYTES: PropertyDef(
        "integer", str(1024 * 1024), "Largest field value accepted", 1024, 2**30
    ),
    IMPORT_MAX_ENTRIES: PropertyDef(
        "integer", "100000", "Most entries in one update-set file", 1, 10_000_000
    ),
    ECC_RESULT_TIMEOUT: PropertyDef(
        "integer",
        "3900",  # a MID's longest execution limit (3600 s) and five minutes to deliver
        "Seconds a claimed ECC message waits for its MID's result before it ends in error",
        5,
        7 * 24 * 3600,
    ),
}


def canonical_name(name: str) -> str:
    """*name* with the seed's aliases resolved."""
    return ALIASES.get(name, name)


def is_protected(name: str) -> bool:
    name = canonical_name(name)
    return name in PROTECTED or name.startswith(_PROTECTED_PREFIXES)


def _validate(name: str, value: str) -> str:
    spec = DEFINITIONS.get(name)
    if spec is None:
        if len(value) > 65536:
            raise UsageError(f"value for {name!r} is longer than 65536 characters")
        return value
    if spec.type == "boolean":
        if value not in ("true", "false"):
            raise UsageError(f"property {name!r} is boolean: use true or false, not {value!r}")
    elif spec.type == "integer":
        try:
            number = int(value)
        except ValueError as exc:
            raise UsageError(f"property {name!r} is an integer: {value!r} is not one") from exc
        low = spec.minimum if spec.minimum is not None else number
        high = spec.maximum if spec.maximum is not None else number
        if not low <= number <= high:
            raise UsageError(f"property {name!r} must be between {low} and {high}, not {number}")
        value = str(number)
    return value


def get_property(session: Session, name: str) -> str | None:
    """The value of *name* (aliases accepted), its default when unset, or None."""
    name = canonical_name(name)
    row = session.get(SystemProperty, name)
    if row is not None:
        return row.value
    spec = DEFINITIONS.get(name)
    return spec.default if spec else None


def require_property(session: Session, name: str) -> str:
    value = get_property(session, name)
    if value is None:
        raise NotFoundError(f"property {name!r} is not set: list them with `property list`")
    return value


def get_int(session: Session, name: str) -> int:
    return int(require_property(session, name))


def get_bool(session: Session, name: str) -> bool:
    return get_property(session, name) == "true"


@dataclass(frozen=True)
class PropertyView:
    """A property as lists and ``--json`` show it."""

    name: str
    value: str | None
    type: str
    protected: bool
    description: str
    updated_on: str | None
    updated_by: str | None

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def list_properties(session: Session, prefix: str = "") -> list[PropertyView]:
    """Every stored or known property whose name starts with *prefix*."""
    prefix = canonical_name(prefix)
    rows = {r.name: r for r in session.scalars(select(SystemProperty))}
    names = sorted(set(rows) | set(DEFINITIONS))
    out = []
    for name in names:
        if not name.startswith(prefix):
            continue
        row = rows.get(name)
        spec = DEFINITIONS.get(name)
        out.append(
            PropertyView(
                name=name,
                value=row.value if row else (spec.default if spec else None),
                type=spec.type if spec else (row.type if row else "string"),
                protected=is_protected(name),
                description=spec.description if spec else (row.description if row else ""),
                updated_on=row.updated_on if row else None,
                updated_by=row.updated_by if row else None,
            )
        )
    return out


def _store(session: Session, name: str, value: str, actor: str, now: Timestamp) -> None:
    row = session.get(SystemProperty, name)
    spec = DEFINITIONS.get(name)
    if row is None:
        session.add(
            SystemProperty(
                name=name,
                value=value,
                type=spec.type if spec else "string",
                description=spec.description if spec else "",
                updated_on=now,
                updated_by=actor,
            )
        )
    else:
        row.value = value
        row.updated_on = now
        row.updated_by = actor


def set_property(session: Session, name: str, value: str, actor: str, now: Timestamp) -> str:
    """Set an ordinary property (protected ones are refused for everyone); return the value."""
    name = canonical_name(name)
    if is_protected(name):
        raise PolicyError(
            f"property {name!r} is protected: it changes only by executing a verified "
            "Circle-of-Trust job signed on a trusted instance, for every user, admin included"
        )
    value = _validate(name, value)
    _store(session, name, value, actor, now)
    return value


def set_protected(session: Session, name: str, value: str, actor: str, now: Timestamp) -> str:
    """Set a protected property. Only verified Circle-of-Trust jobs call this."""
    name = canonical_name(name)
    value = _validate(name, value)
    _store(session, name, value, actor, now)
    return value
