"""ECC through real MID processes on loopback: messages/s and enqueue-to-result latency.

Set-up (not measured): the demo PKI's RSA-4096 keys; a trusted home signs a job for the
Circle of Trust and the Turn On/Off jobs; a protected home imports them, executes Turn On
(validation on) and serves its API from this process (uvicorn in a thread), so a message the
tracker enqueues here wakes the MIDs' long polls at once. The MIDs are ``trustcircle mid
start`` subprocesses sharing one agent name (two of them compete for one queue).

Measured:
* throughput: N trivial signed ``Command`` messages (``true``), notarized by the tracker in
  one transaction, timed from its commit to the last result (one MID, then two);
* latency, one message at a time: from the tracker's ``ecc.enqueue`` as a signed job calls
  it (stack check, notarization with the runtime key, commit) to its result in the
  database; with validation on, and after a signed Turn Off (then also for a message
  inserted with ``POST /api/ecc``, which only an unvalidating MID runs);
* the MID's own decision per message (ECC firewall, notarization verification against its
  pinned anchor, replay record), with the MID's classes in this process;
* the tracker's enqueue rate, bounded by RSA-4096 signing with the runtime key.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvicorn
import yaml
from cryptography import x509
from sqlalchemy import select

from trustcircle._time import system_clock
from trustcircle.cli.main import main as cli_main
from trustcircle.crypto import load_pem_certificates, make_demo_pki
from trustcircle.ecc import queue
from trustcircle.ecc.tracker import Tracker
from trustcircle.jobs import JOB_TABLE, TURN_OFF_NAME, TURN_ON_NAME, Frame
from trustcircle.mid import EccMessage, Firewall, FirewallMode, MessageVerifier, ReplayStore
from trustcircle.platform import records
from trustcircle.platform.context import Instance
from trustcircle.platform.home import ADMIN_TOKEN
from trustcircle.store.models import Certificate
from trustcircle.web import create_app

THROUGHPUT = 2000
LATENCY = 200
AGENT = "mid.server.bench"
PAYLOAD = '{"argv": ["true"]}'
JOB = "Bench job"
PASSWORD = b"bench password"
MID_SETTINGS = {"poll_wait": 5, "workers": 32, "max_batch": 64}
SRC = Path(__file__).resolve().parent.parent / "src"


def _cli(*args: str | Path) -> str:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            cli_main([str(a) for a in args])
        except SystemExit as exc:
            if exc.code:
                raise RuntimeError(f"trustcircle {args[:3]} failed: {err.getvalue()}") from None
    return out.getvalue()


def _wait(check: Callable[[], bool], timeout: float, what: str, every: float = 0.01) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(every)


def _prepare(tmp: Path) -> tuple[Path, Path]:
    """Both homes, Turn On executed on the protected one; its home and the root CA file."""
    pki = make_demo_pki(tmp / "pki", PASSWORD, system_clock())
    password = tmp / "password.txt"
    password.write_bytes(PASSWORD)
    dev, prod = tmp / "dev", tmp / "prod"
    _cli("init", "--home", dev, "--role", "trusted", "--name", "dev")
    _cli("init", "--home", prod, "--role", "protected", "--name", "prod")
    for home in (dev, prod):
        _cli("trust-anchor", "add", pki.root_ca, "--home", home)
    for module, p12 in pki.bundles.items():
        home = prod if module == "cm_runtime" else dev
        _cli(
            "kmf",
            "import",
            "--module",
            module,
            "--p12",
            p12,
            "--password-file",
            password,
            "--home",
            home,
        )
    exported: list[str] = []
    for module in ("cm_code_attest", "cm_code_signing"):
        made = _cli("cert", "export-to-production", "--module", module, "--home", dev, "--json")
        exported.append(json.loads(made)["update_set"])
    fields = {
        "name": JOB,
        "script": "pass",
        "run_type": "on_demand",
        "active": "true",
        "run_as": "admin",
    }
    _cli(
        "record",
        "add",
        "--table",
        "sysauto_script",
        "--home",
        dev,
        *[a for k, v in fields.items() for a in ("--field", f"{k}={v}")],
    )
    for name in (JOB, TURN_ON_NAME, TURN_OFF_NAME):
        made = _cli("job", "export-signed", name, "--home", dev, "--json")
        exported.append(json.loads(made)["update_set"])
    for index, set_id in enumerate(exported):
        xml = tmp / f"set-{index}.xml"
        _cli("updateset", "export", set_id, "--out", xml, "--home", dev)
        retrieved = json.loads(_cli("updateset", "import", xml, "--home", prod, "--json"))
        _cli("updateset", "preview", retrieved["sys_id"], "--home", prod)
        _cli("updateset", "commit", retrieved["sys_id"], "--home", prod)
    _cli("job", "execute", TURN_ON_NAME, "--home", prod)
    return prod, pki.root_ca


@dataclass
class _Mid:
    """One ``trustcircle mid start`` process."""

    folder: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self, url: str, root: Path, token: Path, notarizers: list[str]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "boot-config.yaml").write_text("security: {}\n")
        config = {
            "instance_url": url,
            "name": AGENT.removeprefix("mid.server."),
            "token_file": str(token),
            "anchors": [str(root)],
            "notarizers": notarizers,
            "work_dir": "work",
            "log_dir": "logs",
            "boot_config": "boot-config.yaml",
            "instance_name": "prod",
            **MID_SETTINGS,
        }
        (self.folder / "mid.yaml").write_text(yaml.safe_dump(config))
        env = dict(os.environ, PYTHONPATH=f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
        argv = [sys.executable, "-m", "trustcircle", "mid", "start", "--config"]
        with open(self.folder / "stdout.log", "ab") as out:
            self.proc = subprocess.Popen(
                [*argv, str(self.folder / "mid.yaml")],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def wait_log(self, text: str, timeout: float = 60) -> None:
        path = self.folder / "logs" / "mid.log"
        _wait(lambda: path.exists() and text in path.read_text(errors="replace"), timeout, text)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextlib.contextmanager
def _serving(inst: Instance) -> Iterator[str]:
    """The instance's API in this process (uvicorn in a thread), on a free port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    app = create_app(inst.home, inst)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="bench-uvicorn", daemon=True)
    thread.start()
    _wait(lambda: server.started, 30, "the server to start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


@dataclass
class Bench:
    """The running set-up and the measurements."""

    inst: Instance
    token: str
    frame: Frame
    db: sqlite3.Connection
    url: str
    root: Path
    mid_token: Path
    folder: Path
    mids: list[_Mid] = field(default_factory=list)

    @functools.cached_property
    def notarizers(self) -> list[str]:
        """The runtime certificate's fingerprint, pinned in each MID's configuration."""
        with self.inst.db.transaction() as session:
            return list(
                session.scalars(
                    select(Certificate.fingerprint).where(Certificate.module == "cm_runtime")
                )
            )

    def add_mid(self) -> None:
        mid = _Mid(self.folder / f"mid-{len(self.mids) + 1}")
        mid.start(self.url, self.root, self.mid_token, self.notarizers)
        self.mids.append(mid)

    def restart_mids(self, expect: str) -> None:
        for mid in self.mids:  # a restart fetches the policy statement at once
            mid.stop()
            mid.start(self.url, self.root, self.mid_token, self.notarizers)
        for mid in self.mids:
            mid.wait_log(expect)

    def enqueue(self, n: int) -> tuple[list[str], float]:
        """*n* messages from the signed job's stack, in one transaction; ids and seconds."""
        started = time.perf_counter()
        with self.inst.operation(self.token, "job.execute", "bench") as op:
            tracker = Tracker(op)
            ids = [
                tracker.enqueue([self.frame], AGENT, "Command", f"b{i}", PAYLOAD) for i in range(n)
            ]
        return ids, time.perf_counter() - started

    def _count(self, state: str) -> int:
        row = self.db.execute(
            "select count(*) from ecc_queue where agent = ? and queue = 'output' and state = ?",
            (AGENT, state),
        ).fetchone()
        return int(row[0])

    def throughput(self, n: int) -> tuple[float, float, int]:
        """(messages/s from commit to the last result, tracker enqueues/s, errors)."""
        before = self._count("processed") + self._count("error")
        errors = self._count("error")
        _ids, enqueue_s = self.enqueue(n)
        committed = time.perf_counter()
        _wait(
            lambda: self._count("processed") + self._count("error") >= before + n,
            300,
            f"{n} results",
            every=0.02,
        )
        elapsed = time.perf_counter() - committed
        return n / elapsed, n / enqueue_s, self._count("error") - errors

    def _state(self, sys_id: str) -> str:
        row = self.db.execute("select state from ecc_queue where sys_id = ?", (sys_id,)).fetchone()
        return str(row[0]) if row else ""

    def _finished(self, sys_id: str) -> bool:
        return self._state(sys_id) in ("processed", "error")

    def latency(self, n: int, insert: Callable[[], str] | None = None) -> list[float]:
        """Seconds from enqueue to result, one message at a time."""
        samples = []
        for _ in range(n):
            started = time.perf_counter()
            sys_id = insert() if insert else self.enqueue(1)[0][0]
            done = functools.partial(self._finished, sys_id)
            _wait(done, 30, "a result", 0.001)
            samples.append(time.perf_counter() - started)
            if self._state(sys_id) != "processed":
                raise RuntimeError(f"message {sys_id} ended {self._state(sys_id)}")
        return samples

    def decision_cost(self, n: int = 500) -> float:
        """Seconds per message of the MID's firewall + verification + replay record."""
        ids, _ = self.enqueue(n)
        with self.inst.operation(self.token, "ecc.write", "bench") as op:
            rows = [queue.get(op.session, i) for i in ids]
            raw = [queue.to_dict(r) for r in rows]
            for row in rows:  # out of the MIDs' way
                row.state = queue.PROCESSED
            certs: list[x509.Certificate] = [
                c
                for pem in op.session.scalars(select(Certificate.pem))
                for c in load_pem_certificates(pem.encode(), "certificate")
            ]
        anchors = load_pem_certificates(self.root.read_bytes(), "root CA")
        replay = ReplayStore(self.folder / "verify")
        verifier = MessageVerifier(
            anchors, "prod", replay, agent=AGENT, certificates=certs, notarizers=self.notarizers
        )
        firewall = Firewall((), FirewallMode.ENFORCING)
        messages = [EccMessage.from_json(r) for r in raw]
        now = system_clock()
        verifier.verify(messages[0], now)  # the first chain check is cached by the MID too
        started = time.perf_counter()
        for message in messages[1:]:
            firewall.decide(message.topic)
            verifier.verify(message, now)
        cost = (time.perf_counter() - started) / (len(messages) - 1)
        replay.close()
        return cost


def _ms(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


def _latency_line(label: str, samples: list[float]) -> str:
    return (
        f"latency, {label}: p50 {_ms(samples, 0.5):5.1f} ms, p99 {_ms(samples, 0.99):5.1f} ms, "
        f"mean {statistics.fmean(samples) * 1000:5.1f} ms"
    )


def _measure(
    print_line: Callable[[str], None], bench: Bench, state: str, n: int, m: int
) -> dict[str, float]:
    figures: dict[str, float] = {}
    print_line(f"-- validation {state} --")
    counts = (1, 2) if state == "on" else (len(bench.mids),)
    for count in counts:
        while len(bench.mids) < count:
            bench.add_mid()
            bench.mids[-1].wait_log(f"Code Signing validation is {state}")
        rate, enqueue_rate, errors = bench.throughput(n)
        figures[f"throughput_{state}_{count}"] = rate
        print_line(
            f"throughput, {count} MID{'s' if count > 1 else ' '}: {rate:5.0f} messages/s from "
            f"commit to last result ({errors} errors); tracker enqueue {enqueue_rate:4.0f}/s"
        )
    if state == "on" and enqueue_rate < rate:
        print_line(
            f"  note: enqueue ({enqueue_rate:.0f}/s) is bounded by RSA-4096 signing with the "
            "runtime key (one signature per message, ~400/s on one core), not by the MIDs"
        )
    samples = bench.latency(m)
    figures[f"p50_{state}"], figures[f"p99_{state}"] = _ms(samples, 0.5), _ms(samples, 0.99)
    print_line(_latency_line("tracker ecc.enqueue → result", samples))
    if state == "on":
        cost = bench.decision_cost()
        figures["decision_ms"] = cost * 1000
        print_line(
            f"MID decision (firewall + verify + replay record): {cost * 1000:.2f} ms/message"
        )
        return figures
    headers = {"Authorization": f"Bearer {bench.token}"}
    with httpx.Client(base_url=bench.url, headers=headers) as client:

        def insert() -> str:
            body = {"agent": AGENT, "topic": "Command", "payload": PAYLOAD}
            reply = client.post("/api/ecc", json=body)
            reply.raise_for_status()
            return str(reply.json()["sys_id"])

        direct = bench.latency(m, insert)
    figures["p50_api_off"] = _ms(direct, 0.5)
    print_line(_latency_line("POST /api/ecc → result      ", direct))
    return figures


def run(
    print_line: Callable[[str], None], n: int = THROUGHPUT, m: int = LATENCY
) -> dict[str, float]:
    """Set up, measure, print; the figures by name."""
    print_line(f"== ECC and MIDs: a trivial signed Command; {n} for throughput, {m} for latency ==")
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="trustcircle-bench-mid-") as folder:
        tmp = Path(folder)
        set_up = time.perf_counter()
        prod, root = _prepare(tmp)
        mid_token = tmp / "mid.token"
        made = _cli("user", "add", "bench-mid", "--roles", "mid_server", "--home", prod)
        mid_token.write_text(made.strip() + "\n")
        inst = Instance.open(prod)
        admin = (prod / ADMIN_TOKEN).read_text().strip()
        with inst.db.transaction() as session:
            (job,) = records.query(session, JOB_TABLE, {"name": JOB})
        db = sqlite3.connect(prod / "trustcircle.db", isolation_level=None)
        try:
            with _serving(inst) as url:
                bench = Bench(
                    inst, admin, Frame(JOB_TABLE, job.sys_id), db, url, root, mid_token, tmp
                )
                try:
                    bench.add_mid()
                    _wait(
                        lambda: '"bench"' in _cli("mid", "list", "--home", prod, "--json"),
                        60,
                        "the MID to register",
                    )
                    _cli("mid", "validate", "bench", "--home", prod)
                    bench.mids[0].wait_log("Code Signing validation is on")
                    print_line(
                        f"set-up {time.perf_counter() - set_up:.1f} s; MIDs: "
                        + ", ".join(f"{k} {v}" for k, v in MID_SETTINGS.items())
                    )
                    figures |= _measure(print_line, bench, "on", n, m)
                    _cli("job", "execute", TURN_OFF_NAME, "--home", prod)
                    bench.restart_mids("Code Signing validation is off")
                    figures |= _measure(print_line, bench, "off", n, m)
                finally:
                    for mid in bench.mids:
                        mid.stop()
        finally:
            db.close()
            inst.close()
    _targets(print_line, figures)
    return figures


def _targets(print_line: Callable[[str], None], figures: dict[str, float]) -> None:
    checks = [
        ("p50 enqueue → result ≤ 50 ms (validation on)", figures["p50_on"] <= 50),
        ("MID firewall + verification ≤ 1 ms/message", figures["decision_ms"] <= 1),
        ("≥ 500 signed commands/s over two MIDs", figures["throughput_on_2"] >= 500),
    ]
    print_line(
        "targets: "
        + "; ".join(f"{label}: {'met' if ok else 'NOT met'}" for label, ok in checks)
        + f" (one machine, {os.cpu_count()} CPUs shared by the server, the MIDs and their "
        "commands)"
    )


if __name__ == "__main__":
    run(print)
