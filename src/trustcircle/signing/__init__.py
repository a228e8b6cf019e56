"""Signed records: canonical payloads, signature configurations, signing and verdicts (DESIGN §4).

Pure: no database, no clock, no files. Keys and trust decisions come in as arguments.
"""

from .canonical import canonical_json
from .configs import (
    BUILTIN_CONFIGS,
    CIRCLE_OF_TRUST,
    CODE_SIGNING,
    ECC_NOTARIZATION,
    REVOCATION_CONFIG,
    WILDCARD,
    WILDCARD_TABLES,
    SignatureConfig,
    check_purpose,
    with_subsystem,
)
from .model import SIGNATURE_FIELDS, SIGNATURE_TABLE, SignatureRecord
from .payload import RECORD_SIGNATURE_FORMAT, record_signature_payload
from .receipts import Receipts
from .sign import sign_record
from .verify import (
    CLOCK_SKEW,
    CertTrust,
    RecordVerification,
    RecordVerifier,
    SignatureCheck,
    Verdict,
)

__all__ = [
    "BUILTIN_CONFIGS",
    "CIRCLE_OF_TRUST",
    "CLOCK_SKEW",
    "CODE_SIGNING",
    "ECC_NOTARIZATION",
    "RECORD_SIGNATURE_FORMAT",
    "REVOCATION_CONFIG",
    "SIGNATURE_FIELDS",
    "SIGNATURE_TABLE",
    "WILDCARD",
    "WILDCARD_TABLES",
    "CertTrust",
    "Receipts",
    "RecordVerification",
    "RecordVerifier",
    "SignatureCheck",
    "SignatureConfig",
    "SignatureRecord",
    "Verdict",
    "canonical_json",
    "check_purpose",
    "record_signature_payload",
    "sign_record",
    "with_subsystem",
]
