"""Every error trustcircle raises on purpose.

One base class, four families, each mapped to one CLI exit code (DESIGN §9) and
one HTTP status. The CLI and the web app do that mapping once; nothing else
looks at exit codes.

    TrustcircleError
    ├── BadInputError            untrusted input is malformed         exit 2 / 400
    │   └── LimitExceededError   an input is over a configured bound  exit 2 / 413
    ├── UsageError               the caller misused a command or API  exit 2 / 422
    ├── RefusedError             refused by verification or policy    exit 1 / 409
    │   ├── VerificationError    a signature, chain or check failed   exit 1 / 409
    │   └── PolicyError          a rule of the instance forbids it    exit 1 / 403
    ├── NotAuthorisedError       missing roles or bad credentials     exit 3 / 403
    │   └── NotAuthenticatedError  no valid token or session          exit 3 / 401
    └── NotFoundError            the named thing does not exist       exit 4 / 404

Every message is one line a person can act on: what was wrong, what to do.
Third-party errors are translated at the boundary with ``raise ... from exc``.
"""

from __future__ import annotations

from collections.abc import Iterable


class TrustcircleError(Exception):
    """Base of every deliberate trustcircle error."""

    exit_code: int = 1
    http_status: int = 500
    kind: str = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadInputError(TrustcircleError):
    """Untrusted input (a file, an upload, a request body) is malformed."""

    exit_code = 2
    http_status = 400
    kind = "bad_input"


class LimitExceededError(BadInputError):
    """An input is larger, deeper or longer than a configured bound allows."""

    http_status = 413
    kind = "limit_exceeded"


class UsageError(TrustcircleError):
    """The caller asked for something that makes no sense (unknown table, bad option)."""

    exit_code = 2
    http_status = 422
    kind = "usage"


class RefusedError(TrustcircleError):
    """The request was understood and refused."""

    exit_code = 1
    http_status = 409
    kind = "refused"


class VerificationError(RefusedError):
    """A signature, certificate chain or other cryptographic check failed."""

    kind = "verification_failed"


class PolicyError(RefusedError):
    """A rule of this instance forbids the action, whoever asks."""

    http_status = 403
    kind = "policy"


class NotAuthorisedError(TrustcircleError):
    """The acting user lacks a role the action needs."""

    exit_code = 3
    http_status = 403
    kind = "not_authorised"

    def __init__(self, message: str, missing: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.missing = tuple(missing)


class NotAuthenticatedError(NotAuthorisedError):
    """No valid token or session was presented."""

    http_status = 401
    kind = "not_authenticated"


class NotFoundError(TrustcircleError):
    """The named record, user, update set or file does not exist."""

    exit_code = 4
    http_status = 404
    kind = "not_found"
