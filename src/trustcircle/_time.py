"""Time: an injectable clock and the one timestamp format of DESIGN §4."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable

from ._types import Timestamp
from .errors import BadInputError

Clock = Callable[[], _dt.datetime]
"""Returns the current time, timezone-aware UTC. Inject it; never call ``now()`` deep inside."""

UTC = _dt.UTC


def system_clock() -> _dt.datetime:
    """The real clock, truncated to whole seconds (the signed formats carry seconds)."""
    return _dt.datetime.now(UTC).replace(microsecond=0)


def fixed_clock(at: _dt.datetime) -> Clock:
    """A clock that always says *at* (for tests and replays)."""
    return lambda: at


def format_ts(at: _dt.datetime) -> Timestamp:
    """``2026-11-27T19:45:00Z``: RFC 3339, UTC, whole seconds, ``Z``."""
    if at.tzinfo is None:
        raise ValueError("naive datetime: trustcircle only handles timezone-aware UTC times")
    return Timestamp(at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))


def parse_ts(text: str) -> _dt.datetime:
    """Parse the exact format :func:`format_ts` writes, or raise :class:`BadInputError`."""
    try:
        parsed = _dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")
    except (TypeError, ValueError) as exc:
        raise BadInputError(
            f"malformed timestamp {str(text)[:40]!r}: expected RFC 3339 UTC, e.g. "
            "2026-11-27T19:45:00Z"
        ) from exc
    return parsed.replace(tzinfo=UTC)
