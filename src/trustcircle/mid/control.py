"""The MID's control channel: instance name, registration, heartbeats, policy, certificates.

Shared by the poll loop, the heartbeat thread and the executor threads; every call to the
instance goes through one client under one lock. The policy statement is fetched at start,
every ``policy_interval`` seconds, and before executing when the last check is older; a
failed fetch keeps the last verified state (validation on until a verified statement
says off).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from trustcircle import __version__
from trustcircle._time import Clock
from trustcircle.crypto import load_pem_certificates
from trustcircle.errors import NotAuthenticatedError, RefusedError, TrustcircleError

from .client import Backoff, InstanceClient, Reply, Unreachable
from .policy import PolicyTracker
from .verify import MessageVerifier

MAX_CERTIFICATES = 1000


class Control:
    """Talks to the instance on behalf of the agent (everything but polling and results)."""

    def __init__(
        self,
        client: InstanceClient,
        *,
        name: str,
        firewall_mode: str,
        log: logging.Logger,
        clock: Clock,
        stop: threading.Event,
        stats: Callable[[], dict[str, Any]],
        report: Callable[[str, str], None],
        backoff_cap: float,
        policy_interval: float,
        validation_poll: float,
    ) -> None:
        self._client = client
        self._name = name
        self._mode = firewall_mode
        self._log = log
        self._clock = clock
        self._stop = stop
        self._stats = stats
        self._report = report
        self._backoff_cap = backoff_cap
        self._policy_interval = policy_interval
        self._validation_poll = validation_poll
        self._lock = threading.Lock()
        self._policy_lock = threading.Lock()
        self._policy_checked = 0.0
        self._last_refusal: str | None = None
        self._certs_fetched = 0.0
        self.validated = False
        self.policy: PolicyTracker | None = None
        self.verifier: MessageVerifier | None = None

    def close(self) -> None:
        with self._lock:
            self._client.close()

    def _call(self, method: str, path: str, body: Any = None) -> Reply:
        with self._lock:
            if method == "GET":
                return self._client.get(path)
            return self._client.post(path, body)

    def register(self) -> bool:
        """Register and wait until an admin validates this MID; False when stopped first."""
        body = {
            "name": self._name,
            "version": __version__,
            "firewall_mode": self._mode,
            "host": socket.gethostname(),
        }
        backoff = Backoff(cap=self._backoff_cap)
        while True:
            try:
                reply = self._call("POST", "/api/mid/register", body)
                break
            except Unreachable as exc:
                self._log.warning("cannot register with the instance: %s; retrying", exc)
                if backoff.wait(self._stop):
                    return False
        if reply.status in (401, 403):
            raise NotAuthenticatedError(
                f"the instance refused the MID's token ({reply.message()}): put the token of a "
                "user made with `user add NAME --roles mid_server` in token_file"
            )
        if not reply.ok:
            raise RefusedError(f"registration refused by the instance: {reply.message()}")
        self.validated = isinstance(reply.data, dict) and reply.data.get("validated") is True
        self._log.info("registered with the instance as %s", self._name)
        if not self.validated:
            self._log.warning(
                "MID %s is not validated yet: waiting for an admin to run "
                "`trustcircle mid validate %s`",
                self._name,
                self._name,
            )
        while not self.validated:
            if self._stop.wait(self._validation_poll):
                return False
            self.heartbeat()
        self._log.info("MID %s is validated", self._name)
        return True

    def heartbeat(self) -> None:
        body = {
            "name": self._name,
            "version": __version__,
            "firewall_mode": self._mode,
            "stats": self._stats(),
        }
        try:
            reply = self._call("POST", "/api/mid/heartbeat", body)
        except Unreachable as exc:
            self._log.warning("heartbeat failed: %s", exc)
            return
        if not reply.ok:
            self._log.warning("heartbeat refused: %s", reply.message())
            return
        validated = isinstance(reply.data, dict) and reply.data.get("validated") is True
        if validated != self.validated:
            self._log.warning("MID %s validated by the instance: %s", self._name, validated)
        self.validated = validated

    def validation_on(self, force: bool = False) -> bool:
        """Whether verification is required now; refreshes a stale policy statement first."""
        tracker = self.policy
        if tracker is None:
            return True
        with self._policy_lock:
            if not force and time.monotonic() - self._policy_checked < self._policy_interval:
                return tracker.validation_on
            before = tracker.validation_on
            try:
                reply = self._call("GET", "/api/codesigning/policy")
            except Unreachable as exc:
                self._log.warning(
                    "cannot fetch the policy statement: %s; validation stays %s",
                    exc,
                    _on(before),
                )
                return before
            self._policy_checked = time.monotonic()
            if not reply.ok and reply.status != 404:
                self._log.warning("policy statement fetch refused: %s", reply.message())
            update = tracker.apply(reply.data if reply.ok else None, self._clock())
            if update.refused and update.refused != self._last_refusal:
                self._log.warning(
                    "Code Signing policy statement refused: %s; validation stays %s",
                    update.refused,
                    _on(update.validation_on),
                )
                self._report("policy_refused", update.refused)
            self._last_refusal = update.refused
            if update.changed or force:
                accepted = tracker.accepted
                self._log.info(
                    "Code Signing validation is %s (policy statement sequence %s)",
                    _on(update.validation_on),
                    "none" if accepted is None else accepted.sequence,
                )
            return update.validation_on

    def refresh_certificates(self, force: bool = False) -> None:
        """Fetch candidate certificates for notarizations (at most every 5 s unless forced)."""
        if not force and time.monotonic() - self._certs_fetched < 5.0:
            return
        self._certs_fetched = time.monotonic()
        try:
            reply = self._call("GET", "/api/sn_kmf/signature/certificates")
        except Unreachable as exc:
            self._log.warning("cannot fetch the verification certificates: %s", exc)
            return
        rows = reply.data if reply.ok and isinstance(reply.data, list) else []
        certs = []
        for row in rows[:MAX_CERTIFICATES]:
            pem = row.get("pem") if isinstance(row, dict) else None
            if isinstance(pem, str):
                # a row the instance got wrong (not PEM, not encodable) is skipped, never fatal
                with contextlib.suppress(TrustcircleError, UnicodeError):
                    certs.extend(load_pem_certificates(pem.encode("utf-8"), "certificate"))
        if self.verifier is not None:
            self.verifier.add_certificates(certs)


def _on(flag: bool) -> str:
    return "on" if flag else "off"
