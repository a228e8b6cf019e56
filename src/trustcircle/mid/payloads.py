"""ECC messages and their payloads as the MID receives them (issue-4 contract). Pure.

Everything here parses untrusted JSON from the instance: each value is bounded and
checked for type, and every refusal is a :class:`BadInputError` whose message becomes
the reason of a denial. Parsing says nothing about trust: that is :mod:`.verify`.
"""

from __future__ import annotations

import json
import math
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509

from trustcircle._types import SysId
from trustcircle.crypto import load_pem_certificates
from trustcircle.errors import BadInputError, LimitExceededError
from trustcircle.signing import SignatureRecord

MAX_PAYLOAD_CHARS = 4 * 1024 * 1024
MAX_FIELD_CHARS = 1024 * 1024
MAX_FIELDS = 64
MAX_SIGNATURES = 64
MAX_CERTIFICATES = 16
MAX_ARGV = 256
MAX_LABEL_CHARS = 4000

SCRIPT_TOPICS: Mapping[str, str] = {
    "PythonScript": "mid_script_include",
    "JDBCProbe": "sys_data_source",
    "RESTProbe": "sys_rest_message",
}
"""Script-bearing topics → the table of the signed record they carry."""

_SYS_ID = re.compile(r"[0-9a-f]{32}")
_FIELD_NAME = re.compile(r"[a-z_][a-z0-9_]{0,79}")


@dataclass(frozen=True)
class Notarization:
    """The notarization an ECC message carries: claims until :mod:`.verify` checks them."""

    payload: Mapping[str, Any]
    algorithm: str
    certificate: str
    signature: str


@dataclass(frozen=True)
class EccMessage:
    """One output message claimed from the queue."""

    sys_id: SysId
    agent: str
    topic: str
    name: str | None
    source: str | None
    payload: str
    notarization: Notarization | None

    @classmethod
    def from_json(cls, data: object) -> EccMessage:
        """Parse one message of ``GET /api/ecc/poll``; :class:`BadInputError` when malformed."""
        if not isinstance(data, dict):
            raise BadInputError("ECC message is not a JSON object")
        sys_id = data.get("sys_id")
        if not isinstance(sys_id, str) or not _SYS_ID.fullmatch(sys_id):
            raise BadInputError("ECC message has no valid sys_id")
        payload = data.get("payload")
        if payload is None:
            payload = ""
        if not isinstance(payload, str):
            raise BadInputError("ECC message payload is not text")
        if len(payload) > MAX_PAYLOAD_CHARS:
            raise LimitExceededError(f"ECC message payload is over {MAX_PAYLOAD_CHARS} characters")
        return cls(
            sys_id=SysId(sys_id),
            payload=payload,
            notarization=_notarization(data.get("notarization")),
            agent=_label(data.get("agent"), "agent") or "",
            topic=_label(data.get("topic"), "topic") or "",
            name=_label(data.get("name"), "name"),  # null stays null: the notarization
            source=_label(data.get("source"), "source"),  # covers the value as sent
        )


def peek_sys_id(data: object) -> SysId | None:
    """The sys_id of a raw message, if it has a well-formed one (to report a malformed one)."""
    if isinstance(data, dict):
        value = data.get("sys_id")
        if isinstance(value, str) and _SYS_ID.fullmatch(value):
            return SysId(value)
    return None


def _label(value: object, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_LABEL_CHARS:
        raise BadInputError(f"ECC message field {name} is not text of at most {MAX_LABEL_CHARS}")
    return value


def _notarization(value: object) -> Notarization | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadInputError("notarization is not a JSON object")
    payload = value.get("payload")
    if not isinstance(payload, dict):
        raise BadInputError("notarization carries no payload object")
    parts = {k: value.get(k) for k in ("algorithm", "certificate", "signature")}
    for key, part in parts.items():
        if not isinstance(part, str) or not part or len(part) > 8192:
            raise BadInputError(f"notarization field {key} is missing or malformed")
    return Notarization(
        payload, str(parts["algorithm"]), str(parts["certificate"]), str(parts["signature"])
    )


@dataclass(frozen=True)
class ScriptPayload:
    """The payload of a script-bearing topic: a signed record, its signatures, certificates."""

    table: str
    sys_id: SysId
    fields: Mapping[str, str | None]
    signatures: tuple[SignatureRecord, ...]
    certificates: tuple[x509.Certificate, ...]
    parameters: Mapping[str, Any] = field(default_factory=dict)


def parse_script_payload(topic: str, payload: str) -> ScriptPayload:
    """Parse the JSON payload of a ``PythonScript``, ``JDBCProbe`` or ``RESTProbe`` message."""
    table = SCRIPT_TOPICS.get(topic)
    if table is None:
        raise BadInputError(f"topic {topic[:80]!r} does not carry a signed record")
    data = _json_object(payload, f"{topic} payload")
    record = data.get("record")
    if not isinstance(record, dict):
        raise BadInputError(f"{topic} payload has no record object")
    if record.get("table") != table:
        raise BadInputError(
            f"{topic} payload carries a record of table {str(record.get('table'))[:80]!r}, "
            f"not {table}"
        )
    rid = record.get("sys_id")
    if not isinstance(rid, str) or not _SYS_ID.fullmatch(rid):
        raise BadInputError(f"{topic} payload record has no valid sys_id")
    return ScriptPayload(
        table=table,
        sys_id=SysId(rid),
        fields=_fields(record.get("fields"), topic),
        signatures=_signatures(data.get("signatures"), topic),
        certificates=_certificates(data.get("certificates"), topic),
        parameters=_parameters(data.get("parameters"), topic),
    )


def _fields(value: object, topic: str) -> dict[str, str | None]:
    if not isinstance(value, dict):
        raise BadInputError(f"{topic} payload record has no fields object")
    if len(value) > MAX_FIELDS:
        raise LimitExceededError(f"{topic} payload record has more than {MAX_FIELDS} fields")
    fields: dict[str, str | None] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not _FIELD_NAME.fullmatch(key):
            raise BadInputError(f"{topic} payload record has a malformed field name")
        if item is not None and not isinstance(item, str):
            raise BadInputError(f"{topic} payload record field {key} is not text or null")
        if item is not None and len(item) > MAX_FIELD_CHARS:
            raise LimitExceededError(f"{topic} payload record field {key} is too long")
        fields[key] = item
    return fields


def _signatures(value: object, topic: str) -> tuple[SignatureRecord, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise BadInputError(f"{topic} payload signatures is not a list")
    if len(value) > MAX_SIGNATURES:
        raise LimitExceededError(f"{topic} payload carries more than {MAX_SIGNATURES} signatures")
    records = []
    for item in value:
        if not isinstance(item, dict):
            raise BadInputError(f"{topic} payload signature is not an object")
        if any(v is not None and not isinstance(v, str) for v in item.values()):
            raise BadInputError(f"{topic} payload signature has a field that is not text")
        records.append(SignatureRecord.from_fields(str(item.get("sys_id", "")), item))
    return tuple(records)


def _certificates(value: object, topic: str) -> tuple[x509.Certificate, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadInputError(f"{topic} payload certificates is not a list of PEM texts")
    if len(value) > MAX_CERTIFICATES:
        raise LimitExceededError(
            f"{topic} payload carries more than {MAX_CERTIFICATES} certificates"
        )
    certs: list[x509.Certificate] = []
    for pem in value:
        certs.extend(_load_pem(pem, topic))
    return tuple(certs[: MAX_CERTIFICATES * 2])


_PEM_CACHE: dict[str, tuple[x509.Certificate, ...]] = {}
_PEM_CACHE_SIZE = 256


def _load_pem(pem: str, topic: str) -> tuple[x509.Certificate, ...]:
    """Parse PEM text, remembering recent results (the same chain arrives with every message)."""
    cached = _PEM_CACHE.get(pem)
    if cached is not None:
        return cached
    certs = tuple(load_pem_certificates(pem.encode("utf-8", "replace"), f"{topic} certificate"))
    if len(_PEM_CACHE) >= _PEM_CACHE_SIZE:
        _PEM_CACHE.clear()
    _PEM_CACHE[pem] = certs
    return certs


def _parameters(value: object, topic: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadInputError(f"{topic} payload parameters is not an object")
    return dict(value)


@dataclass(frozen=True)
class CommandPayload:
    """A ``Command``: an argv run without a shell, or a shell line when ``shell`` is true."""

    argv: tuple[str, ...] | None
    command: str | None
    shell: bool
    timeout: float | None


def parse_command_payload(payload: str) -> CommandPayload:
    """``{"argv": [...]}``, ``{"command": "...", "shell": true}``, or a plain command line.

    A command line without ``"shell": true`` is split like a POSIX shell would split it
    (no expansion, no pipes) and run without a shell.
    """
    text = payload.strip()
    if not text.startswith("{"):
        return CommandPayload(_split(text), None, False, None)
    data = _json_object(text, "Command payload")
    shell = data.get("shell", False)
    if not isinstance(shell, bool):
        raise BadInputError("Command payload field shell must be true or false")
    timeout = data.get("timeout")
    if timeout is not None and (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise BadInputError("Command payload field timeout must be a positive number of seconds")
    seconds = None if timeout is None else float(timeout)
    argv = data.get("argv")
    command = data.get("command")
    if argv is not None:
        if shell or command is not None:
            raise BadInputError("Command payload gives argv together with command or shell")
        if (
            not isinstance(argv, list)
            or not argv
            or len(argv) > MAX_ARGV
            or not all(isinstance(a, str) and "\x00" not in a for a in argv)
        ):
            raise BadInputError(f"Command payload argv must be 1-{MAX_ARGV} strings")
        return CommandPayload(tuple(argv), None, False, seconds)
    if not isinstance(command, str) or not command.strip() or "\x00" in command:
        raise BadInputError("Command payload has neither argv nor a command line")
    if shell:
        return CommandPayload(None, command, True, seconds)
    return CommandPayload(_split(command), None, False, seconds)


def _split(text: str) -> tuple[str, ...]:
    try:
        argv = shlex.split(text)
    except ValueError as exc:
        raise BadInputError(f"Command line cannot be split: {exc}") from exc
    if not argv or len(argv) > MAX_ARGV or any("\x00" in a for a in argv):
        raise BadInputError(f"Command line must hold 1-{MAX_ARGV} words")
    return tuple(argv)


def parse_system_command(payload: str) -> str:
    """The name of a ``SystemCommand``: ``{"command": NAME}`` or the bare name."""
    text = payload.strip()
    if text.startswith("{"):
        value = _json_object(text, "SystemCommand payload").get("command")
        if not isinstance(value, str):
            raise BadInputError("SystemCommand payload has no command")
        return value
    return text


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise BadInputError(f"{what} is not valid JSON") from exc
    if not isinstance(data, dict):
        raise BadInputError(f"{what} is not a JSON object")
    return data
