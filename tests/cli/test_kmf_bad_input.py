"""Every bad key or certificate gets one clear line, its exit code, and nothing stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import Cli
from tests.conftest import SessionPki
from trustcircle.crypto import fingerprint_of


def _import(cli: Cli, home: Path, p12: Path, password_file: Path, module: str = "cm_code_signing"):  # type: ignore[no-untyped-def]
    return cli(
        "kmf",
        "import",
        "--home",
        home,
        "--module",
        module,
        "--p12",
        p12,
        "--password-file",
        password_file,
    )


def _nothing_stored(cli: Cli, home: Path) -> None:
    modules = cli("kmf", "modules", "--home", home, "--json").json()
    assert not any(m["has_key"] for m in modules)
    certs = cli("kmf", "certs", "--home", home, "--json").json()
    assert certs == []


@pytest.fixture
def anchored_home(cli: Cli, home: Path, test_pki: SessionPki) -> Path:
    assert cli("trust-anchor", "add", test_pki.files.root_pem, "--home", home).code == 0
    return home


def test_good_import_then_listed_valid(cli: Cli, anchored_home: Path, test_pki: SessionPki) -> None:
    result = _import(
        cli, anchored_home, test_pki.files.p12["code_signing"], test_pki.files.password_file
    )
    assert result.code == 0, result.err
    certs = cli("kmf", "certs", "--home", anchored_home, "--json").json()
    leaf = next(c for c in certs if c["module"] == "cm_code_signing")
    assert leaf["status"] == "valid"
    assert leaf["trusted"] is True


def test_wrong_password(
    cli: Cli, anchored_home: Path, test_pki: SessionPki, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("not the password")
    result = _import(cli, anchored_home, test_pki.files.p12["code_signing"], wrong)
    assert result.code == 2
    assert "wrong password" in result.err
    assert result.err.count("\n") == 1
    _nothing_stored(cli, anchored_home)


@pytest.mark.parametrize(
    ("which", "code", "words"),
    [
        ("truncated_p12", 2, "PKCS#12"),
        ("mismatched_p12", 2, "does not match"),
    ],
)
def test_broken_pkcs12(
    cli: Cli, anchored_home: Path, test_pki: SessionPki, which: str, code: int, words: str
) -> None:
    result = _import(
        cli, anchored_home, getattr(test_pki.files, which), test_pki.files.password_file
    )
    assert result.code == code
    assert words in result.err
    assert "Traceback" not in result.err
    _nothing_stored(cli, anchored_home)


def test_corrupt_file_that_is_not_pkcs12(
    cli: Cli, anchored_home: Path, test_pki: SessionPki, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.p12"
    junk.write_bytes(b"\x30\x82not a pkcs12 file at all" * 10)
    result = _import(cli, anchored_home, junk, test_pki.files.password_file)
    assert result.code == 2
    _nothing_stored(cli, anchored_home)


@pytest.mark.parametrize(
    ("leaf", "words"),
    [
        ("self_signed", "self-signed"),
        ("expired", "expired"),
        ("not_yet_valid", "not yet valid"),
        ("unknown_ca", "trust-anchor add"),
        ("rsa2048", "2048"),
        ("no_digital_signature", "digitalSignature"),
        ("wrong_eku", "codeSigning"),
    ],
)
def test_refused_certificates(
    cli: Cli, anchored_home: Path, test_pki: SessionPki, leaf: str, words: str
) -> None:
    result = _import(cli, anchored_home, test_pki.files.p12[leaf], test_pki.files.password_file)
    assert result.code == 1, result.err
    assert words in result.err
    assert result.err.count("\n") == 1
    _nothing_stored(cli, anchored_home)
    last = cli("audit", "list", "--home", anchored_home, "--json", "--limit", "1").json()[0]
    assert (last["action"], last["outcome"]) == ("kmf.import", "refused")


def test_no_anchor_yet_means_no_import(cli: Cli, home: Path, test_pki: SessionPki) -> None:
    result = _import(cli, home, test_pki.files.p12["code_signing"], test_pki.files.password_file)
    assert result.code == 1
    assert "trust-anchor add" in result.err
    _nothing_stored(cli, home)


def test_unknown_module(cli: Cli, anchored_home: Path, test_pki: SessionPki) -> None:
    result = _import(
        cli,
        anchored_home,
        test_pki.files.p12["code_signing"],
        test_pki.files.password_file,
        module="cm_everything",
    )
    assert result.code == 2
    assert "unknown crypto module" in result.err


def test_protected_instance_refuses_signing_keys(
    cli: Cli, tmp_path: Path, test_pki: SessionPki
) -> None:
    prod = tmp_path / "prod"
    assert cli("init", "--home", prod, "--role", "protected", "--name", "prod").code == 0
    assert cli("trust-anchor", "add", test_pki.files.root_pem, "--home", prod).code == 0
    result = _import(cli, prod, test_pki.files.p12["code_signing"], test_pki.files.password_file)
    assert result.code == 1
    assert "never reach a protected instance" in result.err
    ok = _import(
        cli, prod, test_pki.files.p12["runtime"], test_pki.files.password_file, module="cm_runtime"
    )
    assert ok.code == 0, ok.err


def test_rogue_root_on_a_protected_instance_is_refused_after_the_first(
    cli: Cli, tmp_path: Path, test_pki: SessionPki
) -> None:
    """A local admin of production must not widen the circle with a CA of their own."""
    prod = tmp_path / "prod"
    assert cli("init", "--home", prod, "--role", "protected", "--name", "prod").code == 0
    assert cli("trust-anchor", "add", test_pki.files.root_pem, "--home", prod).code == 0
    again = cli("trust-anchor", "add", test_pki.files.root_pem, "--home", prod)
    assert again.code == 0, again.err  # the same root again changes nothing
    rogue = cli("trust-anchor", "add", test_pki.files.other_root_pem, "--home", prod)
    assert rogue.code == 1
    assert "only through verified Circle-of-Trust update sets" in rogue.err
    assert len(rogue.err.strip().splitlines()) == 1
    anchors = cli("trust-anchor", "list", "--home", prod, "--json").json()
    assert [a["fingerprint"] for a in anchors] == [fingerprint_of(test_pki.root)]
    last = cli("audit", "list", "--home", prod, "--json", "--limit", "1").json()[0]
    assert (last["action"], last["outcome"]) == ("trust_anchor.add", "refused")


def test_trusted_instance_may_trust_a_second_root(
    cli: Cli, anchored_home: Path, test_pki: SessionPki
) -> None:
    result = cli("trust-anchor", "add", test_pki.files.other_root_pem, "--home", anchored_home)
    assert result.code == 0, result.err
    assert len(cli("trust-anchor", "list", "--home", anchored_home, "--json").json()) == 2


def test_leaf_as_trust_anchor_is_refused(cli: Cli, home: Path, test_pki: SessionPki) -> None:
    result = cli("trust-anchor", "add", test_pki.files.cert_pem["code_signing"], "--home", home)
    assert result.code in (1, 2)
    assert "CA" in result.err
    assert cli("trust-anchor", "list", "--home", home, "--json").json() == []


def test_private_keys_never_in_plaintext_at_rest(
    cli: Cli, signing_home: Path, test_pki: SessionPki
) -> None:
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
    )

    blobs = b"".join(p.read_bytes() for p in signing_home.rglob("*") if p.is_file())
    for leaf in (test_pki.code_signing, test_pki.code_attest):
        for fmt in (PrivateFormat.PKCS8, PrivateFormat.TraditionalOpenSSL):
            der = leaf.key.private_bytes(Encoding.DER, fmt, NoEncryption())
            pem = leaf.key.private_bytes(Encoding.PEM, fmt, NoEncryption())
            assert der[-256:] not in blobs
            assert pem[40:200] not in blobs
        # the private exponent alone must not appear either
        d = leaf.key.private_numbers().d  # type: ignore[union-attr]
        assert d.to_bytes((d.bit_length() + 7) // 8, "big")[:64] not in blobs


def test_one_key_pair_cannot_serve_two_modules(
    cli: Cli, anchored_home: Path, test_pki: SessionPki
) -> None:
    p12, password = test_pki.files.p12["code_signing"], test_pki.files.password_file
    assert _import(cli, anchored_home, p12, password).code == 0
    refused = _import(cli, anchored_home, p12, password, module="cm_code_attest")
    assert refused.code == 1
    assert "already the key of cm_code_signing" in refused.err
    modules = {
        m["module"]: m for m in cli("kmf", "modules", "--home", anchored_home, "--json").json()
    }
    assert modules["cm_code_attest"]["has_key"] is False
