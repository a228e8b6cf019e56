"""Records, signing and verification through the CLI."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from tests.cli.conftest import Cli, add_script_include, init_home
from tests.conftest import SessionPki
from trustcircle._time import fixed_clock
from trustcircle.platform import records, signatures
from trustcircle.platform.context import Instance
from trustcircle.platform.home import ADMIN_TOKEN
from trustcircle.signing import Verdict


def test_sign_then_verify_valid_then_edit_invalid(cli: Cli, signing_home: Path) -> None:
    sid = add_script_include(cli, signing_home)
    assert len(sid) == 32
    signed = cli(
        "record",
        "sign",
        "--home",
        signing_home,
        "--table",
        "sys_script_include",
        "--id",
        sid,
        "--json",
    )
    assert signed.code == 0, signed.err
    sig = signed.json()
    assert set(sig) == {
        "sys_id",
        "table_name",
        "document_id",
        "purpose",
        "algorithm",
        "signature",
        "certificate",
        "signed_fields",
        "signed_at",
        "expires_at",
    }
    assert sig["signed_fields"] == "active,api_name,name,script"
    verified = cli(
        "record",
        "verify",
        "--home",
        signing_home,
        "--table",
        "sys_script_include",
        "--id",
        sid,
        "--json",
    )
    assert verified.code == 0
    assert verified.json()["verdict"] == "valid"
    # an unsigned field may change...
    assert (
        cli(
            "record",
            "update",
            "--home",
            signing_home,
            "--table",
            "sys_script_include",
            "--id",
            sid,
            "--field",
            "description=docs",
        ).code
        == 0
    )
    assert (
        cli(
            "record", "verify", "--home", signing_home, "--table", "sys_script_include", "--id", sid
        ).code
        == 0
    )
    # ...a signed one may not
    assert (
        cli(
            "record",
            "update",
            "--home",
            signing_home,
            "--table",
            "sys_script_include",
            "--id",
            sid,
            "--field",
            "script=evil()",
        ).code
        == 0
    )
    tampered = cli(
        "record",
        "verify",
        "--home",
        signing_home,
        "--table",
        "sys_script_include",
        "--id",
        sid,
        "--json",
    )
    assert tampered.code == 1
    assert tampered.json()["verdict"] == "invalid"
    assert "signature_mismatch" in tampered.json()["reasons"]


def test_unsigned_record_is_missing(cli: Cli, signing_home: Path) -> None:
    sid = add_script_include(cli, signing_home)
    result = cli(
        "record",
        "verify",
        "--home",
        signing_home,
        "--table",
        "sys_script_include",
        "--id",
        sid,
        "--json",
    )
    assert result.code == 1
    assert result.json()["verdict"] == "missing"


def test_field_from_file(cli: Cli, signing_home: Path, tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text("print('from a file')\n")
    result = cli(
        "record",
        "add",
        "--home",
        signing_home,
        "--table",
        "sysauto_script",
        "--field",
        "name=Job",
        "--field",
        f"script=@{script}",
    )
    assert result.code == 0
    shown = cli(
        "record",
        "show",
        "--home",
        signing_home,
        "--table",
        "sysauto_script",
        "--id",
        result.out.strip(),
        "--json",
    ).json()
    assert shown["fields"]["script"] == "print('from a file')\n"


def test_field_file_that_does_not_exist(cli: Cli, signing_home: Path, tmp_path: Path) -> None:
    result = cli(
        "record",
        "add",
        "--home",
        signing_home,
        "--table",
        "sysauto_script",
        "--field",
        "name=Job",
        "--field",
        f"script=@{tmp_path / 'nope.py'}",
    )
    assert result.code == 2
    assert "does not exist" in result.err
    jobs = cli("record", "list", "--home", signing_home, "--table", "sysauto_script", "--json")
    assert "Job" not in [j["fields"]["name"] for j in jobs.json()]


def test_unknown_table_and_field(cli: Cli, signing_home: Path) -> None:
    r1 = cli("record", "add", "--home", signing_home, "--table", "sys_nothing", "--field", "a=b")
    assert r1.code == 2
    assert "unknown table" in r1.err
    r2 = cli(
        "record",
        "add",
        "--home",
        signing_home,
        "--table",
        "sysauto_script",
        "--field",
        "name=x",
        "--field",
        "colour=red",
    )
    assert r2.code == 2
    assert "colour" in r2.err


def test_malformed_sys_id(cli: Cli, signing_home: Path) -> None:
    result = cli(
        "record",
        "sign",
        "--home",
        signing_home,
        "--table",
        "sys_script_include",
        "--id",
        "../../etc/passwd",
    )
    assert result.code == 2
    assert "malformed sys_id" in result.err


def test_unknown_purpose(cli: Cli, signing_home: Path) -> None:
    sid = add_script_include(cli, signing_home)
    result = cli(
        "record",
        "sign",
        "--home",
        signing_home,
        "--table",
        "sys_script_include",
        "--id",
        sid,
        "--purpose",
        "Because",
    )
    assert result.code == 2
    assert "Because" in result.err
    assert cli("signature", "list", "--home", signing_home, "--json").json() == []


def test_wildcard_purpose_refused_outside_script_tables(cli: Cli, signing_home: Path) -> None:
    job = cli(
        "record",
        "add",
        "--home",
        signing_home,
        "--table",
        "sysauto_script",
        "--field",
        "name=Job",
        "--field",
        "script=print(1)",
    ).out.strip()
    result = cli(
        "record",
        "sign",
        "--home",
        signing_home,
        "--table",
        "sysauto_script",
        "--id",
        job,
        "--purpose",
        "*",
    )
    assert result.code == 1
    assert "wildcard" in result.err
    sid = add_script_include(cli, signing_home)
    ok = cli(
        "record",
        "sign",
        "--home",
        signing_home,
        "--table",
        "sys_script_include",
        "--id",
        sid,
        "--purpose",
        "*",
    )
    assert ok.code == 0, ok.err


def test_signature_list_filters(cli: Cli, signing_home: Path) -> None:
    a = add_script_include(cli, signing_home)
    job = cli(
        "record",
        "add",
        "--home",
        signing_home,
        "--table",
        "sysauto_script",
        "--field",
        "name=Job",
        "--field",
        "script=print(1)",
    ).out.strip()
    assert (
        cli(
            "record", "sign", "--home", signing_home, "--table", "sys_script_include", "--id", a
        ).code
        == 0
    )
    assert (
        cli(
            "record",
            "sign",
            "--home",
            signing_home,
            "--table",
            "sysauto_script",
            "--id",
            job,
            "--purpose",
            "Circle of Trust",
            "--module",
            "cm_code_attest",
        ).code
        == 0
    )
    cot = cli(
        "signature", "list", "--home", signing_home, "--purpose", "Circle of Trust", "--json"
    ).json()
    assert [s["document_id"] for s in cot] == [job]
    by_table = cli(
        "signature", "list", "--home", signing_home, "--table", "sys_script_include", "--json"
    ).json()
    assert [s["document_id"] for s in by_table] == [a]


def test_protected_instance_never_signs(cli: Cli, tmp_path: Path, test_pki: SessionPki) -> None:
    prod = init_home(cli, tmp_path / "prod", role="protected", name="prod")
    sid = add_script_include(cli, prod)
    result = cli("record", "sign", "--home", prod, "--table", "sys_script_include", "--id", sid)
    assert result.code == 1
    assert "a protected instance never signs code" in result.err
    last = cli("audit", "list", "--home", prod, "--json", "--limit", "1").json()[0]
    assert (last["action"], last["outcome"]) == ("record.sign", "refused")


def test_console_script_prints_one_line_without_traceback(
    signing_home: Path, tmp_path: Path
) -> None:
    import subprocess
    import sys

    bad = tmp_path / "bad.p12"
    bad.write_bytes(b"garbage")
    pw = tmp_path / "pw"
    pw.write_text("x")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "trustcircle",
            "kmf",
            "import",
            "--home",
            str(signing_home),
            "--module",
            "cm_code_signing",
            "--p12",
            str(bad),
            "--password-file",
            str(pw),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_signature_made_in_the_same_second_as_an_older_one_is_the_newest(
    signing_home: Path,
) -> None:
    """Verification takes each certificate's newest signature to the second: re-signing an
    edited record within the second must not leave the stale signature the newest."""
    at = dt.datetime(2026, 11, 28, 6, 0, 0, tzinfo=dt.UTC)
    inst = Instance.open(signing_home, clock=fixed_clock(at))
    token = (signing_home / ADMIN_TOKEN).read_text().strip()
    try:
        with inst.operation(token, "record.sign", "test") as op:
            ids = []
            for i in range(12):  # by chance, all twelve would pass once in 4096 runs
                fields = {
                    "name": f"Inc {i}",
                    "api_name": f"x.Inc{i}",
                    "script": "1",
                    "active": "true",
                }
                made = records.insert(op.session, "sys_script_include", fields, "admin", op.ts)
                ids.append(made.record.sys_id)
                signatures.sign(op, "sys_script_include", made.record.sys_id)
                records.update(
                    op.session,
                    "sys_script_include",
                    made.record.sys_id,
                    {"script": "2"},
                    "admin",
                    op.ts,
                )
                signatures.sign(op, "sys_script_include", made.record.sys_id)
            verdicts = {
                signatures.verify(op.session, "sys_script_include", sid, at).verdict for sid in ids
            }
    finally:
        inst.close()
    assert verdicts == {Verdict.VALID}
