"""Delivers the outbox to the instance: results in batches, log entries one by one.

Runs in its own thread, woken as soon as a result is written. An unreachable instance
means exponential backoff (capped) and another try; nothing leaves the outbox before the
instance has acknowledged it. Answers that can never succeed (404, 400) are set aside
(``bury``) and logged, so one bad entry never blocks the others.
"""

from __future__ import annotations

import contextlib
import logging
import threading

from .client import Backoff, InstanceClient, Unreachable
from .outbox import LOG, RESULT, Outbox, OutboxItem

BATCH = 100
BATCH_BYTES = 4 * 1024 * 1024


class Sender:
    """Moves outbox entries to the instance until stopped."""

    def __init__(
        self, outbox: Outbox, client: InstanceClient, log: logging.Logger, *, backoff_cap: float
    ) -> None:
        self._outbox = outbox
        self._client = client
        self._log = log
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._backoff = Backoff(cap=backoff_cap)
        self._thread: threading.Thread | None = None
        self.delivered = 0

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="mid-sender", daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Stop after one last attempt to deliver what is pending (bounded by *timeout*)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def close(self) -> None:
        self._client.close()

    def flush(self) -> bool:
        """Deliver everything pending now; False when the instance could not be reached."""
        while True:
            items = self._outbox.pending(BATCH)
            if not items:
                return True
            try:
                self._deliver(items)
            except Unreachable as exc:
                self._log.warning(
                    "instance unreachable while delivering %d result(s): %s; retrying with backoff",
                    self._outbox.count(),
                    exc,
                )
                return False

    def _loop(self) -> None:
        while True:
            self._wake.wait(1.0)
            self._wake.clear()
            try:
                delivered = self.flush()
            except Exception:  # a bug must not stop delivery for good: log, back off, retry
                self._log.exception("internal error while delivering the outbox")
                delivered = False
            if delivered:
                self._backoff.reset()
                if self._stop.is_set():
                    return
            elif self._backoff.wait(self._stop):
                with contextlib.suppress(Exception):
                    self.flush()
                return

    def _deliver(self, items: list[OutboxItem]) -> None:
        chunk: list[OutboxItem] = []
        size = 0
        for item in (i for i in items if i.kind == RESULT):  # requests of at most ~BATCH_BYTES
            weight = _size(item)
            if chunk and size + weight > BATCH_BYTES:
                self._results(chunk)
                chunk, size = [], 0
            chunk.append(item)
            size += weight
        if chunk:
            self._results(chunk)
        for item in items:
            if item.kind == LOG:
                self._one(item, "/api/codesigning/log", item.body)
            elif item.kind != RESULT:
                self._outbox.bury(item.id, f"unknown outbox entry kind {item.kind!r}")

    def _results(self, items: list[OutboxItem]) -> None:
        body = {"results": [{"sys_id": i.key, **i.body} for i in items]}
        reply = self._client.post("/api/ecc/batch_result", body)
        if reply.ok:
            self._outbox.done([i.id for i in items])
            self.delivered += len(items)
            return
        if reply.status in (401, 403):
            raise Unreachable(f"the instance refused the MID's token ({reply.message()})")
        for item in items:  # one of them is refused: find out which, deliver the others
            self._one(item, f"/api/ecc/{item.key}/result", item.body)

    def _one(self, item: OutboxItem, path: str, body: object) -> None:
        reply = self._client.post(path, body)
        if reply.ok:
            self._outbox.done([item.id])
            self.delivered += item.kind == RESULT
        elif reply.status == 409 and item.kind == RESULT:
            self._log.info("instance already holds a result for message %s: dropped", item.key)
            self._outbox.done([item.id])
        elif reply.status in (401, 403, 429):
            raise Unreachable(f"the instance refused delivery ({reply.message()})")
        else:
            self._log.error(
                "instance refused %s for %s (%s): kept aside in the outbox as dead",
                item.kind,
                item.key,
                reply.message(),
            )
            self._outbox.bury(item.id, reply.message())


def _size(item: OutboxItem) -> int:
    body = item.body
    return 200 + len(str(body.get("output", ""))) + len(str(body.get("error_string", "")))
