"""``ManagedPolicy``: a curated, locked group of upstream rules (cluster-scoped).

The operator creates and updates these from the policy catalog (``padlock.flows``); the admission
webhook and the lock policy let users change only their own choices: ``spec.enabled``,
``spec.disabledRules``, ``spec.scope`` and labels/annotations outside ``padlock.dev/``. The operator
never writes those user-choice fields, so a user or GitOps tool owns them without conflicts.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import AwareDatetime, Field

from padlock.api.common import (
    API_VERSION,
    FalcoPriority,
    ObjectMeta,
    ObjectName,
    PadlockModel,
    RuleName,
    Scope,
    StatusBase,
    list_type,
    name_list,
)

DEFAULT_ENABLED: Final = False
"""``spec.defaultEnabled`` when a ManagedPolicy or a catalog entry leaves it unset: off, so a policy
nobody chose never starts running. The CRD default, the catalog parser and the policy core all read
this one value."""


class CatalogRef(PadlockModel):
    """The catalog entry this policy was generated from."""

    name: str = Field(min_length=1, max_length=253)
    """Catalog name, e.g. `padlock-default`."""
    version: str = Field(min_length=1, max_length=128)
    """Catalog version."""
    policy: str = Field(min_length=1, max_length=253)
    """Policy id inside the catalog, e.g. `credential-access`."""


class SourceRef(PadlockModel):
    """The rules release the policy's rules were taken from."""

    rule_source: ObjectName
    """Name of the RuleSource."""
    version: str = Field(min_length=1, max_length=128)
    """Version of that source the rules text comes from."""


class ManagedRule(PadlockModel):
    """The full text of one upstream rule, as Falco runs it (before the user's choices apply)."""

    name: RuleName
    """Rule name (`rule:` in Falco)."""
    desc: str = Field(default="", max_length=65536)
    """Rule description."""
    condition: str = Field(min_length=1, max_length=262144)
    """Filter condition, after upstream overrides and appends."""
    output: str = Field(default="", max_length=65536)
    """Output format string."""
    priority: FalcoPriority
    """Falco priority in upper case."""
    tags: list[str] | None = Field(default=None, max_length=256, json_schema_extra=list_type("atomic"))
    """Tags in file order, e.g. `maturity_stable`, `mitre_credential_access`, `T1555`."""
    enabled: bool = True
    """Whether upstream enables the rule (`enabled:` in Falco)."""
    source: str = Field(default="syscall", min_length=1, max_length=128)
    """Event source, e.g. `syscall`, `k8s_audit`."""
    other_tactics: list[str] | None = Field(default=None, max_length=32, json_schema_extra=list_type("atomic"))
    """MITRE ATT&CK tactic tags of the rule (`mitre_*`) other than the one this policy selects it by:
    each rule has one owner policy, and its other tactics are listed here so nothing is hidden."""


class ManagedPolicySpec(PadlockModel):
    """Rules chosen by the policy catalog (operator-owned) plus the user's own choices
    (enabled, disabledRules, scope)."""

    display_name: str | None = Field(default=None, max_length=256)
    """Human name, e.g. `Credential access`. Operator-owned."""
    description: str | None = Field(default=None, max_length=8192)
    """What the policy detects. Operator-owned."""
    catalog: CatalogRef | None = None
    """Catalog entry the policy comes from. Operator-owned."""
    source: SourceRef | None = None
    """RuleSource and version the rules come from. Operator-owned."""
    default_enabled: bool = DEFAULT_ENABLED
    """Whether the policy runs when spec.enabled is unset. Operator-owned, from the catalog."""
    rules: list[ManagedRule] | None = Field(
        default=None, max_length=2048, json_schema_extra=list_type("map", "name")
    )
    """Full text of every rule in the policy. Operator-owned: copy the policy into a CustomPolicy
    (`padlock copy managedpolicy/<name>`) to change it."""
    enabled: bool | None = None
    """User choice: run (true) or stop (false) the policy. Unset: defaultEnabled applies."""
    disabled_rules: list[RuleName] | None = name_list()
    """User choice: names of rules of this policy that must not run. Kept across upstream updates;
    a name no longer upstream is reported in status.missingDisabledRules."""
    scope: Scope | None = None
    """User choice: where the policy applies."""


class PolicyChange(PadlockModel):
    """One change of the policy's rule set or rule text."""

    time: AwareDatetime
    """When the change was adopted."""
    from_version: str | None = Field(default=None, max_length=128)
    """Source version before the change (unset for the first one)."""
    to_version: str | None = Field(default=None, max_length=128)
    """Source version after the change (unset when the policy names no source)."""
    added: list[RuleName] | None = Field(default=None, max_length=2048)
    """Rules that entered the policy."""
    removed: list[RuleName] | None = Field(default=None, max_length=2048)
    """Rules that left the policy."""
    modified: list[RuleName] | None = Field(default=None, max_length=2048)
    """Rules whose text changed."""


class StillRunning(PadlockModel):
    """A rule this policy does not run (disabled here, or the policy is off) that runs all the same."""

    rule: RuleName
    """The rule's name."""
    run_by: list[str] = Field(min_length=1, max_length=256, json_schema_extra=list_type("atomic"))
    """The policies that still run it, as `<kind>/<name>`, e.g. `custompolicy/my-credential-access`."""


class ManagedPolicyStatus(StatusBase):
    """What runs and when it last changed."""

    enabled: bool | None = None
    """Effective enablement: spec.enabled when set, otherwise spec.defaultEnabled."""
    last_updated: AwareDatetime | None = None
    """When the rule set or any rule's text last changed (shown as UPDATED)."""
    source_version: str | None = Field(default=None, max_length=128)
    """Version of the rules source the rules come from."""
    rule_count: int | None = Field(default=None, ge=0)
    """Number of rules in the policy."""
    enabled_rule_count: int | None = Field(default=None, ge=0)
    """Number of rules that run (0 when the policy is disabled)."""
    running_rules: list[RuleName] | None = Field(default=None, max_length=2048)
    """The policy's rules that actually run in the published ruleset (by this policy or another)."""
    running_rule_count: int | None = Field(default=None, ge=0)
    """Number of the policy's rules that actually run in the published ruleset."""
    still_running: list[StillRunning] | None = Field(default=None, max_length=2048)
    """Rules this policy does not run (disabled here, or the policy is off) that another enabled policy
    still runs, with who runs them: disabling a rule here does not stop those."""
    missing_disabled_rules: list[RuleName] | None = Field(default=None, max_length=1024)
    """Names in spec.disabledRules that are no longer in the policy (renamed or removed upstream)."""
    changes: list[PolicyChange] | None = Field(default=None, max_length=20)
    """Recent changes, newest first (at most 20)."""


class ManagedPolicy(PadlockModel):
    """A curated group of upstream Falco rules that updates itself and is locked against edits
    except the user's own choices (enabled, disabledRules, scope)."""

    api_version: Literal["padlock.dev/v1alpha1"] = API_VERSION
    kind: Literal["ManagedPolicy"] = "ManagedPolicy"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: ManagedPolicySpec
    """Operator-owned rules plus the user's choices."""
    status: ManagedPolicyStatus | None = None
    """Written by the operator only."""
