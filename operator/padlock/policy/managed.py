"""Managed policies from upstream: catalog + loaded rulesets -> the operator-owned ManagedPolicy spec.

``build_managed`` selects, for each catalog policy, the rules whose tags (and maturity, and
RuleSource) match, and carries their full text so ``kubectl get managedpolicy X -o yaml`` shows
exactly what runs. A new upstream rule with a matching tag lands in the policy with no user action,
simply because the next build selects it. User choices (``enabled``, ``disabledRules``, ``scope``) are
not produced here: the operator never writes them.

Who calls it: the operator's sync flow and ``padlock render``. Pure: plain data in and out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from padlock.engine.model import Ruleset
from padlock.policy.catalog import Catalog, CatalogPolicy, tactics_of
from padlock.policy.policy_objects import ManagedPolicyInput, PolicyRule, Scope


@dataclass(frozen=True)
class ManagedPolicyContent:
    """The operator-owned part of one ManagedPolicy's spec."""

    name: str
    display_name: str
    description: str
    catalog_name: str
    catalog_version: str
    rule_source: str
    source_version: str
    default_enabled: bool
    rules: tuple[PolicyRule, ...]

    def to_spec(self) -> dict[str, Any]:
        """The operator-owned spec fields as camelCase data (what the operator server-side-applies)."""
        return {
            "displayName": self.display_name,
            "description": self.description,
            "catalog": {"name": self.catalog_name, "version": self.catalog_version, "policy": self.name},
            "source": {"ruleSource": self.rule_source, "version": self.source_version},
            "defaultEnabled": self.default_enabled,
            "rules": [r.to_dict() for r in self.rules],
        }

    def as_input(
        self, enabled: bool | None = None, disabled_rules: tuple[str, ...] = (), scope: Scope | None = None
    ) -> ManagedPolicyInput:
        """This content with the user's choices, as the renderer takes it."""
        return ManagedPolicyInput(
            name=self.name,
            rules=self.rules,
            default_enabled=self.default_enabled,
            enabled=enabled,
            disabled_rules=disabled_rules,
            scope=scope if scope is not None else Scope(),
        )


def build_managed(
    catalog: Catalog,
    rulesets_by_source: Mapping[str, Ruleset],
    source_versions: Mapping[str, str],
) -> list[ManagedPolicyContent]:
    """One ManagedPolicyContent per catalog policy, in catalog order, rules sorted by name.

    Which policies include a rule is the catalog's decision (``Catalog.assign``: with ``firstMatch``
    exactly one, the first that selects it). Each rule lists its MITRE tactics other than those its
    policy selects it by (``otherTactics``).

    ``rulesets_by_source`` must be in load order: when two RuleSources define a rule of the same name,
    the later definition is the one Falco runs, so it is the one carried. Each policy names the first
    RuleSource (in load order) that contributes rules as its ``source``; an empty policy names the
    first source given. Every catalog policy is built even when it selects nothing today, so the
    user's choices on it persist and a future matching rule appears in it.
    """
    # rule name -> (RuleSource name, rule) with the last definition winning, as in Falco.
    rules: dict[str, tuple[str, PolicyRule]] = {}
    for source_name, ruleset in rulesets_by_source.items():
        for rule in ruleset.rules.values():
            rules[rule.name] = (
                source_name,
                PolicyRule(
                    name=rule.name,
                    desc=rule.desc.strip(),
                    condition=rule.condition.strip(),
                    output=rule.output.strip(),
                    priority=rule.priority,
                    tags=tuple(rule.tags),
                    enabled=rule.enabled,
                    source=rule.source,
                ),
            )
    order = list(rulesets_by_source)
    members: dict[str, list[tuple[str, PolicyRule]]] = {p.name: [] for p in catalog.policies}
    for src, carried in rules.values():
        for owner in catalog.assign(carried.tags, src):
            members[owner.name].append((src, _with_other_tactics(carried, owner)))
    out: list[ManagedPolicyContent] = []
    for policy in catalog.policies:
        chosen = sorted(members[policy.name], key=lambda item: item[1].name)
        contributing = sorted({src for src, _ in chosen}, key=order.index)
        primary = contributing[0] if contributing else (order[0] if order else "")
        out.append(
            ManagedPolicyContent(
                name=policy.name,
                display_name=policy.display_name,
                description=policy.description,
                catalog_name=policy.catalog_name,
                catalog_version=policy.catalog_version,
                rule_source=primary,
                source_version=source_versions.get(primary, ""),
                default_enabled=policy.default_enabled,
                rules=tuple(r for _, r in chosen),
            )
        )
    return out


def _with_other_tactics(rule: PolicyRule, policy: CatalogPolicy) -> PolicyRule:
    """``rule`` listing its MITRE tactics other than those ``policy`` selects it by."""
    other = tuple(t for t in tactics_of(rule.tags) if t not in policy.select.tags_any)
    return replace(rule, other_tactics=other) if other else rule


def copy_to_custom(managed_body: Mapping[str, Any], new_name: str, *, freeze: bool) -> dict[str, Any]:
    """A CustomPolicy body copied from a ManagedPolicy body (what ``padlock copy`` prints or applies).

    Following (default): ``basedOn`` with ``followUpdates: true``, so new upstream rules of the managed
    policy keep arriving. Frozen: ``followUpdates: false`` and the rule names listed in ``spec.rules``,
    so the frozen set is visible (and reviewable) in Git. The user's own choices on the managed policy
    (``disabledRules``, ``scope``) are carried over; upstream-disabled rules are not part of the set.
    """
    meta = managed_body.get("metadata") or {}
    spec = managed_body.get("spec") or {}
    name = str(meta.get("name", ""))
    description = str(spec.get("description") or spec.get("displayName") or "")
    out_spec: dict[str, Any] = {
        "enabled": True,
        "description": f"Copy of managed policy {name}" + (f": {description}" if description else ""),
        "basedOn": {"managedPolicy": name, "followUpdates": not freeze},
    }
    if freeze:
        out_spec["rules"] = sorted(
            str(r["name"])
            for r in spec.get("rules") or []
            if isinstance(r, Mapping) and r.get("enabled", True)
        )
    if spec.get("disabledRules"):
        out_spec["disabledRules"] = list(spec["disabledRules"])
    if spec.get("scope"):
        out_spec["scope"] = spec["scope"]
    return {
        "apiVersion": "padlock.dev/v1alpha1",
        "kind": "CustomPolicy",
        "metadata": {"name": new_name},
        "spec": out_spec,
    }
