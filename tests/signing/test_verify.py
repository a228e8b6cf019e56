"""RecordVerifier: every verdict, every reason, and the multiple-signature rule."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest

from trustcircle._types import B64, Fingerprint, SysId, Timestamp
from trustcircle.errors import UsageError, VerificationError
from trustcircle.signing import (
    BUILTIN_CONFIGS,
    CLOCK_SKEW,
    WILDCARD,
    RecordVerifier,
    Verdict,
)

from .conftest import DOC, JOB_FIELDS, NOW, OTHER_DOC, Signer, verifier

JOB = "sysauto_script"


def _changed(**changes: str | None) -> dict[str, str | None]:
    return {**JOB_FIELDS, **changes}


# -- valid ----------------------------------------------------------------------------------


def test_freshly_signed_record_is_valid(signer: Signer) -> None:
    record = signer.sign()
    result = verifier((signer, signer.trust())).verify(JOB, DOC, JOB_FIELDS, [record])
    assert result.verdict is Verdict.VALID
    assert result.reasons == ()
    assert result.valid_signature == record
    assert [(c.signature, c.newest_in_group, c.ok, c.reasons) for c in result.checks] == [
        (record, True, True, ())
    ]


def test_any_configured_purpose_is_accepted_when_none_is_asked(signer: Signer) -> None:
    record = signer.sign(purpose="Code Signing")
    result = verifier((signer, signer.trust())).verify(JOB, DOC, JOB_FIELDS, [record])
    assert result.verdict is Verdict.VALID


def test_changing_an_unsigned_field_keeps_the_record_valid(signer: Signer) -> None:
    record = signer.sign()
    fields = _changed(description="edited on production", sys_updated_on="2026-11-28")
    assert verifier((signer, signer.trust())).verify(JOB, DOC, fields, [record]).verdict is (
        Verdict.VALID
    )


def test_signing_time_within_clock_skew_is_accepted(ed_signer: Signer) -> None:
    record = ed_signer.sign(signed_at=NOW + CLOCK_SKEW, expires_at=NOW + dt.timedelta(hours=1))
    assert verifier((ed_signer, ed_signer.trust())).verify(
        JOB, DOC, JOB_FIELDS, [record]
    ).verdict is (Verdict.VALID)


def test_signature_is_valid_up_to_its_expiry_second(ed_signer: Signer) -> None:
    record = ed_signer.sign(expires_at=NOW)
    assert verifier((ed_signer, ed_signer.trust())).verify(
        JOB, DOC, JOB_FIELDS, [record]
    ).verdict is (Verdict.VALID)


# -- invalid, one reason at a time ------------------------------------------------------------


def test_edited_script_is_invalid_signature_mismatch(signer: Signer) -> None:
    record = signer.sign()
    fields = _changed(script="gs.setProperty('com.snc.kmf.signature.validation.flag', 'false');")
    result = verifier((signer, signer.trust())).verify(JOB, DOC, fields, [record])
    assert result.verdict is Verdict.INVALID
    assert result.reasons == ("signature_mismatch",)
    assert result.valid_signature is None


def test_signed_field_deleted_from_the_record_is_invalid(signer: Signer) -> None:
    record = signer.sign()
    fields = {k: v for k, v in JOB_FIELDS.items() if k != "run_as"}
    result = verifier((signer, signer.trust())).verify(JOB, DOC, fields, [record])
    assert result.reasons == ("signature_mismatch",)


def test_signature_for_another_purpose_is_invalid_purpose_mismatch(signer: Signer) -> None:
    record = signer.sign(purpose="Code Signing")
    result = verifier((signer, signer.trust())).verify(
        JOB, DOC, JOB_FIELDS, [record], purpose="Circle of Trust"
    )
    assert result.verdict is Verdict.INVALID
    assert result.reasons == ("purpose_mismatch",)


def test_wildcard_signature_on_a_scheduled_job_is_invalid(signer: Signer) -> None:
    # A key holder who bypasses sign_record's policy still cannot use '*' on a job.
    record = signer.sign_unchecked(purpose=WILDCARD)
    result = verifier((signer, signer.trust())).verify(JOB, DOC, JOB_FIELDS, [record])
    assert result.verdict is Verdict.INVALID
    assert result.reasons == ("wildcard_not_allowed",)


def test_signature_over_fewer_fields_than_configured_is_invalid(signer: Signer) -> None:
    # Shrinking the signed field list would leave 'script' editable: refused.
    record = signer.sign_unchecked(signed_fields=("active", "name"))
    fields = _changed(script="do_evil()")
    result = verifier((signer, signer.trust())).verify(JOB, DOC, fields, [record])
    assert result.verdict is Verdict.INVALID
    assert result.reasons == ("fields_not_covered",)


def test_expired_signature_is_invalid(signer: Signer) -> None:
    record = signer.sign()
    later = NOW + dt.timedelta(hours=1, seconds=1)
    result = verifier((signer, signer.trust()), now=later).verify(JOB, DOC, JOB_FIELDS, [record])
    assert result.verdict is Verdict.INVALID
    assert result.reasons == ("expired",)


def test_signature_from_the_future_is_invalid(ed_signer: Signer) -> None:
    record = ed_signer.sign(
        signed_at=NOW + CLOCK_SKEW + dt.timedelta(seconds=1),
        expires_at=NOW + dt.timedelta(hours=1),
    )
    result = verifier((ed_signer, ed_signer.trust())).verify(JOB, DOC, JOB_FIELDS, [record])
    assert result.verdict is Verdict.INVALID
    assert result.reasons == ("not_yet_valid",)


def test_unknown_algorithm_is_invalid(ed_signer: Signer) -> None:
    record = dataclasses.replace(ed_signer.sign(), algorithm="RSASSA_PSS_SHA_256")
    result = verifier((ed_signer, ed_signer.trust())).verify(JOB, DOC, JOB_FIELDS, [record])
    assert result.verdict is Verdict.INVALID
    assert result.reasons == ("unknown_algorithm",)


def test_algorithm_that_does_not_fit_the_key_is_invalid(ed_signer: Signer) -> None:
    record = dataclasses.replace(ed_signer.sign(), algorithm="ECDSA_P384_SHA384")
    result = verifier((ed_signer, ed_signer.trust())).verify(JOB, DOC, JOB_FIELDS, [record])
    assert result.reasons == ("signature_mismatch",)


@pytest.mark.parametrize(
    "changes",
    [
        {"signature": B64("not base64!")},
        {"signature": B64("")},
        {"signed_at": Timestamp("yesterday")},
        {"expires_at": Timestamp("2026-13-01T00:00:00Z")},
    ],
)
def test_malformed_signature_record_is_invalid(ed_signer: Signer, changes: dict[str, str]) -> None:
    record = dataclasses.replace(ed_signer.sign(), **changes)  # type: ignore[arg-type]
    result = verifier((ed_signer, ed_signer.trust())).verify(JOB, DOC, JOB_FIELDS, [record])
    assert result.verdict is Verdict.INVALID
    assert "malformed_signature" in result.reasons


def test_signature_moved_to_other_record_is_invalid(signer: Signer) -> None:
    record = signer.sign()
    check = verifier((signer, signer.trust()))
    # Attached as is to another record with identical field values.
    moved = check.verify(JOB, OTHER_DOC, JOB_FIELDS, [record])
    assert moved.verdict is Verdict.INVALID
    assert moved.reasons == ("wrong_document",)
    # Re-pointed at the other record: the signature no longer matches.
    repointed = dataclasses.replace(record, document_id=OTHER_DOC)
    result = check.verify(JOB, OTHER_DOC, JOB_FIELDS, [repointed])
    assert result.verdict is Verdict.INVALID
    assert result.reasons == ("signature_mismatch",)


def test_signature_moved_to_a_record_of_another_table_is_invalid(signer: Signer) -> None:
    record = dataclasses.replace(signer.sign(), table_name="mid_script_include")
    result = verifier((signer, signer.trust())).verify(
        "mid_script_include", DOC, JOB_FIELDS, [record]
    )
    assert result.verdict is Verdict.INVALID
    assert set(result.reasons) == {"purpose_mismatch", "signature_mismatch"}


def test_signature_on_a_table_without_configuration_is_invalid(ed_signer: Signer) -> None:
    record = dataclasses.replace(ed_signer.sign(), table_name="sys_user")
    result = verifier((ed_signer, ed_signer.trust())).verify("sys_user", DOC, JOB_FIELDS, [record])
    assert result.verdict is Verdict.INVALID
    assert "not_eligible" in result.reasons


# -- untrusted, orphan, missing --------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("revoked", "revoked"),
        ("chain_untrusted", "chain_untrusted"),
        ("not_a_trusted_friend", "not_a_trusted_friend"),
        (None, "certificate_untrusted"),
    ],
)
def test_good_signature_by_an_untrusted_certificate_is_untrusted(
    signer: Signer, reason: str | None, expected: str
) -> None:
    record = signer.sign()
    result = verifier((signer, signer.trust(False, reason))).verify(JOB, DOC, JOB_FIELDS, [record])
    assert result.verdict is Verdict.UNTRUSTED
    assert result.reasons == (expected,)
    assert result.valid_signature is None


def test_bad_signature_by_an_untrusted_certificate_is_invalid(ed_signer: Signer) -> None:
    record = ed_signer.sign()
    result = verifier((ed_signer, ed_signer.trust(False, "revoked"))).verify(
        JOB, DOC, _changed(script="x"), [record]
    )
    assert result.verdict is Verdict.INVALID
    assert result.reasons == ("signature_mismatch", "revoked")


def test_signature_of_a_deleted_record_is_orphan(signer: Signer) -> None:
    record = signer.sign()
    result = verifier((signer, signer.trust())).verify(JOB, DOC, None, [record])
    assert result.verdict is Verdict.ORPHAN
    assert result.reasons == ("record_gone",)
    assert result.checks[0].newest_in_group


def test_signature_by_an_unknown_certificate_is_orphan(
    signer: Signer, other_signer: Signer
) -> None:
    record = signer.sign()
    result = verifier((other_signer, other_signer.trust())).verify(JOB, DOC, JOB_FIELDS, [record])
    assert result.verdict is Verdict.ORPHAN
    assert result.reasons == ("certificate_unknown",)


def test_unsigned_eligible_record_is_missing() -> None:
    result = RecordVerifier({}, BUILTIN_CONFIGS, NOW).verify(JOB, DOC, JOB_FIELDS, [])
    assert result.verdict is Verdict.MISSING
    assert result.reasons == ("no_signature",)


def test_unsigned_record_of_a_table_without_configuration_is_not_eligible() -> None:
    result = RecordVerifier({}, BUILTIN_CONFIGS, NOW).verify("sys_user", DOC, {"name": "x"}, [])
    assert result.verdict is Verdict.MISSING
    assert result.reasons == ("not_eligible",)


# -- multiple signatures per record -----------------------------------------------------------


def test_newer_invalid_signature_from_another_certificate_does_not_hide_a_valid_one(
    signer: Signer, other_signer: Signer
) -> None:
    valid = signer.sign(signed_at=NOW - dt.timedelta(hours=2))
    newer_bad = other_signer.sign(_changed(script="other version"), signed_at=NOW)
    check = verifier((signer, signer.trust()), (other_signer, other_signer.trust()))
    result = check.verify(JOB, DOC, JOB_FIELDS, [valid, newer_bad])
    assert result.verdict is Verdict.VALID
    assert result.valid_signature == valid
    by_sig = {c.signature.sys_id: c for c in result.checks}
    assert by_sig[newer_bad.sys_id].reasons == ("signature_mismatch",)
    assert by_sig[newer_bad.sys_id].newest_in_group


def test_rollback_to_an_older_signed_version_is_invalid(signer: Signer) -> None:
    # Version 1 was signed, then version 2 was signed by the same certificate: putting
    # version 1 back (with its old signature still around) must not be accepted.
    old = signer.sign(signed_at=NOW - dt.timedelta(hours=2))
    newer = signer.sign(_changed(script="version 2"), signed_at=NOW - dt.timedelta(minutes=5))
    result = verifier((signer, signer.trust())).verify(JOB, DOC, JOB_FIELDS, [old, newer])
    assert result.verdict is Verdict.INVALID
    assert result.reasons == ("signature_mismatch",)
    by_sig = {c.signature.sys_id: c for c in result.checks}
    assert by_sig[old.sys_id].newest_in_group is False
    assert by_sig[old.sys_id].reasons == ("superseded",)


def test_older_signatures_of_a_group_are_not_examined(ed_signer: Signer) -> None:
    newest = ed_signer.sign()
    garbage = dataclasses.replace(
        newest,
        sys_id=SysId("1" * 32),
        signed_at=Timestamp("2026-11-27T10:00:00Z"),
        algorithm="NONSENSE",
        signature=B64("!!"),
    )
    result = verifier((ed_signer, ed_signer.trust())).verify(
        JOB, DOC, JOB_FIELDS, [garbage, newest]
    )
    assert result.verdict is Verdict.VALID
    assert {c.signature.sys_id: c.reasons for c in result.checks}[garbage.sys_id] == ("superseded",)


def test_same_second_signatures_are_ordered_by_sys_id(ed_signer: Signer) -> None:
    good = ed_signer.sign(sys_id=SysId("f" * 32))
    stale = ed_signer.sign(_changed(script="stale"), sys_id=SysId("0" * 32))
    for order in ([good, stale], [stale, good]):
        result = verifier((ed_signer, ed_signer.trust())).verify(JOB, DOC, JOB_FIELDS, order)
        assert result.valid_signature == good


def test_valid_trusted_signature_wins_over_an_untrusted_one(
    signer: Signer, other_signer: Signer
) -> None:
    trusted = signer.sign(signed_at=NOW - dt.timedelta(hours=2))
    untrusted = other_signer.sign(signed_at=NOW)
    check = verifier((signer, signer.trust()), (other_signer, other_signer.trust(False, "revoked")))
    for order in ([trusted, untrusted], [untrusted, trusted]):
        assert check.require_valid(JOB, DOC, JOB_FIELDS, order) == trusted
        assert check.verify(JOB, DOC, JOB_FIELDS, order).valid_signature == trusted


def test_untrusted_beats_invalid_when_nothing_is_valid(
    signer: Signer, other_signer: Signer
) -> None:
    untrusted = signer.sign()
    bad = other_signer.sign(_changed(script="other"))
    check = verifier(
        (signer, signer.trust(False, "certificate_expired")), (other_signer, other_signer.trust())
    )
    result = check.verify(JOB, DOC, JOB_FIELDS, [untrusted, bad])
    assert result.verdict is Verdict.UNTRUSTED
    assert set(result.reasons) == {"certificate_expired", "signature_mismatch"}


def test_unknown_certificate_beside_a_bad_signature_is_invalid(
    signer: Signer, other_signer: Signer
) -> None:
    bad = signer.sign(_changed(script="other"))
    unknown = other_signer.sign()
    result = verifier((signer, signer.trust())).verify(JOB, DOC, JOB_FIELDS, [bad, unknown])
    assert result.verdict is Verdict.INVALID
    assert set(result.reasons) == {"signature_mismatch", "certificate_unknown"}


# -- require_valid and reports ---------------------------------------------------------------


def test_require_valid_returns_the_valid_signature(signer: Signer) -> None:
    record = signer.sign()
    check = verifier((signer, signer.trust()))
    assert check.require_valid(JOB, DOC, JOB_FIELDS, [record], purpose="Circle of Trust") == record


def test_require_valid_names_the_failed_checks(signer: Signer) -> None:
    record = signer.sign()
    later = NOW + dt.timedelta(days=1)
    check = verifier((signer, signer.trust(False, "revoked")), now=later)
    with pytest.raises(VerificationError) as caught:
        check.require_valid(JOB, DOC, _changed(script="x"), [record])
    message = caught.value.message
    assert "\n" not in message
    for reason in ("invalid", "expired", "signature_mismatch", "revoked", record.sys_id):
        assert reason in message


@pytest.mark.parametrize(
    ("fields", "signed", "verdict"),
    [(JOB_FIELDS, False, "missing"), (None, True, "orphan")],
)
def test_require_valid_refuses_every_other_verdict(
    ed_signer: Signer, fields: dict[str, str | None] | None, signed: bool, verdict: str
) -> None:
    signatures = [ed_signer.sign()] if signed else []
    with pytest.raises(VerificationError, match=f"verdict {verdict}"):
        verifier((ed_signer, ed_signer.trust())).require_valid(JOB, DOC, fields, signatures)


def test_report_is_plain_json(signer: Signer, other_signer: Signer) -> None:
    record = signer.sign()
    other = other_signer.sign(_changed(script="x"))
    check = verifier((signer, signer.trust()), (other_signer, other_signer.trust()))
    report = check.verify(JOB, DOC, JOB_FIELDS, [record, other]).to_dict()
    assert json.loads(json.dumps(report)) == report
    assert report["verdict"] == "valid"
    assert report["valid_signature"]["sys_id"] == record.sys_id
    assert {c["signature"]["sys_id"]: c["reasons"] for c in report["checks"]} == {
        record.sys_id: [],
        other.sys_id: ["signature_mismatch"],
    }


def test_asking_for_a_purpose_the_table_does_not_have_is_a_usage_error(
    ed_signer: Signer,
) -> None:
    with pytest.raises(UsageError, match="'Circle of Trust'"):
        verifier((ed_signer, ed_signer.trust())).verify(
            "mid_script_include", DOC, {}, [], purpose="Circle of Trust"
        )


def test_naive_verification_time_is_refused() -> None:
    with pytest.raises(UsageError, match="timezone-aware"):
        RecordVerifier({}, BUILTIN_CONFIGS, NOW.replace(tzinfo=None))


def test_certificate_map_is_keyed_by_fingerprint(ed_signer: Signer) -> None:
    record = ed_signer.sign()
    wrong_key = RecordVerifier(
        {Fingerprint(ed_signer.fingerprint.upper()): ed_signer.trust()}, BUILTIN_CONFIGS, NOW
    )
    assert wrong_key.verify(JOB, DOC, JOB_FIELDS, [record]).verdict is Verdict.ORPHAN


def test_trust_reason_on_a_trusted_certificate_does_not_make_it_untrusted(
    ed_signer: Signer,
) -> None:
    record = ed_signer.sign()
    later = NOW + dt.timedelta(days=1)
    check = verifier((ed_signer, ed_signer.trust(True, "expired")), now=later)
    assert check.verify(JOB, DOC, JOB_FIELDS, [record]).verdict is Verdict.INVALID


def test_unencodable_field_value_is_a_mismatch_not_a_crash(ed_signer: Signer) -> None:
    record = ed_signer.sign()
    fields = _changed(script="lone \ud800 surrogate")
    result = verifier((ed_signer, ed_signer.trust())).verify(JOB, DOC, fields, [record])
    assert result.verdict is Verdict.INVALID
    assert result.reasons == ("signature_mismatch",)
