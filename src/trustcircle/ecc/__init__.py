"""The ECC queue, its tracker (notarization of messages made by signed scripts), the MID
server registry and the Code Signing log (DESIGN §7)."""

from .cslog import Entry as LogEntry
from .mids import CheckIn
from .queue import (
    AGENT_PREFIX,
    ERROR,
    INPUT,
    OUTPUT,
    PROCESSED,
    PROCESSING,
    READY,
    NewMessage,
    Notarization,
    Result,
)
from .scriptapi import instance_api
from .tracker import Decision, Judgement, Tracker, TrackerSettings, decide
from .wake import WAKER, Waker, wake_on_commit

__all__ = [
    "AGENT_PREFIX",
    "ERROR",
    "INPUT",
    "OUTPUT",
    "PROCESSED",
    "PROCESSING",
    "READY",
    "WAKER",
    "CheckIn",
    "Decision",
    "Judgement",
    "LogEntry",
    "NewMessage",
    "Notarization",
    "Result",
    "Tracker",
    "TrackerSettings",
    "Waker",
    "decide",
    "instance_api",
    "wake_on_commit",
]
