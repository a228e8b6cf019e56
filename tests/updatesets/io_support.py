"""Helpers for the export / import tests: real homes, real CLI runs, the exported XML read back."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from lxml import etree
from sqlalchemy import insert

from tests.cli.conftest import Cli, init_home
from trustcircle._time import format_ts, system_clock
from trustcircle.crypto import algorithms
from trustcircle.platform.context import Instance
from trustcircle.store.models import UpdateXml
from trustcircle.updatesets import (
    ACTION_INSERT_OR_UPDATE,
    ManifestSignature,
    UpdateEntry,
    UpdateSetHeader,
    manifest_payload,
    record_to_payload,
)
from trustcircle.updatesets import local as local_sets

HEADER_FIELDS = ["sys_id", "name", "description", "origin_instance", "parent", "created_on"]
ENTRY_FIELDS = ["sys_id", "update_set", "table", "target_sys_id", "action", "payload"]
SIGNATURE_FIELDS = ["algorithm", "certificate", "signed_at", "expires_at", "signature"]


def ok(result: Any) -> Any:
    assert result.code == 0, result.err
    return result


def sets_json(cli: Cli, home: Path) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = ok(cli("updateset", "list", "--home", home, "--json")).json()
    return listed


def protected_home(cli: Cli, folder: Path, name: str = "prod") -> Path:
    return init_home(cli, folder, role="protected", name=name)


def new_set(cli: Cli, home: Path, name: str, description: str = "") -> str:
    created = ok(
        cli("updateset", "create", name, "--description", description, "--home", home, "--json")
    )
    set_id: str = created.json()["sys_id"]
    return set_id


def add_record(cli: Cli, home: Path, name: str, script: str) -> str:
    result = ok(
        cli(
            "record",
            "add",
            "--home",
            home,
            "--table",
            "sys_script_include",
            "--field",
            f"name={name}",
            "--field",
            f"api_name=global.{name}",
            "--field",
            f"script={script}",
            "--field",
            "active=true",
        )
    )
    record_id: str = result.out.strip()
    return record_id


def record_fields(cli: Cli, home: Path, table: str, record_id: str) -> dict[str, str | None]:
    shown = ok(cli("record", "show", "--table", table, "--id", record_id, "--home", home, "--json"))
    fields: dict[str, str | None] = shown.json()["fields"]
    return fields


def export(cli: Cli, home: Path, set_id: str, out: Path) -> dict[str, Any]:
    result = ok(cli("updateset", "export", set_id, "--out", out, "--home", home, "--json"))
    data: dict[str, Any] = result.json()
    return data


@dataclass(frozen=True)
class Exported:
    """An exported file read back: the root, its header, entries and signature."""

    root: etree._Element
    header: UpdateSetHeader
    entries: list[UpdateEntry]
    signature: ManifestSignature | None


def _texts(element: etree._Element) -> dict[str, str]:
    return {str(child.tag): child.text or "" for child in element}


def read_export(path: Path) -> Exported:
    root = etree.parse(
        str(path), etree.XMLParser(resolve_entities=False, no_network=True)
    ).getroot()
    header_el = root.find("sys_remote_update_set")
    assert header_el is not None
    header = UpdateSetHeader(**_texts(header_el))
    entries = [UpdateEntry(**_texts(el)) for el in root.findall("sys_update_xml")]
    sig_el = root.find("update_set_signature")
    signature = None if sig_el is None else ManifestSignature(**_texts(sig_el))
    return Exported(root, header, entries, signature)


def manifest_verifies(exported: Exported, cert: x509.Certificate) -> bool:
    """Does the file's manifest signature verify under *cert* over DESIGN §4's payload?"""
    sig = exported.signature
    assert sig is not None
    payload = manifest_payload(exported.header, exported.entries, sig.signed_at, sig.expires_at)
    key = cert.public_key()
    return algorithms.verify(
        algorithms.Algorithm(sig.algorithm),
        key,  # type: ignore[arg-type]
        base64.b64decode(sig.signature),
        payload,
    )


def sha512(text: str) -> str:
    return hashlib.sha512(text.encode("utf-8")).hexdigest()


def bulk_local_set(home: Path, name: str, count: int) -> str:
    """A complete local set of *count* tiny script entries, written in one transaction."""
    inst = Instance.open(home)
    try:
        now = format_ts(system_clock())
        with inst.db.transaction() as session:
            row = local_sets.create_set(session, name, "admin", now, state=local_sets.COMPLETE)
            rows = []
            for n in range(count):
                target = f"{n + 1:032x}"
                payload = record_to_payload(
                    "sys_script_include", target, {"name": f"S{n}", "script": f"x<{n}&y"}
                )
                rows.append(
                    {
                        "sys_id": hashlib.sha256(f"{name} entry {n}".encode()).hexdigest()[:32],
                        "update_set": row.sys_id,
                        "table_name": "sys_script_include",
                        "target_sys_id": target,
                        "action": ACTION_INSERT_OR_UPDATE,
                        "payload": payload,
                        "created_on": now,
                        "created_by": "admin",
                    }
                )
            session.execute(insert(UpdateXml), rows)
            return row.sys_id
    finally:
        inst.close()
