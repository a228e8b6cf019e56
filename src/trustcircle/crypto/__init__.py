"""Key management primitives: algorithms, certificates, PKCS#12, chains, the master key.

Software keys only; everything here is pure apart from :class:`MasterKey` file
access and :func:`make_demo_pki`.
"""

from trustcircle.crypto.algorithms import (
    CREATED_RSA_BITS,
    DEFAULT_ALGORITHM,
    MIN_RSA_BITS,
    Algorithm,
    PrivateKey,
    PublicKey,
    algorithm_for_key,
    check_key_policy,
    sign,
    verify,
)
from trustcircle.crypto.certs import (
    CertificateInfo,
    CertStatus,
    cert_to_pem,
    certificate_status,
    describe_certificate,
    fingerprint_of,
    is_ca,
    is_self_signed,
    load_pem_certificate,
    load_pem_certificates,
)
from trustcircle.crypto.chain import ChainValidator, ChainVerificationError, validate_anchor
from trustcircle.crypto.demo_pki import DemoPki, make_demo_pki
from trustcircle.crypto.masterkey import MasterKey, private_key_from_der, private_key_to_der
from trustcircle.crypto.pkcs12 import KeyBundle, load_pkcs12
from trustcircle.crypto.pki import (
    CODE_SIGNING,
    export_pkcs12,
    issue_ca,
    issue_leaf,
    new_ec_key,
    new_ed25519_key,
    new_rsa_key,
    self_signed_leaf,
)

__all__ = [
    "CODE_SIGNING",
    "CREATED_RSA_BITS",
    "DEFAULT_ALGORITHM",
    "MIN_RSA_BITS",
    "Algorithm",
    "CertStatus",
    "CertificateInfo",
    "ChainValidator",
    "ChainVerificationError",
    "DemoPki",
    "KeyBundle",
    "MasterKey",
    "PrivateKey",
    "PublicKey",
    "algorithm_for_key",
    "cert_to_pem",
    "certificate_status",
    "check_key_policy",
    "describe_certificate",
    "export_pkcs12",
    "fingerprint_of",
    "is_ca",
    "is_self_signed",
    "issue_ca",
    "issue_leaf",
    "load_pem_certificate",
    "load_pem_certificates",
    "load_pkcs12",
    "make_demo_pki",
    "new_ec_key",
    "new_ed25519_key",
    "new_rsa_key",
    "private_key_from_der",
    "private_key_to_der",
    "self_signed_leaf",
    "sign",
    "validate_anchor",
    "verify",
]
