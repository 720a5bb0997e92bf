"""Change tracking for managed policies: what changed between two builds, and the next status.

``diff_policy`` compares two rule lists by name and full text. ``next_status`` computes the
ManagedPolicy status fields the operator owns: ``lastUpdated`` moves only when the rule set or a
rule's text changed (so ``kubectl get`` shows "UPDATED 14d" truthfully), ``changes`` is a bounded
newest-first list, counts respect the user's choices, and a disabled rule that vanished upstream is
listed in ``missingDisabledRules`` instead of being silently dropped.

Who calls it: the operator's status builder (``padlock.flows.statuses``). Pure: ``now`` is passed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from padlock.api.managedpolicy import DEFAULT_ENABLED
from padlock.policy.policy_objects import PolicyRule, effective_enabled, parse_time

#: Bound on ``status.changes`` (docs/design.md): older entries fall off the end.
MAX_CHANGES = 20


@dataclass(frozen=True)
class PolicyDiff:
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    modified: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.modified)


@dataclass(frozen=True)
class Change:
    time: datetime
    from_version: str | None
    to_version: str | None
    added: tuple[str, ...]
    removed: tuple[str, ...]
    modified: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"time": format_time(self.time)}
        if self.from_version is not None:
            out["fromVersion"] = self.from_version
        if self.to_version is not None:
            out["toVersion"] = self.to_version
        out.update(
            added=list(self.added),
            removed=list(self.removed),
            modified=list(self.modified),
        )
        return out


@dataclass(frozen=True)
class PolicyStatus:
    """The operator-computed ManagedPolicy status fields (conditions are added by the operator)."""

    enabled: bool
    last_updated: datetime
    source_version: str | None
    rule_count: int
    enabled_rule_count: int
    missing_disabled_rules: tuple[str, ...] = ()
    changes: tuple[Change, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The camelCase status fields (``sourceVersion`` only when the policy names a source)."""
        out: dict[str, Any] = {"enabled": self.enabled, "lastUpdated": format_time(self.last_updated)}
        if self.source_version is not None:
            out["sourceVersion"] = self.source_version
        out.update(
            ruleCount=self.rule_count,
            enabledRuleCount=self.enabled_rule_count,
            missingDisabledRules=list(self.missing_disabled_rules),
            changes=[c.to_dict() for c in self.changes],
        )
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PolicyStatus | None:
        """Read back a status written by ``to_dict`` (None when it has no lastUpdated yet)."""
        last = parse_time(data.get("lastUpdated"))
        if last is None:
            return None
        changes = []
        for c in data.get("changes") or []:
            t = parse_time(c.get("time"))
            if t is None:
                continue
            changes.append(
                Change(
                    t,
                    c.get("fromVersion"),
                    c.get("toVersion"),
                    tuple(c.get("added") or ()),
                    tuple(c.get("removed") or ()),
                    tuple(c.get("modified") or ()),
                )
            )
        return cls(
            enabled=bool(data.get("enabled", DEFAULT_ENABLED)),
            last_updated=last,
            source_version=data.get("sourceVersion"),
            rule_count=int(data.get("ruleCount", 0)),
            enabled_rule_count=int(data.get("enabledRuleCount", 0)),
            missing_disabled_rules=tuple(data.get("missingDisabledRules") or ()),
            changes=tuple(changes),
        )


def format_time(t: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, second precision, as Kubernetes writes times."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def diff_policy(old_rules: Sequence[PolicyRule], new_rules: Sequence[PolicyRule]) -> PolicyDiff:
    """Rules added, removed, and modified (any text, priority, tag, enabled or source change), by name."""
    old = {r.name: r for r in old_rules}
    new = {r.name: r for r in new_rules}
    return PolicyDiff(
        added=tuple(sorted(set(new) - set(old))),
        removed=tuple(sorted(set(old) - set(new))),
        modified=tuple(sorted(n for n in set(old) & set(new) if old[n] != new[n])),
    )


def next_status(
    old_status: PolicyStatus | None,
    old_rules: Sequence[PolicyRule],
    new_rules: Sequence[PolicyRule],
    *,
    default_enabled: bool,
    enabled: bool | None,
    disabled_rules: Sequence[str],
    now: datetime,
    from_version: str | None,
    to_version: str | None,
) -> PolicyStatus:
    """The status after adopting ``new_rules`` (from release ``to_version``) with the user's choices.

    With no previous status (a new policy) the whole rule set counts as added and ``lastUpdated`` is
    ``now``. Re-running with unchanged rules returns the previous times and changes untouched, so
    status does not flap and no write is needed.
    """
    effective = effective_enabled(enabled, default_enabled)
    names = {r.name for r in new_rules}
    disabled = set(disabled_rules)
    running = sum(1 for r in new_rules if r.enabled and r.name not in disabled) if effective else 0
    missing = tuple(sorted(disabled - names))
    if old_status is None:
        diff = diff_policy((), new_rules)
        changes: tuple[Change, ...] = (
            Change(now, from_version, to_version, diff.added, diff.removed, diff.modified),
        )
        last_updated = now
    else:
        diff = diff_policy(old_rules, new_rules)
        if diff.empty:
            changes, last_updated = old_status.changes, old_status.last_updated
        else:
            entry = Change(now, from_version, to_version, diff.added, diff.removed, diff.modified)
            changes = (entry, *old_status.changes)[:MAX_CHANGES]
            last_updated = now
    return PolicyStatus(
        enabled=effective,
        last_updated=last_updated,
        source_version=to_version,
        rule_count=len(new_rules),
        enabled_rule_count=running,
        missing_disabled_rules=missing,
        changes=changes,
    )
