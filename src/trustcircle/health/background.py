"""Scans and batch signature runs in the background of a server, with progress to poll.

One :class:`Jobs` per open instance (:func:`jobs_for`). Each job runs in a daemon thread
of the server process; its state (done / total, outcome, one-line error) lives in memory,
its result in the database (the scan) or in a folder of the instance home (the batch
run's XML files, summary and zip). One scan and one batch run at a time: asking for
another while one runs returns the running one. Callers authorise before starting.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import weakref
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from .._time import format_ts
from .._types import new_sys_id
from ..errors import NotFoundError, TrustcircleError
from ..platform.context import Instance
from ..platform.users import Actor
from . import history
from ._acting import acting
from .batchsign import ACTION as BATCH_ACTION
from .batchsign import batch_sign
from .csvin import ListedRow
from .scan import run_scan

SCAN = "scan"
BATCH = "batch_sign"
RUNNING, DONE, FAILED = "running", "done", "failed"
BATCH_FOLDER = "health"
ZIP_NAME = "batch_signatures.zip"
KEEP_JOBS = 20
KEEP_FOLDERS = 10
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobState:
    """A snapshot of one job."""

    id: str
    kind: str
    started_by: str
    started_at: str
    state: str = RUNNING
    done: int = 0
    total: int = 0
    finished_at: str = ""
    message: str = ""
    result: dict[str, object] = field(default_factory=dict)
    folder: str = ""

    @property
    def percent(self) -> int:
        if self.state != RUNNING:
            return 100
        return int(self.done * 100 / self.total) if self.total else 0

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "kind": self.kind,
            "state": self.state,
            "done": self.done,
            "total": self.total,
            "percent": self.percent,
            "started_by": self.started_by,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "message": self.message,
            "result": self.result,
        }


class Jobs:
    """The background jobs of one instance (see the module doc)."""

    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        self._lock = threading.Lock()
        self._jobs: dict[str, JobState] = {}

    def get(self, job_id: str, kind: str | None = None) -> JobState:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None or (kind is not None and job.kind != kind):
            raise NotFoundError(
                f"no background job {job_id[:40]!r} on this server: start a new one "
                "(jobs are kept in memory and end with the server)"
            )
        return job

    def latest(self, kind: str) -> JobState | None:
        with self._lock:
            mine = [j for j in self._jobs.values() if j.kind == kind]
        return max(mine, key=lambda j: (j.started_at, j.id)) if mine else None

    def start_scan(self, actor: Actor) -> tuple[JobState, bool]:
        """Start a scan as *actor* (already authorised); (job, False) if one is running."""
        return self._start(SCAN, actor, lambda job_id: self._scan(job_id, actor))

    def start_batch(self, actor: Actor, rows: Sequence[ListedRow]) -> tuple[JobState, bool]:
        """Sign *rows* as *actor*; the signed sets and summary go to the job's folder."""
        self.instance.require_trusted("run the batch signature generator")
        return self._start(BATCH, actor, lambda job_id: self._batch(job_id, actor, rows))

    def zip_path(self, job_id: str) -> Path:
        """The zip of a finished batch run (its XML files and summary)."""
        job = self.get(job_id, BATCH)
        path = Path(job.folder) / ZIP_NAME if job.folder else None
        if job.state != DONE or path is None or not path.is_file():
            raise NotFoundError(
                f"batch run {job_id} has no download: it is {job.state}; wait until it is done"
            )
        return path

    # -- internals ---------------------------------------------------------------------

    def _start(self, kind: str, actor: Actor, work: Callable[[str], None]) -> tuple[JobState, bool]:
        with self._lock:
            running = [j for j in self._jobs.values() if j.kind == kind and j.state == RUNNING]
            if running:
                return running[0], False
            job_id = new_sys_id()
            started = format_ts(self.instance.clock())
            self._jobs[job_id] = JobState(job_id, kind, actor.name, started)
            self._forget_old()
        thread = threading.Thread(target=work, args=(job_id,), name=f"health-{kind}", daemon=True)
        thread.start()
        return self.get(job_id), True

    def _forget_old(self) -> None:
        finished = sorted(
            (j for j in self._jobs.values() if j.state != RUNNING), key=lambda j: j.started_at
        )
        for job in finished[: max(0, len(self._jobs) - KEEP_JOBS)]:
            del self._jobs[job.id]

    def _update(self, job_id: str, **changes: object) -> None:
        with self._lock:
            self._jobs[job_id] = replace(self._jobs[job_id], **changes)  # type: ignore[arg-type]

    def _progress(self, job_id: str) -> Callable[[int, int], None]:
        return lambda done, total: self._update(job_id, done=done, total=total)

    def _finish(self, job_id: str, result: dict[str, object], folder: str = "") -> None:
        now = format_ts(self.instance.clock())
        self._update(job_id, state=DONE, finished_at=now, result=result, folder=folder)

    def _fail(self, job_id: str, exc: BaseException) -> None:
        if not isinstance(exc, TrustcircleError):
            _log.error("health job %s failed", job_id, exc_info=exc)
        message = (
            exc.message
            if isinstance(exc, TrustcircleError)
            else f"internal error ({type(exc).__name__}): the server log has the details"
        )
        now = format_ts(self.instance.clock())
        self._update(job_id, state=FAILED, finished_at=now, message=message)

    def _scan(self, job_id: str, actor: Actor) -> None:
        inst = self.instance
        try:
            with acting(inst, actor, history.SCAN_ACTION, write=False):
                pass  # the actor may still scan
            result = run_scan(inst.db, inst.name, inst.clock(), progress=self._progress(job_id))
            with inst.db.transaction() as session:
                history.save(session, result, actor.name)
            self._finish(job_id, result.summary())
        except Exception as exc:
            self._fail(job_id, exc)

    def _batch(self, job_id: str, actor: Actor, rows: Sequence[ListedRow]) -> None:
        inst = self.instance
        folder = inst.home / BATCH_FOLDER / f"batch-{job_id}"
        try:
            folder.mkdir(parents=True, mode=0o700)
            summary = batch_sign(
                inst,
                lambda target, write: acting(inst, actor, BATCH_ACTION, target, write=write),
                rows,
                out_dir=folder,
                progress=self._progress(job_id),
            )
            summary.write(folder)
            _zip(folder)
            _prune(folder.parent)
            data = summary.to_dict()
            data.pop("rows")
            self._finish(job_id, json.loads(json.dumps(data)), str(folder))
        except Exception as exc:
            self._fail(job_id, exc)


def _zip(folder: Path) -> Path:
    path = folder / ZIP_NAME
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for item in sorted(folder.iterdir()):
            if item.is_file() and item.name != ZIP_NAME and not item.name.startswith("."):
                archive.write(item, arcname=item.name)
    return path


def _prune(parent: Path) -> None:
    """Keep the newest :data:`KEEP_FOLDERS` batch folders."""
    folders = sorted(
        (p for p in parent.glob("batch-*") if p.is_dir()), key=lambda p: p.stat().st_mtime
    )
    for old in folders[:-KEEP_FOLDERS]:
        shutil.rmtree(old, ignore_errors=True)


_REGISTRY: weakref.WeakKeyDictionary[Instance, Jobs] = weakref.WeakKeyDictionary()
_REGISTRY_LOCK = threading.Lock()


def jobs_for(instance: Instance) -> Jobs:
    """The background jobs of *instance* (one :class:`Jobs` per open instance)."""
    with _REGISTRY_LOCK:
        jobs = _REGISTRY.get(instance)
        if jobs is None:
            jobs = _REGISTRY[instance] = Jobs(instance)
        return jobs
