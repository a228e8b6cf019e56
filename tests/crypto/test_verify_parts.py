"""Verifying a long message hashed in parts: the same verdict as over the whole message."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from trustcircle.crypto import algorithms
from trustcircle.crypto.algorithms import PrivateKey, algorithm_for_key

PARTS = [b'{"entries":[', b'{"a":"1"}', b',{"b":"2"}' * 500, b'],"format":"x"}']


@pytest.fixture(scope="module", params=["rsa", "ec", "ed25519"])
def key(request: pytest.FixtureRequest) -> PrivateKey:
    if request.param == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    if request.param == "ec":
        return ec.generate_private_key(ec.SECP384R1())
    return ed25519.Ed25519PrivateKey.generate()


def test_parts_verify_exactly_when_the_whole_message_does(key: PrivateKey) -> None:
    alg = algorithm_for_key(key)
    signature = algorithms.sign(alg, key, b"".join(PARTS))
    public = key.public_key()
    assert algorithms.verify_parts(alg, public, signature, iter(PARTS))
    assert algorithms.verify_parts(alg, public, signature, [b"".join(PARTS)])
    altered = [*PARTS[:-1], b'],"format":"y"}']
    assert not algorithms.verify_parts(alg, public, signature, altered)
    assert not algorithms.verify_parts(alg, public, signature[:-1], PARTS)


def test_parts_under_the_wrong_algorithm_do_not_verify(key: PrivateKey) -> None:
    alg = algorithm_for_key(key)
    signature = algorithms.sign(alg, key, b"".join(PARTS))
    other = next(a for a in algorithms.Algorithm if a is not alg)
    assert not algorithms.verify_parts(other, key.public_key(), signature, PARTS)


@pytest.mark.parametrize("kind", ["dsa", "x25519"])
def test_a_key_no_signer_uses_fails_verification_without_raising(kind: str) -> None:
    """A carried certificate may hold any key type: naming it in a signature or manifest
    must be a failed check, not a crash of the preview."""
    from cryptography.hazmat.primitives.asymmetric import dsa, x25519

    public = (
        dsa.generate_private_key(2048).public_key()
        if kind == "dsa"
        else x25519.X25519PrivateKey.generate().public_key()
    )
    for alg in algorithms.Algorithm:
        assert not algorithms.verify(alg, public, b"\x01" * 64, b"data")  # type: ignore[arg-type]
        assert not algorithms.verify_parts(alg, public, b"\x01" * 64, PARTS)  # type: ignore[arg-type]
