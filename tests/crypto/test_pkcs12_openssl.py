"""Interoperability: a PKI made with the real ``openssl`` CLI imports and validates.

Covers what operators actually run: ``openssl req -x509`` roots (no keyUsage),
``openssl x509 -req`` with an extension file, and ``openssl pkcs12 -export`` in
both the OpenSSL 3 default (AES-256/PBKDF2) and ``-legacy`` (RC2/3DES) formats,
with and without the CA chain. Also checks that OpenSSL reads what trustcircle
exports.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from cryptography import x509

from trustcircle._time import system_clock
from trustcircle.crypto.certs import load_pem_certificate
from trustcircle.crypto.chain import ChainValidator, validate_anchor
from trustcircle.crypto.pkcs12 import load_pkcs12
from trustcircle.crypto.pki import export_pkcs12
from trustcircle.errors import BadInputError

if TYPE_CHECKING:
    from tests.conftest import SessionPki

PASSWORD = "openssl-made pass"

_CA_EXT = "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n"
_LEAF_EXT = (
    "basicConstraints=critical,CA:FALSE\n"
    "keyUsage=critical,digitalSignature\n"
    "extendedKeyUsage=codeSigning\n"
)


def _openssl(*args: str | Path, cwd: Path) -> None:
    result = subprocess.run(
        ["openssl", *map(str, args)], cwd=cwd, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"openssl {' '.join(map(str, args))} failed: {result.stderr}"


@dataclass(frozen=True)
class OpensslPki:
    folder: Path
    root: x509.Certificate
    intermediate: x509.Certificate

    def p12(self, name: str) -> bytes:
        return (self.folder / name).read_bytes()


@pytest.fixture(scope="module")
def openssl_pki(tmp_path_factory: pytest.TempPathFactory) -> OpensslPki:
    d = tmp_path_factory.mktemp("openssl")
    (d / "ca.ext").write_text(_CA_EXT)
    (d / "leaf.ext").write_text(_LEAF_EXT)
    (d / "pass.txt").write_text(PASSWORD)
    # Root: a plain `req -x509` (OpenSSL's v3_ca: basicConstraints, key ids, no keyUsage).
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:3072",
        "-nodes",
        "-keyout",
        "root.key",
        "-out",
        "root.pem",
        "-subj",
        "/O=Acme/CN=Acme Root",
        "-days",
        "365",
        cwd=d,
    )
    # Intermediate: EC P-384, issued by the root.
    _openssl(
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-384",
        "-nodes",
        "-keyout",
        "inter.key",
        "-out",
        "inter.csr",
        "-subj",
        "/O=Acme/CN=Acme Signing CA",
        cwd=d,
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        "inter.csr",
        "-CA",
        "root.pem",
        "-CAkey",
        "root.key",
        "-CAcreateserial",
        "-out",
        "inter.pem",
        "-days",
        "300",
        "-extfile",
        "ca.ext",
        cwd=d,
    )
    # Leaves: RSA-3072 and EC P-384, issued by the intermediate.
    for name, newkey in (
        ("rsa", ["rsa:3072"]),
        ("ec", ["ec", "-pkeyopt", "ec_paramgen_curve:P-384"]),
    ):
        _openssl(
            "req",
            "-newkey",
            *newkey,
            "-nodes",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            "-subj",
            f"/O=Acme/CN=Acme {name} signer",
            cwd=d,
        )
        _openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "inter.pem",
            "-CAkey",
            "inter.key",
            "-CAcreateserial",
            "-out",
            f"{name}.pem",
            "-days",
            "200",
            "-extfile",
            "leaf.ext",
            cwd=d,
        )
    pw = ["-passout", "file:pass.txt"]
    export = ["pkcs12", "-export", "-inkey", "rsa.key", "-in", "rsa.pem"]
    _openssl(*export, "-certfile", "inter.pem", "-out", "modern-chain.p12", *pw, cwd=d)
    _openssl(*export, "-out", "modern-nochain.p12", *pw, cwd=d)
    _openssl(*export, "-legacy", "-certfile", "inter.pem", "-out", "legacy-chain.p12", *pw, cwd=d)
    _openssl(*export, "-legacy", "-out", "legacy-nochain.p12", *pw, cwd=d)
    _openssl(
        "pkcs12",
        "-export",
        "-inkey",
        "ec.key",
        "-in",
        "ec.pem",
        "-certfile",
        "inter.pem",
        "-out",
        "ec-chain.p12",
        *pw,
        cwd=d,
    )
    return OpensslPki(
        folder=d,
        root=load_pem_certificate((d / "root.pem").read_bytes(), "root"),
        intermediate=load_pem_certificate((d / "inter.pem").read_bytes(), "intermediate"),
    )


@pytest.mark.parametrize(
    ("file", "has_chain"),
    [
        ("modern-chain.p12", True),
        ("modern-nochain.p12", False),
        ("legacy-chain.p12", True),
        ("legacy-nochain.p12", False),
        ("ec-chain.p12", True),
    ],
)
def test_openssl_made_p12_imports_and_validates(
    openssl_pki: OpensslPki, file: str, has_chain: bool
) -> None:
    bundle = load_pkcs12(openssl_pki.p12(file), PASSWORD.encode())
    assert bundle.chain == ((openssl_pki.intermediate,) if has_chain else ())
    now = system_clock()
    validate_anchor(openssl_pki.root, now)
    intermediates = bundle.chain or (openssl_pki.intermediate,)
    chain = ChainValidator([openssl_pki.root]).validate_signing_certificate(
        bundle.certificate, intermediates, now
    )
    assert chain == (bundle.certificate, openssl_pki.intermediate, openssl_pki.root)


@pytest.mark.parametrize("file", ["modern-chain.p12", "legacy-chain.p12"])
def test_openssl_made_p12_with_wrong_password_says_so(openssl_pki: OpensslPki, file: str) -> None:
    with pytest.raises(BadInputError, match="wrong password for PKCS#12 file"):
        load_pkcs12(openssl_pki.p12(file), b"guess")


def test_openssl_reads_trustcircle_exports(test_pki: SessionPki, tmp_path: Path) -> None:
    leaf = test_pki.code_signing
    (tmp_path / "out.p12").write_bytes(
        export_pkcs12(leaf.key, leaf.cert, leaf.chain, b"s3cret", "cm_code_signing")
    )
    _openssl(
        "pkcs12",
        "-in",
        "out.p12",
        "-nodes",
        "-passin",
        "pass:s3cret",
        "-out",
        "out.pem",
        cwd=tmp_path,
    )
    text = (tmp_path / "out.pem").read_text()
    assert text.count("BEGIN CERTIFICATE") == 2
    assert "BEGIN PRIVATE KEY" in text
    assert "friendlyName: cm_code_signing" in text
