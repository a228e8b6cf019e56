"""Instance homes: ``config.toml``, the database, the master key, the admin token.

Layout of a home ``H``::

    H/config.toml      instance name, role, database URL
    H/trustcircle.db   SQLite database (WAL) unless --db names another
    H/master.key       32 random bytes (0600): seals private keys at rest
    H/admin.token      the bootstrap admin's API token (0600), written once
    H/logs/            logs of servers and jobs
"""

from __future__ import annotations

import os
import re
import tomllib
from enum import Enum
from pathlib import Path

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .._fs import write_atomic, write_secret
from ..errors import BadInputError, NotFoundError, UsageError

CONFIG = "config.toml"
MASTER_KEY = "master.key"
ADMIN_TOKEN = "admin.token"  # noqa: S105 - a file name
DB_FILE = "trustcircle.db"
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


class InstanceRole(str, Enum):
    """``trusted`` signs and never enforces; ``protected`` enforces and never signs code."""

    TRUSTED = "trusted"
    PROTECTED = "protected"


class InstanceConfig(BaseModel):
    """The ``[instance]`` and ``[database]`` tables of ``config.toml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=_NAME.pattern)
    role: InstanceRole
    created_on: str
    database_url: str


def _db_url(home: Path, db: str | None) -> str:
    return db if db else f"sqlite:///{(home / DB_FILE).resolve()}"


def write_config(home: Path, config: InstanceConfig) -> None:
    doc = {
        "instance": {
            "name": config.name,
            "role": config.role.value,
            "created_on": config.created_on,
        },
        "database": {"url": config.database_url},
    }
    write_atomic(home / CONFIG, tomli_w.dumps(doc).encode("utf-8"), mode=0o600)


def new_home(home: Path, role: str, name: str, db: str | None, now: str) -> InstanceConfig:
    """Validate the arguments of ``init`` and create the folder; refuse to overwrite a home."""
    if not _NAME.fullmatch(name):
        raise UsageError(
            f"instance name {name[:70]!r} is not allowed: use lowercase letters, digits, '-' or '_'"
        )
    try:
        instance_role = InstanceRole(role)
    except ValueError as exc:
        raise UsageError(f"unknown instance role {role!r}: use trusted or protected") from exc
    if (home / CONFIG).exists():
        raise UsageError(f"{home} is already an instance home: choose an empty folder")
    if home.exists() and any(p.name != "logs" for p in home.iterdir()):
        raise UsageError(f"{home} exists and is not empty: choose an empty or new folder")
    home.mkdir(parents=True, exist_ok=True)
    os.chmod(home, 0o700)
    (home / "logs").mkdir(exist_ok=True)
    return InstanceConfig(
        name=name, role=instance_role, created_on=now, database_url=_db_url(home, db)
    )


def load_config(home: Path) -> InstanceConfig:
    path = home / CONFIG
    try:
        raw = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError as exc:
        raise NotFoundError(
            f"{home} is not an instance home (no {CONFIG}): create one with `trustcircle init`"
        ) from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BadInputError(f"{path} is not valid TOML: {exc}") from exc
    try:
        inst, db = raw["instance"], raw["database"]
        return InstanceConfig(
            name=inst["name"],
            role=inst["role"],
            created_on=inst["created_on"],
            database_url=db["url"],
        )
    except (KeyError, TypeError, ValidationError) as exc:
        raise BadInputError(f"{path} is missing or has a bad setting: {exc}") from exc


def save_admin_token(home: Path, token: str) -> Path:
    path = home / ADMIN_TOKEN
    write_secret(path, (token + "\n").encode("ascii"))
    return path
