"""Message verification: notarization, freshness, replay and the record signature itself."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SessionPki
from tests.mid.builders import AGENT, INSTANCE, message, notarize, script_payload
from trustcircle.crypto import fingerprint_of
from trustcircle.errors import VerificationError
from trustcircle.mid import EccMessage, MessageVerifier, ReplayError, ReplayStore
from trustcircle.mid.verify import UnknownCertificateError

SQL_FIELDS = {
    "name": "inventory",
    "type": "JDBC",
    "connection_url": "inventory",
    "sql_statement": "SELECT name FROM hosts",
}


@pytest.fixture
def verifier(tmp_path: Path, test_pki: SessionPki) -> MessageVerifier:
    return MessageVerifier(
        [test_pki.root],
        INSTANCE,
        ReplayStore(tmp_path),
        agent=AGENT,
        certificates=[test_pki.runtime.cert, test_pki.intermediate],
        notarizers=[fingerprint_of(test_pki.runtime.cert)],
    )


def _msg(data: dict[str, Any]) -> EccMessage:
    return EccMessage.from_json(data)


def _command(test_pki: SessionPki, **kw: Any) -> dict[str, Any]:
    return notarize(
        message("Command", json.dumps({"argv": ["echo", "hi"]})),
        test_pki.runtime,
        test_pki.now,
        **kw,
    )


def test_valid_notarized_command_verifies(verifier: MessageVerifier, test_pki: SessionPki) -> None:
    verified = verifier.verify(_msg(_command(test_pki)), test_pki.now)
    assert verified.script is None
    assert verified.notarization["instance"] == INSTANCE


def test_one_byte_of_the_payload_changed_is_denied(
    verifier: MessageVerifier, test_pki: SessionPki
) -> None:
    tampered = _command(test_pki)
    tampered["payload"] = tampered["payload"].replace("hi", "hI")
    with pytest.raises(VerificationError, match="payload changed after notarization"):
        verifier.verify(_msg(tampered), test_pki.now)


def test_tampered_payload_with_matching_carried_digest_is_denied(
    verifier: MessageVerifier, test_pki: SessionPki
) -> None:
    """Whoever edits the payload and the carried digest still cannot forge the signature."""
    import hashlib

    tampered = _command(test_pki)
    tampered["payload"] = json.dumps({"argv": ["rm", "-rf", "/tmp/x"]})
    digest = hashlib.sha512(tampered["payload"].encode()).hexdigest()
    tampered["notarization"]["payload"]["payload_sha512"] = digest
    with pytest.raises(VerificationError, match="signature does not verify"):
        verifier.verify(_msg(tampered), test_pki.now)


def test_unnotarized_message_inserted_through_the_api_is_denied(
    verifier: MessageVerifier, test_pki: SessionPki
) -> None:
    with pytest.raises(VerificationError, match="not notarized"):
        verifier.verify(_msg(message("Command", "echo hi")), test_pki.now)


def test_notarization_moved_to_another_message_is_denied(
    verifier: MessageVerifier, test_pki: SessionPki
) -> None:
    stolen = _command(test_pki)
    other = message("Command", stolen["payload"])
    other["notarization"] = stolen["notarization"]
    with pytest.raises(VerificationError, match="belongs to another message"):
        verifier.verify(_msg(other), test_pki.now)


def test_message_for_another_mid_is_denied(verifier: MessageVerifier, test_pki: SessionPki) -> None:
    data = notarize(
        message("Command", "echo hi", agent="mid.server.other"), test_pki.runtime, test_pki.now
    )
    with pytest.raises(VerificationError, match="addressed to agent"):
        verifier.verify(_msg(data), test_pki.now)


def test_notarization_of_another_instance_is_denied(
    verifier: MessageVerifier, test_pki: SessionPki
) -> None:
    with pytest.raises(VerificationError, match="another instance"):
        verifier.verify(_msg(_command(test_pki, instance="staging")), test_pki.now)


def test_expired_notarization_is_denied(verifier: MessageVerifier, test_pki: SessionPki) -> None:
    later = test_pki.now + dt.timedelta(hours=1, seconds=1)
    with pytest.raises(VerificationError, match="expired"):
        verifier.verify(_msg(_command(test_pki)), later)


def test_notarization_from_the_future_is_denied(
    verifier: MessageVerifier, test_pki: SessionPki
) -> None:
    earlier = test_pki.now - dt.timedelta(minutes=10)
    with pytest.raises(VerificationError, match="in the future"):
        verifier.verify(_msg(_command(test_pki)), earlier)


def test_replayed_message_is_denied(verifier: MessageVerifier, test_pki: SessionPki) -> None:
    data = _command(test_pki)
    verifier.verify(_msg(data), test_pki.now)
    with pytest.raises(ReplayError, match="already executed"):
        verifier.verify(_msg(data), test_pki.now)


def test_replay_is_refused_after_a_restart(tmp_path: Path, test_pki: SessionPki) -> None:
    data = _command(test_pki)
    pool = [test_pki.runtime.cert, test_pki.intermediate]
    pins = [fingerprint_of(test_pki.runtime.cert)]
    store = ReplayStore(tmp_path)
    first = MessageVerifier([test_pki.root], INSTANCE, store, certificates=pool, notarizers=pins)
    first.verify(_msg(data), test_pki.now)
    store = ReplayStore(tmp_path)
    second = MessageVerifier([test_pki.root], INSTANCE, store, certificates=pool, notarizers=pins)
    with pytest.raises(ReplayError):
        second.verify(_msg(data), test_pki.now)


def test_certificate_not_chaining_to_pinned_anchors_is_denied_even_if_the_instance_serves_it(
    tmp_path: Path, test_pki: SessionPki
) -> None:
    served = [test_pki.unknown_ca.cert, test_pki.other_root, test_pki.intermediate]
    verifier = MessageVerifier(
        [test_pki.root],
        INSTANCE,
        ReplayStore(tmp_path),
        certificates=served,
        notarizers=[fingerprint_of(test_pki.unknown_ca.cert)],  # pinned, yet not chaining
    )
    data = notarize(message("Command", "echo hi"), test_pki.unknown_ca, test_pki.now)
    with pytest.raises(VerificationError, match="does not chain to the pinned anchors"):
        verifier.verify(_msg(data), test_pki.now)


def test_unknown_notarization_certificate_asks_for_a_refresh(
    tmp_path: Path, test_pki: SessionPki
) -> None:
    pins = [fingerprint_of(test_pki.runtime.cert)]
    verifier = MessageVerifier([test_pki.root], INSTANCE, ReplayStore(tmp_path), notarizers=pins)
    data = _command(test_pki)
    with pytest.raises(UnknownCertificateError):
        verifier.verify(_msg(data), test_pki.now)
    verifier.add_certificates([test_pki.runtime.cert, test_pki.intermediate])
    assert verifier.verify(_msg(data), test_pki.now).message.sys_id == data["sys_id"]


def _jdbc(test_pki: SessionPki, **kw: Any) -> dict[str, Any]:
    payload = script_payload(
        "sys_data_source",
        kw.pop("fields", SQL_FIELDS),
        kw.pop("leaf", test_pki.code_signing),
        test_pki.now,
        chain=[test_pki.intermediate],
        **kw,
    )
    return notarize(message("JDBCProbe", payload), test_pki.runtime, test_pki.now)


def test_signed_jdbc_data_source_verifies(verifier: MessageVerifier, test_pki: SessionPki) -> None:
    verified = verifier.verify(_msg(_jdbc(test_pki)), test_pki.now)
    assert verified.script is not None
    assert verified.script.fields["sql_statement"] == "SELECT name FROM hosts"


def test_jdbc_data_source_edited_after_signing_is_denied(
    verifier: MessageVerifier, test_pki: SessionPki
) -> None:
    """The instance notarizes it (its tracker is fooled or lying), the record signature fails."""
    edited = dict(SQL_FIELDS, sql_statement="DELETE FROM hosts")
    data = _jdbc(test_pki, fields=edited, signed_fields=SQL_FIELDS)
    with pytest.raises(
        VerificationError, match=r"sys_data_source .* is invalid.*signature_mismatch"
    ):
        verifier.verify(_msg(data), test_pki.now)


def test_record_signed_by_a_ca_the_mid_does_not_pin_is_denied(
    verifier: MessageVerifier, test_pki: SessionPki
) -> None:
    data = _jdbc(test_pki, leaf=test_pki.unknown_ca)
    with pytest.raises(VerificationError, match="record signature of sys_data_source"):
        verifier.verify(_msg(data), test_pki.now)


def test_unsigned_script_record_is_denied(verifier: MessageVerifier, test_pki: SessionPki) -> None:
    payload = json.loads(_jdbc(test_pki)["payload"])
    payload["signatures"] = []
    data = notarize(message("JDBCProbe", json.dumps(payload)), test_pki.runtime, test_pki.now)
    with pytest.raises(VerificationError, match="is missing"):
        verifier.verify(_msg(data), test_pki.now)


def test_record_of_the_wrong_table_for_the_topic_is_denied(
    verifier: MessageVerifier, test_pki: SessionPki
) -> None:
    payload = _jdbc(test_pki)["payload"]
    data = notarize(message("PythonScript", payload), test_pki.runtime, test_pki.now)
    with pytest.raises(VerificationError, match="not mid_script_include"):
        verifier.verify(_msg(data), test_pki.now)


def test_denied_message_is_not_recorded_as_executed(
    verifier: MessageVerifier, test_pki: SessionPki
) -> None:
    data = _command(test_pki)
    with pytest.raises(VerificationError):
        verifier.verify(_msg(data), test_pki.now - dt.timedelta(minutes=10))
    assert verifier.verify(_msg(data), test_pki.now).message.sys_id == data["sys_id"]


def test_null_source_is_compared_as_sent(verifier: MessageVerifier, test_pki: SessionPki) -> None:
    data = message("Command", "echo hi")
    data["source"] = None
    notarized = notarize(data, test_pki.runtime, test_pki.now)
    assert notarized["notarization"]["payload"]["source"] is None
    assert verifier.verify(_msg(notarized), test_pki.now).message.source is None
    filled = notarize(message("Command", "echo hi"), test_pki.runtime, test_pki.now)
    filled["source"] = None  # "" was notarized: null is another value
    with pytest.raises(VerificationError, match="source changed"):
        verifier.verify(_msg(filled), test_pki.now)


# -- roles: the protected instance's runtime key notarizes and signs nothing else ----------


def test_notarization_by_a_certificate_not_pinned_as_notarizer_is_denied(
    verifier: MessageVerifier, test_pki: SessionPki
) -> None:
    # code_signing chains to the anchors but is the trusted instance's key, not a notarizer
    verifier.add_certificates([test_pki.code_signing.cert])
    data = notarize(message("Command", "echo hi"), test_pki.code_signing, test_pki.now)
    with pytest.raises(VerificationError, match="not a notarizer pinned"):
        verifier.verify(_msg(data), test_pki.now)


def test_script_signed_with_the_runtime_key_is_denied(
    verifier: MessageVerifier, test_pki: SessionPki
) -> None:
    """Whoever runs code as the protected instance's host holds its runtime key: with it
    alone they can notarize, but not sign a data source the MID would then run."""
    data = _jdbc(test_pki, leaf=test_pki.runtime)
    with pytest.raises(VerificationError, match=r"is untrusted.*notarizer_certificate"):
        verifier.verify(_msg(data), test_pki.now)


def test_payload_no_signer_could_have_signed_is_a_denial_not_a_crash(
    verifier: MessageVerifier, test_pki: SessionPki
) -> None:
    data = _command(test_pki)
    data["payload"] = "echo \ud800"  # a lone surrogate: not UTF-8, never notarized
    with pytest.raises(VerificationError, match="cannot be verified"):
        verifier.verify(_msg(data), test_pki.now)
