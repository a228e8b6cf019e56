"""The Circle of Trust: friends and revocations, signed jobs, policy statements, turn on/off."""

from .execute import ExecutionResult, execute_job
from .export import CERTIFICATE_SET_PREFIX, ExportResult, export_certificate, export_signed_job
from .friends import add_friend, friend_trust, list_friends
from .policy import PolicyView, current_policy, current_sequence, next_sequence
from .prereq import Check, PrereqReport, prereq_check, required_action
from .revoke import REVOCATION_SET_PREFIX, export_revocation

__all__ = [
    "CERTIFICATE_SET_PREFIX",
    "REVOCATION_SET_PREFIX",
    "Check",
    "ExecutionResult",
    "ExportResult",
    "PolicyView",
    "PrereqReport",
    "add_friend",
    "current_policy",
    "current_sequence",
    "execute_job",
    "export_certificate",
    "export_revocation",
    "export_signed_job",
    "friend_trust",
    "list_friends",
    "next_sequence",
    "prereq_check",
    "required_action",
]
