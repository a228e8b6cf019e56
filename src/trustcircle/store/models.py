"""SQLAlchemy 2 models of every table trustcircle keeps.

Field values of records are strings (or NULL) exactly as the update-set XML
carries them (DESIGN §4), so the signed payload of a record is a function of the
stored row alone. Timestamps are stored as RFC 3339 ``Z`` strings for the same
reason: what is signed, stored and exported is one spelling.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SYS_ID = String(32)
FINGERPRINT = String(64)
TS = String(20)
NAME = String(100)


class Base(DeclarativeBase):
    """Declarative base of every trustcircle table."""


def fields_json(fields: Mapping[str, str | None]) -> str:
    """A record's fields as ``sys_record.fields`` holds them: a JSON object, keys sorted,
    text as is (not ASCII-escaped)."""
    return json.dumps({k: fields[k] for k in sorted(fields)}, ensure_ascii=False)


class SysRecord(Base):
    """A signable or ordinary record of any table (scripts, jobs, data sources...)."""

    __tablename__ = "sys_record"

    sys_id: Mapped[str] = mapped_column(SYS_ID, primary_key=True)
    table_name: Mapped[str] = mapped_column(NAME, index=True)
    fields: Mapped[str] = mapped_column(Text)  # fields_json(): field -> str | null
    created_on: Mapped[str] = mapped_column(TS)
    updated_on: Mapped[str] = mapped_column(TS)
    created_by: Mapped[str] = mapped_column(NAME)
    updated_by: Mapped[str] = mapped_column(NAME)
    mod_count: Mapped[int] = mapped_column(Integer, default=0)


class Role(Base):
    """A role a user can hold (DESIGN §8)."""

    __tablename__ = "sys_user_role"

    name: Mapped[str] = mapped_column(NAME, primary_key=True)
    description: Mapped[str] = mapped_column(Text, default="")
    elevated: Mapped[bool] = mapped_column(Boolean, default=False)


class User(Base):
    """An operator, a MID server account or the bootstrap admin."""

    __tablename__ = "sys_user"

    sys_id: Mapped[str] = mapped_column(SYS_ID, primary_key=True)
    name: Mapped[str] = mapped_column(NAME, unique=True)
    password_hash: Mapped[str | None] = mapped_column(Text, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_on: Mapped[str] = mapped_column(TS)


class UserRole(Base):
    """User ↔ role."""

    __tablename__ = "sys_user_has_role"

    user_id: Mapped[str] = mapped_column(
        SYS_ID, ForeignKey("sys_user.sys_id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(NAME, ForeignKey("sys_user_role.name"), primary_key=True)


class ApiToken(Base):
    """An API token, stored only as the SHA-256 of its value."""

    __tablename__ = "sys_api_token"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        SYS_ID, ForeignKey("sys_user.sys_id", ondelete="CASCADE"), index=True
    )
    label: Mapped[str] = mapped_column(NAME, default="")
    created_on: Mapped[str] = mapped_column(TS)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class SystemProperty(Base):
    """A system property (``sys_properties``)."""

    __tablename__ = "sys_properties"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    type: Mapped[str] = mapped_column(String(20), default="string")
    description: Mapped[str] = mapped_column(Text, default="")
    updated_on: Mapped[str] = mapped_column(TS)
    updated_by: Mapped[str] = mapped_column(NAME)


class Certificate(Base):
    """An X.509 certificate known to the instance (``sys_certificate``, DESIGN §4)."""

    __tablename__ = "sys_certificate"

    sys_id: Mapped[str] = mapped_column(SYS_ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    module: Mapped[str] = mapped_column(NAME)
    pem: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(FINGERPRINT, unique=True)
    subject: Mapped[str] = mapped_column(Text)
    issuer: Mapped[str] = mapped_column(Text)
    not_before: Mapped[str] = mapped_column(TS)
    not_after: Mapped[str] = mapped_column(TS)


class TrustAnchor(Base):
    """A CA certificate of the instance's trust store."""

    __tablename__ = "kmf_trust_anchor"

    fingerprint: Mapped[str] = mapped_column(FINGERPRINT, primary_key=True)
    pem: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    not_after: Mapped[str] = mapped_column(TS)
    added_on: Mapped[str] = mapped_column(TS)
    added_by: Mapped[str] = mapped_column(NAME)


class CryptoModule(Base):
    """A crypto module: ``cm_code_signing``, ``cm_code_attest`` or ``cm_runtime``."""

    __tablename__ = "sn_kmf_crypto_module"

    name: Mapped[str] = mapped_column(NAME, primary_key=True)
    description: Mapped[str] = mapped_column(Text, default="")


class CryptoKey(Base):
    """A private key held by a module, sealed with the instance master key."""

    __tablename__ = "sn_kmf_crypto_key"

    sys_id: Mapped[str] = mapped_column(SYS_ID, primary_key=True)
    module: Mapped[str] = mapped_column(NAME, ForeignKey("sn_kmf_crypto_module.name"), index=True)
    algorithm: Mapped[str] = mapped_column(String(40))
    sealed_key: Mapped[bytes] = mapped_column(LargeBinary)
    certificate: Mapped[str] = mapped_column(FINGERPRINT)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_on: Mapped[str] = mapped_column(TS)
    created_by: Mapped[str] = mapped_column(NAME)


class SignatureConfigRow(Base):
    """A signature configuration (``sn_kmf_signature_config``): the signed fields of a table."""

    __tablename__ = "sn_kmf_signature_config"
    __table_args__ = (UniqueConstraint("table_name", "purpose"),)

    sys_id: Mapped[str] = mapped_column(SYS_ID, primary_key=True)
    table_name: Mapped[str] = mapped_column(NAME)
    purpose: Mapped[str] = mapped_column(NAME)
    fields: Mapped[str] = mapped_column(Text)  # comma-separated, sorted
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)


class RecordSignatureRow(Base):
    """A record signature (``sn_kmf_record_signature``, DESIGN §4)."""

    __tablename__ = "sn_kmf_record_signature"
    __table_args__ = (Index("ix_signature_document", "table_name", "document_id"),)

    sys_id: Mapped[str] = mapped_column(SYS_ID, primary_key=True)
    table_name: Mapped[str] = mapped_column(NAME)
    document_id: Mapped[str] = mapped_column(SYS_ID)
    purpose: Mapped[str] = mapped_column(NAME, index=True)
    algorithm: Mapped[str] = mapped_column(String(40))
    signature: Mapped[str] = mapped_column(Text)
    certificate: Mapped[str] = mapped_column(FINGERPRINT, index=True)
    signed_fields: Mapped[str] = mapped_column(Text)
    signed_at: Mapped[str] = mapped_column(TS)
    expires_at: Mapped[str] = mapped_column(TS, default="")


class AuditEntry(Base):
    """One entry of the append-only, hash-chained audit log."""

    __tablename__ = "sys_audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(TS)
    actor: Mapped[str] = mapped_column(NAME)
    action: Mapped[str] = mapped_column(NAME, index=True)
    target: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str] = mapped_column(Text)  # canonical JSON
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditHead(Base):
    """The single row naming the newest audit entry; locked to serialise appends."""

    __tablename__ = "sys_audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


# --- update sets (DESIGN §5) -------------------------------------------------------------


class UpdateSet(Base):
    """A local update set: the changes one user captured."""

    __tablename__ = "sys_update_set"

    sys_id: Mapped[str] = mapped_column(SYS_ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(20), default="in progress")
    parent: Mapped[str] = mapped_column(String(32), default="")
    created_on: Mapped[str] = mapped_column(TS)
    created_by: Mapped[str] = mapped_column(NAME)


class UpdateXml(Base):
    """One captured change of a local update set (the newest per target wins)."""

    __tablename__ = "sys_update_xml"
    __table_args__ = (UniqueConstraint("update_set", "target_sys_id"),)

    sys_id: Mapped[str] = mapped_column(SYS_ID, primary_key=True)
    update_set: Mapped[str] = mapped_column(
        SYS_ID, ForeignKey("sys_update_set.sys_id", ondelete="CASCADE"), index=True
    )
    table_name: Mapped[str] = mapped_column(NAME)
    target_sys_id: Mapped[str] = mapped_column(SYS_ID)
    action: Mapped[str] = mapped_column(String(20))
    payload: Mapped[str] = mapped_column(Text)
    created_on: Mapped[str] = mapped_column(TS)
    created_by: Mapped[str] = mapped_column(NAME)


class CurrentUpdateSet(Base):
    """Which local update set captures a user's changes."""

    __tablename__ = "sys_user_current_update_set"

    user_id: Mapped[str] = mapped_column(
        SYS_ID, ForeignKey("sys_user.sys_id", ondelete="CASCADE"), primary_key=True
    )
    update_set: Mapped[str] = mapped_column(
        SYS_ID, ForeignKey("sys_update_set.sys_id", ondelete="CASCADE")
    )


class RemoteUpdateSet(Base):
    """A retrieved update set, imported from XML (states: loaded, previewed, committed)."""

    __tablename__ = "sys_remote_update_set"

    sys_id: Mapped[str] = mapped_column(SYS_ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    origin_instance: Mapped[str] = mapped_column(NAME)
    parent: Mapped[str] = mapped_column(String(32), default="")
    created_on: Mapped[str] = mapped_column(TS)
    state: Mapped[str] = mapped_column(String(20), default="loaded")
    imported_on: Mapped[str] = mapped_column(TS)
    imported_by: Mapped[str] = mapped_column(NAME)
    file_sha256: Mapped[str] = mapped_column(String(64))
    entry_count: Mapped[int] = mapped_column(Integer, default=0)
    sig_algorithm: Mapped[str | None] = mapped_column(String(40), nullable=True)
    sig_certificate: Mapped[str | None] = mapped_column(FINGERPRINT, nullable=True)
    sig_signed_at: Mapped[str | None] = mapped_column(TS, nullable=True)
    sig_expires_at: Mapped[str | None] = mapped_column(TS, nullable=True)
    sig_signature: Mapped[str | None] = mapped_column(Text, nullable=True)
    accepted_remote: Mapped[bool] = mapped_column(Boolean, default=False)
    previewed_on: Mapped[str | None] = mapped_column(TS, nullable=True)
    committed_on: Mapped[str | None] = mapped_column(TS, nullable=True)
    committed_by: Mapped[str | None] = mapped_column(NAME, nullable=True)
    receipts: Mapped[str | None] = mapped_column(Text, nullable=True)
    """The last preview's receipts of the record signatures it verified (one per line)."""
    preview_seal: Mapped[str | None] = mapped_column(Text, nullable=True)
    """What the last preview found, sealed for commit (``updatesets._seal``)."""


class RemoteUpdateXml(Base):
    """One entry of a retrieved update set, as imported (not yet applied)."""

    __tablename__ = "sys_remote_update_xml"
    __table_args__ = (UniqueConstraint("remote_update_set", "target_sys_id"),)

    remote_update_set: Mapped[str] = mapped_column(
        SYS_ID, ForeignKey("sys_remote_update_set.sys_id", ondelete="CASCADE"), primary_key=True
    )
    sys_id: Mapped[str] = mapped_column(SYS_ID, primary_key=True)
    table_name: Mapped[str] = mapped_column(NAME)
    target_sys_id: Mapped[str] = mapped_column(SYS_ID)
    action: Mapped[str] = mapped_column(String(20))
    payload: Mapped[str | None] = mapped_column(Text, nullable=True)
    """The payload as carried, kept only when it could not be parsed (see ``problem``)."""
    payload_sha512: Mapped[str] = mapped_column(String(128))
    fields: Mapped[str | None] = mapped_column(Text, nullable=True)
    """The record's fields parsed once at import, as JSON in ``sys_record.fields``'s form."""
    problem: Mapped[str | None] = mapped_column(Text, nullable=True)
    """Why the payload could not be parsed (then ``fields`` is null)."""


class PreviewProblem(Base):
    """A problem preview found in a retrieved update set's entry."""

    __tablename__ = "sys_update_preview_problem"

    sys_id: Mapped[str] = mapped_column(SYS_ID, primary_key=True)
    remote_update_set: Mapped[str] = mapped_column(
        SYS_ID, ForeignKey("sys_remote_update_set.sys_id", ondelete="CASCADE"), index=True
    )
    entry: Mapped[str] = mapped_column(String(32), default="")  # "" = the whole set
    type: Mapped[str] = mapped_column(String(40))
    description: Mapped[str] = mapped_column(Text)
    blocking: Mapped[bool] = mapped_column(Boolean, default=True)  # cannot be accepted
    status: Mapped[str] = mapped_column(String(20), default="open")  # open | accepted


# --- Circle of Trust ----------------------------------------------------------------------


class TrustedFriend(Base):
    """A certificate of the Circle of Trust (the trusted friends list)."""

    __tablename__ = "cot_trusted_friend"

    fingerprint: Mapped[str] = mapped_column(FINGERPRINT, primary_key=True)
    certificate: Mapped[str] = mapped_column(SYS_ID)
    name: Mapped[str] = mapped_column(String(200))
    module: Mapped[str] = mapped_column(NAME)
    added_on: Mapped[str] = mapped_column(TS)
    added_by: Mapped[str] = mapped_column(NAME)
    via: Mapped[str] = mapped_column(String(200))
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class JobExecution(Base):
    """One execution of a signed job; a signature executes at most once (replay)."""

    __tablename__ = "cot_job_execution"

    sys_id: Mapped[str] = mapped_column(SYS_ID, primary_key=True)
    job: Mapped[str] = mapped_column(SYS_ID, index=True)
    signature: Mapped[str] = mapped_column(String(32), unique=True)
    executed_on: Mapped[str] = mapped_column(TS)
    executed_by: Mapped[str] = mapped_column(NAME)
    outcome: Mapped[str] = mapped_column(String(20))
    output: Mapped[str] = mapped_column(Text, default="")


class PolicyStatementRow(Base):
    """A verified Code Signing policy statement (DESIGN §6); the highest sequence is current."""

    __tablename__ = "cot_policy_statement_log"

    sequence: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    record: Mapped[str] = mapped_column(SYS_ID)
    signature: Mapped[str] = mapped_column(SYS_ID)
    instance: Mapped[str] = mapped_column(NAME)
    state: Mapped[str] = mapped_column(String(10))
    issued_at: Mapped[str] = mapped_column(TS)
    expires_at: Mapped[str] = mapped_column(TS)
    applied_on: Mapped[str] = mapped_column(TS)
    applied_by: Mapped[str] = mapped_column(NAME)


# --- ECC queue, MID servers, Code Signing log (issue 4; owned by ecc/) ---------------------


class EccQueue(Base):
    """One ECC queue record (DESIGN §7): an ``output`` message for a MID, or its ``input``
    answer. Notarization columns are NULL unless the tracker notarized the message."""

    __tablename__ = "ecc_queue"
    __table_args__ = (
        Index("ix_ecc_queue_poll", "agent", "queue", "state", "created_on"),
        Index("ix_ecc_queue_response_to", "response_to"),
        Index("ix_ecc_queue_claims", "queue", "state", "claimed_on"),
    )

    sys_id: Mapped[str] = mapped_column(SYS_ID, primary_key=True)
    agent: Mapped[str] = mapped_column(String(120))
    topic: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(Text, default="")
    payload: Mapped[str] = mapped_column(Text, default="")
    queue: Mapped[str] = mapped_column(String(10))
    state: Mapped[str] = mapped_column(String(20))
    response_to: Mapped[str] = mapped_column(String(32), default="")
    error_string: Mapped[str] = mapped_column(Text, default="")
    created_on: Mapped[str] = mapped_column(TS)
    created_by: Mapped[str] = mapped_column(NAME)
    processed_on: Mapped[str] = mapped_column(TS, default="")
    claimed_by: Mapped[str] = mapped_column(NAME, default="")
    claimed_on: Mapped[str] = mapped_column(TS, default="", server_default="")
    claim_expired: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    notarization_payload: Mapped[str | None] = mapped_column(Text, nullable=True)
    notarization_algorithm: Mapped[str | None] = mapped_column(String(40), nullable=True)
    notarization_certificate: Mapped[str | None] = mapped_column(FINGERPRINT, nullable=True)
    notarization_signature: Mapped[str | None] = mapped_column(Text, nullable=True)


class MidServer(Base):
    """A registered MID server; only a validated one gets work."""

    __tablename__ = "mid_server"

    name: Mapped[str] = mapped_column(NAME, primary_key=True)
    validated: Mapped[bool] = mapped_column(Boolean, default=False)
    last_check_in: Mapped[str] = mapped_column(TS, default="")
    version: Mapped[str] = mapped_column(String(40), default="")
    firewall_mode: Mapped[str] = mapped_column(String(20), default="")
    host: Mapped[str] = mapped_column(String(255), default="")
    stats: Mapped[str] = mapped_column(Text, default="{}")  # JSON object of the last heartbeat
    registered_by: Mapped[str] = mapped_column(NAME)
    registered_on: Mapped[str] = mapped_column(TS)
    validated_by: Mapped[str] = mapped_column(NAME, default="")
    validated_on: Mapped[str] = mapped_column(TS, default="")


class CodeSigningLogEntry(Base):
    """One Code Signing log entry: a tracker decision on the instance or a MID's report."""

    __tablename__ = "codesigning_log"

    sys_id: Mapped[str] = mapped_column(SYS_ID, primary_key=True)
    created_on: Mapped[str] = mapped_column(TS, index=True)
    level: Mapped[str] = mapped_column(String(10))
    source: Mapped[str] = mapped_column(String(120))  # "instance" | "mid.server.<name>"
    event: Mapped[str] = mapped_column(String(60), index=True)
    message: Mapped[str] = mapped_column(Text)
    ecc: Mapped[str] = mapped_column(String(32), default="")
    agent: Mapped[str] = mapped_column(String(120), default="")
    topic: Mapped[str] = mapped_column(String(100), default="")
    reported_at: Mapped[str] = mapped_column(TS, default="")  # the MID's own time, if any
    reported_by: Mapped[str] = mapped_column(NAME, default="")


# --- Web UI sessions (issue 5; owned by web/pages/) ----------------------------------------


class WebSession(Base):
    """A signed-in browser session. The cookie carries a random key; only its SHA-256 is
    stored. The CSRF token is per session and must come back with every form POST."""

    __tablename__ = "web_session"

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        SYS_ID, ForeignKey("sys_user.sys_id", ondelete="CASCADE"), index=True
    )
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_on: Mapped[str] = mapped_column(TS)
    last_seen: Mapped[str] = mapped_column(TS)
    expires_at: Mapped[str] = mapped_column(TS, index=True)
    flash: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of [level, text]
