"""Request-scoped dependencies: the instance, the bearer token, one authorised operation.

Every endpoint that acts runs inside :meth:`Instance.operation` exactly like a CLI
command, so the role rules, the transaction and the audit trail are the same on
both interfaces. Update-set capture happens here too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import Depends, Request

from ..errors import NotAuthenticatedError
from ..platform.context import Instance, Operation
from ..updatesets.local import capture


def get_instance(request: Request) -> Instance:
    instance: Instance = request.app.state.instance
    return instance


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticatedError(
            "no API token: send 'Authorization: Bearer <token>' (tokens come from `trustcircle "
            "user add`)"
        )
    return token.strip()


InstanceDep = Annotated[Instance, Depends(get_instance)]
TokenDep = Annotated[str, Depends(bearer_token)]


@contextmanager
def operation(
    instance: Instance,
    token: str,
    action: str,
    target: str = "",
    *,
    write: bool = True,
    deferred: bool = False,
) -> Iterator[Operation]:
    """One authorised operation, with update-set capture of its record changes."""
    with instance.operation(token, action, target, write=write, deferred=deferred) as op:
        yield op
        capture(op)
