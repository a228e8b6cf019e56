"""Revoking a trusted friend through a signed Circle-of-Trust update set, end to end.

Each attack test is named after the attack it stops: a stranger revoking friends, a
revocation without its manifest, a revoked certificate brought back, a request written
or made where it must not be.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import Cli, init_home
from tests.conftest import SessionPki
from tests.cot.test_circle import Circle, make_circle
from tests.updatesets.retrieved_sets import SetBuilder
from trustcircle._time import format_ts
from trustcircle._types import SysId
from trustcircle.cot.revoke import check_requests
from trustcircle.crypto import fingerprint_of
from trustcircle.crypto.algorithms import algorithm_for_key
from trustcircle.errors import PolicyError
from trustcircle.jobs import TURN_ON_NAME
from trustcircle.signing import CIRCLE_OF_TRUST, REVOCATION_CONFIG, sign_record
from trustcircle.updatesets._results import ParsedEntry


@pytest.fixture
def circle(cli: Cli, signing_home: Path, tmp_path: Path, test_pki: SessionPki) -> Circle:
    protected = init_home(cli, tmp_path / "prod", "protected", "prod")
    return make_circle(cli, signing_home, protected, tmp_path, test_pki)


def _attest_only(cli: Cli, signing_home: Path, tmp_path: Path, pki: SessionPki) -> Circle:
    """A protected home trusting the root whose only friend is the cm_code_attest certificate."""
    protected = init_home(cli, tmp_path / "prod", "protected", "prod")
    assert cli("trust-anchor", "add", pki.files.root_pem, "--home", protected).code == 0
    c = Circle(cli, signing_home, protected, tmp_path, pki)
    exported = c.ok(
        "cert", "export-to-production", "--module", "cm_code_attest", "--home", signing_home,
        "--json",
    )  # fmt: skip
    c.bring(exported.json()["update_set"])
    return c


def _fp(pki: SessionPki, leaf: str) -> str:
    return fingerprint_of(getattr(pki, leaf).cert)


def _revoke(c: Circle, fingerprint: str, reason: str = "key compromised") -> str:
    made = c.ok("cot", "revoke", fingerprint, "--reason", reason, "--home", c.trusted, "--json")
    data: dict[str, Any] = made.json()
    assert data["name"] == f"cot_revocation_{fingerprint[:16]}"
    return str(data["update_set"])


def _friends(c: Circle) -> dict[str, dict[str, Any]]:
    listed = c.ok("cot", "friends", "--home", c.protected, "--json").json()
    return {f["fingerprint"]: f for f in listed}


def _last_audit(c: Circle) -> dict[str, Any]:
    entry: dict[str, Any] = c.ok(
        "audit", "list", "--home", c.protected, "--json", "--limit", "1"
    ).json()[0]
    return entry


def test_a_revoked_friend_can_no_longer_bring_signed_jobs(circle: Circle) -> None:
    attest = _fp(circle.pki, "code_attest")
    signing = _fp(circle.pki, "code_signing")
    retrieved = circle.load(_revoke(circle, attest))  # the compromised key revokes itself
    report = circle.ok("updateset", "preview", retrieved, "--home", circle.protected, "--json")
    assert report.json()["circle_of_trust"] is True
    committed = circle.ok("updateset", "commit", retrieved, "--home", circle.protected, "--json")
    assert committed.json()["friends_revoked"] == [attest]
    friends = _friends(circle)
    assert friends[attest]["revoked"] is True
    assert friends[signing]["revoked"] is False  # only the named certificate leaves
    job = circle.load(str(circle.export_job(TURN_ON_NAME)["update_set"]))
    preview = circle.ok("updateset", "preview", job, "--home", circle.protected, "--json").json()
    assert preview["committable"] is False
    assert "revoked" in " ".join(p["description"] for p in preview["problems"])
    assert circle.on_protected("updateset", "commit", job).code == 1
    assert circle.prop("com.snc.kmf.signature.validation.flag") == "false"


def test_revocation_signed_by_a_stranger_is_refused(
    cli: Cli, signing_home: Path, tmp_path: Path, test_pki: SessionPki
) -> None:
    """A certificate that chains to the root but never joined this circle revokes nothing:
    here another trusted instance attests with the code-signing key pair."""
    circle = _attest_only(cli, signing_home, tmp_path, test_pki)
    stranger = init_home(circle.cli, tmp_path / "stranger", "trusted", "stranger")
    files = circle.pki.files
    circle.ok("trust-anchor", "add", files.root_pem, "--home", stranger)
    circle.ok(
        "kmf", "import", "--home", stranger, "--module", "cm_code_attest",
        "--p12", files.p12["code_signing"], "--password-file", files.password_file,
    )  # fmt: skip
    attest = _fp(circle.pki, "code_attest")
    made = circle.ok("cot", "revoke", attest, "--reason", "hostile", "--home", stranger, "--json")
    xml = tmp_path / "hostile.xml"
    circle.ok("updateset", "export", made.json()["update_set"], "--out", xml, "--home", stranger)
    imported = circle.ok("updateset", "import", xml, "--home", circle.protected, "--json")
    retrieved = imported.json()["sys_id"]
    preview = circle.ok("updateset", "preview", retrieved, "--home", circle.protected, "--json")
    assert preview.json()["committable"] is False
    said = [p["description"] for p in preview.json()["problems"]]
    assert any("not signed by a trusted friend of this instance" in d for d in said), said
    refused = circle.on_protected("updateset", "commit", retrieved, "--accept-remote")
    assert refused.code == 1
    assert "not signed by a trusted friend" in refused.err
    assert len(refused.err.strip().splitlines()) == 1
    assert _friends(circle)[attest]["revoked"] is False
    audit = _last_audit(circle)
    assert (audit["action"], audit["outcome"]) == ("updateset.commit", "refused")


def test_revocation_without_its_manifest_is_blocked(circle: Circle) -> None:
    signing = _fp(circle.pki, "code_signing")
    xml = circle.to_xml(_revoke(circle, signing))
    stripped = re.sub(
        rb"<update_set_signature>.*?</update_set_signature>", b"", xml.read_bytes(), flags=re.S
    )
    bare = xml.with_name("revocation-unsigned.xml")
    bare.write_bytes(stripped)
    imported = circle.ok("updateset", "import", bare, "--home", circle.protected, "--json")
    retrieved = imported.json()["sys_id"]
    preview = circle.ok("updateset", "preview", retrieved, "--home", circle.protected, "--json")
    assert preview.json()["manifest"]["verdict"] == "missing"
    assert preview.json()["committable"] is False
    assert circle.on_protected("updateset", "commit", retrieved, "--accept-remote").code == 1
    assert _friends(circle)[signing]["revoked"] is False


def test_revoked_certificate_brought_again_stays_revoked(
    cli: Cli, signing_home: Path, tmp_path: Path, test_pki: SessionPki
) -> None:
    """Revoked before it arrives here, the certificate never becomes a friend."""
    c = _attest_only(cli, signing_home, tmp_path, test_pki)
    protected = c.protected
    signing = _fp(test_pki, "code_signing")
    retrieved = c.load(_revoke(c, signing, "never to be trusted here"))
    c.ok("updateset", "preview", retrieved, "--home", protected)
    committed = c.ok("updateset", "commit", retrieved, "--home", protected)
    assert "1 certificate(s) revoked from the trusted friends list" in committed.out
    listed = _friends(c)[signing]
    assert listed["revoked"] is True
    assert listed["name"] == "(revoked before it was brought here)"
    again = c.ok(
        "cert", "export-to-production", "--module", "cm_code_signing", "--home", signing_home,
        "--json",
    )  # fmt: skip
    retrieved = c.load(again.json()["update_set"])
    c.ok("updateset", "preview", retrieved, "--home", protected)
    c.on_protected("updateset", "commit", retrieved, "--accept-remote")
    assert _friends(c)[signing]["revoked"] is True


def test_protected_instance_makes_no_revocation(circle: Circle) -> None:
    result = circle.on_protected(
        "cot", "revoke", _fp(circle.pki, "code_signing"), "--reason", "local admin"
    )
    assert result.code == 1
    assert "trusted instance" in result.err


def test_revocation_requests_are_not_written_directly(circle: Circle) -> None:
    result = circle.on_trusted(
        "record", "add", "--table", "cot_revocation_request",
        "--field", f"fingerprint={_fp(circle.pki, 'code_signing')}",
        "--field", "reason=forged", "--field", "issued_at=2026-11-28T00:00:00Z",
    )  # fmt: skip
    assert result.code == 1
    assert "cannot be written directly" in result.err


@pytest.mark.parametrize(
    ("fingerprint", "reason", "says"),
    [
        ("not-a-fingerprint", "key compromised", "malformed certificate fingerprint"),
        ("ab" * 32, "   ", "give the reason"),
    ],
)
def test_bad_revocation_requests_are_bad_usage(
    circle: Circle, fingerprint: str, reason: str, says: str
) -> None:
    result = circle.on_trusted("cot", "revoke", fingerprint, "--reason", reason)
    assert result.code == 2
    assert says in result.err


def test_a_set_deleting_a_revocation_request_is_refused() -> None:
    deleting = ParsedEntry(
        "1" * 32, "cot_revocation_request", "2" * 32, "DELETE", {}, None, True, None
    )
    with pytest.raises(PolicyError, match="permanent"):
        check_requests([deleting])


def test_commit_checks_the_signature_that_makes_a_request_valid(
    cli: Cli, signing_home: Path, tmp_path: Path, test_pki: SessionPki
) -> None:
    """A stranger's valid signature next to a friend's broken one: the request is valid,
    but not by a friend here, so preview blocks it and commit applies nothing."""
    circle = _attest_only(cli, signing_home, tmp_path, test_pki)
    attest = _fp(test_pki, "code_attest")
    b = SetBuilder(test_pki, "cot_revocation_crafted")
    fields = {"fingerprint": attest, "reason": "hostile", "issued_at": format_ts(b.now)}
    request = b.record(REVOCATION_CONFIG.table, fields)
    for leaf, signed in (
        (test_pki.code_signing, fields),
        (test_pki.code_attest, {**fields, "reason": "x"}),
    ):
        b.add_signature(
            sign_record(
                table=REVOCATION_CONFIG.table,
                document_id=SysId(request),
                fields=signed,
                config=REVOCATION_CONFIG,
                purpose=CIRCLE_OF_TRUST,
                key=leaf.key,
                algorithm=algorithm_for_key(leaf.key),
                certificate=fingerprint_of(leaf.cert),
                signed_at=b.now,
                expires_at=b.now + dt.timedelta(hours=1),
            )
        )
    b.trusted_chain(test_pki.code_signing, "cm_code_signing")
    path = b.write(tmp_path / "crafted.xml", b.manifest())
    imported = circle.ok("updateset", "import", path, "--home", circle.protected, "--json")
    retrieved = imported.json()["sys_id"]
    preview = circle.ok("updateset", "preview", retrieved, "--home", circle.protected, "--json")
    assert preview.json()["committable"] is False
    refused = circle.on_protected("updateset", "commit", retrieved, "--accept-remote")
    assert refused.code == 1
    assert "only a trusted friend of this instance may revoke" in refused.err
    assert _friends(circle)[attest]["revoked"] is False
