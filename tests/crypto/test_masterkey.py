"""The master key: sealing private keys at rest, and refusing unsafe key files."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives import serialization

from trustcircle.crypto.masterkey import (
    KEY_BYTES,
    NONCE_BYTES,
    MasterKey,
    private_key_from_der,
    private_key_to_der,
)
from trustcircle.errors import BadInputError, PolicyError, VerificationError

if TYPE_CHECKING:
    from tests.conftest import SessionPki

AAD = b"crypto_module:cm_code_signing"


def test_seal_then_open_round_trips() -> None:
    key = MasterKey.generate()
    blob = key.seal(b"private key bytes", AAD)
    assert key.open(blob, AAD) == b"private key bytes"
    assert b"private key bytes" not in blob


def test_sealing_twice_gives_different_blobs() -> None:
    key = MasterKey.generate()
    assert key.seal(b"same", AAD) != key.seal(b"same", AAD)


@pytest.mark.parametrize("where", [0, NONCE_BYTES, NONCE_BYTES + 5, -1])
def test_tampered_blob_is_refused(where: int) -> None:
    key = MasterKey.generate()
    blob = bytearray(key.seal(b"secret key material", AAD))
    blob[where] ^= 0x01
    with pytest.raises(VerificationError, match="failed authentication"):
        key.open(bytes(blob), AAD)


def test_sealed_key_moved_to_another_module_is_refused() -> None:
    key = MasterKey.generate()
    blob = key.seal(b"signing key", AAD)
    with pytest.raises(VerificationError):
        key.open(blob, b"crypto_module:cm_runtime")


def test_blob_sealed_under_another_master_key_is_refused() -> None:
    blob = MasterKey.generate().seal(b"signing key", AAD)
    with pytest.raises(VerificationError, match="another master key"):
        MasterKey.generate().open(blob, AAD)


def test_truncated_blob_is_refused() -> None:
    key = MasterKey.generate()
    with pytest.raises(VerificationError, match="too short"):
        key.open(key.seal(b"", AAD)[:20], AAD)


def test_save_writes_owner_only_and_load_reads_it_back(tmp_path: Path) -> None:
    key = MasterKey.generate()
    path = tmp_path / "master.key"
    key.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.stat().st_size == KEY_BYTES
    blob = key.seal(b"x", AAD)
    assert MasterKey.load(path).open(blob, AAD) == b"x"


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_key_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "master.key"
    MasterKey.generate().save(path)
    path.chmod(mode)
    with pytest.raises(PolicyError, match=f"mode {mode:04o}.*chmod 600"):
        MasterKey.load(path)


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_key_file_of_wrong_length_is_refused(tmp_path: Path, size: int) -> None:
    path = tmp_path / "master.key"
    path.write_bytes(os.urandom(size))
    path.chmod(0o600)
    with pytest.raises(BadInputError, match="not a master key"):
        MasterKey.load(path)


def test_missing_key_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="does not exist"):
        MasterKey.load(tmp_path / "absent.key")


def test_symlinked_key_file_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real.key"
    MasterKey.generate().save(real)
    link = tmp_path / "master.key"
    link.symlink_to(real)
    with pytest.raises(BadInputError, match="not a link"):
        MasterKey.load(link)


def test_repr_does_not_reveal_the_key() -> None:
    raw = os.urandom(KEY_BYTES)
    key = MasterKey(raw)
    assert raw.hex() not in repr(key)
    assert repr(raw) not in repr(key)


@pytest.mark.parametrize("name", ["code_signing", "ec_p384", "ed25519"])
def test_private_key_survives_der_and_sealing(test_pki: SessionPki, name: str) -> None:
    original = getattr(test_pki, name).key
    master = MasterKey.generate()
    der = master.open(master.seal(private_key_to_der(original), AAD), AAD)
    restored = private_key_from_der(der)
    assert restored.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ) == private_key_to_der(original)
    assert private_key_from_der(der, validate=True).public_key() == original.public_key()


def test_garbage_der_is_refused() -> None:
    with pytest.raises(BadInputError, match="not valid PKCS#8"):
        private_key_from_der(b"\x30\x03\x02\x01\x00")


def test_derived_keys_are_stable_per_purpose_and_differ_from_the_master_key() -> None:
    key = MasterKey.generate()
    first = key.derive(b"preview-receipt/v1")
    assert first == key.derive(b"preview-receipt/v1")
    assert len(first) == 32
    assert first != key.derive(b"other-purpose/v1")
    assert first not in (key._key, MasterKey.generate().derive(b"preview-receipt/v1"))
