"""The MID server's configuration: ``mid.yaml`` and its ``boot-config.yaml`` (ECC firewall).

Both are read with ``yaml.safe_load`` from bounded files. Every refusal is one line naming
the file and the key. Relative paths in ``mid.yaml`` are relative to the folder of
``mid.yaml`` itself.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from trustcircle._fs import read_limited
from trustcircle._types import fingerprint
from trustcircle.crypto import load_pem_certificates, validate_anchor
from trustcircle.errors import BadInputError, NotAuthenticatedError, RefusedError, UsageError

from .firewall import Firewall, FirewallMode, FirewallRule

MAX_CONFIG_BYTES = 256 * 1024
MAX_TOKEN_BYTES = 4096
MAX_ANCHORS = 32
MAX_RULES = 256

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,79}")


class MidConfig(BaseModel):
    """``mid.yaml``: where the instance is, who this MID is, what it trusts, where it writes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    instance_url: str = Field(max_length=2000)
    name: str
    token_file: Path
    anchors: tuple[Path, ...] = Field(min_length=1, max_length=MAX_ANCHORS)
    notarizers: tuple[str, ...] = Field(min_length=1, max_length=MAX_ANCHORS)
    """SHA-256 fingerprints of the protected instance's runtime (``cm_runtime``) certificates."""
    work_dir: Path
    log_dir: Path
    boot_config: Path
    jdbc: dict[str, str] = Field(default_factory=dict, max_length=256)
    instance_name: str = Field(min_length=1, max_length=100)
    """The protected instance's name, pinned: never learned from the instance itself."""
    poll_wait: float = Field(default=25.0, ge=0, le=30)
    max_batch: int = Field(default=20, ge=1, le=500)
    exec_timeout: float = Field(default=60.0, gt=0, le=3600)
    workers: int = Field(default=4, ge=1, le=64)

    @field_validator("instance_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value):
            raise ValueError("must be an http:// or https:// URL such as http://127.0.0.1:8080")
        return value.rstrip("/")

    @field_validator("notarizers")
    @classmethod
    def _notarizers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        try:
            return tuple(fingerprint(v.strip().lower()) for v in value)
        except UsageError as exc:
            raise ValueError(
                "each must be a certificate's SHA-256 fingerprint (64 hex digits): the "
                "protected instance's cm_runtime certificate, from `trustcircle kmf certs --json`"
            ) from exc

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError("must be 1-80 letters, digits, '.', '_' or '-', starting alphanumeric")
        return value

    @field_validator("jdbc")
    @classmethod
    def _jdbc(cls, value: dict[str, str]) -> dict[str, str]:
        for key, url in value.items():
            if not key or len(key) > 100 or not url or len(url) > 2000:
                raise ValueError("each entry must map a name (1-100 chars) to a SQLAlchemy URL")
        return value

    @property
    def agent(self) -> str:
        """The ECC agent name of this MID: ``mid.server.<name>``."""
        return f"mid.server.{self.name}"

    @property
    def log_file(self) -> Path:
        return self.log_dir / "mid.log"


def load_mid_config(path: Path) -> MidConfig:
    """Read and check ``mid.yaml``; paths in it are made absolute against its folder."""
    path = Path(path)
    data = _load_yaml(path, "MID configuration")
    if not isinstance(data, dict):
        raise BadInputError(f"MID configuration {str(path)!r} must be a YAML mapping of keys")
    base = path.resolve().parent
    try:
        config = MidConfig.model_validate(data)
    except ValidationError as exc:
        raise _validation_error(exc, str(path)) from exc

    def rel(p: Path) -> Path:
        p = p.expanduser()
        return p if p.is_absolute() else base / p

    return config.model_copy(
        update={
            "token_file": rel(config.token_file),
            "anchors": tuple(rel(a) for a in config.anchors),
            "work_dir": rel(config.work_dir),
            "log_dir": rel(config.log_dir),
            "boot_config": rel(config.boot_config),
        }
    )


def read_token(config: MidConfig) -> str:
    """The API token from ``token_file`` (a user with role mid_server)."""
    try:
        raw = read_limited(config.token_file, MAX_TOKEN_BYTES, "MID token_file")
    except BadInputError as exc:
        raise BadInputError(f"{exc.message} (key token_file)") from exc
    token = raw.decode("ascii", "replace").strip()
    if not token or any(c.isspace() for c in token):
        raise NotAuthenticatedError(
            f"MID token_file {str(config.token_file)!r} holds no token: write the token of a "
            "user made with `user add NAME --roles mid_server` into it"
        )
    return token


def load_anchors(config: MidConfig, now: _dt.datetime) -> tuple[x509.Certificate, ...]:
    """The pinned trust anchors (CA certificates) from the ``anchors`` PEM files."""
    anchors: list[x509.Certificate] = []
    for index, anchor_path in enumerate(config.anchors):
        what = f"MID anchors[{index}] {str(anchor_path)!r}"
        try:
            data = read_limited(anchor_path, MAX_CONFIG_BYTES, f"MID anchors[{index}]")
            certs = load_pem_certificates(data, what)
            for cert in certs:
                validate_anchor(cert, now)
        except BadInputError as exc:
            raise BadInputError(f"{exc.message} (key anchors)") from exc
        except RefusedError as exc:  # not a CA fit for code signing, or outside its validity
            raise BadInputError(f"{what} cannot be a trust anchor: {exc.message}") from exc
        anchors.extend(certs)
    return tuple(anchors)


class BootConfig(BaseModel):
    """The parts of ``boot-config.yaml`` the MID uses: the ECC firewall."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    mode: FirewallMode = FirewallMode.ENFORCING
    rules: tuple[FirewallRule, ...] = ()

    def firewall(self) -> Firewall:
        return Firewall(self.rules, self.mode)


def load_boot_config(path: Path) -> BootConfig:
    """Read ``boot-config.yaml``: ``security.eccFirewall.{mode, rules}``.

    An absent section means enforcing with no rules; an unknown tag, action, mode or key
    is a :class:`UsageError` naming it (the MID refuses to start), and so is a section
    spelt almost right (``Security``, ``ecc_firewall``): its rules would silently not apply.
    """
    path = Path(path)
    data = _load_yaml(path, "boot configuration")
    where = f"boot configuration {str(path)!r}"
    if data is None:
        return BootConfig()
    if not isinstance(data, dict):
        raise BadInputError(f"{where} must be a YAML mapping")
    _near_miss(where, data, "security", "")
    security = data.get("security")
    if security is None:
        return BootConfig()
    if not isinstance(security, dict):
        raise UsageError(f"{where}: key security must be a mapping")
    _near_miss(where, security, "eccFirewall", "security.")
    firewall = security.get("eccFirewall")
    if firewall is None:
        return BootConfig()
    if not isinstance(firewall, dict):
        raise UsageError(f"{where}: key security.eccFirewall must be a mapping")
    unknown = set(firewall) - {"mode", "rules"}
    if unknown:
        raise UsageError(
            f"{where}: unknown key security.eccFirewall.{sorted(map(str, unknown))[0]}: "
            "only mode and rules are allowed"
        )
    mode_text = str(firewall.get("mode", "enforcing")).strip().lower()
    try:
        mode = FirewallMode(mode_text)
    except ValueError as exc:
        raise UsageError(
            f"{where}: security.eccFirewall.mode {mode_text[:40]!r} is unknown: "
            "use enforcing or audit"
        ) from exc
    raw_rules = firewall.get("rules") or []
    if not isinstance(raw_rules, list):
        raise UsageError(f"{where}: security.eccFirewall.rules must be a list of rules")
    if len(raw_rules) > MAX_RULES:
        raise UsageError(f"{where}: more than {MAX_RULES} ECC firewall rules")
    rules = tuple(_rule(where, index, raw) for index, raw in enumerate(raw_rules))
    return BootConfig(mode=mode, rules=rules)


def _near_miss(where: str, mapping: dict[object, object], key: str, prefix: str) -> None:
    """Refuse a key of *mapping* that is *key* but for case, ``_`` or ``-``."""
    wanted = key.lower()
    for other in mapping:
        if other != key and str(other).lower().replace("_", "").replace("-", "") == wanted:
            raise UsageError(
                f"{where}: key {prefix}{str(other)[:40]} is not {prefix}{key}: spell it "
                "exactly, or its rules would not apply"
            )


def _rule(where: str, index: int, raw: object) -> FirewallRule:
    key = f"security.eccFirewall.rules[{index}]"
    if not isinstance(raw, dict):
        raise UsageError(f"{where}: {key} must be a mapping with tags and action")
    unknown = set(raw) - {"tags", "action"}
    if unknown:
        raise UsageError(f"{where}: {key} has unknown key {sorted(map(str, unknown))[0]!r}")
    tags = raw.get("tags")
    if isinstance(tags, str):
        tags = [tags]
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise UsageError(f"{where}: {key}.tags must be a list of tag names")
    if "action" not in raw:
        raise UsageError(f"{where}: {key} has no action: use accept or reject")
    try:
        return FirewallRule.of(tags, str(raw["action"]))
    except UsageError as exc:
        raise UsageError(f"{exc.message} ({key})") from exc


def _load_yaml(path: Path, what: str) -> Any:
    raw = read_limited(path, MAX_CONFIG_BYTES, what)
    try:
        return yaml.safe_load(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise BadInputError(f"{what} {str(path)!r} is not UTF-8 text") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise BadInputError(f"{what} {str(path)!r} is not valid YAML{at}: fix the syntax") from exc


def _validation_error(exc: ValidationError, where: str) -> BadInputError:
    first = exc.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "<top>"
    kind = first["type"]
    if kind == "missing":
        return BadInputError(f"MID configuration {where!r}: key {key} is missing: add it")
    if kind == "extra_forbidden":
        return BadInputError(
            f"MID configuration {where!r}: unknown key {key}: check its spelling "
            "(allowed: " + ", ".join(MidConfig.model_fields) + ")"
        )
    message = str(first["msg"]).removeprefix("Value error, ")
    return BadInputError(f"MID configuration {where!r}: key {key}: {message}")


def jdbc_url(config: Mapping[str, str], name: str | None) -> str:
    """The SQLAlchemy URL a data source's ``connection_url`` names, or :class:`UsageError`."""
    if name is None or name not in config:
        raise UsageError(
            f"no JDBC connection named {str(name)[:80]!r} in the MID configuration: "
            "add it to the jdbc map of mid.yaml"
        )
    return config[name]
