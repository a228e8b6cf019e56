"""The instance master key: 32 random bytes that seal private keys at rest (AES-256-GCM).

The key file holds the raw 32 bytes, mode 0600. A sealed blob is
``nonce (12 bytes) || ciphertext || tag (16 bytes)``; the *aad* binds it to its
context (e.g. the crypto module it belongs to), so a blob moved elsewhere fails.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from trustcircle._fs import write_secret
from trustcircle.crypto.algorithms import PrivateKey
from trustcircle.errors import BadInputError, PolicyError, VerificationError

KEY_BYTES = 32
NONCE_BYTES = 12
_TAG_BYTES = 16
MAX_SEALED_BYTES = 1024 * 1024
"""Largest blob :meth:`MasterKey.open` accepts (a sealed RSA-4096 key is ~2.4 KiB)."""


class MasterKey:
    """An AES-256-GCM key that seals and opens secrets; its bytes never appear in repr."""

    __slots__ = ("_aead", "_key")

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise BadInputError(f"master key must be {KEY_BYTES} bytes, got {len(key)}")
        self._aead = AESGCM(key)
        self._key = key

    def __repr__(self) -> str:
        return "MasterKey(<secret>)"

    @classmethod
    def generate(cls) -> MasterKey:
        """A new random master key."""
        return cls(os.urandom(KEY_BYTES))

    @classmethod
    def load(cls, path: Path) -> MasterKey:
        """Read the key file at *path*; refuse one readable by group or others, or of wrong size."""
        path = Path(path)
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError as exc:
            raise BadInputError(
                f"master key file {str(path)!r} does not exist: check the instance home "
                "(it is created by `trustcircle init`)"
            ) from exc
        except OSError as exc:
            raise BadInputError(
                f"master key file {str(path)!r} cannot be opened ({exc.strerror}): "
                "it must be a regular file owned by the instance's user, not a link"
            ) from exc
        with os.fdopen(fd, "rb") as fh:
            info = os.fstat(fh.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise BadInputError(f"master key file {str(path)!r} is not a regular file")
            mode = stat.S_IMODE(info.st_mode)
            if mode & 0o077:
                raise PolicyError(
                    f"master key file {str(path)!r} is accessible by group or others "
                    f"(mode {mode:04o}): run `chmod 600 {path}` and check who could have read it"
                )
            data = fh.read(KEY_BYTES + 1)
        if len(data) != KEY_BYTES:
            size = "more than" if len(data) > KEY_BYTES else f"{len(data)} bytes, not"
            raise BadInputError(
                f"master key file {str(path)!r} is {size} {KEY_BYTES} bytes: it is damaged or "
                "not a master key; restore it from backup"
            )
        return cls(data)

    def save(self, path: Path) -> None:
        """Write the key to *path* atomically with mode 0600."""
        write_secret(Path(path), self._key)

    def derive(self, purpose: bytes) -> bytes:
        """A 32-byte key for *purpose* (HKDF-SHA256): the master key itself is never reused."""
        return HKDF(hashes.SHA256(), KEY_BYTES, None, b"trustcircle/" + purpose).derive(self._key)

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        """Encrypt and authenticate *plaintext* bound to *aad*: nonce || ciphertext || tag."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, aad)

    def open(self, blob: bytes, aad: bytes) -> bytes:
        """Decrypt a :meth:`seal` blob; :class:`VerificationError` if altered or not ours."""
        if len(blob) > MAX_SEALED_BYTES:
            raise VerificationError(
                f"sealed data is {len(blob)} bytes, more than the {MAX_SEALED_BYTES} allowed"
            )
        if len(blob) < NONCE_BYTES + _TAG_BYTES:
            raise VerificationError(
                "sealed data is too short to be genuine: it was truncated or altered"
            )
        try:
            return self._aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
        except InvalidTag as exc:
            raise VerificationError(
                "sealed data failed authentication: it was altered, belongs to another record, "
                "or was sealed under another master key; restore the database or master key "
                "from the same backup"
            ) from exc


def private_key_to_der(key: PrivateKey) -> bytes:
    """Unencrypted PKCS#8 DER of *key*: pass it only to :meth:`MasterKey.seal`."""
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def private_key_from_der(der: bytes, *, validate: bool = False) -> PrivateKey:
    """Parse unencrypted PKCS#8 DER (as :func:`private_key_to_der` writes) back into a key.

    Meant for DER that :meth:`MasterKey.open` just authenticated: such a key was
    fully validated when it was imported (:func:`~trustcircle.crypto.pkcs12.load_pkcs12`)
    and AES-GCM proves it is unchanged, so the RSA consistency check (~0.5 s for
    RSA-4096) is skipped unless *validate* is true. Pass ``validate=True`` for DER
    from anywhere else.
    """
    try:
        key = serialization.load_der_private_key(
            der, password=None, unsafe_skip_rsa_key_validation=not validate
        )
    except (ValueError, TypeError) as exc:
        raise BadInputError("stored private key is not valid PKCS#8 DER: re-import it") from exc
    if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        return key
    raise BadInputError(
        f"stored private key is a {type(key).__name__.lstrip('_')}, which trustcircle does not use"
    )
