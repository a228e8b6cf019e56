"""Key management: crypto modules, certificates, trust anchors, certificate exports."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import File, Form, Path, UploadFile, status
from sqlalchemy import select

from ... import cot
from ...errors import BadInputError, LimitExceededError
from ...platform import kmf
from ...platform.rows import CERTIFICATE_FIELDS
from ...store.models import Certificate
from ..deps import InstanceDep, TokenDep, operation
from ._common import api_router

router = api_router("key management")

P12_LIMIT = 1024 * 1024
PEM_LIMIT = 256 * 1024
MAX_CERTIFICATES = 10_000


@router.get("/kmf/modules", summary="Crypto modules and their active keys")
def modules(inst: InstanceDep, token: TokenDep) -> Any:
    with operation(inst, token, "kmf.read", write=False) as op:
        return kmf.list_modules(op.session)


@router.get(
    "/kmf/certificates",
    summary="Certificates with status (valid / expiring soon / expired) and trust",
)
def certificates(inst: InstanceDep, token: TokenDep) -> Any:
    with operation(inst, token, "kmf.read", write=False) as op:
        return kmf.list_certificates(op.session, op.now)


@router.post(
    "/kmf/import",
    status_code=status.HTTP_201_CREATED,
    summary="Import a PKCS#12 key pair into a crypto module",
    description="Multipart form: `module` (cm_code_signing, cm_code_attest or cm_runtime), "
    f"`p12` (the PKCS#12 file, at most {P12_LIMIT} bytes) and `password`. The certificate "
    "chain is checked against the trust anchors; self-signed leaves are refused.",
)
def import_key(
    inst: InstanceDep,
    token: TokenDep,
    module: Annotated[str, Form(min_length=1, max_length=64)],
    p12: Annotated[UploadFile, File(description="PKCS#12 file.")],
    password: Annotated[str, Form(max_length=1024)],
) -> Any:
    data = _read(p12, P12_LIMIT, "PKCS#12 file")
    with operation(inst, token, "kmf.import", module) as op:
        return kmf.import_pkcs12(op, module, data, password.encode("utf-8"))


@router.get("/trust-anchors", summary="The trust store: CA certificates signatures chain to")
def trust_anchors(inst: InstanceDep, token: TokenDep) -> Any:
    with operation(inst, token, "trust_anchor.read", write=False) as op:
        return kmf.list_anchors(op.session)


@router.post(
    "/trust-anchors",
    status_code=status.HTTP_201_CREATED,
    summary="Add a CA certificate to the trust store",
    description=f"Multipart form with one file field `certificate` (PEM, at most {PEM_LIMIT} "
    "bytes).",
)
def add_trust_anchor(
    inst: InstanceDep,
    token: TokenDep,
    certificate: Annotated[UploadFile, File(description="PEM file of the CA certificate.")],
) -> Any:
    pem = _read(certificate, PEM_LIMIT, "CA certificate file")
    target = (certificate.filename or "upload")[:200]
    with operation(inst, token, "trust_anchor.add", target) as op:
        return kmf.add_trust_anchor(op, pem)


@router.get(
    "/sn_kmf/signature/certificates",
    summary="The verification certificates (sys_certificate records)",
    description="Every certificate this instance knows, with the DESIGN §4 keys including "
    "`pem`. MID servers read them as candidates only: trust comes from their pinned anchors.",
)
def verification_certificates(inst: InstanceDep, token: TokenDep) -> Any:
    with operation(inst, token, "certificate.read", write=False) as op:
        rows = op.session.scalars(
            select(Certificate)
            .order_by(Certificate.module, Certificate.name, Certificate.sys_id)
            .limit(MAX_CERTIFICATES)
        )
        return [
            {"sys_id": r.sys_id, **{k: getattr(r, k) for k in CERTIFICATE_FIELDS}} for r in rows
        ]


@router.post(
    "/certificates/{module}/export-to-production",
    status_code=status.HTTP_201_CREATED,
    summary="Create update set code_signing_key_publicsigver_<module> (trusted only)",
)
def export_to_production(
    module: Annotated[str, Path(max_length=64, description="cm_code_signing or cm_code_attest.")],
    inst: InstanceDep,
    token: TokenDep,
) -> Any:
    with operation(inst, token, "cert.export", module) as op:
        return cot.export_certificate(op, module).to_dict()


def _read(upload: UploadFile, limit: int, what: str) -> bytes:
    """The uploaded file's bytes, refused when over *limit*."""
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        raise LimitExceededError(f"{what} is larger than {limit} bytes: refusing it")
    if not data:
        raise BadInputError(f"{what} is empty: upload the right file")
    return data
