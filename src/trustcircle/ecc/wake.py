"""Waking long polls as soon as work for their agent is committed in this process.

A poll registers a :class:`Waiter` for its agent (:meth:`Waker.listen`) *before* it
looks at the queue, so an enqueue committed between the look and the wait still wakes
it. Enqueues mark their session (:func:`wake_on_commit`); after the transaction
commits, every waiter of those agents is woken, from whichever thread committed.
Messages inserted by other processes (the CLI) are found by the poll's periodic
re-check of the database instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

from sqlalchemy import event
from sqlalchemy.orm import Session

_PENDING = "trustcircle.ecc.wake"
_LISTENING = "trustcircle.ecc.wake.listening"


class Waiter:
    """One waiting poll, bound to the event loop it was created on."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()

    def set(self) -> None:
        """Wake the poll (thread-safe)."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            self._loop.call_soon_threadsafe(self._event.set)

    def clear(self) -> None:
        self._event.clear()

    async def wait(self, timeout: float) -> bool:
        """True when woken within *timeout* seconds."""
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            return False
        return True


class Waker:
    """Waiters by agent; :meth:`notify` wakes every waiter of an agent."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[str, set[Waiter]] = {}

    @contextlib.contextmanager
    def listen(self, agent: str) -> Iterator[Waiter]:
        """A waiter for *agent* for the duration of the block (call from the event loop)."""
        waiter = Waiter()
        with self._lock:
            self._waiters.setdefault(agent, set()).add(waiter)
        try:
            yield waiter
        finally:
            with self._lock:
                waiters = self._waiters.get(agent)
                if waiters is not None:
                    waiters.discard(waiter)
                    if not waiters:
                        del self._waiters[agent]

    def notify(self, agent: str) -> None:
        with self._lock:
            waiters = list(self._waiters.get(agent, ()))
        for waiter in waiters:
            waiter.set()

    def waiting(self, agent: str) -> int:
        with self._lock:
            return len(self._waiters.get(agent, ()))


WAKER = Waker()
"""The process's waker: every app and every enqueue in this process share it."""


def wake_on_commit(session: Session, agent: str) -> None:
    """Wake *agent*'s polls once *session*'s transaction commits (nothing on rollback)."""
    if not session.info.get(_LISTENING):
        session.info[_LISTENING] = True
        event.listen(session, "after_commit", _after_commit)
        event.listen(session, "after_rollback", _after_rollback)
    session.info.setdefault(_PENDING, set()).add(agent)


def _after_commit(session: Session) -> None:
    for agent in sorted(session.info.pop(_PENDING, ()) or ()):
        WAKER.notify(agent)


def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)
