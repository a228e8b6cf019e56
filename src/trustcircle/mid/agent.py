"""The MID server agent: register, heartbeat, long-poll, decide, execute, report.

For each claimed message the MID decides, in order (DESIGN §7): (1) the ECC firewall
(reject denies even signed work; accept skips verification and is logged as an
exception), (2) when validation is on per the verified policy statement and no rule
matched, :class:`~trustcircle.mid.verify.MessageVerifier`, (3) execution with a time
limit. In ``audit`` mode what enforcing would deny is logged and executed anyway (a
replay is refused in both modes: a message runs at most once). Results go through the
persistent outbox. Threads: the caller's (long poll), a small executor pool, the sender,
the heartbeat (which also refreshes the policy statement).
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from logging.handlers import RotatingFileHandler
from typing import Any

from cryptography import x509

from trustcircle import __version__
from trustcircle._time import Clock, format_ts, parse_ts, system_clock
from trustcircle.errors import BadInputError, TrustcircleError, VerificationError
from trustcircle.signing import CLOCK_SKEW
from trustcircle.signing.notarization import MAX_VALIDITY

from .client import Backoff, InstanceClient, Unreachable
from .config import BootConfig, MidConfig
from .control import Control
from .delivery import Sender
from .firewall import FirewallAction, FirewallMode
from .handlers import PROCESSED, Handlers, HandlerSettings
from .outbox import LOG, RESULT, Outbox
from .payloads import EccMessage, ScriptPayload, peek_sys_id
from .policy import PolicyStore, PolicyTracker
from .replay import ReplayError, ReplayStore
from .trust import AnchorTrust
from .verify import MessageVerifier, UnknownCertificateError, VerifiedMessage

DENIED = "ECC message execution denied: "
"""Prefix of the log line and of the error_string of every denial."""
ACCEPT_EXCEPTION = "ECC firewall accept exception: "
AUDIT = "ECC firewall audit: enforcing mode would deny: "
LOG_MAX_BYTES = 10 * 1024 * 1024
LOG_BACKUPS = 5
"""``mid.log`` rotates at 10 MiB, keeping ``mid.log.1`` ... ``mid.log.5``."""
UNVERIFIED_KEEP = _dt.timedelta(hours=1)
"""How long, at least, the id of a message run without verification is kept for replay
refusal; longer while the notarization it carries could still be fresh (:func:`_keep_until`)."""


class MidAgent:
    """One MID server. ``run()`` blocks until :meth:`stop` (call it from any thread)."""

    def __init__(
        self,
        config: MidConfig,
        boot: BootConfig,
        *,
        token: str,
        anchors: Sequence[x509.Certificate],
        clock: Clock = system_clock,
        echo: bool = False,
        heartbeat_interval: float = 10.0,
        policy_interval: float = 30.0,
        validation_poll: float = 3.0,
        backoff_cap: float = 5.0,
    ) -> None:
        self.config = config
        self._firewall = boot.firewall()
        self._clock = clock
        self._heartbeat_interval = heartbeat_interval
        self._backoff_cap = backoff_cap
        self._stop = threading.Event()
        self._trust = AnchorTrust(anchors, notarizers=config.notarizers)
        for folder in (config.work_dir, config.log_dir):
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.log = _logger(config, echo)
        self._outbox = Outbox(config.work_dir)
        self._replay = ReplayStore(config.work_dir)
        self._policy_store = PolicyStore(config.work_dir)
        self._handlers = Handlers(
            HandlerSettings(
                exec_timeout=config.exec_timeout,
                run_dir=config.work_dir / "run",
                log_file=config.log_file,
                jdbc=dict(config.jdbc),
            ),
            stats=self.stats,
        )
        url = config.instance_url
        self._poller = InstanceClient(url, token)
        self._sender = Sender(
            self._outbox, InstanceClient(url, token), self.log, backoff_cap=backoff_cap
        )
        self._control = Control(
            InstanceClient(url, token),
            name=config.name,
            firewall_mode=self._firewall.mode.value,
            log=self.log,
            clock=clock,
            stop=self._stop,
            stats=self.stats,
            report=lambda event, text: self._report(event, text, None),
            backoff_cap=backoff_cap,
            policy_interval=policy_interval,
            validation_poll=validation_poll,
        )
        self._inflight = 0
        self._capacity = threading.Condition()
        self._counts_lock = threading.Lock()
        self._counts = dict.fromkeys(("processed", "errors", "denied", "audited", "accepted"), 0)
        self._started = time.monotonic()

    # -- lifecycle ------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the agent to stop: no new poll; running work finishes, results are sent."""
        self._stop.set()
        with self._capacity:
            self._capacity.notify_all()

    @property
    def validated(self) -> bool:
        return self._control.validated

    def run(self) -> None:
        """Register, wait for validation, then poll and execute until stopped."""
        self.log.info(
            "MID %s %s starting: instance %s, ECC firewall %s with %d rule(s)",
            self.config.name,
            __version__,
            self.config.instance_url,
            self._firewall.mode.value,
            len(self._firewall.rules),
        )
        if self._firewall.mode is FirewallMode.AUDIT:
            self.log.warning("ECC firewall is in audit mode: denials are logged, not enforced")
        pool = ThreadPoolExecutor(self.config.workers, thread_name_prefix="mid-exec")
        beat = threading.Thread(target=self._heartbeat_loop, name="mid-heartbeat", daemon=True)
        try:
            if self._start_up():
                beat.start()
                self._sender.start()
                self._poll_loop(pool)
        finally:
            self.log.info("MID %s stopping: finishing running work", self.config.name)
            pool.shutdown(wait=True)
            self._sender.stop(timeout=max(5.0, self._backoff_cap * 2))
            pending = self._outbox.count()
            if pending:
                self.log.warning("%d entries not yet delivered: kept in the outbox", pending)
            if beat.is_alive():
                beat.join(timeout=2.0)
            self._close()

    def _start_up(self) -> bool:
        name = self.config.instance_name
        self._control.policy = PolicyTracker(self._policy_store, self._trust, name)
        self._control.verifier = MessageVerifier(
            self._trust, name, self._replay, agent=self.config.agent
        )
        if not self._control.register():
            return False
        self._control.refresh_certificates(force=True)
        self._control.validation_on(force=True)
        if not self._sender.flush():  # a restart re-sends what the last run could not
            self.log.warning("outbox not delivered yet: the sender keeps trying")
        return not self._stop.is_set()

    def _close(self) -> None:
        self.log.info("MID %s stopped", self.config.name)
        self._handlers.close()
        self._poller.close()
        self._control.close()
        self._sender.close()
        self._outbox.close()
        self._replay.close()
        for handler in list(self.log.handlers):
            handler.close()
            self.log.removeHandler(handler)

    def _heartbeat_loop(self) -> None:
        while not self._stop.wait(self._heartbeat_interval):
            try:
                self._control.heartbeat()
                self._control.validation_on()
                self._replay.prune(self._clock())
            except Exception:  # keep beating: a bug here must not silence the MID
                self.log.exception("internal error in the heartbeat thread")

    # -- polling ----------------------------------------------------------------------

    def _poll_loop(self, pool: ThreadPoolExecutor) -> None:
        backoff = Backoff(cap=self._backoff_cap)
        limit = self.config.workers * 2
        wait = f"{self.config.poll_wait:g}"
        while not self._stop.is_set():
            with self._capacity:
                while self._inflight >= limit and not self._stop.is_set():
                    self._capacity.wait(1.0)
                room = min(self.config.max_batch, limit - self._inflight)
            if self._stop.is_set():
                return
            params = {"agent": self.config.agent, "max": str(room), "wait": wait}
            try:
                reply = self._poller.get(
                    "/api/ecc/poll", params, timeout=self.config.poll_wait + 15
                )
            except Unreachable as exc:
                self.log.warning("poll failed: %s; retrying with backoff", exc)
                backoff.wait(self._stop)
                continue
            if not reply.ok:
                self.log.warning("poll refused: %s; retrying with backoff", reply.message())
                backoff.wait(self._stop)
                continue
            backoff.reset()
            messages = reply.data.get("messages") if isinstance(reply.data, dict) else None
            for raw in messages if isinstance(messages, list) else []:
                with self._capacity:
                    self._inflight += 1
                pool.submit(self._process_guarded, raw)

    def _process_guarded(self, raw: object) -> None:
        try:
            self.process(raw)
        except Exception:  # a bug must not kill the pool thread or lose the message
            self.log.exception("internal error while processing an ECC message")
            sys_id = peek_sys_id(raw)
            if sys_id is not None:
                self._result(sys_id, "error", "", "internal error in the MID: see its log")
        finally:
            with self._capacity:
                self._inflight -= 1
                self._capacity.notify()

    # -- deciding ---------------------------------------------------------------------

    def process(self, raw: object) -> str:
        """Decide on one claimed message, run it if allowed, queue the result.

        Returns the outcome: ``processed``, ``error`` (ran and failed) or ``denied``.
        """
        try:
            message = EccMessage.from_json(raw)
        except TrustcircleError as exc:
            sys_id = peek_sys_id(raw)
            if sys_id is None:
                self.log.error("%smalformed message without a sys_id", DENIED)
                return "denied"
            return self._deny(sys_id, f"malformed message: {exc.message}", None)
        audit = self._firewall.mode is FirewallMode.AUDIT
        decision = self._firewall.decide(message.topic)
        script: ScriptPayload | None = None
        claimed = False
        if decision.action is FirewallAction.REJECT:
            reason = f"ECC firewall {decision.describe()} rejects topic {message.topic}"
            if not audit:
                return self._deny(message.sys_id, reason, message)
            self._audit(message, reason)
        elif decision.action is FirewallAction.ACCEPT:
            self._count("accepted")
            line = f"{decision.describe()} lets topic {message.topic} run without verification"
            self.log.warning("%s%s%s", ACCEPT_EXCEPTION, line, _where(message))
            self._report("firewall_accept", ACCEPT_EXCEPTION + line, message)
        elif self._control.validation_on():
            try:
                verified = self._verify(message)
                script, claimed = verified.script, True
            except VerificationError as exc:
                if not audit or isinstance(exc, ReplayError):
                    return self._deny(message.sys_id, exc.message, message)
                self._audit(message, exc.message)
        if not claimed:
            try:
                self._replay.claim(message.sys_id, _keep_until(message, self._clock()))
            except ReplayError as exc:
                return self._deny(message.sys_id, exc.message, message)
        result = self._handlers.run(message, script)
        outcome = "processed" if result.state == PROCESSED else "error"
        self._count("processed" if outcome == "processed" else "errors")
        if outcome == "error":
            self.log.info(
                "message %s (%s) failed: %s", message.sys_id, message.topic, result.error_string
            )
        self._result(message.sys_id, result.state, result.output, result.error_string)
        return outcome

    def _verify(self, message: EccMessage) -> VerifiedMessage:
        verifier = self._control.verifier
        if verifier is None:
            raise VerificationError("the MID is not started: no verifier")
        try:
            return verifier.verify(message, self._clock())
        except UnknownCertificateError:
            self._control.refresh_certificates()
            return verifier.verify(message, self._clock())

    def _deny(self, sys_id: str, reason: str, message: EccMessage | None) -> str:
        self._count("denied")
        where = _where(message) if message else f" [ecc {sys_id}]"
        self.log.warning("%s%s%s", DENIED, reason, where)
        self._result(sys_id, "error", "", DENIED + reason, denied=True)
        return "denied"

    def _audit(self, message: EccMessage, reason: str) -> None:
        self._count("audited")
        self.log.warning("%s%s%s", AUDIT, reason, _where(message))
        self._report("audit_would_deny", AUDIT + reason, message)

    def _result(
        self, sys_id: str, state: str, output: str, error: str, *, denied: bool = False
    ) -> None:
        body = {"state": state, "output": output, "error_string": error, "denied": denied}
        self._outbox.put(RESULT, sys_id, body)
        self._sender.wake()

    def _report(self, event: str, text: str, ecc: EccMessage | None) -> None:
        body = {
            "event": event,
            "message": text,
            "agent": self.config.agent,
            "ecc": ecc.sys_id if ecc else "",
            "topic": ecc.topic if ecc else "",
            "created_at": format_ts(self._clock()),
        }
        self._outbox.put(LOG, ecc.sys_id if ecc else event, body)
        self._sender.wake()

    def _count(self, name: str) -> None:
        with self._counts_lock:
            self._counts[name] += 1

    def stats(self) -> dict[str, Any]:
        """Counters for heartbeats and the SystemCommand queue_stats."""
        tracker = self._control.policy
        accepted = tracker.accepted if tracker else None
        with self._counts_lock:
            counts = dict(self._counts)
        return {
            **counts,
            "in_flight": self._inflight,
            "outbox": self._outbox.count(),
            "outbox_dead": self._outbox.dead_count(),
            "delivered": self._sender.delivered,
            "validation": "on" if tracker is None or tracker.validation_on else "off",
            "policy_sequence": None if accepted is None else accepted.sequence,
            "firewall_mode": self._firewall.mode.value,
            "uptime_s": round(time.monotonic() - self._started, 1),
            "pid": os.getpid(),
        }


def _where(message: EccMessage | None) -> str:
    return "" if message is None else f" [ecc {message.sys_id} topic {message.topic}]"


def _logger(config: MidConfig, echo: bool) -> logging.Logger:
    """A logger of its own per agent, writing ``log_dir/mid.log`` (and stderr with *echo*)."""
    log = logging.getLogger(f"trustcircle.mid.{config.name}.{id(config):x}")
    log.setLevel(logging.INFO)
    log.propagate = False
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%SZ")
    formatter.converter = time.gmtime
    handlers: list[logging.Handler] = [
        RotatingFileHandler(
            config.log_file, maxBytes=LOG_MAX_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8"
        )
    ]
    if echo:
        handlers.append(logging.StreamHandler())
    for handler in handlers:
        handler.setFormatter(formatter)
        log.addHandler(handler)
    return log


def _keep_until(message: EccMessage, now: _dt.datetime) -> _dt.datetime:
    """Until when the id of *message*, run without verification, must be refused again:
    at least :data:`UNVERIFIED_KEEP`, and while its notarization (if genuine) could still
    pass a freshness check, so the same id never runs a second time once validation is on
    (at most the longest notarization validity plus the clock skew)."""
    keep = now + UNVERIFIED_KEEP
    carried = message.notarization.payload if message.notarization is not None else {}
    try:
        expires = parse_ts(str(carried.get("expires_at", "")))
    except BadInputError:
        return keep
    longest = now + _dt.timedelta(seconds=MAX_VALIDITY) + CLOCK_SKEW
    return max(keep, min(expires + CLOCK_SKEW, longest))
