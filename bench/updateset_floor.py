"""The floor of the update-set bench: the raw work alone, with no checks and no trustcircle code.

What import + preview + commit of the bench files cannot do without, each step timed
on this machine with the bare libraries:

- parse: lxml ``iterparse`` of every file with the hardened options, each payload
  parsed again, its fields serialised as JSON and its SHA-512 taken (what import
  stores), the files spread over two processes as import spreads them;
- store: the entry rows written to SQLite with one ``executemany`` and a commit;
- read: every stored entry read back and its fields decoded (preview);
- verify: one RSA-4096 verification per record at the measured two-thread rate;
- apply: the records copied into a table in SQL and the signature rows inserted,
  then a commit (commit).

The sum is a lower bound for the three phases: the checklist, the seal, the audit
and the report all come on top.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

_OPTIONS = {"resolve_entities": False, "no_network": True, "load_dtd": False, "huge_tree": False}
_Row = tuple[str, str, str, str, str, str]


@dataclass(frozen=True)
class Floor:
    parse: float
    store: float
    read: float
    verify: float
    apply: float

    @property
    def total(self) -> float:
        return self.parse + self.store + self.read + self.verify + self.apply


def measure(files: Sequence[Path], records: int, verify_rate: float) -> Floor:
    """The floor of the bench's three phases over *files* (see the module doc)."""
    start = time.perf_counter()
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_parse_count, files))
    parse = time.perf_counter() - start
    rows = [row for path in files for row in _parse(path)]
    with tempfile.TemporaryDirectory(prefix="trustcircle-floor-") as folder:
        db = sqlite3.connect(Path(folder) / "floor.db")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(
            "CREATE TABLE entry (sys_id TEXT PRIMARY KEY, target TEXT, tbl TEXT, "
            "action TEXT, sha512 TEXT, fields TEXT)"
        )
        db.execute("CREATE TABLE record (sys_id TEXT PRIMARY KEY, tbl TEXT, fields TEXT)")
        db.execute("CREATE TABLE signature (sys_id TEXT PRIMARY KEY, fields TEXT)")
        db.commit()
        start = time.perf_counter()
        db.executemany("INSERT INTO entry VALUES (?, ?, ?, ?, ?, ?)", rows)
        db.commit()
        store = time.perf_counter() - start
        start = time.perf_counter()
        signatures = []
        for sys_id, table, fields in db.execute("SELECT sys_id, tbl, fields FROM entry"):
            values = json.loads(fields)
            if table == "sn_kmf_record_signature":
                signatures.append((sys_id, json.dumps(values)))
        read = time.perf_counter() - start
        start = time.perf_counter()
        db.execute(
            "INSERT INTO record SELECT target, tbl, fields FROM entry "
            "WHERE tbl != 'sn_kmf_record_signature'"
        )
        db.executemany("INSERT INTO signature VALUES (?, ?)", signatures)
        db.commit()
        apply = time.perf_counter() - start
        db.close()
    return Floor(parse, store, read, records / verify_rate, apply)


def _parse_count(path: Path) -> int:
    return len(_parse(path))


def _parse(path: Path) -> list[_Row]:
    rows: list[_Row] = []
    parser = etree.XMLParser(**_OPTIONS)  # type: ignore[arg-type]
    for _event, element in etree.iterparse(str(path), tag="sys_update_xml", **_OPTIONS):
        entry = {child.tag: child.text or "" for child in element}
        payload = entry["payload"]
        record = etree.fromstring(payload.encode("utf-8"), parser)[0]
        fields = {child.tag: child.text or "" for child in record}
        rows.append(
            (
                entry["sys_id"],
                entry["target_sys_id"],
                entry["table"],
                entry["action"],
                hashlib.sha512(payload.encode("utf-8")).hexdigest(),
                json.dumps(fields, sort_keys=True, ensure_ascii=False),
            )
        )
        element.clear()
    return rows
