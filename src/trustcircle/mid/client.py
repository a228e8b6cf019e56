"""The MID's side of the HTTP protocol (issue-4 contract) and the backoff it retries with.

:class:`InstanceClient` wraps one ``httpx.Client`` (use one per thread). Transport
failures and 5xx answers raise :class:`Unreachable` (retry later); other answers are
returned as :class:`Reply` for the caller to judge.
"""

from __future__ import annotations

import json
import random
import threading
from dataclasses import dataclass
from typing import Any

import httpx

from trustcircle import __version__

MAX_RESPONSE_BYTES = 64 * 1024 * 1024
USER_AGENT = f"trustcircle-mid/{__version__}"


class Unreachable(Exception):
    """The instance did not answer, or answered 5xx: try again later."""


@dataclass(frozen=True)
class Reply:
    status: int
    data: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def message(self) -> str:
        """The instance's one-line error message, or the status."""
        if isinstance(self.data, dict) and isinstance(self.data.get("message"), str):
            return f"HTTP {self.status}: {self.data['message'][:300]}"
        return f"HTTP {self.status}"


class InstanceClient:
    """JSON over HTTP with the MID's bearer token."""

    def __init__(self, base_url: str, token: str, timeout: float = 10.0) -> None:
        self._client = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT},
            timeout=httpx.Timeout(timeout, connect=5.0),
            follow_redirects=False,
        )

    def get(
        self, path: str, params: dict[str, str] | None = None, timeout: float | None = None
    ) -> Reply:
        return self._send("GET", path, params=params, timeout=timeout)

    def post(self, path: str, body: Any) -> Reply:
        return self._send("POST", path, body=body)

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        timeout: float | None = None,
    ) -> Reply:
        extra: dict[str, Any] = {}
        if timeout is not None:
            extra["timeout"] = httpx.Timeout(timeout, connect=5.0)
        try:
            response = self._client.request(
                method,
                path,
                params=params,
                content=None if body is None else json.dumps(body).encode("utf-8"),
                headers={"Content-Type": "application/json"} if body is not None else None,
                **extra,
            )
        except httpx.HTTPError as exc:
            raise Unreachable(f"{type(exc).__name__}: {str(exc)[:200]}") from exc
        if response.status_code >= 500:
            raise Unreachable(f"HTTP {response.status_code} from {method} {path}")
        content = response.content
        if len(content) > MAX_RESPONSE_BYTES:
            raise Unreachable(f"answer to {method} {path} is over {MAX_RESPONSE_BYTES} bytes")
        try:
            data = json.loads(content) if content else None
        except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
            data = None
        return Reply(response.status_code, data)

    def close(self) -> None:
        self._client.close()


class Backoff:
    """Exponential backoff with jitter: 0.1 s, 0.2 s, ... capped at *cap* seconds."""

    def __init__(self, initial: float = 0.1, cap: float = 5.0) -> None:
        self._initial = initial
        self._cap = cap
        self._next = initial

    def reset(self) -> None:
        self._next = self._initial

    def wait(self, stop: threading.Event) -> bool:
        """Sleep the next delay (or until *stop*); True when stopped."""
        delay = min(self._cap, self._next) * (0.5 + random.random() / 2)
        self._next = min(self._cap, self._next * 2)
        return stop.wait(delay)
