"""Signature configurations: which fields of a table are signed, for which purposes (DESIGN §4)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from trustcircle.errors import PolicyError, UsageError

WILDCARD = "*"
"""The reserved purpose that matches any purpose; only on :data:`WILDCARD_TABLES`."""

WILDCARD_TABLES = frozenset({"sys_script_include", "sys_script"})

CIRCLE_OF_TRUST = "Circle of Trust"
CODE_SIGNING = "Code Signing"
ECC_NOTARIZATION = "ECC Notarization"


@dataclass(frozen=True)
class SignatureConfig:
    """The signed fields of *table* and the purposes a signature of it may carry."""

    table: str
    fields: tuple[str, ...]
    purposes: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.table:
            raise UsageError("a signature configuration needs a table name")
        if not self.fields or len(set(self.fields)) != len(self.fields):
            raise UsageError(
                f"signature configuration for {self.table}: list each signed field once "
                "(at least one)"
            )
        if not self.purposes:
            raise UsageError(f"signature configuration for {self.table}: list at least one purpose")


def _config(table: str, fields: str, *purposes: str) -> SignatureConfig:
    return SignatureConfig(table, tuple(fields.split(", ")), purposes)


BUILTIN_CONFIGS: Mapping[str, SignatureConfig] = MappingProxyType(
    {
        c.table: c
        for c in (
            _config(
                "sysauto_script",
                "name, script, run_as, run_type, active",
                CIRCLE_OF_TRUST,
                CODE_SIGNING,
            ),
            _config("sys_script_include", "name, api_name, script, active", WILDCARD, CODE_SIGNING),
            _config(
                "sys_script",
                "name, collection, when, condition, script, active",
                WILDCARD,
                CODE_SIGNING,
            ),
            _config("mid_script_include", "name, script, active", CODE_SIGNING),
            _config("sys_data_source", "name, type, connection_url, sql_statement", CODE_SIGNING),
            _config(
                "sys_rest_message",
                "name, endpoint, http_method, headers, request_body",
                CODE_SIGNING,
            ),
            _config("sys_ui_action", "name, table, condition, script, action_name", CODE_SIGNING),
            _config("sys_certificate", "name, module, pem", CIRCLE_OF_TRUST),
            _config(
                "cot_policy_statement",
                "instance, state, sequence, issued_at, expires_at",
                CIRCLE_OF_TRUST,
            ),
        )
    }
)
"""The built-in configurations of DESIGN §4, by table name."""

REVOCATION_CONFIG = _config(
    "cot_revocation_request", "fingerprint, issued_at, reason", CIRCLE_OF_TRUST
)
"""The Circle of Trust's own configuration for its revocation requests: not one of DESIGN
§4's table, never stored with the others and never changed by an administrator. The
signing and checking code of the circle adds it (:func:`with_subsystem`)."""


def with_subsystem(configs: Mapping[str, SignatureConfig]) -> dict[str, SignatureConfig]:
    """*configs* and the Circle of Trust's own configurations, which take precedence."""
    return {**configs, REVOCATION_CONFIG.table: REVOCATION_CONFIG}


def check_purpose(config: SignatureConfig, purpose: str) -> None:
    """Refuse a *purpose* that signatures of ``config.table`` may not carry.

    Raises :class:`PolicyError` for the wildcard outside :data:`WILDCARD_TABLES` and
    :class:`UsageError` for a purpose the configuration does not list.
    """
    if purpose == WILDCARD and config.table not in WILDCARD_TABLES:
        raise PolicyError(
            "the wildcard purpose '*' is reserved for sys_script_include and sys_script; "
            f"table {config.table} cannot use it"
        )
    if purpose not in config.purposes:
        allowed = ", ".join(repr(p) for p in config.purposes)
        raise UsageError(
            f"purpose {purpose[:100]!r} is not configured for table {config.table}: "
            f"use one of {allowed}"
        )
