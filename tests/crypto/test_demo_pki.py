"""The demo PKI: files, modes, and bundles that import and validate against its root."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from trustcircle._time import system_clock
from trustcircle.crypto.certs import is_self_signed, load_pem_certificate
from trustcircle.crypto.chain import ChainValidator, validate_anchor
from trustcircle.crypto.demo_pki import MODULES, DemoPki, make_demo_pki
from trustcircle.crypto.pkcs12 import load_pkcs12
from trustcircle.errors import UsageError


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoPki, list[str]]:
    steps: list[str] = []
    out = tmp_path_factory.mktemp("demo") / "pki"
    return make_demo_pki(out, None, system_clock(), steps.append), steps


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_demo_pki_writes_the_expected_files(demo: tuple[DemoPki, list[str]]) -> None:
    pki, _ = demo
    folder = pki.root_ca.parent
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["root-ca.pem", "intermediate-ca.pem", "password.txt", *(f"{m}.p12" for m in MODULES)]
    )
    assert pki.password_file == folder / "password.txt"
    assert pki.password_file.read_bytes() == pki.password
    assert len(pki.password) >= 24
    assert pki.bundles == {m: folder / f"{m}.p12" for m in MODULES}


def test_demo_secrets_are_owner_only(demo: tuple[DemoPki, list[str]]) -> None:
    pki, _ = demo
    assert pki.password_file is not None
    assert _mode(pki.password_file) == 0o600
    for path in pki.bundles.values():
        assert _mode(path) == 0o600
    assert _mode(pki.root_ca) == 0o644


def test_demo_password_is_not_in_repr_or_listing(demo: tuple[DemoPki, list[str]]) -> None:
    pki, _ = demo
    assert pki.password.decode() not in repr(pki)
    listing = pki.to_dict()
    assert pki.password.decode() not in str(listing)
    assert listing["cm_code_attest"] == str(pki.code_attest)
    assert listing["password_file"] == str(pki.password_file)


def test_demo_bundles_import_and_validate_against_the_root(
    demo: tuple[DemoPki, list[str]],
) -> None:
    pki, _ = demo
    now = system_clock()
    root = load_pem_certificate(pki.root_ca.read_bytes(), "root")
    inter = load_pem_certificate(pki.intermediate_ca.read_bytes(), "intermediate")
    assert is_self_signed(root)
    validate_anchor(root, now)
    validator = ChainValidator([root])
    for module, path in pki.bundles.items():
        bundle = load_pkcs12(path.read_bytes(), pki.password)
        assert bundle.chain == (inter,)
        assert isinstance(bundle.private_key, rsa.RSAPrivateKey)
        assert bundle.private_key.key_size == 4096
        assert module in bundle.certificate.subject.rfc4514_string()
        eku = bundle.certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert ExtendedKeyUsageOID.CODE_SIGNING in eku
        chain = validator.validate_signing_certificate(bundle.certificate, bundle.chain, now)
        assert chain == (bundle.certificate, inter, root)


def test_demo_validity_periods(demo: tuple[DemoPki, list[str]]) -> None:
    pki, _ = demo
    root = load_pem_certificate(pki.root_ca.read_bytes(), "root")
    leaf = load_pkcs12(pki.code_signing.read_bytes(), pki.password).certificate
    assert 3600 <= (root.not_valid_after_utc - root.not_valid_before_utc).days <= 3700
    assert 700 <= (leaf.not_valid_after_utc - leaf.not_valid_before_utc).days <= 740


def test_demo_reports_each_step(demo: tuple[DemoPki, list[str]]) -> None:
    _, steps = demo
    assert any("root CA" in s for s in steps)
    for module in MODULES:
        assert any(module in s for s in steps)
    assert any("password" in s for s in steps)


def test_demo_pki_refuses_to_overwrite_an_existing_pki(tmp_path: Path) -> None:
    (tmp_path / "root-ca.pem").write_text("someone's real root")
    with pytest.raises(UsageError, match=r"already holds root-ca\.pem"):
        make_demo_pki(tmp_path, b"pw", system_clock())
    assert (tmp_path / "root-ca.pem").read_text() == "someone's real root"


def test_demo_pki_refuses_an_empty_password(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="must not be empty"):
        make_demo_pki(tmp_path, b"", system_clock())
