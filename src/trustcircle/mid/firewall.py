"""The ECC firewall of a MID server (DESIGN §7): ordered tag rules, pure.

Every topic carries one tag; tags form a hierarchy (``HTTP`` ⊃ ``REST``, ``SOAP``; ...).
A rule lists tags and an action; a rule on a parent tag covers its children; the first
rule that covers a message's tag decides. No matching rule means "none": the ordinary
verification decides.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from trustcircle.errors import UsageError

_HIERARCHY: Mapping[str, tuple[str, ...]] = {
    "HTTP": ("REST", "SOAP"),
    "SSH": ("SCP", "SFTP"),
    "DATABASES": ("JDBC",),
    "WINDOWS": ("CIM", "POWERSHELL", "WMI", "WINRM"),
    "DIRECTORY_SERVICES": ("LDAP",),
    "VCS": ("GIT",),
    "ITOM": ("DISCOVERY", "SERVICE_MAPPING", "ORCHESTRATION", "EVENT_MANAGEMENT", "CLOUD"),
    "COMMAND": (),
    "PYTHON": (),
    "SYSTEM": (),
}

TAG_PARENTS: Mapping[str, str | None] = MappingProxyType(
    {
        **{parent: None for parent in _HIERARCHY},
        **{child: parent for parent, children in _HIERARCHY.items() for child in children},
    }
)
"""Every known tag → its parent tag (None for a top-level tag)."""

TOPIC_TAGS: Mapping[str, str] = MappingProxyType(
    {
        "Command": "COMMAND",
        "PythonScript": "PYTHON",
        "JDBCProbe": "JDBC",
        "RESTProbe": "REST",
        "SystemCommand": "SYSTEM",
    }
)
"""The firewall tag of each ECC topic the MID handles."""


class FirewallMode(enum.StrEnum):
    """``enforcing`` denies; ``audit`` executes and logs what enforcing would deny."""

    ENFORCING = "enforcing"
    AUDIT = "audit"


class RuleAction(enum.StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"


class FirewallAction(enum.StrEnum):
    """The decision on one message: a rule accepted or rejected it, or no rule matched."""

    ACCEPT = "accept"
    REJECT = "reject"
    NONE = "none"


def canonical_tag(name: str) -> str:
    """The known tag *name* names (case-insensitive), or :class:`UsageError` naming it."""
    tag = name.strip().upper() if isinstance(name, str) else ""
    if tag not in TAG_PARENTS:
        known = ", ".join(sorted(TAG_PARENTS))
        raise UsageError(
            f"unknown ECC firewall tag {str(name)[:60]!r} in boot-config.yaml: use one of {known}"
        )
    return tag


def covered_by(tag: str) -> frozenset[str]:
    """*tag* and every ancestor of it: the rule tags that cover a message with *tag*."""
    found: set[str] = set()
    current: str | None = tag
    while current is not None and current not in found:
        found.add(current)
        current = TAG_PARENTS.get(current)
    return frozenset(found)


@dataclass(frozen=True)
class FirewallRule:
    """One ``boot-config.yaml`` rule: canonical tags and an action."""

    tags: tuple[str, ...]
    action: RuleAction

    @classmethod
    def of(cls, tags: Iterable[str], action: str) -> FirewallRule:
        """Build a rule from raw tag names and action text, refusing unknown ones."""
        canonical = tuple(dict.fromkeys(canonical_tag(t) for t in tags))
        if not canonical:
            raise UsageError(
                "an ECC firewall rule in boot-config.yaml lists no tags: list at least one"
            )
        try:
            parsed = RuleAction(str(action).strip().lower())
        except ValueError as exc:
            raise UsageError(
                f"unknown ECC firewall action {str(action)[:40]!r} in boot-config.yaml: "
                "use accept or reject"
            ) from exc
        return cls(canonical, parsed)


@dataclass(frozen=True)
class FirewallDecision:
    """What the firewall says about one topic; *rule* is the 0-based index of the rule."""

    action: FirewallAction
    rule: int | None
    tag: str | None

    def describe(self) -> str:
        """A few words for log lines: ``rule 2 (JDBC: reject)``."""
        if self.rule is None:
            return f"no rule matched tag {self.tag or '<none>'}"
        return f"rule {self.rule + 1} ({self.tag}: {self.action.value})"


class Firewall:
    """Ordered rules and a mode; decisions are cached per topic (the rules never change)."""

    def __init__(self, rules: Sequence[FirewallRule], mode: FirewallMode) -> None:
        self._rules = tuple(rules)
        self._mode = FirewallMode(mode)
        self._cache: dict[str, FirewallDecision] = {}

    @property
    def mode(self) -> FirewallMode:
        return self._mode

    @property
    def rules(self) -> tuple[FirewallRule, ...]:
        return self._rules

    def decide(self, topic: str) -> FirewallDecision:
        """The first rule covering *topic*'s tag, or action ``none``."""
        cached = self._cache.get(topic)
        if cached is not None:
            return cached
        tag = TOPIC_TAGS.get(topic)
        decision = FirewallDecision(FirewallAction.NONE, None, tag)
        if tag is not None:
            covering = covered_by(tag)
            for index, rule in enumerate(self._rules):
                if covering.intersection(rule.tags):
                    decision = FirewallDecision(FirewallAction(rule.action.value), index, tag)
                    break
        if len(self._cache) < 1024:
            self._cache[topic] = decision
        return decision
