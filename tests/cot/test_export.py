"""Exports to production on a trusted instance; a protected instance signs nothing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from tests.cli.conftest import Cli, init_home
from tests.conftest import SessionPki
from trustcircle._time import parse_ts
from trustcircle._types import Fingerprint
from trustcircle.cot.attest import ATTEST_MODULE, cot_sign
from trustcircle.crypto import fingerprint_of
from trustcircle.errors import PolicyError
from trustcircle.jobs import TURN_OFF_ID, TURN_ON_ID
from trustcircle.platform import signatures
from trustcircle.platform.context import Instance
from trustcircle.platform.kmf import SigningKey
from trustcircle.signing import CIRCLE_OF_TRUST, SIGNATURE_TABLE, SignatureRecord, Verdict
from trustcircle.updatesets import ImportLimits
from trustcircle.updatesets.local import entries_of, get_set, list_sets
from trustcircle.updatesets.record_xml import payload_to_record

CERT = "sys_certificate"


@contextmanager
def _session(home: Path) -> Iterator[tuple[Instance, Session]]:
    inst = Instance.open(home)
    try:
        with inst.db.transaction() as session:
            yield inst, session
    finally:
        inst.close()


def _contents(home: Path, set_id: str) -> dict[str, list[tuple[str, dict[str, str | None]]]]:
    """table -> [(target sys_id, payload fields)] of a local set, from the payloads."""
    out: dict[str, list[tuple[str, dict[str, str | None]]]] = {}
    with _session(home) as (_inst, session):
        for entry in entries_of(session, set_id):
            table, target, fields = payload_to_record(entry.payload, ImportLimits())
            assert table == entry.table_name
            assert target == entry.target_sys_id
            out.setdefault(table, []).append((target, fields))
    return out


def _verify_all(home: Path, contents: dict[str, list[tuple[str, dict[str, str | None]]]]) -> None:
    """Every signable record in the set has a valid Circle-of-Trust signature from the set."""
    sigs = [SignatureRecord.from_fields(sid, f) for sid, f in contents.get(SIGNATURE_TABLE, [])]
    with _session(home) as (inst, session):
        verifier = signatures.verifier(session, inst.clock())
        for table, entries in contents.items():
            if table == SIGNATURE_TABLE:
                continue
            for target, fields in entries:
                mine = [s for s in sigs if s.document_id == target]
                result = verifier.verify(table, target, fields, mine, CIRCLE_OF_TRUST)
                assert result.verdict is Verdict.VALID, (table, result.reasons)


def _export(cli: Cli, home: Path, *args: str) -> dict[str, object]:
    result = cli(*args, "--home", home, "--json")
    assert result.code == 0, result.err
    data: dict[str, object] = result.json()
    return data


def test_certificate_export_holds_the_certificate_its_chain_and_signatures(
    cli: Cli, signing_home: Path, test_pki: SessionPki
) -> None:
    data = _export(cli, signing_home, "cert", "export-to-production", "--module", "cm_code_signing")
    assert data["name"] == "code_signing_key_publicsigver_cm_code_signing"
    assert data["state"] == "complete"
    contents = _contents(signing_home, str(data["update_set"]))
    certs = dict(contents[CERT])
    assert len(certs) == 2
    leaf_fp = fingerprint_of(test_pki.code_signing.cert)
    by_fp = {f["fingerprint"]: f for f in certs.values()}
    assert by_fp[leaf_fp]["module"] == "cm_code_signing"
    assert by_fp[fingerprint_of(test_pki.intermediate)]["module"] == "chain"
    assert data["certificates"] == [leaf_fp, fingerprint_of(test_pki.intermediate)]
    sigs = contents[SIGNATURE_TABLE]
    assert len(sigs) == 2
    for _sid, fields in sigs:
        assert fields["purpose"] == CIRCLE_OF_TRUST
        assert fields["table_name"] == CERT
        assert fields["certificate"] == fingerprint_of(test_pki.code_attest.cert)
        window = parse_ts(str(fields["expires_at"])) - parse_ts(str(fields["signed_at"]))
        assert window == dt.timedelta(seconds=3600)
    _verify_all(signing_home, contents)
    with _session(signing_home) as (_inst, session):
        assert get_set(session, str(data["update_set"])).state == "complete"


def test_turn_on_export_holds_job_signature_certificates_and_statement(
    cli: Cli, signing_home: Path, test_pki: SessionPki
) -> None:
    data = _export(cli, signing_home, "job", "export-signed", "Turn on Code Signing Property")
    assert data["name"] == "Turn on Code Signing Property"
    assert data["job"] == TURN_ON_ID
    contents = _contents(signing_home, str(data["update_set"]))
    assert [t for t, _ in contents["sysauto_script"]] == [TURN_ON_ID]
    assert {f["fingerprint"] for _, f in contents[CERT]} == {
        fingerprint_of(test_pki.code_attest.cert),
        fingerprint_of(test_pki.intermediate),
    }
    [(statement_id, statement)] = contents["cot_policy_statement"]
    assert statement["instance"] == "*"
    assert statement["state"] == "on"
    assert statement["sequence"] == "1"
    assert statement["expires_at"] == data["expires_at"]
    signed = {f["document_id"]: f for _, f in contents[SIGNATURE_TABLE]}
    assert set(signed) == {TURN_ON_ID, statement_id} | {t for t, _ in contents[CERT]}
    assert signed[TURN_ON_ID]["purpose"] == CIRCLE_OF_TRUST
    assert signed[TURN_ON_ID]["expires_at"] == data["expires_at"]
    _verify_all(signing_home, contents)


def test_policy_statement_sequence_increments_and_target_binds_it(
    cli: Cli, signing_home: Path
) -> None:
    first = _export(cli, signing_home, "job", "export-signed", TURN_OFF_ID)
    second = _export(cli, signing_home, "job", "export-signed", TURN_ON_ID, "--target", "prod")
    third = _export(cli, signing_home, "job", "export-signed", TURN_ON_ID)
    statements = [d["policy_statement"] for d in (first, second, third)]
    assert [s["sequence"] for s in statements] == ["1", "2", "3"]  # type: ignore[index]
    assert [s["state"] for s in statements] == ["off", "on", "on"]  # type: ignore[index]
    assert [s["instance"] for s in statements] == ["*", "prod", "*"]  # type: ignore[index]
    policy = cli("cot", "policy", "--home", signing_home, "--json").json()
    assert [s["sequence"] for s in policy["statements"]] == [1, 2, 3]


def test_bad_target_and_target_on_an_ordinary_job_are_usage_errors(
    cli: Cli, signing_home: Path
) -> None:
    bad = cli(
        "job", "export-signed", TURN_ON_ID, "--target", "Prod Instance!", "--home", signing_home
    )
    assert bad.code == 2
    added = cli(
        "record",
        "add",
        "--home",
        signing_home,
        "--table",
        "sysauto_script",
        "--field",
        "name=Nightly",
        "--field",
        "script=print(1)",
    )
    assert added.code == 0, added.err
    ordinary = cli("job", "export-signed", "Nightly", "--target", "prod", "--home", signing_home)
    assert ordinary.code == 2
    assert "policy statement" in ordinary.err


def test_ordinary_job_export_carries_no_policy_statement(cli: Cli, signing_home: Path) -> None:
    added = cli(
        "record",
        "add",
        "--home",
        signing_home,
        "--table",
        "sysauto_script",
        "--field",
        "name=Nightly",
        "--field",
        "script=print(1)",
        "--field",
        "run_type=on_demand",
    )
    assert added.code == 0, added.err
    data = _export(cli, signing_home, "job", "export-signed", "Nightly")
    assert data["policy_statement"] is None
    contents = _contents(signing_home, str(data["update_set"]))
    assert "cot_policy_statement" not in contents
    _verify_all(signing_home, contents)


def test_exported_records_stay_out_of_the_current_update_set(cli: Cli, signing_home: Path) -> None:
    _export(cli, signing_home, "job", "export-signed", TURN_ON_ID)
    _export(cli, signing_home, "cert", "export-to-production", "--module", "cm_code_attest")
    with _session(signing_home) as (_inst, session):
        names = [s.name for s in list_sets(session)]
    assert sorted(names) == [
        "Turn on Code Signing Property",
        "code_signing_key_publicsigver_cm_code_attest",
    ]


def test_export_without_the_roles_is_not_authorised(
    cli: Cli, signing_home: Path, tmp_path: Path
) -> None:
    token = cli("user", "add", "reader", "--roles", "codesigning_auditor", "--home", signing_home)
    assert token.code == 0, token.err
    token_file = tmp_path / "reader.token"
    token_file.write_text(token.out.strip())
    for args in (
        ("job", "export-signed", TURN_ON_ID),
        ("cert", "export-to-production", "--module", "cm_code_attest"),
    ):
        result = cli(*args, "--home", signing_home, "--token-file", token_file)
        assert result.code == 3, result.err
        assert "missing role" in result.err


def test_certificate_export_of_an_empty_or_unknown_module_is_refused(
    cli: Cli, signing_home: Path
) -> None:
    assert (
        cli("cert", "export-to-production", "--module", "cm_runtime", "--home", signing_home).code
        == 2
    )
    assert cli("cert", "export-to-production", "--module", "nope", "--home", signing_home).code == 2


@pytest.fixture
def protected(cli: Cli, tmp_path: Path, test_pki: SessionPki) -> Path:
    home = init_home(cli, tmp_path / "prod", "protected", "prod")
    assert cli("trust-anchor", "add", test_pki.files.root_pem, "--home", home).code == 0
    return home


def test_protected_instance_refuses_every_signing_command(cli: Cli, protected: Path) -> None:
    for args in (
        ("cert", "export-to-production", "--module", "cm_code_attest"),
        ("cert", "export-to-production", "--module", "cm_code_signing"),
        ("job", "export-signed", TURN_ON_ID),
        ("record", "sign", "--table", "sysauto_script", "--id", TURN_ON_ID),
    ):
        result = cli(*args, "--home", protected)
        assert result.code == 1, (args, result.err)
        assert "never signs code" in result.err
    audit = cli("audit", "list", "--home", protected, "--json")
    refused = [e for e in audit.json() if e["outcome"] == "refused"]
    assert len(refused) >= 4


def test_protected_instance_refuses_the_attest_signing_path_itself(
    protected: Path, test_pki: SessionPki
) -> None:
    """Even with a key in hand, the code path refuses before signing on a protected instance."""
    from trustcircle.crypto.algorithms import Algorithm
    from trustcircle.platform.context import Operation
    from trustcircle.platform.users import Actor

    inst = Instance.open(protected)
    try:
        with inst.db.transaction() as session:
            op = Operation(
                session,
                Actor("x" * 32, "admin", frozenset({"admin"})),
                inst,
                inst.clock(),
                "job.export_signed",
                "",
            )
            key = SigningKey(
                ATTEST_MODULE,
                test_pki.code_attest.key,
                Algorithm.RSA_PKCS1_SHA512,
                Fingerprint(fingerprint_of(test_pki.code_attest.cert)),
            )
            with pytest.raises(PolicyError, match="never signs code"):
                cot_sign(
                    op, key, "sysauto_script", TURN_ON_ID, inst.clock() + dt.timedelta(hours=1)
                )
            assert signatures.signatures_of(session, "sysauto_script", TURN_ON_ID) == []
    finally:
        inst.close()


def test_prereq_check_on_a_trusted_instance_fails_the_instance_check(
    cli: Cli, signing_home: Path
) -> None:
    result = cli("job", "prereq-check", TURN_ON_ID, "--home", signing_home, "--json")
    assert result.code == 1
    checks = {c["name"]: c for c in result.json()["checks"]}
    assert not checks["instance_protected"]["ok"]
    assert not checks["signature_valid"]["ok"]
    assert checks["user_roles"]["ok"]
    assert cli("job", "execute", TURN_ON_ID, "--home", signing_home).code == 1
