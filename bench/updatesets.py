"""Import + preview + commit of a signed 10,000-record update set, each phase in a fresh process.

Set-up (not measured): a trusted home with the demo PKI's RSA-4096 keys, 10,000
``sysauto_script`` records with 2 KB scripts, each signed with ``cm_code_signing``,
captured in one local update set with the verification certificates (signed for the
Circle of Trust), exported with ``updateset export`` — 20,006 entries, so a batch of
a parent and three children — and a protected home trusting the demo root.

Measured: ``updateset import`` of every file, ``updateset preview`` and ``updateset
commit`` of the parent, each run as ``trustcircle`` in a fresh subprocess: seconds
inside the command (after imports), wall seconds of the process, records/s and the
process's peak RSS (``VmHWM``). Three rounds, each on a fresh copy of the protected
home; each phase reports its fastest round and the highest peak RSS of any round.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from sqlalchemy import insert, select

from bench import updateset_floor
from trustcircle._time import system_clock
from trustcircle._types import SysId, new_sys_id
from trustcircle.cli.main import main as cli_main
from trustcircle.crypto import make_demo_pki
from trustcircle.platform import kmf, rows, signatures
from trustcircle.platform.context import Instance, Operation
from trustcircle.signing import CIRCLE_OF_TRUST, CODE_SIGNING, SignatureRecord, sign_record
from trustcircle.store.models import Certificate, RecordSignatureRow, SysRecord, UpdateXml
from trustcircle.updatesets import ACTION_INSERT_OR_UPDATE, record_to_payload
from trustcircle.updatesets.local import COMPLETE, create_set

RECORDS = 10_000
ROUNDS = 3
TARGET_SECONDS = 3.0
TARGET_RSS_MB = 150
PASSWORD = b"bench password"
_LINE = '    var gr = new GlideRecord("incident"); gr.addQuery("active", true); gr.query();\n'
_DRIVER = """
import contextlib, io, json, sys, time
t0 = time.perf_counter()
from trustcircle.cli.main import main
t1 = time.perf_counter()
buf = io.StringIO()
code = 0
with contextlib.redirect_stdout(buf):
    try:
        main(sys.argv[1:])
    except SystemExit as exc:
        code = int(exc.code or 0)
t2 = time.perf_counter()
hwm = 0
with open("/proc/self/status") as status:
    for line in status:
        if line.startswith("VmHWM:"):
            hwm = int(line.split()[1])
report = {"code": code, "imports": t1 - t0, "seconds": t2 - t1, "hwm_kb": hwm}
sys.stderr.write(json.dumps(report) + "\\n")
sys.stdout.write(buf.getvalue())
"""


@dataclass(frozen=True)
class Phase:
    name: str
    seconds: float
    wall: float
    cpu: float
    rss_mb: float
    output: str


def _cli(*args: str | Path) -> str:
    """Run ``trustcircle`` in this process (set-up only); its stdout, or raise."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()) as err:
        try:
            cli_main([str(a) for a in args])
        except SystemExit as exc:
            if exc.code:
                raise RuntimeError(f"trustcircle {args[:2]} failed: {err.getvalue()}") from exc
    return buf.getvalue()


def _homes(tmp: Path) -> tuple[Path, Path]:
    pki = make_demo_pki(tmp / "pki", PASSWORD, system_clock())
    password_file = tmp / "password.txt"
    password_file.write_bytes(PASSWORD)
    trusted, protected = tmp / "dev", tmp / "prod"
    _cli("init", "--home", trusted, "--role", "trusted", "--name", "dev")
    _cli("init", "--home", protected, "--role", "protected", "--name", "prod")
    for home in (trusted, protected):
        _cli("trust-anchor", "add", pki.root_ca, "--home", home)
    for module, p12 in (("cm_code_signing", pki.code_signing), ("cm_code_attest", pki.code_attest)):
        _cli(
            "kmf",
            "import",
            "--home",
            trusted,
            "--module",
            module,
            "--p12",
            p12,
            "--password-file",
            password_file,
        )
    return trusted, protected


def _records(n: int) -> list[tuple[SysId, dict[str, str | None]]]:
    script = (_LINE * (2048 // len(_LINE) + 1))[:2048]
    return [
        (
            new_sys_id(),
            {
                "name": f"bench job {i}",
                "script": f"{script}// {i}\n",
                "run_as": "admin",
                "run_type": "on_demand",
                "active": "true",
            },
        )
        for i in range(n)
    ]


def _fill(op: Operation, n: int) -> str:
    """A complete local set of *n* signed jobs plus the signed certificates; its sys_id."""
    session, ts = op.session, op.ts
    row = create_set(session, "bench 10k signed jobs", op.actor.name, ts, state=COMPLETE)
    signer = kmf.signing_key(op, "cm_code_signing")
    attest = kmf.signing_key(op, "cm_code_attest")
    configs = signatures.configurations(session)
    recs = _records(n)

    def sign(chunk: list[tuple[SysId, dict[str, str | None]]]) -> list[SignatureRecord]:
        return [
            sign_record(
                table="sysauto_script",
                document_id=sid,
                fields=f,
                config=configs["sysauto_script"],
                purpose=CODE_SIGNING,
                key=signer.key,
                algorithm=signer.algorithm,
                certificate=signer.certificate,
                signed_at=op.now,
                expires_at=None,
            )
            for sid, f in chunk
        ]

    with ThreadPoolExecutor(os.cpu_count() or 2) as pool:
        sigs = [s for part in pool.map(sign, [recs[i::4] for i in range(4)]) for s in part]
    entries: list[tuple[str, str, dict[str, str | None]]] = [
        ("sysauto_script", sid, f) for sid, f in recs
    ]
    expires = op.now + dt.timedelta(days=1)
    for sys_id in session.scalars(select(Certificate.sys_id).order_by(Certificate.sys_id)):
        fields = rows.read_fields(session, "sys_certificate", sys_id)
        assert fields is not None
        sigs.append(
            sign_record(
                table="sys_certificate",
                document_id=SysId(sys_id),
                fields=fields,
                config=configs["sys_certificate"],
                purpose=CIRCLE_OF_TRUST,
                key=attest.key,
                algorithm=attest.algorithm,
                certificate=attest.certificate,
                signed_at=op.now,
                expires_at=expires,
            )
        )
        entries.append(("sys_certificate", sys_id, fields))
    for sig in sigs:
        values: dict[str, str | None] = dict(sig.to_fields())
        values.pop("sys_id")
        entries.append(("sn_kmf_record_signature", sig.sys_id, values))
    session.execute(
        insert(SysRecord),
        [
            {
                "sys_id": sid,
                "table_name": "sysauto_script",
                "fields": json.dumps(f),
                "created_on": ts,
                "updated_on": ts,
                "created_by": "admin",
                "updated_by": "admin",
                "mod_count": 0,
            }
            for sid, f in recs
        ],
    )
    session.execute(insert(RecordSignatureRow), [s.to_fields() for s in sigs])
    session.execute(
        insert(UpdateXml),
        [
            {
                "sys_id": new_sys_id(),
                "update_set": row.sys_id,
                "table_name": table,
                "target_sys_id": sid,
                "action": ACTION_INSERT_OR_UPDATE,
                "payload": record_to_payload(table, sid, fields),
                "created_on": ts,
                "created_by": "admin",
            }
            for table, sid, fields in entries
        ],
    )
    return row.sys_id


def _prepare(tmp: Path, n: int) -> tuple[Path, list[Path]]:
    """The protected home and the exported files of the bench set."""
    trusted, protected = _homes(tmp)
    inst = Instance.open(trusted)
    try:
        token = (trusted / "admin.token").read_text().strip()
        with inst.operation(token, "record.sign", "bench data") as op:
            set_id = _fill(op, n)
    finally:
        inst.close()
    exported = json.loads(
        _cli("updateset", "export", set_id, "--out", tmp / "bench.xml", "--home", trusted, "--json")
    )
    return protected, [Path(f["path"]) for f in exported["files"]]


def _phase(name: str, *args: str | Path) -> Phase:
    """Run ``trustcircle ARGS`` in a fresh process; its timings and peak RSS."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-c", _DRIVER, *map(str, args)], stdout=out, stderr=err
        )
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        output, errors = out.read().decode(), err.read().decode()
    report = json.loads(errors.strip().splitlines()[-1]) if errors.strip() else {}
    if proc.returncode or report.get("code"):
        raise RuntimeError(f"{name} failed ({proc.returncode}): {errors[-2000:]}")
    cpu = usage.ru_utime + usage.ru_stime
    # VmHWM of the process itself: ru_maxrss would also count the forked bench parent.
    rss = float(report.get("hwm_kb") or usage.ru_maxrss) / 1024
    return Phase(name, float(report["seconds"]), wall, cpu, rss, output)


def _raw_rsa_rates(n: int = 2000) -> tuple[float, float]:
    """RSA-4096 PKCS#1 v1.5 SHA-512 verifications per second on 1 and on 2 threads."""
    key = rsa.generate_private_key(65537, 4096)
    pub, data = key.public_key(), b"x" * 2600
    sig = key.sign(data, padding.PKCS1v15(), hashes.SHA512())

    def work(count: int) -> None:
        for _ in range(count):
            pub.verify(sig, data, padding.PKCS1v15(), hashes.SHA512())

    rates = []
    for threads in (1, 2):
        start = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(work, [n // threads] * threads))
        rates.append(n / (time.perf_counter() - start))
    return rates[0], rates[1]


def run(print_line: Callable[[str], None], n: int = RECORDS, rounds: int = ROUNDS) -> list[Phase]:
    """Set up, measure the three phases *rounds* times, print one table; the best phases."""
    print_line(f"== update sets: import + preview + commit of {n} signed records ==")
    with tempfile.TemporaryDirectory(prefix="trustcircle-bench-") as folder:
        tmp = Path(folder)
        set_up = time.perf_counter()
        protected, files = _prepare(tmp, n)
        size = sum(f.stat().st_size for f in files) / (1024 * 1024)
        print_line(
            f"set-up {time.perf_counter() - set_up:.1f} s: {len(files)} file(s), {size:.1f} MiB "
            "(records and their signature records, batch of parent + children)"
        )
        pristine = tmp / "prod-pristine"
        shutil.copytree(protected, pristine)
        every: list[list[Phase]] = []
        for _ in range(rounds):
            shutil.rmtree(protected)
            shutil.copytree(pristine, protected)
            every.append(_round(protected, files, n))
        rates = _raw_rsa_rates()
        floor = updateset_floor.measure(files, n, rates[1])
    phases = [_best([r[i] for r in every]) for i in range(3)]
    _table(print_line, phases, n, size, rounds)
    _raw_lines(print_line, phases, n, rates, floor)
    return phases


def _round(protected: Path, files: list[Path], n: int) -> list[Phase]:
    """Import, preview and commit the bench set once into a fresh protected home."""
    imported = _phase("import", "updateset", "import", *files, "--home", protected, "--json")
    data = json.loads(imported.output)
    parent = next(d for d in (data if isinstance(data, list) else [data]) if not d["parent"])
    sid = parent["sys_id"]
    phases = [
        imported,
        _phase("preview", "updateset", "preview", sid, "--home", protected, "--json"),
        _phase("commit", "updateset", "commit", sid, "--home", protected, "--json"),
    ]
    committed = json.loads(phases[-1].output)
    if committed["inserted"] != n:
        raise RuntimeError(f"commit applied {committed['inserted']} records, not {n}")
    return phases


def _best(runs: list[Phase]) -> Phase:
    """The fastest run of a phase, with the highest peak RSS any run of it reached."""
    fastest = min(runs, key=lambda p: p.seconds)
    return dataclasses.replace(fastest, rss_mb=max(p.rss_mb for p in runs))


def _table(
    print_line: Callable[[str], None], phases: list[Phase], n: int, size: float, rounds: int
) -> None:
    print_line(
        f"best of {rounds} rounds per phase (this machine's speed varies by about 30 % from "
        "run to run); peak RSS is the highest of any round"
    )
    print_line(
        f"{'phase':<10}{'seconds':>9}{'records/s':>11}{'cpu s':>8}{'wall s':>9}{'peak RSS MB':>13}"
    )
    for p in phases:
        print_line(
            f"{p.name:<10}{p.seconds:>9.2f}{n / p.seconds:>11.0f}{p.cpu:>8.2f}{p.wall:>9.2f}"
            f"{p.rss_mb:>13.1f}"
        )
    total = sum(p.seconds for p in phases)
    rss = max(p.rss_mb for p in phases)
    verdict = "met" if total <= TARGET_SECONDS and rss <= TARGET_RSS_MB else "MISSED"
    print_line(
        f"{'total':<10}{total:>9.2f}{n / total:>11.0f}{sum(p.cpu for p in phases):>8.2f}"
        f"{sum(p.wall for p in phases):>9.2f}{rss:>13.1f}   file {size:.1f} MiB; "
        f"target <= {TARGET_SECONDS:.0f} s, "
        f"<= {TARGET_RSS_MB} MB: {verdict}"
    )


def _raw_lines(
    print_line: Callable[[str], None],
    phases: list[Phase],
    n: int,
    rates: tuple[float, float],
    floor: updateset_floor.Floor,
) -> None:
    one, two = rates
    print_line(
        f"raw RSA-4096 verify on this machine: {one:.0f}/s on 1 thread, {two:.0f}/s on 2 "
        f"threads (preview verifies all {n} records); 'seconds' is the command after its "
        "imports, 'wall' the whole process"
    )
    total = sum(p.seconds for p in phases)
    print_line(
        f"floor of the raw work alone (bare lxml, SQLite, RSA; no checks): {floor.total:.2f} s "
        f"= parse {floor.parse:.2f} (2 processes) + store {floor.store:.2f} + read "
        f"{floor.read:.2f} + verify {floor.verify:.2f} (2 threads) + apply {floor.apply:.2f}; "
        f"the phases take {total / floor.total:.1f}x the floor"
    )


if __name__ == "__main__":
    run(print)
