"""Instance scripts, run by the script runner, with records, ecc and include."""

from __future__ import annotations

from typing import Any

from tests.ecc.conftest import Prod, job, script_include
from trustcircle.ecc import cslog, instance_api, queue
from trustcircle.jobs import Frame, RunResult, codesigning_api, run_script
from trustcircle.platform import records

Messages = list[dict[str, Any]]


def _run(prod: Prod, script: str, stack: tuple[Frame, ...]) -> tuple[RunResult, Messages]:
    with prod.op("job.execute") as op:
        result = run_script(script, instance_api(op, codesigning_api()), 20, stack=stack)
    with prod.op("ecc.read") as op:
        messages = [queue.to_dict(r) for r in queue.list_messages(op.session)]
    return result, messages


def _job_frame(prod: Prod, script: str = "pass") -> Frame:
    return Frame("sysauto_script", prod.signed("sysauto_script", job("Probe job", script)))


def _events(prod: Prod) -> list[dict[str, Any]]:
    with prod.op("codesigning.log") as op:
        return cslog.list_entries(op.session)


def test_records_api_reads_and_writes_in_the_run(prod: Prod) -> None:
    script = (
        "new = records.insert('sys_data_source', {'name': 'DS', 'type': 'JDBC'})\n"
        "records.update('sys_data_source', new, {'sql_statement': 'select 1'})\n"
        "got = records.get('sys_data_source', new)\n"
        "print(got['fields']['sql_statement'])\n"
        "print(len(records.query('sys_data_source', {'name': 'DS'})))\n"
        "print(records.get('sys_data_source', 'f' * 32))\n"
    )
    result, _ = _run(prod, script, (_job_frame(prod),))
    assert result.ok, result.error
    assert result.output.split("\n")[:3] == ["select 1", "1", "None"]
    with prod.op() as op:
        (ds,) = records.query(op.session, "sys_data_source")
    assert ds.fields["sql_statement"] == "select 1"


def test_script_cannot_write_circle_of_trust_records_or_signatures(prod: Prod) -> None:
    script = (
        "for table in ('cot_policy_statement', 'sn_kmf_record_signature'):\n"
        "    try:\n"
        "        records.insert(table, {'state': 'off'})\n"
        "    except ScriptApiError as exc:\n"
        "        print('refused', table)\n"
    )
    result, _ = _run(prod, script, (_job_frame(prod),))
    assert result.ok, result.error
    assert result.output.split() == [
        "refused",
        "cot_policy_statement",
        "refused",
        "sn_kmf_record_signature",
    ]


def test_include_function_enqueues_with_the_include_on_the_stack(prod: Prod) -> None:
    lib = prod.signed(
        "sys_script_include",
        script_include(
            "EccLib",
            "def send(text):\n"
            "    return ecc.enqueue('mid.server.alpha', 'Command', 'echo', "
            "{'argv': ['echo', text]})\n",
        ),
    )
    frame = _job_frame(prod)
    result, messages = _run(prod, "lib = include('global.EccLib')\nlib.send('hi')\n", (frame,))
    assert result.ok, result.error
    (message,) = messages
    origin = message["notarization"]["payload"]["origin"]
    assert [(o["table"], o["document_id"]) for o in origin] == [
        ("sysauto_script", frame.document_id),
        ("sys_script_include", lib),
    ]
    assert message["payload"] == '{"argv":["echo","hi"]}'


def test_unsigned_include_is_refused_and_the_run_sends_nothing(prod: Prod) -> None:
    prod.record("sys_script_include", script_include("Helper", "import builtins\nx = 1\n"))
    script = "include('Helper')\necc.enqueue('mid.server.alpha', 'Command', 'ls', 'ls')\n"
    result, messages = _run(prod, script, (_job_frame(prod),))
    assert not result.ok
    assert "'Helper'" in (result.error or "")
    assert "a signed script runs only signed code" in (result.error or "")
    assert messages == []
    (entry,) = _events(prod)
    assert (entry["event"], entry["level"]) == ("include_refused", "error")
    assert "'Helper'" in entry["message"]


def test_include_edited_after_signing_is_refused(prod: Prod) -> None:
    lib = prod.signed("sys_script_include", script_include("Patcher", "x = 1\n"))
    prod.update("sys_script_include", lib, {"script": "import builtins\nbuiltins.patched = 1\n"})
    script = (
        "try:\n"
        "    include('Patcher')\n"
        "except ScriptApiError as exc:\n"
        "    print('refused:', exc)\n"
        "import builtins\n"
        "print('patched' if hasattr(builtins, 'patched') else 'untouched')\n"
    )
    result, messages = _run(prod, script, (_job_frame(prod),))
    assert result.ok, result.error
    assert "signature_mismatch" in result.output
    assert result.output.splitlines()[-1] == "untouched"  # the edited text never ran
    assert messages == []
    assert _events(prod)[0]["event"] == "include_refused"


def test_forged_leave_cannot_pop_the_frames_the_run_started_with(prod: Prod) -> None:
    script = (
        "import sys\n"
        "try:\n"
        "    include.__globals__['channel']\n"
        "except Exception:\n"
        "    pass\n"
        "ch = [v for v in include.__closure__ if hasattr(v.cell_contents, 'call')][0]\n"
        "try:\n"
        "    ch.cell_contents.call('include', 'leave', [], {})\n"
        "except ScriptApiError as exc:\n"
        "    print('refused:', exc)\n"
    )
    result, _ = _run(prod, script, (_job_frame(prod),))
    assert result.ok, result.error
    assert "refused: include.leave without a matching enter" in result.output


def test_unknown_or_inactive_include_fails_in_the_script(prod: Prod) -> None:
    prod.signed("sys_script_include", {**script_include("Off", "x = 1"), "active": "false"})
    script = (
        "for name in ('Nope', 'Off'):\n"
        "    try:\n"
        "        include(name)\n"
        "    except ScriptApiError as exc:\n"
        "        print(exc)\n"
    )
    result, _ = _run(prod, script, (_job_frame(prod),))
    assert result.ok, result.error
    assert "no sys_script_include record with sys_id or name 'Nope'" in result.output
    assert "script include 'Off' is inactive" in result.output


def test_script_signed_with_the_runtime_key_is_not_signed_code(prod: Prod) -> None:
    """The protected instance never signs code: its runtime certificate chains to the
    anchors (it must, to notarize), yet a script it signed gets no notarization."""
    sys_id = prod.record("sysauto_script", job("Runtime-signed", "pass"))
    prod.sign("sysauto_script", sys_id, prod.pki.runtime)
    script = "ecc.enqueue('mid.server.alpha', 'Command', 'ls', 'ls')\n"
    result, messages = _run(prod, script, (Frame("sysauto_script", sys_id),))
    assert result.ok, result.error
    (message,) = messages
    assert message["notarization"] is None
    (entry,) = _events(prod)
    assert "runtime_certificate" in entry["message"]
