"""Scheduled jobs (table ``sysauto_script``): the system jobs, look-ups, list search.

Every instance ships the two Circle-of-Trust system jobs under fixed sys_ids, the
same on every instance, so a signed copy made on a trusted instance replaces the
production copy when its update set is committed. Which job turns Code Signing on
or off is told by its sys_id (part of what the signature covers), never by a field
an operator could edit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy.orm import Session

from .._types import SysId, Timestamp
from ..errors import NotFoundError, UsageError
from ..platform import records
from ..platform.records import Record

JOB_TABLE = "sysauto_script"
TURN_ON_ID = SysId("c0de5161000000000000000000000001")
TURN_OFF_ID = SysId("c0de5161000000000000000000000002")
TURN_ON_NAME = "Turn on Code Signing Property"
TURN_OFF_NAME = "Turn off Code Signing Property"
RUN_TYPES = ("on_demand", "periodic", "cron")
SYSTEM_ACTOR = "system"
MAX_PATTERN = 100
MAX_JOBS_LISTED = 10_000

_SYS_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class SystemJob:
    """A job every instance ships; ``state`` is the Code Signing state it sets."""

    sys_id: SysId
    name: str
    state: str  # "on" | "off"
    script: str

    def fields(self) -> dict[str, str | None]:
        return {
            "name": self.name,
            "script": self.script,
            "run_as": "admin",
            "run_type": "on_demand",
            "active": "true",
            "system_job": f"turn_{self.state}",
            "description": (
                f"Circle of Trust: turns Code Signing {self.state}. Runs on a protected instance "
                "only as a signed copy from a trusted instance, with a signed policy statement."
            ),
        }


SYSTEM_JOBS: dict[SysId, SystemJob] = {
    job.sys_id: job
    for job in (
        SystemJob(
            TURN_ON_ID,
            TURN_ON_NAME,
            "on",
            '# MID servers start validating signed code.\nlog.info("Turning on Code Signing")\n'
            "codesigning.turn_on()\n",
        ),
        SystemJob(
            TURN_OFF_ID,
            TURN_OFF_NAME,
            "off",
            "# MID servers stop validating signed code; the trusted friends list stays.\n"
            'log.info("Turning off Code Signing")\ncodesigning.turn_off()\n',
        ),
    )
}


def policy_state(job_id: str) -> str | None:
    """``"on"``/``"off"`` for the Turn On/Off system jobs (by sys_id), None for other jobs."""
    job = SYSTEM_JOBS.get(SysId(job_id))
    return None if job is None else job.state


def seed_system_jobs(session: Session, now: Timestamp) -> list[SysId]:
    """Create the system jobs that are missing (idempotent); return the ids created."""
    created: list[SysId] = []
    for job in SYSTEM_JOBS.values():
        if records.find(session, JOB_TABLE, job.sys_id) is None:
            records.insert(session, JOB_TABLE, job.fields(), SYSTEM_ACTOR, now, job.sys_id)
            created.append(job.sys_id)
    return created


def find_job(session: Session, name: str) -> Record:
    """The job whose sys_id or exact name is *name*."""
    name = name.strip()
    if not name or len(name) > 200:
        raise UsageError("a job is named by its name (1 to 200 characters) or its sys_id")
    if _SYS_ID.fullmatch(name):
        record = records.find(session, JOB_TABLE, name)
        if record is not None:
            return record
    matches = records.query(session, JOB_TABLE, {"name": name}, limit=MAX_JOBS_LISTED)
    if not matches:
        raise NotFoundError(
            f"no scheduled job named {name!r}: list them with `trustcircle job list`"
        )
    if len(matches) > 1:
        ids = ", ".join(m.sys_id for m in matches[:5])
        raise UsageError(f"{len(matches)} jobs are named {name!r}: name one by sys_id ({ids})")
    return matches[0]


def name_matcher(pattern: str | None) -> re.Pattern[str] | None:
    """The list search of the reference platform, case-insensitive.

    ``*Turn`` contains "Turn", ``%Turn`` ends with it, ``=Turn`` equals it, and a plain
    ``Turn`` starts with it. None or an empty pattern matches every name.
    """
    if pattern is None or not pattern.strip():
        return None
    text = pattern.strip()
    if len(text) > MAX_PATTERN:
        raise UsageError(f"a name search is at most {MAX_PATTERN} characters")
    kind, body = (text[0], text[1:]) if text[0] in "*%=" else ("", text)
    if not body:
        return None
    escaped = re.escape(body)
    regex = {"*": escaped, "%": escaped + r"\Z", "=": rf"\A{escaped}\Z", "": rf"\A{escaped}"}
    return re.compile(regex[kind], re.IGNORECASE)


def list_jobs(session: Session, pattern: str | None = None) -> list[Record]:
    """Jobs whose name matches *pattern* (see :func:`name_matcher`), by name."""
    matcher = name_matcher(pattern)
    jobs = records.query(session, JOB_TABLE, limit=MAX_JOBS_LISTED)
    chosen = [j for j in jobs if matcher is None or matcher.search(j.fields.get("name") or "")]
    return sorted(chosen, key=lambda j: ((j.fields.get("name") or "").lower(), j.sys_id))


def job_summary(job: Record) -> dict[str, object]:
    """The columns ``job list`` shows (and its ``--json`` keys)."""
    f = job.fields
    return {
        "sys_id": job.sys_id,
        "name": f.get("name"),
        "run_type": f.get("run_type"),
        "run_as": f.get("run_as"),
        "active": f.get("active"),
        "system_job": f.get("system_job"),
        "updated_on": job.updated_on,
    }
