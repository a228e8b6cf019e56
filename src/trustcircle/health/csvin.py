"""Reading a scan CSV back (possibly edited down by a person) for the batch signature generator.

The file must be the scan CSV (see :mod:`.results`): UTF-8 (a byte-order mark is
allowed), a header naming ``table`` and ``sys_id`` among the scan's columns, each once,
and every line with as many cells as the header. Lines may be deleted and columns
dropped; every remaining line is checked, and the first bad one refuses the whole file
with one line saying where and what to fix. Blank lines are ignored.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import BadInputError, LimitExceededError
from .results import CSV_COLUMNS, VERDICTS

if TYPE_CHECKING:
    from _csv import Reader

MAX_CSV_BYTES = 64 * 1024 * 1024
MAX_CSV_ROWS = 500_000
MAX_CELL_CHARS = 100_000
_TABLE = re.compile(r"[a-z_][a-z0-9_]{0,79}")
_SYS_ID = re.compile(r"[0-9a-f]{32}")
_REQUIRED = ("table", "sys_id")


@dataclass(frozen=True, slots=True)
class ListedRow:
    """One record the CSV still lists: where it is (1-based line), its table and sys_id."""

    line: int
    table: str
    sys_id: str
    name: str = ""


def _bad(line: int, problem: str) -> BadInputError:
    return BadInputError(f"scan CSV line {line}: {problem}")


def parse_scan_csv(data: bytes) -> list[ListedRow]:
    """The rows of a scan CSV, in file order, after checking every line (see module doc)."""
    if len(data) > MAX_CSV_BYTES:
        raise LimitExceededError(
            f"the scan CSV is larger than {MAX_CSV_BYTES} bytes: split it and sign each part"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadInputError(
            f"the scan CSV is not UTF-8 text (byte {exc.start}): save it as UTF-8 CSV"
        ) from exc
    if "\x00" in text:
        raise BadInputError("the scan CSV contains NUL bytes: it is not a text CSV file")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        return _rows(reader)
    except csv.Error as exc:
        raise _bad(reader.line_num, f"not valid CSV ({exc}): fix the quoting") from exc


def _header(cells: Sequence[str]) -> dict[str, int]:
    names = [c.strip().lower() for c in cells]
    unknown = [n for n in names if n not in CSV_COLUMNS]
    if unknown:
        raise _bad(
            1,
            f"unknown column {unknown[0][:40]!r}: the header may only name "
            + ", ".join(CSV_COLUMNS),
        )
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise _bad(1, f"column {twice[0]!r} appears twice: keep one")
    missing = [n for n in _REQUIRED if n not in names]
    if missing:
        raise _bad(1, f"the header lacks column {missing[0]!r}: export the scan CSV again")
    return {name: i for i, name in enumerate(names)}


def _rows(reader: Reader) -> list[ListedRow]:
    columns: dict[str, int] | None = None
    rows: list[ListedRow] = []
    seen: dict[tuple[str, str], int] = {}
    for cells in reader:
        line = reader.line_num
        if not cells or all(not c.strip() for c in cells):
            continue
        if columns is None:
            columns = _header(cells)
            continue
        if len(cells) != len(columns):
            raise _bad(line, f"has {len(cells)} cells, the header has {len(columns)}: fix the line")
        if any(len(c) > MAX_CELL_CHARS for c in cells):
            raise _bad(line, f"a cell is longer than {MAX_CELL_CHARS} characters")
        row = _row(line, cells, columns)
        first = seen.get((row.table, row.sys_id))
        if first is not None:
            raise _bad(line, f"repeats {row.table} {row.sys_id} of line {first}: delete one")
        seen[(row.table, row.sys_id)] = line
        rows.append(row)
        if len(rows) > MAX_CSV_ROWS:
            raise LimitExceededError(
                f"the scan CSV lists more than {MAX_CSV_ROWS} records: split it"
            )
    if columns is None:
        raise BadInputError("the scan CSV is empty: upload the CSV a scan produced")
    return rows


def _row(line: int, cells: Sequence[str], columns: dict[str, int]) -> ListedRow:
    table = cells[columns["table"]].strip()
    sys_id = cells[columns["sys_id"]].strip()
    if not _TABLE.fullmatch(table):
        raise _bad(line, f"table {table[:40]!r} is not a table name: fix or delete the line")
    if not _SYS_ID.fullmatch(sys_id):
        raise _bad(
            line,
            f"sys_id {sys_id[:40]!r} is not 32 lowercase hex characters: fix or delete the line",
        )
    if "verdict" in columns:
        verdict = cells[columns["verdict"]].strip()
        if verdict and verdict not in VERDICTS:
            raise _bad(
                line, f"verdict {verdict[:20]!r} is not one of {', '.join(VERDICTS)}: fix it"
            )
    name = cells[columns["name"]] if "name" in columns else ""
    return ListedRow(line, table, sys_id, name.removeprefix("'")[:200])
