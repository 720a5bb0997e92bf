"""Small builders shared by the policy-core tests: rules, rulesets and policy inputs from plain values."""

from __future__ import annotations

from datetime import UTC, datetime

from padlock.engine.model import Rule, Ruleset
from padlock.policy.policy_objects import ManagedPolicyInput, PolicyRule, Scope

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
NO_SCOPE = Scope()


def rule(name: str, tags: tuple[str, ...] = ("maturity_stable",), condition: str = "evt.type = open",
         enabled: bool = True, priority: str = "WARNING", source: str = "syscall") -> Rule:
    return Rule(name=name, condition=condition, output=f"{name} (proc=%proc.name)", desc=f"{name} desc",
                priority=priority, tags=tags, enabled=enabled, source=source)


def ruleset(*rules: Rule) -> Ruleset:
    return Ruleset(rules={r.name: r for r in rules})


def policy_rule(r: Rule) -> PolicyRule:
    return PolicyRule(r.name, r.desc, r.condition, r.output, r.priority, r.tags, r.enabled, r.source)


def managed(name: str, *rules: Rule, enabled: bool | None = None, disabled: tuple[str, ...] = (),
            scope: Scope = NO_SCOPE, default_enabled: bool = True) -> ManagedPolicyInput:
    return ManagedPolicyInput(name=name, rules=tuple(policy_rule(r) for r in rules),
                              default_enabled=default_enabled, enabled=enabled, disabled_rules=disabled,
                              scope=scope)
