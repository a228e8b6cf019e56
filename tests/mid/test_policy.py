"""Policy statements as the MID sees them: verified against pinned anchors, never rolled back."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from tests.conftest import SessionPki
from tests.mid.builders import INSTANCE, policy_response
from trustcircle.crypto import fingerprint_of
from trustcircle.errors import BadInputError, VerificationError
from trustcircle.mid import (
    AnchorTrust,
    PolicyState,
    PolicyStore,
    PolicyTracker,
    verify_policy_statement,
)


@pytest.fixture
def trust(test_pki: SessionPki) -> AnchorTrust:
    return AnchorTrust([test_pki.root], notarizers=[fingerprint_of(test_pki.runtime.cert)])


def _tracker(tmp_path: Path, trust: AnchorTrust) -> PolicyTracker:
    return PolicyTracker(PolicyStore(tmp_path), trust, INSTANCE)


def test_signed_statement_verifies(test_pki: SessionPki, trust: AnchorTrust) -> None:
    now = test_pki.now
    statement = verify_policy_statement(
        policy_response(test_pki, "off", 3, now), trust, INSTANCE, now
    )
    assert (statement.state, statement.sequence, statement.instance) == (
        PolicyState.OFF,
        3,
        INSTANCE,
    )


def test_no_statement_ever_seen_means_validation_on(
    tmp_path: Path, trust: AnchorTrust, test_pki: SessionPki
) -> None:
    tracker = _tracker(tmp_path, trust)
    assert tracker.validation_on
    assert tracker.apply(None, test_pki.now).validation_on


def test_signed_turn_off_switches_validation_off(
    tmp_path: Path, trust: AnchorTrust, test_pki: SessionPki
) -> None:
    tracker = _tracker(tmp_path, trust)
    update = tracker.apply(policy_response(test_pki, "off", 1, test_pki.now), test_pki.now)
    assert update.changed
    assert not update.validation_on
    assert not tracker.validation_on


def test_unsigned_validation_off_written_into_the_instance_is_ignored(
    tmp_path: Path, trust: AnchorTrust, test_pki: SessionPki
) -> None:
    tracker = _tracker(tmp_path, trust)
    forged = policy_response(test_pki, "off", 99, test_pki.now, signed=False)
    update = tracker.apply(forged, test_pki.now)
    assert update.validation_on
    assert update.refused is not None
    assert "not validly signed" in update.refused


def test_turn_off_signed_by_a_ca_the_mid_does_not_pin_is_ignored(
    tmp_path: Path, trust: AnchorTrust, test_pki: SessionPki
) -> None:
    tracker = _tracker(tmp_path, trust)
    forged = policy_response(test_pki, "off", 5, test_pki.now, leaf=test_pki.unknown_ca)
    update = tracker.apply(forged, test_pki.now)
    assert update.validation_on
    assert update.refused is not None


def test_turn_off_with_edited_state_is_ignored(
    tmp_path: Path, trust: AnchorTrust, test_pki: SessionPki
) -> None:
    tracker = _tracker(tmp_path, trust)
    body = policy_response(test_pki, "on", 5, test_pki.now)
    body["statement"]["fields"]["state"] = "off"
    assert tracker.apply(body, test_pki.now).validation_on


def test_lower_sequence_is_refused_and_enforcement_kept(
    tmp_path: Path, trust: AnchorTrust, test_pki: SessionPki
) -> None:
    now = test_pki.now
    tracker = _tracker(tmp_path, trust)
    tracker.apply(policy_response(test_pki, "on", 5, now), now)
    replayed_off = policy_response(test_pki, "off", 4, now)
    update = tracker.apply(replayed_off, now)
    assert update.validation_on
    assert update.refused is not None
    assert "lower than 5" in update.refused
    assert tracker.accepted is not None
    assert tracker.accepted.sequence == 5


def test_highest_sequence_survives_a_restart(
    tmp_path: Path, trust: AnchorTrust, test_pki: SessionPki
) -> None:
    now = test_pki.now
    _tracker(tmp_path, trust).apply(policy_response(test_pki, "on", 7, now), now)
    restarted = _tracker(tmp_path, trust)
    assert restarted.accepted is not None
    assert restarted.accepted.sequence == 7
    update = restarted.apply(policy_response(test_pki, "off", 6, now), now)
    assert update.validation_on
    assert update.refused is not None


def test_turn_off_survives_a_restart_and_instance_forgetting_it(
    tmp_path: Path, trust: AnchorTrust, test_pki: SessionPki
) -> None:
    now = test_pki.now
    _tracker(tmp_path, trust).apply(policy_response(test_pki, "off", 2, now), now)
    restarted = _tracker(tmp_path, trust)
    assert not restarted.validation_on
    assert not restarted.apply(None, now).validation_on


def test_same_statement_again_is_fine_but_a_different_one_with_its_sequence_is_refused(
    tmp_path: Path, trust: AnchorTrust, test_pki: SessionPki
) -> None:
    now = test_pki.now
    tracker = _tracker(tmp_path, trust)
    body = policy_response(test_pki, "on", 3, now)
    tracker.apply(body, now)
    again = tracker.apply(body, now + dt.timedelta(hours=5))  # even once expired
    assert (again.validation_on, again.changed, again.refused) == (True, False, None)
    other = tracker.apply(policy_response(test_pki, "off", 3, now), now)
    assert other.validation_on
    assert other.refused is not None
    assert "reuses sequence 3" in other.refused


def test_higher_sequence_turns_back_on(
    tmp_path: Path, trust: AnchorTrust, test_pki: SessionPki
) -> None:
    now = test_pki.now
    tracker = _tracker(tmp_path, trust)
    tracker.apply(policy_response(test_pki, "off", 1, now), now)
    assert tracker.apply(policy_response(test_pki, "on", 2, now), now).validation_on


def test_statement_for_another_instance_is_refused(
    trust: AnchorTrust, test_pki: SessionPki
) -> None:
    body = policy_response(test_pki, "off", 1, test_pki.now, instance="staging")
    with pytest.raises(VerificationError, match="names instance 'staging'"):
        verify_policy_statement(body, trust, INSTANCE, test_pki.now)


def test_statement_for_any_instance_is_accepted(trust: AnchorTrust, test_pki: SessionPki) -> None:
    body = policy_response(test_pki, "off", 1, test_pki.now, instance="*")
    assert verify_policy_statement(body, trust, INSTANCE, test_pki.now).instance == "*"


def test_expired_statement_is_refused(trust: AnchorTrust, test_pki: SessionPki) -> None:
    body = policy_response(test_pki, "off", 1, test_pki.now)
    later = test_pki.now + dt.timedelta(hours=2)
    with pytest.raises(VerificationError, match="expired"):
        verify_policy_statement(body, trust, INSTANCE, later)


def test_damaged_policy_state_refuses_to_start(tmp_path: Path, trust: AnchorTrust) -> None:
    (tmp_path / "policy-state.json").write_text(json.dumps({"format": "x"}))
    with pytest.raises(BadInputError, match="damaged"):
        _tracker(tmp_path, trust)


def test_statement_signed_with_the_runtime_key_cannot_turn_validation_off(
    test_pki: SessionPki, trust: AnchorTrust
) -> None:
    """DESIGN §6: even a compromised protected instance (which holds the runtime key)
    cannot switch enforcement off on its MIDs."""
    now = test_pki.now
    forged = policy_response(test_pki, "off", 99, now, leaf=test_pki.runtime)
    with pytest.raises(VerificationError, match="notarizer_certificate"):
        verify_policy_statement(forged, trust, INSTANCE, now)
