"""The tables records can live in, and the fields each allows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import PolicyError, UsageError


@dataclass(frozen=True)
class TableDef:
    """A record table: its label, its fields and which of them are required."""

    name: str
    label: str
    fields: tuple[str, ...]
    required: tuple[str, ...] = ("name",)
    managed_by: str | None = None  # set when only a subsystem may write it

    def check_fields(self, fields: Mapping[str, str | None]) -> None:
        unknown = sorted(set(fields) - set(self.fields))
        if unknown:
            raise UsageError(
                f"table {self.name} has no field(s) {', '.join(unknown)}: "
                f"its fields are {', '.join(self.fields)}"
            )


TABLES: Mapping[str, TableDef] = {
    t.name: t
    for t in (
        TableDef(
            "sysauto_script",
            "Scheduled Script Execution",
            (
                "name",
                "script",
                "run_as",
                "run_type",
                "run_period",
                "run_time",
                "active",
                "description",
                "system_job",
            ),
        ),
        TableDef(
            "sys_script_include",
            "Script Include",
            ("name", "api_name", "script", "active", "access", "description", "application"),
        ),
        TableDef(
            "sys_script",
            "Business Rule",
            (
                "name",
                "collection",
                "when",
                "condition",
                "script",
                "active",
                "order",
                "description",
                "application",
            ),
        ),
        TableDef(
            "mid_script_include",
            "MID Server Script Include",
            ("name", "script", "active", "description", "application"),
        ),
        TableDef(
            "sys_data_source",
            "Data Source",
            ("name", "type", "connection_url", "sql_statement", "description", "application"),
        ),
        TableDef(
            "sys_rest_message",
            "REST Message",
            (
                "name",
                "endpoint",
                "http_method",
                "headers",
                "request_body",
                "description",
                "application",
            ),
        ),
        TableDef(
            "sys_ui_action",
            "UI Action",
            ("name", "table", "condition", "script", "action_name", "description", "application"),
        ),
        TableDef(
            "cot_policy_statement",
            "Code Signing Policy Statement",
            ("instance", "state", "sequence", "issued_at", "expires_at"),
            required=("instance", "state", "sequence", "issued_at", "expires_at"),
            managed_by="Circle-of-Trust jobs",
        ),
        TableDef(
            "cot_revocation_request",
            "Circle-of-Trust Revocation Request",
            ("fingerprint", "reason", "issued_at"),
            required=("fingerprint", "reason", "issued_at"),
            managed_by="`cot revoke` and Circle-of-Trust update sets",
        ),
    )
}

SPECIAL_TABLES: Mapping[str, str] = {
    "sys_certificate": "certificates are added by `kmf import` and Circle-of-Trust update sets",
    "sn_kmf_record_signature": "signatures are made by `record sign`",
}


def table_def(name: str) -> TableDef:
    """The definition of table *name*, or a :class:`UsageError` listing the known ones."""
    try:
        return TABLES[name]
    except KeyError:
        if name in SPECIAL_TABLES:
            raise UsageError(
                f"table {name} is not written directly: {SPECIAL_TABLES[name]}"
            ) from None
        known = ", ".join(sorted(TABLES))
        raise UsageError(f"unknown table {name!r}: use one of {known}") from None


def writable_table(name: str) -> TableDef:
    """The definition of table *name* when people (the API, the CLI, scripts) may write
    it; a :class:`PolicyError` for a table only a subsystem writes (``managed_by``: policy
    statements, revocation requests). :mod:`.records` checks it on every write."""
    tdef = table_def(name)
    if tdef.managed_by is not None:
        raise PolicyError(
            f"{name} cannot be written directly: only {tdef.managed_by} do, so that a "
            "record stays what the trusted instance signed"
        )
    return tdef
