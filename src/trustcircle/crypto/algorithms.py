"""The three signature algorithms of DESIGN §4, by name, over raw payload bytes."""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable
from typing import TypeAlias

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from ..errors import PolicyError, UsageError

PrivateKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey: TypeAlias = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
_PUBLIC_KEYS = (rsa.RSAPublicKey, ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey)
"""The key types a signature may verify under; a certificate may carry others (DSA, X25519)."""

MIN_RSA_BITS = 3072
CREATED_RSA_BITS = 4096


class Algorithm(str, enum.Enum):
    """Signature algorithm names as they appear in signature records."""

    RSA_PKCS1_SHA512 = "RSASSA_PKCS1_V1_5_SHA_512"
    ECDSA_P384_SHA384 = "ECDSA_P384_SHA384"
    ED25519 = "ED25519"

    @classmethod
    def parse(cls, name: str) -> Algorithm:
        try:
            return cls(name)
        except ValueError as exc:
            known = ", ".join(a.value for a in cls)
            raise UsageError(f"unknown signature algorithm {name!r}: use one of {known}") from exc


DEFAULT_ALGORITHM = Algorithm.RSA_PKCS1_SHA512


def check_key_policy(key: PrivateKey | PublicKey) -> None:
    """Refuse keys trustcircle does not accept: RSA < 3072 bits, curves other than P-384."""
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise PolicyError(
                f"RSA key of {key.key_size} bits is too weak: use RSA of at least "
                f"{MIN_RSA_BITS} bits (4096 recommended), EC P-384 or Ed25519"
            )
        return
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP384R1):
            raise PolicyError(
                f"EC curve {key.curve.name} is not accepted: use EC P-384, RSA >= 3072 or Ed25519"
            )
        return
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return
    raise PolicyError(
        f"key type {type(key).__name__} is not accepted: use RSA >= 3072, EC P-384 or Ed25519"
    )


def algorithm_for_key(key: PrivateKey | PublicKey) -> Algorithm:
    """The one algorithm a key of this type signs with."""
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return Algorithm.RSA_PKCS1_SHA512
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return Algorithm.ECDSA_P384_SHA384
    return Algorithm.ED25519


def _check_pair(alg: Algorithm, key: PrivateKey | PublicKey) -> None:
    if algorithm_for_key(key) is not alg:
        raise UsageError(
            f"algorithm {alg.value} does not fit a {type(key).__name__.lstrip('_')} key: "
            f"use {algorithm_for_key(key).value}"
        )


def sign(alg: Algorithm, key: PrivateKey, data: bytes) -> bytes:
    """Sign *data* with *key* under *alg*; ECDSA signatures are DER."""
    _check_pair(alg, key)
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA512())
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA384()))
    return key.sign(data)


def verify(alg: Algorithm, key: PublicKey, signature: bytes, data: bytes) -> bool:
    """True when *signature* is *alg*'s signature of *data* under *key*; never raises."""
    if not isinstance(key, _PUBLIC_KEYS) or algorithm_for_key(key) is not alg:
        return False
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA512())
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(hashes.SHA384()))
        else:
            key.verify(signature, data)
    except (InvalidSignature, UnsupportedAlgorithm, ValueError):
        return False
    return True


def verify_parts(alg: Algorithm, key: PublicKey, signature: bytes, parts: Iterable[bytes]) -> bool:
    """:func:`verify` over the concatenation of *parts*, hashed as they come for RSA and
    ECDSA (a long message is never held whole); Ed25519 needs the whole message."""
    if not isinstance(key, _PUBLIC_KEYS) or algorithm_for_key(key) is not alg:
        return False
    if isinstance(key, ed25519.Ed25519PublicKey):
        return verify(alg, key, signature, b"".join(parts))
    digest = hashlib.sha512() if isinstance(key, rsa.RSAPublicKey) else hashlib.sha384()
    for part in parts:
        digest.update(part)
    try:
        if isinstance(key, rsa.RSAPublicKey):
            prehashed = Prehashed(hashes.SHA512())
            key.verify(signature, digest.digest(), padding.PKCS1v15(), prehashed)
        else:
            key.verify(signature, digest.digest(), ec.ECDSA(Prehashed(hashes.SHA384())))
    except (InvalidSignature, UnsupportedAlgorithm, ValueError):
        return False
    return True
