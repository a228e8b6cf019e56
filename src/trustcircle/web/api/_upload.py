"""Stream a multipart upload of files into a folder, bounded as it arrives.

The body is parsed incrementally (python-multipart) and each file part is written
straight to its own file: no upload is ever held in memory whole, and one over the
per-file or total bound is refused at the byte that crosses it, before the rest is read.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from ...errors import BadInputError, LimitExceededError, TrustcircleError, UsageError

MAX_HEADER_BYTES = 16 * 1024
"""Largest header block of one part."""

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Upload:
    """One received file: where it is stored and the name the client gave it (sanitised)."""

    path: Path
    name: str


@dataclass(frozen=True)
class UploadLimits:
    """Bounds of one upload: the form field, files, bytes per file and in total."""

    field: str
    max_files: int
    max_file_bytes: int
    max_total_bytes: int
    too_large: Callable[[str], LimitExceededError]
    """The error for the file named by its argument going over ``max_file_bytes``."""


def display_name(filename: str, index: int) -> str:
    """A safe, short file name for *filename* (path parts dropped), else ``upload-<i>.xml``."""
    base = re.split(r"[/\\]", filename)[-1]
    safe = _UNSAFE.sub("_", base).lstrip(".")[:100]
    return safe or f"upload-{index}.xml"


@dataclass
class _Receiver:
    """The parser callbacks: headers of the current part, its file, the pending writes."""

    folder: Path
    limits: UploadLimits
    uploads: list[Upload] = field(default_factory=list)
    pending: list[tuple[IO[bytes], bytes]] = field(default_factory=list)
    to_close: list[IO[bytes]] = field(default_factory=list)
    open_files: list[IO[bytes]] = field(default_factory=list)
    total: int = 0
    done: bool = False
    _header: bytes = b""
    _value: bytes = b""
    _header_bytes: int = 0
    _disposition: bytes = b""
    _file: IO[bytes] | None = None
    _size: int = 0

    def on_part_begin(self) -> None:
        self._header = self._value = self._disposition = b""
        self._header_bytes = 0
        self._file = None
        self._size = 0

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header += self._bounded(data[start:end])

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += self._bounded(data[start:end])

    def on_header_end(self) -> None:
        if self._header.strip().lower() == b"content-disposition":
            self._disposition = self._value
        self._header = self._value = b""

    def on_headers_finished(self) -> None:
        _kind, options = parse_options_header(self._disposition)
        name = options.get(b"name", b"").decode("utf-8", "replace")
        want = self.limits.field
        if name != want:
            raise UsageError(
                f"unexpected form field {name[:60]!r}: send each file in a field named {want!r}"
            )
        if b"filename" not in options:
            raise UsageError(f"form field {want!r} must be a file upload, not a text value")
        index = len(self.uploads) + 1
        if index > self.limits.max_files:
            raise LimitExceededError(
                f"more than {self.limits.max_files} files uploaded: send at most "
                f"{self.limits.max_files} at a time"
            )
        shown = display_name(options[b"filename"].decode("utf-8", "replace"), index)
        slot = self.folder / str(index)
        slot.mkdir(mode=0o700)
        path = slot / shown
        self._file = path.open("xb")
        self.open_files.append(self._file)
        self.uploads.append(Upload(path, shown))

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._file is None:
            return
        size = end - start
        self._size += size
        self.total += size
        if self._size > self.limits.max_file_bytes:
            raise self.limits.too_large(self.uploads[-1].name)
        if self.total > self.limits.max_total_bytes:
            raise LimitExceededError(
                f"the upload is larger than {self.limits.max_total_bytes} bytes in total: "
                "send fewer files per request"
            )
        self.pending.append((self._file, bytes(data[start:end])))

    def on_part_end(self) -> None:
        if self._file is not None:
            self.to_close.append(self._file)
            self._file = None

    def on_end(self) -> None:
        self.done = True

    def flush(self) -> None:
        """Write what the parser handed over and close the finished files (off the loop)."""
        pending, self.pending = self.pending, []
        for fh, data in pending:
            fh.write(data)
        closing, self.to_close = self.to_close, []
        for fh in closing:
            fh.close()

    def close_all(self) -> None:
        for fh in self.open_files:
            fh.close()

    def _bounded(self, data: bytes) -> bytes:
        self._header_bytes += len(data)
        if self._header_bytes > MAX_HEADER_BYTES:
            raise BadInputError(
                f"a multipart part has more than {MAX_HEADER_BYTES} bytes of headers"
            )
        return data


async def receive_files(request: Request, folder: Path, limits: UploadLimits) -> list[Upload]:
    """Store every file of the multipart body of *request* under *folder*; return them."""
    kind, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise UsageError(
            f"send the files as multipart/form-data, each in a file field named {limits.field!r}"
        )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_total_bytes + MAX_HEADER_BYTES:
        raise LimitExceededError(
            f"the upload of {declared} bytes is larger than {limits.max_total_bytes} bytes in "
            "total: send fewer files per request"
        )
    receiver = _Receiver(folder, limits)
    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": receiver.on_part_begin,
            "on_part_data": receiver.on_part_data,
            "on_part_end": receiver.on_part_end,
            "on_header_field": receiver.on_header_field,
            "on_header_value": receiver.on_header_value,
            "on_header_end": receiver.on_header_end,
            "on_headers_finished": receiver.on_headers_finished,
            "on_end": receiver.on_end,
        },
    )
    try:
        async for chunk in request.stream():
            parser.write(chunk)
            await run_in_threadpool(receiver.flush)
        parser.finalize()
        await run_in_threadpool(receiver.flush)
    except TrustcircleError:
        raise
    except FormParserError as exc:
        raise BadInputError(f"the upload is not valid multipart/form-data: {exc}") from exc
    finally:
        receiver.close_all()
    if not receiver.done:
        raise BadInputError("the multipart upload ended early: send the whole body")
    if not receiver.uploads:
        raise UsageError(f"no file uploaded: send at least one in the field {limits.field!r}")
    return receiver.uploads
