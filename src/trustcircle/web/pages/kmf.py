"""Key Management: KMF Signature Records (filter by purpose, table, certificate), X.509
Certificates (status, trust, **Export certificate to production** on a trusted
instance), Crypto Modules (**Import key** from a ``.p12`` upload with its password).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from ... import cot
from ...errors import BadInputError, LimitExceededError
from ...platform import kmf, signatures
from ...signing import CIRCLE_OF_TRUST, CODE_SIGNING, ECC_NOTARIZATION, WILDCARD
from ._auth import UserDep, page_operation
from ._render import render
from ._route import page_router

router = page_router()
_uploads = page_router(body_limit=2 * 1024 * 1024, max_files=1, action="kmf.import")

P12_LIMIT = 1024 * 1024
MAX_SHOWN = 2000
PURPOSES = (CIRCLE_OF_TRUST, CODE_SIGNING, ECC_NOTARIZATION, WILDCARD)


@router.get("/signatures", response_class=HTMLResponse)
def signature_records(
    request: Request,
    user: UserDep,
    purpose: Annotated[str, Query(max_length=100)] = "",
    table: Annotated[str, Query(max_length=64)] = "",
    certificate: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    with page_operation(request, user, "signature.read", write=False) as op:
        rows = signatures.list_signatures(
            op.session,
            purpose=purpose.strip() or None,
            table=table.strip() or None,
            certificate=certificate.strip().lower() or None,
            limit=MAX_SHOWN + 1,
        )
    return render(
        request,
        "signatures.html",
        rows=[r.to_fields() for r in rows[:MAX_SHOWN]],
        more=len(rows) > MAX_SHOWN,
        purpose=purpose,
        table=table,
        certificate=certificate,
        purposes=PURPOSES,
    )


def _certificates_page(request: Request, user: UserDep, **extra: Any) -> Response:
    with page_operation(request, user, "kmf.read", write=False) as op:
        certs = kmf.list_certificates(op.session, op.now)
        modules = {m["module"]: m for m in kmf.list_modules(op.session)}
    with page_operation(request, user, "trust_anchor.read", write=False) as op:
        anchors = kmf.list_anchors(op.session)
    active = {m["certificate"] for m in modules.values() if m["certificate"]}
    return render(
        request,
        "certificates.html",
        certs=certs,
        anchors=anchors,
        exportable=sorted(kmf.SIGNING_MODULES & {m for m, v in modules.items() if v["has_key"]}),
        active=active,
        **extra,
    )


@router.get("/certificates", response_class=HTMLResponse)
def certificates(request: Request, user: UserDep) -> Response:
    return _certificates_page(request, user)


@router.post("/certificates/{module}/export-to-production", response_class=HTMLResponse)
def export_certificate(request: Request, module: str, user: UserDep) -> Response:
    with page_operation(request, user, "cert.export", module[:64]) as op:
        result = cot.export_certificate(op, module[:64])
    text = (
        f"Certificate of {module[:64]} exported to update set {result.name} "
        f"({result.entries} entries): open it in Local Update Sets and Export to XML"
    )
    return _certificates_page(request, user, messages=[("success", text)], export=result.to_dict())


def _modules_page(request: Request, user: UserDep, **extra: Any) -> Response:
    with page_operation(request, user, "kmf.read", write=False) as op:
        rows = kmf.list_modules(op.session)
    return render(request, "modules.html", modules=rows, **extra)


@router.get("/modules", response_class=HTMLResponse)
def modules(request: Request, user: UserDep) -> Response:
    return _modules_page(request, user)


@_uploads.post("/modules/import", response_class=HTMLResponse)
def import_key(
    request: Request,
    user: UserDep,
    module: Annotated[str, Form(min_length=1, max_length=64)],
    p12: Annotated[UploadFile, File()],
    password: Annotated[str, Form(max_length=1024)],
) -> Response:
    data = p12.file.read(P12_LIMIT + 1)
    if len(data) > P12_LIMIT:
        raise LimitExceededError(f"the PKCS#12 file is larger than {P12_LIMIT} bytes: refusing it")
    if not data:
        raise BadInputError("the PKCS#12 file is empty: choose the right .p12 file")
    with page_operation(request, user, "kmf.import", module) as op:
        result = kmf.import_pkcs12(op, module, data, password.encode("utf-8"))
    text = (
        f"Imported a {result['algorithm']} key into {result['module']} "
        f"(certificate {result['certificate'][:16]}…, {result['subject']})"
    )
    return _modules_page(request, user, messages=[("success", text)])


router.include_router(_uploads)
