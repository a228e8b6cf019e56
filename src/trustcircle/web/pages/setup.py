"""Code Signing › Guided Setup: the seed's procedure as a checklist with its buttons.

Trusted instance: export configuration (certificate export per signing module), turn on
and turn off (export the signed Turn On/Off job), then Export to XML. Protected
instance: confirm the imported configuration (trusted friends, committed update sets),
load the runtime key, run the guardrail check, complete (the state and what is left).
The buttons post to the pages that do the work (certificates, jobs, update sets).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from ... import cot
from ...jobs import JOB_TABLE, TURN_OFF_ID, TURN_OFF_NAME, TURN_ON_ID, TURN_ON_NAME
from ...platform import kmf, properties, signatures
from ...platform.context import Operation
from ...signing import CIRCLE_OF_TRUST
from ...updatesets import catalog
from ._auth import PageUser, UserDep, page_operation
from ._render import render
from ._route import page_router

router = page_router()


@dataclass(frozen=True)
class Step:
    """One checklist line: done or not, and what it means."""

    title: str
    done: bool
    detail: str


def _modules(op: Operation) -> dict[str, dict[str, object]]:
    return {str(m["module"]): m for m in kmf.list_modules(op.session)}


def _trusted(op: Operation) -> dict[str, Any]:
    modules = _modules(op)
    sets = [s for s in catalog.list_all(op.session, op.instance.name) if s["kind"] == catalog.LOCAL]
    names = {str(s["name"]) for s in sets}
    loaded = [m for m in sorted(kmf.SIGNING_MODULES) if modules.get(m, {}).get("has_key")]
    cert_sets = [m for m in loaded if f"{cot.CERTIFICATE_SET_PREFIX}{m}" in names]
    steps = [
        Step(
            "Keys loaded in cm_code_signing and cm_code_attest",
            len(loaded) == len(kmf.SIGNING_MODULES),
            ", ".join(loaded) or "no signing key yet: Crypto Modules › Import key",
        ),
        Step(
            "Export configuration (certificates to production)",
            bool(cert_sets) and len(cert_sets) == len(loaded),
            ", ".join(f"{cot.CERTIFICATE_SET_PREFIX}{m}" for m in cert_sets) or "not exported",
        ),
        Step(
            "Turn on: signed Turn On job exported",
            TURN_ON_NAME in names,
            "update set created" if TURN_ON_NAME in names else "not exported",
        ),
        Step(
            "Export to XML and carry the files to production",
            False,
            "Local Update Sets › open each set › Export to XML",
        ),
    ]
    return {"steps": steps, "loaded": loaded, "sets": sets[-10:]}


def _protected(op: Operation) -> dict[str, Any]:
    modules = _modules(op)
    friends = [f for f in cot.list_friends(op.session) if not f.revoked]
    committed = [
        s
        for s in catalog.list_all(op.session, op.instance.name)
        if s["kind"] == catalog.RETRIEVED and s["state"] == "committed"
    ]
    turn_on_signed = any(
        s.purpose == CIRCLE_OF_TRUST
        for s in signatures.signatures_of(op.session, JOB_TABLE, TURN_ON_ID)
    )
    policy = cot.current_policy(op.session)
    runtime = bool(modules.get(kmf.RUNTIME_MODULE, {}).get("has_key"))
    steps = [
        Step(
            "Imported configuration: trusted friends",
            bool(friends),
            f"{len(friends)} trusted friend certificate(s)" if friends else "none yet",
        ),
        Step(
            "Imported configuration: committed update sets",
            bool(committed),
            f"{len(committed)} committed; Turn On job signed: {'yes' if turn_on_signed else 'no'}",
        ),
        Step(
            "Runtime key loaded (cm_runtime)",
            runtime,
            "loaded" if runtime else "Crypto Modules › Import key into cm_runtime",
        ),
        Step(
            "Code Signing turned on (Execute Now on Turn On)",
            policy.validation_flag,
            f"validation flag {'true' if policy.validation_flag else 'false'}, policy sequence "
            f"{policy.current_sequence}",
        ),
    ]
    return {
        "steps": steps,
        "friends": friends,
        "committed": committed[-10:],
        "policy": policy,
        "optin": properties.get_property(op.session, properties.VALIDATION_OPTIN),
    }


def _view(request: Request, user: PageUser) -> dict[str, Any]:
    with page_operation(request, user, "cot.read", write=False) as op:
        return _trusted(op) if op.instance.is_trusted else _protected(op)


@router.get("/setup", response_class=HTMLResponse)
def guided_setup(request: Request, user: UserDep) -> Response:
    view = _view(request, user)
    done = sum(1 for s in view["steps"] if s.done)
    return render(
        request,
        "setup.html",
        **view,
        done=done,
        turn_on=TURN_ON_ID,
        turn_off=TURN_OFF_ID,
        turn_off_name=TURN_OFF_NAME,
    )
