"""Two homes, end to end: trusted exports → XML → protected import/preview/commit →
prerequisite check → execute. Each attack test is named after the attack it stops."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli.conftest import Cli, Result, init_home
from tests.conftest import SessionPki
from trustcircle._time import fixed_clock, format_ts, system_clock
from trustcircle.cot import execute_job, export_signed_job, prereq_check
from trustcircle.crypto import fingerprint_of
from trustcircle.errors import VerificationError
from trustcircle.jobs import TURN_OFF_ID, TURN_OFF_NAME, TURN_ON_ID, TURN_ON_NAME
from trustcircle.platform import properties
from trustcircle.platform.context import Instance, Operation
from trustcircle.platform.home import ADMIN_TOKEN
from trustcircle.signing import CIRCLE_OF_TRUST
from trustcircle.store.models import TrustedFriend

FLAG = "com_snc_kmf_signature.validation.flag"  # the seed's spelling, an alias
CERTIFICATE = "com_snc_kmf_signature.validation.certificate"


@dataclass
class Circle:
    cli: Cli
    trusted: Path
    protected: Path
    tmp: Path
    pki: SessionPki

    def ok(self, *args: str | Path) -> Result:
        result = self.cli(*args)
        assert result.code == 0, (args, result.err)
        return result

    def on_trusted(self, *args: str | Path) -> Result:
        return self.cli(*args, "--home", self.trusted)

    def on_protected(self, *args: str | Path) -> Result:
        return self.cli(*args, "--home", self.protected)

    def export_job(self, name: str, *extra: str) -> dict[str, object]:
        result = self.ok("job", "export-signed", name, *extra, "--home", self.trusted, "--json")
        data: dict[str, object] = result.json()
        return data

    def to_xml(self, set_id: str) -> Path:
        out = self.tmp / f"{set_id}.xml"
        self.ok("updateset", "export", set_id, "--out", out, "--home", self.trusted)
        return out

    def load(self, set_id: str) -> str:
        """Export *set_id* from the trusted home and import it on the protected one."""
        imported = self.ok(
            "updateset", "import", self.to_xml(set_id), "--home", self.protected, "--json"
        )
        retrieved: str = imported.json()["sys_id"]
        return retrieved

    def bring(self, set_id: str) -> str:
        """Export, import, preview and commit: the seed's steps 4-10."""
        retrieved = self.load(set_id)
        self.ok("updateset", "preview", retrieved, "--home", self.protected)
        self.ok("updateset", "commit", retrieved, "--home", self.protected)
        return retrieved

    def bring_job(self, name: str, *extra: str) -> dict[str, object]:
        data = self.export_job(name, *extra)
        self.bring(str(data["update_set"]))
        return data

    def prop(self, name: str) -> str | None:
        result = self.on_protected("property", "get", name, "--json")
        if result.code == 4:
            return None
        assert result.code == 0, result.err
        value: str = result.json()["value"]
        return value

    def prereq(self, name: str, *extra: str | Path) -> tuple[int, dict[str, dict[str, object]]]:
        result = self.on_protected("job", "prereq-check", name, "--json", *extra)
        assert result.code in (0, 1, 3), result.err
        return result.code, {c["name"]: c for c in result.json()["checks"]}

    def token_for(self, user: str, roles: str) -> Path:
        created = self.ok("user", "add", user, "--roles", roles, "--home", self.protected)
        path = self.tmp / f"{user}.token"
        path.write_text(created.out.strip())
        return path


@pytest.fixture
def circle(cli: Cli, signing_home: Path, tmp_path: Path, test_pki: SessionPki) -> Circle:
    """A trusted and a protected home trusting one root, both certificates brought over."""
    protected = init_home(cli, tmp_path / "prod", "protected", "prod")
    return make_circle(cli, signing_home, protected, tmp_path, test_pki)


def make_circle(
    cli: Cli, signing_home: Path, protected: Path, tmp_path: Path, pki: SessionPki
) -> Circle:
    """*protected* trusting the test root, with both certificates of *signing_home* brought."""
    assert cli("trust-anchor", "add", pki.files.root_pem, "--home", protected).code == 0
    c = Circle(cli, signing_home, protected, tmp_path, pki)
    for module in ("cm_code_attest", "cm_code_signing"):
        exported = c.ok(
            "cert", "export-to-production", "--module", module, "--home", signing_home, "--json"
        )
        c.bring(exported.json()["update_set"])
    return c


@contextmanager
def _op(home: Path, action: str, at: dt.datetime) -> Iterator[Operation]:
    """An operation on *home* as its admin, with the clock fixed at *at*."""
    inst = Instance.open(home, clock=fixed_clock(at))
    try:
        token = (home / ADMIN_TOKEN).read_text().strip()
        with inst.operation(token, action, "test") as op:
            yield op
    finally:
        inst.close()


def _add_job(c: Circle, name: str, script: str) -> None:
    c.ok(
        "record", "add", "--home", c.trusted, "--table", "sysauto_script",
        "--field", f"name={name}", "--field", f"script={script}",
        "--field", "run_type=on_demand", "--field", "active=true", "--field", "run_as=admin",
    )  # fmt: skip


def _executions(c: Circle, name: str) -> list[dict[str, object]]:
    shown = c.ok("job", "show", name, "--home", c.protected, "--json").json()
    runs: list[dict[str, object]] = shown["executions"]
    return runs


def _friends(c: Circle) -> set[tuple[str, str, bool]]:
    listed = c.ok("cot", "friends", "--home", c.protected, "--json").json()
    return {(f["fingerprint"], f["module"], f["revoked"]) for f in listed}


# --- the seed procedure -----------------------------------------------------------------


def test_committed_certificates_become_trusted_friends(circle: Circle) -> None:
    friends = circle.ok("cot", "friends", "--home", circle.protected, "--json").json()
    assert {f["fingerprint"] for f in friends} >= {
        fingerprint_of(circle.pki.code_attest.cert),
        fingerprint_of(circle.pki.code_signing.cert),
    }
    assert all(not f["revoked"] for f in friends)


def test_turn_on_sets_the_flag_and_the_certificate_property(circle: Circle) -> None:
    exported = circle.bring_job(TURN_ON_NAME)
    code, checks = circle.prereq(TURN_ON_NAME)
    assert code == 0, checks
    assert set(checks) == {
        "instance_protected",
        "optin_enabled",
        "user_roles",
        "signature_valid",
        "certificate_trusted",
        "validity_window",
        "not_replayed",
        "policy_statement",
    }
    assert all(c["ok"] for c in checks.values())
    text = circle.on_protected("job", "prereq-check", TURN_ON_NAME)
    assert text.out.count("PASS") == 8
    assert "FAIL" not in text.out

    executed = circle.ok("job", "execute", TURN_ON_NAME, "--home", circle.protected, "--json")
    assert executed.json()["policy_sequence"] == 1
    assert executed.json()["run"]["log"] == [
        {"level": "info", "message": "Turning on Code Signing"}
    ]
    assert circle.prop(FLAG) == "true"
    expected = sorted(
        [fingerprint_of(circle.pki.code_attest.cert), fingerprint_of(circle.pki.code_signing.cert)]
    )
    assert circle.prop(CERTIFICATE) == ",".join(expected)

    policy = circle.ok("cot", "policy", "--home", circle.protected, "--json").json()
    assert policy["current_sequence"] == 1
    assert policy["current"]["state"] == "on"
    assert policy["validation_flag"] is True

    sigs = circle.ok(
        "signature", "list", "--purpose", CIRCLE_OF_TRUST, "--home", circle.protected, "--json"
    ).json()
    assert str(exported["signatures"][0]) in {s["sys_id"] for s in sigs}  # type: ignore[index]

    audit = circle.ok("audit", "list", "--home", circle.protected, "--json").json()
    changes = [json.loads(e["detail"]) for e in audit if e["action"] == "property.protected_set"]
    assert {d["value"] for d in changes} == {"true", ",".join(expected)}
    for detail in changes:
        assert detail["job"] == TURN_ON_ID
        assert detail["signature"] == exported["signatures"][0]  # type: ignore[index]
        assert detail["user"] == "admin"
    assert len(_executions(circle, TURN_ON_NAME)) == 1


def test_turn_off_sets_the_flag_false_and_keeps_friends(circle: Circle) -> None:
    circle.bring_job(TURN_ON_NAME)
    circle.ok("job", "execute", TURN_ON_NAME, "--home", circle.protected)
    certificate = circle.prop(CERTIFICATE)
    friends = _friends(circle)
    assert len(friends) >= 2
    circle.bring_job(TURN_OFF_NAME)
    code, checks = circle.prereq(TURN_OFF_NAME)
    assert code == 0, checks
    circle.ok("job", "execute", TURN_OFF_ID, "--home", circle.protected)
    assert circle.prop(FLAG) == "false"
    assert circle.prop(CERTIFICATE) == certificate
    assert _friends(circle) == friends
    policy = circle.ok("cot", "policy", "--home", circle.protected, "--json").json()
    assert [a["state"] for a in policy["applied"]] == ["off", "on"]
    assert policy["current_sequence"] == 2


def test_statement_bound_to_this_instance_is_accepted(circle: Circle) -> None:
    circle.bring_job(TURN_ON_NAME, "--target", "prod")
    circle.ok("job", "execute", TURN_ON_NAME, "--home", circle.protected)
    assert circle.prop(FLAG) == "true"


# --- attacks --------------------------------------------------------------------------


def test_turn_off_statement_replayed_after_a_later_turn_on_is_refused(circle: Circle) -> None:
    off = circle.export_job(TURN_OFF_NAME)  # statement #1
    on = circle.export_job(TURN_ON_NAME)  # statement #2
    circle.bring(str(off["update_set"]))
    circle.bring(str(on["update_set"]))
    circle.ok("job", "execute", TURN_ON_NAME, "--home", circle.protected)
    code, checks = circle.prereq(TURN_OFF_NAME)
    assert code == 1
    assert not checks["policy_statement"]["ok"]
    assert "not above the current sequence 2" in str(checks["policy_statement"]["reason"])
    assert checks["signature_valid"]["ok"]  # the job itself is fine: only the order is not
    refused = circle.on_protected("job", "execute", TURN_OFF_NAME)
    assert refused.code == 1
    assert "policy_statement" in refused.err
    assert circle.prop(FLAG) == "true"
    assert _executions(circle, TURN_OFF_NAME) == []


def test_signed_job_executed_twice_is_refused_as_replay(circle: Circle) -> None:
    _add_job(circle, "Say hello", "print('hello')")
    circle.bring_job("Say hello")
    first = circle.ok("job", "execute", "Say hello", "--home", circle.protected, "--json")
    assert first.json()["run"]["output"] == "hello\n"
    code, checks = circle.prereq("Say hello")
    assert code == 1
    assert [n for n, c in checks.items() if not c["ok"]] == ["not_replayed"]
    second = circle.on_protected("job", "execute", "Say hello")
    assert second.code == 1
    assert "not_replayed" in second.err
    assert len(_executions(circle, "Say hello")) == 1


def test_turn_on_executed_twice_is_refused_as_replay(circle: Circle) -> None:
    circle.bring_job(TURN_ON_NAME)
    circle.ok("job", "execute", TURN_ON_NAME, "--home", circle.protected)
    again = circle.on_protected("job", "execute", TURN_ON_NAME)
    assert again.code == 1
    assert "not_replayed" in again.err
    assert "policy_statement" in again.err


def test_execute_without_the_roles_is_not_authorised_and_changes_nothing(
    circle: Circle,
) -> None:
    circle.bring_job(TURN_ON_NAME)
    token = circle.token_for("operator", "admin,codesigning_admin")  # no security_admin
    refused = circle.on_protected("job", "execute", TURN_ON_NAME, "--token-file", token)
    assert refused.code == 3
    assert "security_admin" in refused.err
    assert circle.prop(FLAG) == "false"
    assert _executions(circle, TURN_ON_NAME) == []
    code, checks = circle.prereq(TURN_ON_NAME, "--token-file", token)
    assert code == 3  # as execute refuses it
    assert [n for n, c in checks.items() if not c["ok"]] == ["user_roles"]
    audit = circle.ok("audit", "list", "--home", circle.protected, "--json").json()
    assert any(
        e["action"] == "job.turn_on" and e["outcome"] == "refused" and e["actor"] == "operator"
        for e in audit
    )
    # the one who holds the roles may
    circle.ok("job", "execute", TURN_ON_NAME, "--home", circle.protected)


def test_job_edited_on_production_after_commit_fails_prereq_and_execute(circle: Circle) -> None:
    circle.bring_job(TURN_ON_NAME)
    circle.ok(
        "record", "update", "--home", circle.protected, "--table", "sysauto_script",
        "--id", TURN_ON_ID, "--field", "script=codesigning.turn_on()\nprint('and more')",
    )  # fmt: skip
    code, checks = circle.prereq(TURN_ON_NAME)
    assert code == 1
    assert not checks["signature_valid"]["ok"]
    assert "changed after it was signed" in str(checks["signature_valid"]["reason"])
    refused = circle.on_protected("job", "execute", TURN_ON_NAME)
    assert refused.code == 1
    assert "signature_valid" in refused.err
    assert circle.prop(FLAG) == "false"
    audit = circle.ok("audit", "list", "--home", circle.protected, "--json").json()
    assert any(e["action"] == "job.turn_on" and e["outcome"] == "refused" for e in audit)


def test_expired_validity_window_is_refused_at_execution(circle: Circle) -> None:
    circle.bring_job(TURN_ON_NAME)
    later = system_clock() + dt.timedelta(hours=2)  # past the 3600 s window
    with _op(circle.protected, "job.read", later) as op:
        report = prereq_check(op, TURN_ON_NAME)
    failed = {c.name for c in report.failed}
    assert "validity_window" in failed
    assert "policy_statement" in failed
    with pytest.raises(VerificationError, match="validity_window"):  # noqa: SIM117
        with _op(circle.protected, "job.turn_on", later) as op:
            execute_job(op, TURN_ON_NAME)
    assert circle.prop(FLAG) == "false"


def test_job_signed_with_an_expired_window_cannot_be_committed(circle: Circle) -> None:
    past = system_clock() - dt.timedelta(hours=2)
    with _op(circle.trusted, "job.export_signed", past) as op:
        stale = export_signed_job(op, TURN_ON_NAME).update_set
    retrieved = circle.load(stale)
    committed = circle.on_protected("updateset", "commit", retrieved)
    assert committed.code == 1
    code, checks = circle.prereq(TURN_ON_NAME)
    assert code == 1
    assert not checks["signature_valid"]["ok"]
    assert circle.on_protected("job", "execute", TURN_ON_NAME).code == 1
    assert circle.prop(FLAG) == "false"


def test_shortened_validity_window_expires_the_signed_job(circle: Circle) -> None:
    inst = Instance.open(circle.trusted)
    try:
        with inst.db.transaction() as session:
            properties.set_protected(
                session, properties.VALIDITY_WINDOW, "60", "test", format_ts(inst.clock())
            )
    finally:
        inst.close()
    circle.bring_job(TURN_ON_NAME)
    later = system_clock() + dt.timedelta(seconds=120)
    with _op(circle.protected, "job.read", later) as op:
        report = prereq_check(op, TURN_ON_NAME)
    assert "validity_window" in {c.name for c in report.failed}


def test_statement_bound_to_another_instance_is_refused(circle: Circle) -> None:
    circle.bring_job(TURN_ON_NAME, "--target", "staging")
    code, checks = circle.prereq(TURN_ON_NAME)
    assert code == 1
    assert "names another instance" in str(checks["policy_statement"]["reason"])
    assert circle.on_protected("job", "execute", TURN_ON_NAME).code == 1
    assert circle.prop(FLAG) == "false"


def test_ordinary_signed_job_cannot_turn_code_signing_on(circle: Circle) -> None:
    _add_job(circle, "Sneaky", "codesigning.turn_on()")
    circle.bring_job("Sneaky")
    code, _checks = circle.prereq("Sneaky")
    assert code == 0  # a validly signed ordinary job...
    refused = circle.on_protected("job", "execute", "Sneaky")
    assert refused.code == 1  # ...may not switch Code Signing
    assert "policy statement" in refused.err
    assert circle.prop(FLAG) == "false"
    assert _executions(circle, "Sneaky") == []


def test_failing_job_script_applies_nothing(circle: Circle) -> None:
    _add_job(circle, "Broken", "raise RuntimeError('bad day')")
    circle.bring_job("Broken")
    refused = circle.on_protected("job", "execute", "Broken")
    assert refused.code == 1
    assert "bad day" in refused.err
    assert _executions(circle, "Broken") == []


def test_turn_on_script_that_turns_off_is_refused(circle: Circle) -> None:
    """A trusted-side edit cannot make the Turn On job switch enforcement off."""
    circle.ok(
        "record", "update", "--home", circle.trusted, "--table", "sysauto_script",
        "--id", TURN_ON_ID, "--field", "script=codesigning.turn_off()",
    )  # fmt: skip
    circle.bring_job(TURN_ON_NAME)
    refused = circle.on_protected("job", "execute", TURN_ON_NAME)
    assert refused.code == 1
    assert circle.prop(FLAG) == "false"
    assert _executions(circle, TURN_ON_NAME) == []


def test_job_signed_by_a_revoked_friend_is_refused(circle: Circle) -> None:
    circle.bring_job(TURN_ON_NAME)
    inst = Instance.open(circle.protected)
    try:
        with inst.db.transaction() as session:
            friend = session.get(TrustedFriend, fingerprint_of(circle.pki.code_attest.cert))
            assert friend is not None
            friend.revoked = True
    finally:
        inst.close()
    code, checks = circle.prereq(TURN_ON_NAME)
    assert code == 1
    assert "was revoked" in str(checks["certificate_trusted"]["reason"])
    assert not checks["signature_valid"]["ok"]
    assert circle.on_protected("job", "execute", TURN_ON_NAME).code == 1
    assert circle.prop(FLAG) == "false"


def test_human_output_names_each_step(circle: Circle) -> None:
    exported = circle.ok("job", "export-signed", TURN_ON_NAME, "--home", circle.trusted)
    assert "policy statement #1 (on, for *)" in exported.out
    listed = circle.ok("job", "list", "--name", "*Turn", "--home", circle.trusted)
    assert "Turn on Code" in listed.out
    sets = circle.ok("updateset", "list", "--home", circle.trusted, "--json").json()
    set_id = next(s["sys_id"] for s in sets if s["name"] == TURN_ON_NAME)
    circle.bring(set_id)
    executed = circle.ok("job", "execute", TURN_ON_NAME, "--home", circle.protected)
    assert "[info] Turning on Code Signing" in executed.out
    assert "com.snc.kmf.signature.validation.flag=true" in executed.out
    policy = circle.ok("cot", "policy", "--home", circle.protected)
    assert "validation flag: true" in policy.out
    friends = circle.ok("cot", "friends", "--home", circle.protected)
    assert "Trusted friends" in friends.out


def test_planted_unsigned_include_cannot_run_under_a_signed_job(circle: Circle) -> None:
    # A job signed on the trusted instance includes a helper by name; a protected-instance
    # admin plants an unsigned helper of that name that writes the database directly.
    _add_job(circle, "Nightly helper", 'h = include("global.Helper")\nprint(h.go())')
    circle.bring_job("Nightly helper")
    marker = circle.tmp / "planted-ran"
    planted = (
        "import pathlib\n"
        f"pathlib.Path({str(marker)!r}).write_text('yes')\n"
        "def go():\n"
        "    return 'ok'\n"
    )
    circle.ok(
        "record", "add", "--table", "sys_script_include", "--field", "name=Helper",
        "--field", "api_name=global.Helper", "--field", f"script={planted}",
        "--field", "active=true", "--home", circle.protected,
    )  # fmt: skip
    refused = circle.on_protected("job", "execute", "Nightly helper")
    assert refused.code == 1
    assert "'Helper'" in refused.err
    assert "not validly signed" in refused.err
    assert "nothing was applied" in refused.err
    assert _executions(circle, "Nightly helper") == []
    assert not marker.exists()
    log = circle.ok("codesigning", "log", "--home", circle.protected, "--json").json()
    assert any(e["event"] == "include_refused" for e in log)


def test_validity_window_ending_while_the_job_runs_refuses_it(circle: Circle) -> None:
    """The prerequisites are judged again after the run at the time then, not at the time
    the execution started: a run outlasting the signature's window applies nothing."""
    circle.bring_job(TURN_ON_NAME)
    start = system_clock()
    later = [False]
    inst = Instance.open(
        circle.protected, clock=lambda: start + dt.timedelta(hours=2) if later[0] else start
    )
    token = (circle.protected / ADMIN_TOKEN).read_text().strip()

    def execute() -> None:
        with inst.operation(token, "job.turn_on", "test") as op:
            later[0] = True  # from here on the clock reads two hours on
            execute_job(op, TURN_ON_NAME)

    try:
        with pytest.raises(VerificationError, match="validity_window"):
            execute()
    finally:
        inst.close()
    assert circle.prop(FLAG) == "false"
    assert _executions(circle, TURN_ON_NAME) == []
