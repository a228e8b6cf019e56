"""The MID server registry: registration, heartbeats, validation by an admin.

A MID name belongs to the account that first registered it: another ``mid_server``
account cannot take over its queue, its results or its log reports. Only a validated
MID gets work. A MID is ``active`` while its last check-in is under a minute old.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from .._time import parse_ts
from .._types import Timestamp
from ..errors import BadInputError, LimitExceededError, NotFoundError, PolicyError
from ..store.models import MidServer
from .queue import AGENT_PREFIX, check_mid_name

ACTIVE_WINDOW = dt.timedelta(seconds=60)
FIREWALL_MODES = ("enforcing", "audit")
MAX_STATS_BYTES = 64 * 1024
MAX_MIDS = 10_000


@dataclass(frozen=True)
class CheckIn:
    """What a MID says about itself when it registers or beats."""

    name: str
    version: str = ""
    firewall_mode: str = ""
    host: str = ""
    stats: Mapping[str, object] | None = None


def _checked(check_in: CheckIn) -> CheckIn:
    check_mid_name(check_in.name)
    if len(check_in.version) > 40 or len(check_in.host) > 255:
        raise BadInputError("MID version is at most 40 and host at most 255 characters")
    if check_in.firewall_mode and check_in.firewall_mode not in FIREWALL_MODES:
        raise BadInputError(
            f"firewall_mode {check_in.firewall_mode[:20]!r} is not enforcing or audit"
        )
    return check_in


def _stats_text(stats: Mapping[str, object] | None) -> str | None:
    if stats is None:
        return None
    try:
        text = json.dumps(dict(stats), sort_keys=True, default=str)
    except (TypeError, ValueError, RecursionError) as exc:
        raise BadInputError("MID stats must be a JSON object") from exc
    if len(text) > MAX_STATS_BYTES:
        raise LimitExceededError(f"MID stats are over {MAX_STATS_BYTES} bytes")
    return text


def register(session: Session, account: str, check_in: CheckIn, now: Timestamp) -> MidServer:
    """Register (or re-register) a MID under *account*; a new MID starts unvalidated."""
    check_in = _checked(check_in)
    row = session.get(MidServer, check_in.name)
    if row is None:
        row = MidServer(
            name=check_in.name,
            validated=False,
            registered_by=account,
            registered_on=now,
            validated_by="",
            validated_on="",
            stats="{}",
        )
        session.add(row)
    elif row.registered_by != account:
        raise PolicyError(
            f"MID name {check_in.name!r} is registered by another account: give this MID "
            "another name, or have an admin remove the old registration"
        )
    row.version = check_in.version
    row.firewall_mode = check_in.firewall_mode
    row.host = check_in.host
    row.last_check_in = now
    session.flush()
    return row


def own(session: Session, account: str, name: str) -> MidServer:
    """MID *name*, which *account* registered; refused for anyone else."""
    row = session.get(MidServer, check_mid_name(name))
    if row is None:
        raise NotFoundError(f"MID {name!r} is not registered: start it (it registers itself) first")
    if row.registered_by != account:
        raise PolicyError(f"MID {name!r} belongs to another account: use that MID's own token")
    return row


def may_report_for(session: Session, account: str, agent: str) -> None:
    """Refuse unless *account* registered the MID of *agent* (``mid.server.<name>``)."""
    own(session, account, agent.removeprefix(AGENT_PREFIX))


def require_validated(session: Session, account: str, name: str) -> MidServer:
    row = own(session, account, name)
    if not row.validated:
        raise PolicyError(
            f"MID {name!r} is not validated: an admin runs `trustcircle mid validate {name}`"
        )
    return row


def heartbeat(session: Session, account: str, check_in: CheckIn, now: Timestamp) -> MidServer:
    check_in = _checked(check_in)
    row = own(session, account, check_in.name)
    if check_in.version:
        row.version = check_in.version
    if check_in.firewall_mode:
        row.firewall_mode = check_in.firewall_mode
    stats = _stats_text(check_in.stats)
    if stats is not None:
        row.stats = stats
    row.last_check_in = now
    return row


def get(session: Session, name: str) -> MidServer:
    row = session.get(MidServer, check_mid_name(name))
    if row is None:
        raise NotFoundError(f"no MID named {name!r}: list them with `trustcircle mid list`")
    return row


def set_validated(
    session: Session, name: str, validated: bool, account: str, now: Timestamp
) -> MidServer:
    """Validate (or withdraw the validation of) a registered MID."""
    row = get(session, name)
    row.validated = validated
    row.validated_by = account
    row.validated_on = now
    return row


def status(row: MidServer, now: dt.datetime) -> str:
    """``active`` when the last check-in is under a minute old, else ``inactive``."""
    if not row.last_check_in:
        return "inactive"
    try:
        seen = parse_ts(row.last_check_in)
    except BadInputError:
        return "inactive"
    return "active" if now - seen < ACTIVE_WINDOW else "inactive"


def to_dict(row: MidServer, now: dt.datetime) -> dict[str, object]:
    try:
        stats = json.loads(row.stats or "{}")
    except ValueError:
        stats = {}
    return {
        "name": row.name,
        "status": status(row, now),
        "validated": row.validated,
        "last_check_in": row.last_check_in,
        "version": row.version,
        "firewall_mode": row.firewall_mode,
        "host": row.host,
        "registered_by": row.registered_by,
        "registered_on": row.registered_on,
        "validated_by": row.validated_by,
        "validated_on": row.validated_on,
        "stats": stats,
    }


def list_mids(session: Session, now: dt.datetime) -> list[dict[str, object]]:
    rows = session.scalars(select(MidServer).order_by(MidServer.name).limit(MAX_MIDS))
    return [to_dict(r, now) for r in rows]
