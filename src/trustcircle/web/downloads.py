"""Update-set downloads shared by the JSON API and the pages: scratch folders, export files."""

from __future__ import annotations

import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from ..platform.context import Instance, Operation
from ..updatesets import local
from ..updatesets.export import export_set

SCRATCH = "tmp"


def scratch(inst: Instance, prefix: str) -> Path:
    """A fresh private folder under HOME/tmp (update sets can be large: not a RAM-backed /tmp)."""
    base = inst.home / SCRATCH
    base.mkdir(mode=0o700, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=base))


def safe_name(name: str, fallback: str) -> str:
    """*name* as a file name (letters, digits, ``._-``), else *fallback*."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")[:100]
    return safe or fallback


def export_response(
    inst: Instance,
    set_id: str,
    open_operation: Callable[[], AbstractContextManager[Operation]],
    headers: dict[str, str] | None = None,
) -> FileResponse:
    """Export local set *set_id* and send it: XML, or a zip of the parent and children of a batch.

    The files live in a scratch folder removed once the response is sent (or at once on error).
    """
    folder = scratch(inst, "export-")
    try:
        with open_operation() as op:
            base = safe_name(local.get_set(op.session, set_id).name, set_id)
            result = export_set(op, set_id, folder / f"{base}.xml")
        paths = [f.path for f in result.files]
        if result.batch:
            download, media = folder / f"{base}.zip", "application/zip"
            with zipfile.ZipFile(download, "w", zipfile.ZIP_DEFLATED) as bundle:
                for path in paths:
                    bundle.write(path, arcname=path.name)
        else:
            download, media = paths[0], "application/xml"
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return FileResponse(
        download,
        media_type=media,
        filename=download.name,
        headers={
            "X-Trustcircle-Signed": "true" if result.signed else "false",
            "X-Trustcircle-Files": str(len(paths)),
            **(headers or {}),
        },
        background=BackgroundTask(shutil.rmtree, folder, True),
    )
