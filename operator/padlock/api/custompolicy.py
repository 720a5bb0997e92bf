"""``CustomPolicy``: the user's own policy, based on a managed one or new (cluster-scoped).

Written by admins or GitOps (``padlock copy`` writes one from a ManagedPolicy); read by the policy
reconcile flow, which resolves its rules and hands them to the policy layer in ``padlock.policy``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from padlock.api.common import (
    API_VERSION,
    CelRule,
    FalcoPriority,
    ObjectMeta,
    ObjectName,
    PadlockModel,
    RuleName,
    Scope,
    StatusBase,
    name_list,
)
from padlock.api.exception import ExceptionMatch
from padlock.api.managedpolicy import StillRunning


class BasedOn(PadlockModel):
    """The managed policy this policy starts from."""

    managed_policy: ObjectName
    """Name of the ManagedPolicy."""
    follow_updates: bool = True
    """true: keep receiving the managed policy's new rules while keeping this policy's own changes.
    false: freeze the rule set at copy time (recorded in status.frozenRules)."""


class InlineException(PadlockModel):
    """An exception that belongs to this policy (same shape as a ClusterPolicyException, without
    `policies`)."""

    rules: list[RuleName] | None = name_list(256)
    """Rules of this policy to apply it to. Unset: all of them."""
    match: ExceptionMatch
    """Events to silence."""
    reason: str = Field(min_length=1, max_length=1024)
    """Why the exception exists."""
    expires_at: AwareDatetime | None = None
    """When the exception stops applying (RFC 3339). Unset: never."""


class CustomPolicySpec(PadlockModel):
    """Rules to run: those of basedOn, named rules and inline Falco items, minus disabledRules."""

    enabled: bool = True
    """Run (true) or stop (false) the policy."""
    description: str | None = Field(default=None, max_length=8192)
    """What the policy is for."""
    based_on: BasedOn | None = None
    """Start from the rules of a managed policy."""
    rules: list[RuleName] | None = name_list(4096)
    """Names of existing rules from any source to include."""
    falco_rules: str | None = Field(default=None, min_length=1, max_length=1048576)
    """Falco rules YAML (lists, macros, rules in Falco's own syntax) added by this policy."""
    disabled_rules: list[RuleName] | None = name_list()
    """Names of rules of this policy that must not run."""
    scope: Scope | None = None
    """Where the policy applies."""
    priority_override: FalcoPriority | None = None
    """Run every rule of the policy with this priority instead of its own."""
    exceptions: list[InlineException] | None = Field(default=None, max_length=256)
    """Exceptions for rules of this policy."""

    cel_rules = (
        CelRule(
            rule="has(self.basedOn) || has(self.rules) || has(self.falcoRules)",
            message="a custom policy needs at least one of basedOn, rules or falcoRules",
            check=lambda s: s.based_on is not None or s.rules is not None or s.falco_rules is not None,
        ),
    )


class CustomPolicyStatus(StatusBase):
    """What the policy resolved to."""

    frozen_rules: list[RuleName] | None = Field(default=None, max_length=4096)
    """With basedOn.followUpdates false: the managed policy's rule set captured at copy time."""
    rule_count: int | None = Field(default=None, ge=0)
    """Number of rules in the policy."""
    running_rules: list[RuleName] | None = Field(default=None, max_length=4096)
    """The policy's rules that actually run in the published ruleset (by this policy or another)."""
    running_rule_count: int | None = Field(default=None, ge=0)
    """Number of the policy's rules that actually run in the published ruleset."""
    still_running: list[StillRunning] | None = Field(default=None, max_length=4096)
    """Rules this policy does not run (disabled here, or the policy is off) that another enabled policy
    still runs, with who runs them."""


class CustomPolicy(PadlockModel):
    """The user's own Falco policy: based on a managed policy (following its updates or frozen),
    or built from named and inline rules."""

    api_version: Literal["padlock.dev/v1alpha1"] = API_VERSION
    kind: Literal["CustomPolicy"] = "CustomPolicy"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: CustomPolicySpec
    """The policy."""
    status: CustomPolicyStatus | None = None
    """Written by the operator only."""
