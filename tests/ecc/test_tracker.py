"""The tracker notarizes a message only when signed scripts made it; each attack it stops
has a test named after it. Notarizations are checked with the MID's own verifier."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.ecc.conftest import Prod, job, script_include
from trustcircle._time import system_clock
from trustcircle.crypto import fingerprint_of
from trustcircle.ecc import cslog, queue
from trustcircle.ecc.tracker import NO_SCRIPT, Judgement, Tracker, TrackerSettings, decide
from trustcircle.errors import PolicyError
from trustcircle.jobs import Frame
from trustcircle.mid import EccMessage, MessageVerifier, ReplayStore
from trustcircle.mid.payloads import parse_script_payload
from trustcircle.platform import properties
from trustcircle.signing import CIRCLE_OF_TRUST

AGENT = "mid.server.alpha"
COMMAND = json.dumps({"argv": ["echo", "hi"]})


def _enqueue(prod: Prod, stack: list[Frame], agent: str = AGENT, **kw: object) -> dict[str, Any]:
    with prod.op("job.execute") as op:
        sys_id = Tracker(op).enqueue(
            stack, agent, kw.pop("topic", "Command"), "probe", kw.pop("payload", COMMAND), None
        )
    return _row(prod, sys_id)


def _row(prod: Prod, sys_id: str) -> dict[str, Any]:
    with prod.op("ecc.read") as op:
        return queue.to_dict(queue.get(op.session, sys_id))


def _log(prod: Prod) -> list[dict[str, Any]]:
    with prod.op("codesigning.log") as op:
        return cslog.list_entries(op.session)


def _mid_verify(prod: Prod, message: dict[str, Any], tmp_path: Path) -> None:
    pki = prod.pki
    verifier = MessageVerifier(
        [pki.root],
        "prod",
        ReplayStore(tmp_path / "mid"),
        agent=AGENT,
        certificates=[pki.runtime.cert, pki.intermediate],
        notarizers=[fingerprint_of(pki.runtime.cert)],
    )
    verifier.verify(EccMessage.from_json(message), system_clock())


def _signed_job(prod: Prod, name: str = "Probe job") -> Frame:
    sys_id = prod.signed("sysauto_script", job(name, "ecc.enqueue('mid.server.alpha', 'Command')"))
    return Frame("sysauto_script", sys_id)


def test_message_from_signed_job_is_notarized_and_a_mid_accepts_it(
    prod: Prod, tmp_path: Path
) -> None:
    frame = _signed_job(prod)
    message = _enqueue(prod, [frame])
    notarization = message["notarization"]
    assert notarization is not None
    payload = notarization["payload"]
    assert payload["format"] == "trustcircle.ecc-notarization/v1"
    assert payload["instance"] == "prod"
    assert payload["ecc"] == message["sys_id"]
    assert payload["origin"][0]["table"] == "sysauto_script"
    assert payload["origin"][0]["document_id"] == frame.document_id
    assert notarization["algorithm"] == "RSASSA_PKCS1_V1_5_SHA_512"
    _mid_verify(prod, message, tmp_path)
    assert _log(prod) == []


def test_unsigned_job_message_is_stored_unnotarized_and_logged(prod: Prod) -> None:
    unsigned = prod.record("sysauto_script", job("Rogue job", "x"))
    message = _enqueue(prod, [Frame("sysauto_script", unsigned)])
    assert message["notarization"] is None
    assert message["state"] == "ready"
    (entry,) = _log(prod)
    assert entry["event"] == "unsigned_script"
    assert entry["source"] == "instance"
    assert entry["ecc"] == message["sys_id"]
    assert "'Rogue job'" in entry["message"]
    assert unsigned in entry["message"]
    assert "verdict missing" in entry["message"]


def test_job_edited_after_signing_is_not_trusted(prod: Prod) -> None:
    frame = _signed_job(prod)
    prod.update("sysauto_script", frame.document_id, {"script": "ecc.enqueue('x', 'Command')"})
    message = _enqueue(prod, [frame])
    assert message["notarization"] is None
    assert "signature_mismatch" in _log(prod)[0]["message"]


def test_script_signed_by_an_untrusted_certificate_is_not_trusted(prod: Prod) -> None:
    sys_id = prod.record("sysauto_script", job("Foreign job", "x"))
    with prod.op() as op:  # the certificate is known here but does not chain to the anchors
        from trustcircle.platform import kmf

        kmf.store_certificate(op.session, prod.pki.unknown_ca.cert, "cm_code_signing", "foreign")
    prod.sign("sysauto_script", sys_id, prod.pki.unknown_ca)
    message = _enqueue(prod, [Frame("sysauto_script", sys_id)])
    assert message["notarization"] is None
    assert "verdict untrusted" in _log(prod)[0]["message"]


def test_any_configured_purpose_counts(prod: Prod, tmp_path: Path) -> None:
    sys_id = prod.record("sysauto_script", job("CoT job", "x"))
    prod.sign("sysauto_script", sys_id, prod.pki.code_attest, purpose=CIRCLE_OF_TRUST)
    message = _enqueue(prod, [Frame("sysauto_script", sys_id)])
    assert message["notarization"] is not None
    _mid_verify(prod, message, tmp_path)


def test_message_without_any_script_behind_it_is_not_notarized(prod: Prod) -> None:
    message = _enqueue(prod, [])
    assert message["notarization"] is None
    assert "no signed script is on the calling stack" in _log(prod)[0]["message"]


def test_unsigned_outer_script_beyond_the_tracking_length_is_not_checked(prod: Prod) -> None:
    outer = Frame("sysauto_script", prod.record("sysauto_script", job("Outer", "x")))
    inner = [
        Frame("sys_script_include", prod.signed("sys_script_include", script_include(n, "x")))
        for n in ("A", "B", "C")
    ]
    assert _enqueue(prod, [outer, *inner])["notarization"] is not None
    prod.set_property(properties.TRACKING_LENGTH, "4")
    assert _enqueue(prod, [outer, *inner])["notarization"] is None


def test_excluded_agent_is_notarized_without_the_stack_check_and_logged(
    prod: Prod, tmp_path: Path
) -> None:
    prod.set_property(properties.TRACKING_EXCLUSIONS, "beta, mid.server.alpha")
    unsigned = prod.record("sysauto_script", job("Rogue job", "x"))
    message = _enqueue(prod, [Frame("sysauto_script", unsigned)])
    assert message["notarization"] is not None
    _mid_verify(prod, message, tmp_path)
    (entry,) = _log(prod)
    assert entry["event"] == "tracking_exclusion"
    assert "'Rogue job'" in entry["message"]


def test_fail_fast_refuses_the_enqueue_and_the_log_entry_survives_the_rollback(
    prod: Prod,
) -> None:
    prod.set_property(properties.TRACKING_FAIL_FAST, "true")
    unsigned = prod.record("sysauto_script", job("Rogue job", "x"))
    with pytest.raises(PolicyError, match="refused \\(fail_fast\\)"):
        _enqueue(prod, [Frame("sysauto_script", unsigned)])
    with prod.op("ecc.read") as op:
        assert queue.list_messages(op.session) == []
    (entry,) = _log(prod)
    assert entry["event"] == "enqueue_refused"
    assert entry["level"] == "error"
    assert "'Rogue job'" in entry["message"]


def test_fail_fast_entry_is_written_once_when_the_run_commits(prod: Prod) -> None:
    prod.set_property(properties.TRACKING_FAIL_FAST, "true")
    unsigned = prod.record("sysauto_script", job("Rogue job", "x"))
    with prod.op("job.execute") as op:
        tracker = Tracker(op)
        with pytest.raises(PolicyError):
            tracker.enqueue([Frame("sysauto_script", unsigned)], AGENT, "Command")
        # the script caught the refusal; its run goes on and commits
    assert [e["event"] for e in _log(prod)] == ["enqueue_refused"]


def test_missing_runtime_key_leaves_the_message_unnotarized(prod: Prod) -> None:
    from sqlalchemy import delete

    from trustcircle.store.models import CryptoKey

    with prod.op() as op:
        op.session.execute(delete(CryptoKey))
    message = _enqueue(prod, [_signed_job(prod)])
    assert message["notarization"] is None
    (entry,) = _log(prod)
    assert entry["event"] == "runtime_key_unavailable"
    assert "cm_runtime holds no key" in entry["message"]


def test_data_source_payload_is_expanded_into_a_self_contained_signed_record(
    prod: Prod, tmp_path: Path
) -> None:
    fields = {
        "name": "Inventory",
        "type": "JDBC",
        "connection_url": "inventory",
        "sql_statement": "select name from items",
    }
    ds = prod.signed("sys_data_source", fields)
    message = _enqueue(
        prod,
        [_signed_job(prod)],
        topic="JDBCProbe",
        payload={"data_source": "Inventory", "parameters": {"limit": 3}},
    )
    script = parse_script_payload("JDBCProbe", message["payload"])
    assert script.table == "sys_data_source"
    assert script.sys_id == ds
    assert dict(script.fields) == fields
    assert script.parameters == {"limit": 3}
    assert [s.document_id for s in script.signatures] == [ds]
    assert {c.subject for c in script.certificates} == {
        prod.pki.code_signing.cert.subject,
        prod.pki.intermediate.subject,
    }
    _mid_verify(prod, message, tmp_path)  # the MID also checks the record signature itself


def test_decide_checks_only_the_innermost_frames() -> None:
    good = Judgement("sys_script_include", "a" * 32, "A", True, "s" * 32, "")
    bad = Judgement("sys_script_include", "b" * 32, "B", False, "", "verdict missing")
    settings = TrackerSettings(tracking_length=2)
    assert decide([bad, good, good], "alpha", settings).notarize
    refused = decide([good, bad, good], "alpha", settings)
    assert not refused.notarize
    assert refused.problems == (bad,)
    assert decide([], "alpha", settings).problems == (NO_SCRIPT,)
    exempt = decide([bad], "alpha", TrackerSettings(exclusions=frozenset({"alpha"})))
    assert exempt.notarize
    assert exempt.exempt


def test_trust_judged_before_a_job_began_writing_is_judged_again(prod: Prod) -> None:
    """Stale trust: a job's run reads without the lock until its first write (here a
    records write, not the tracker's); a certificate removed meanwhile must count."""
    from sqlalchemy import delete

    from trustcircle.platform.context import Instance
    from trustcircle.store.models import Certificate

    frame = _signed_job(prod)
    inst = Instance.open(prod.home)
    try:
        with inst.operation(prod.admin_token, "job.execute", "test", deferred=True) as op:
            tracker = Tracker(op)
            assert tracker.judge(frame).valid, "judged on what was read without the lock"
            with prod.op() as other:  # another writer goes ahead meanwhile
                other.session.execute(
                    delete(Certificate).where(Certificate.module == "cm_code_signing")
                )
            op.begin_writing()  # what records.insert does before the script's first write
            sys_id = tracker.enqueue([frame], AGENT, "Command", "probe", COMMAND, None)
    finally:
        inst.close()
    assert _row(prod, sys_id)["notarization"] is None
