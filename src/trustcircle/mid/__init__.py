"""The MID server agent (DESIGN §7): polls a protected instance's ECC queue and runs only
work whose signatures chain to the anchors pinned in its own configuration.

Depends only on :mod:`trustcircle.crypto`, :mod:`trustcircle.signing`, the small shared
modules and HTTP: never on the instance's database.
"""

from .agent import ACCEPT_EXCEPTION, AUDIT, DENIED, MidAgent
from .config import (
    BootConfig,
    MidConfig,
    load_anchors,
    load_boot_config,
    load_mid_config,
    read_token,
)
from .firewall import (
    TAG_PARENTS,
    TOPIC_TAGS,
    Firewall,
    FirewallAction,
    FirewallDecision,
    FirewallMode,
    FirewallRule,
)
from .handlers import ExecResult, Handlers, HandlerSettings
from .payloads import EccMessage, ScriptPayload
from .policy import (
    PolicyState,
    PolicyStatement,
    PolicyStore,
    PolicyTracker,
    verify_policy_statement,
)
from .replay import ReplayError, ReplayStore
from .trust import AnchorTrust
from .verify import MessageVerifier, VerifiedMessage, notarization_object

__all__ = [
    "ACCEPT_EXCEPTION",
    "AUDIT",
    "DENIED",
    "TAG_PARENTS",
    "TOPIC_TAGS",
    "AnchorTrust",
    "BootConfig",
    "EccMessage",
    "ExecResult",
    "Firewall",
    "FirewallAction",
    "FirewallDecision",
    "FirewallMode",
    "FirewallRule",
    "HandlerSettings",
    "Handlers",
    "MessageVerifier",
    "MidAgent",
    "MidConfig",
    "PolicyState",
    "PolicyStatement",
    "PolicyStore",
    "PolicyTracker",
    "ReplayError",
    "ReplayStore",
    "ScriptPayload",
    "VerifiedMessage",
    "load_anchors",
    "load_boot_config",
    "load_mid_config",
    "notarization_object",
    "read_token",
    "verify_policy_statement",
]
