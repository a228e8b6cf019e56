"""Files written atomically, with the mode they need from the first byte."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write *data* to *path* so that readers see the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_secret(path: Path, data: bytes) -> None:
    """Write a secret (key, token, password) readable by its owner only (0600)."""
    write_atomic(path, data, mode=0o600)


def read_limited(path: Path, limit: int, what: str) -> bytes:
    """Read at most *limit* bytes of *path*; refuse a larger file with one clear line."""
    from .errors import BadInputError, LimitExceededError

    try:
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except FileNotFoundError as exc:
        raise BadInputError(f"{what} {str(path)!r} does not exist: check the path") from exc
    except IsADirectoryError as exc:
        raise BadInputError(f"{what} {str(path)!r} is a directory, not a file") from exc
    except PermissionError as exc:
        raise BadInputError(f"{what} {str(path)!r} cannot be read: permission denied") from exc
    if len(data) > limit:
        raise LimitExceededError(f"{what} {str(path)!r} is larger than {limit} bytes: refusing it")
    return data
