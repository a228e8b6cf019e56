"""Verification receipts: they spare only the public-key work, and only for what was verified."""

from __future__ import annotations

import datetime as dt
import os

import pytest

from trustcircle.crypto import algorithms
from trustcircle.signing import BUILTIN_CONFIGS, Receipts, RecordVerifier, Verdict

from .conftest import DOC, JOB_FIELDS, NOW, Signer

KEY = os.urandom(32)


def _judge(signer: Signer, receipts: Receipts, **kwargs: object) -> RecordVerifier:
    trust = kwargs.pop("trust", signer.trust())
    now = kwargs.pop("now", NOW)
    assert isinstance(now, dt.datetime)
    return RecordVerifier({signer.fingerprint: trust}, BUILTIN_CONFIGS, now, receipts=receipts)  # type: ignore[dict-item]


def _no_primitive(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object) -> bool:
        raise AssertionError("the public-key operation ran although a receipt vouched for it")

    monkeypatch.setattr(algorithms, "verify", refuse)


def _preview(signer: Signer) -> str:
    """What a preview stores after verifying one valid signature."""
    receipts = Receipts(KEY)
    result = _judge(signer, receipts).verify("sysauto_script", DOC, JOB_FIELDS, [signer.sign()])
    assert result.verdict is Verdict.VALID
    assert len(receipts) == 1
    return receipts.stored()


def test_a_receipt_spares_the_public_key_work_for_the_same_bytes(
    signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    signature = signer.sign()
    first = Receipts(KEY)
    _judge(signer, first).verify("sysauto_script", DOC, JOB_FIELDS, [signature])
    _no_primitive(monkeypatch)
    again = Receipts.parse(KEY, first.stored())
    result = _judge(signer, again).verify("sysauto_script", DOC, JOB_FIELDS, [signature])
    assert result.verdict is Verdict.VALID
    assert again.stored() == first.stored()  # confirmed receipts are kept


def test_no_receipt_for_a_signature_that_fails(signer: Signer) -> None:
    receipts = Receipts(KEY)
    tampered = {**JOB_FIELDS, "script": "gs.print('changed after signing');"}
    result = _judge(signer, receipts).verify("sysauto_script", DOC, tampered, [signer.sign()])
    assert result.verdict is Verdict.INVALID
    assert len(receipts) == 0
    assert receipts.stored() == ""


def test_a_receipt_does_not_cover_a_record_changed_since(rsa_signer: Signer) -> None:
    signature = rsa_signer.sign()
    first = Receipts(KEY)
    _judge(rsa_signer, first).verify("sysauto_script", DOC, JOB_FIELDS, [signature])
    tampered = {**JOB_FIELDS, "script": "gs.print('changed after preview');"}
    later = Receipts.parse(KEY, first.stored())
    result = _judge(rsa_signer, later).verify("sysauto_script", DOC, tampered, [signature])
    assert result.verdict is Verdict.INVALID
    assert result.reasons == ("signature_mismatch",)


def test_receipts_minted_without_this_instance_key_are_ignored(rsa_signer: Signer) -> None:
    signature = rsa_signer.sign()
    forged = Receipts(os.urandom(32))  # what someone without the master key can make
    _judge(rsa_signer, forged).verify("sysauto_script", DOC, JOB_FIELDS, [signature])
    calls: list[object] = []
    real = algorithms.verify

    def counting(*args: object) -> bool:
        calls.append(args)
        return real(*args)  # type: ignore[arg-type]

    mp = pytest.MonkeyPatch()
    mp.setattr(algorithms, "verify", counting)
    try:
        mine = Receipts.parse(KEY, forged.stored() + "\nnot-a-receipt\n" + "0" * 32)
        _judge(rsa_signer, mine).verify("sysauto_script", DOC, JOB_FIELDS, [signature])
    finally:
        mp.undo()
    assert len(calls) == 1  # verified in full


def test_a_receipt_never_overrides_trust_or_time(
    rsa_signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = _preview(rsa_signer)
    _no_primitive(monkeypatch)
    signature = rsa_signer.sign()
    untrusted = _judge(
        rsa_signer,
        Receipts.parse(KEY, stored),
        trust=rsa_signer.trust(False, "revoked"),
    ).verify("sysauto_script", DOC, JOB_FIELDS, [signature])
    assert untrusted.verdict is Verdict.UNTRUSTED
    later = _judge(rsa_signer, Receipts.parse(KEY, stored), now=NOW + dt.timedelta(days=1))
    expired = later.verify("sysauto_script", DOC, JOB_FIELDS, [signature])
    assert expired.verdict is Verdict.INVALID
    assert "expired" in expired.reasons


def test_stored_receipts_are_bounded_and_malformed_lines_dropped() -> None:
    text = "\n".join(["x" * 32, "short", "y" * 33, ""])
    assert Receipts.parse(KEY, text)._known == frozenset({"x" * 32})
    assert Receipts.parse(KEY, None)._known == frozenset()
