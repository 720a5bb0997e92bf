"""``PolicyException`` (namespaced) and ``ClusterPolicyException`` (cluster-scoped).

Both silence specific matches of rules in managed or custom policies. The policy layer
(``padlock.policy.exceptions_render``) turns each into a Falco ``exceptions`` append; for a namespaced
PolicyException it adds ``k8s.ns.name = <namespace>`` to every match, so a namespace owner can only
ever quiet events from their own namespace. ``ExceptionMatch`` is also used inline by CustomPolicy.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, Field

from padlock.api.common import (
    API_VERSION,
    CelRule,
    ObjectMeta,
    ObjectName,
    PadlockModel,
    RuleName,
    StatusBase,
    list_type,
    name_list,
)

# Comparison operators Falco accepts in exceptions (rule_loader_collector.cpp, Falco 0.44).
ExceptionComp = Literal[
    "=",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "exists",
    "glob",
    "iglob",
    "contains",
    "icontains",
    "bcontains",
    "startswith",
    "bstartswith",
    "endswith",
    "regex",
    "intersects",
    "in",
    "pmatch",
]
FalcoField = Annotated[
    str, Field(min_length=1, max_length=256, pattern=r"^[a-z][a-z0-9_]*(\.[A-Za-z0-9_]+)+(\[[^\]]+\])?$")
]
"""A Falco filter field such as `proc.name` or `proc.aname[2]`."""
MatchValue = Annotated[str, Field(max_length=4096)]
ShortList = Annotated[list[MatchValue], Field(max_length=64)]


class ExceptionMatch(PadlockModel):
    """What to silence: Falco's native form (fields, comps, values) or the convenience keys
    (images, containerNames, processNames), not both. Convenience keys combine with `and` across
    keys and `or` within a key."""

    fields: list[FalcoField] | None = Field(default=None, min_length=1, max_length=16)
    """Native form: Falco fields compared, e.g. `[proc.name, container.image.repository]`."""
    comps: list[ExceptionComp] | None = Field(default=None, min_length=1, max_length=16)
    """Native form: one operator per field (default `=` for each). For `in`, `pmatch` and
    `intersects`, the value names a Falco list or is an inline list such as `(bash, sh)`."""
    values: list[ShortList] | None = Field(default=None, min_length=1, max_length=256)
    """Native form: rows of values, one value per field; an event matching any row is silenced."""
    images: list[MatchValue] | None = Field(
        default=None, min_length=1, max_length=64, json_schema_extra=list_type("set")
    )
    """Container image repositories (`container.image.repository`), e.g. `docker.io/library/nginx`."""
    container_names: list[MatchValue] | None = Field(
        default=None, min_length=1, max_length=64, json_schema_extra=list_type("set")
    )
    """Container names (`container.name`)."""
    process_names: list[MatchValue] | None = Field(
        default=None, min_length=1, max_length=64, json_schema_extra=list_type("set")
    )
    """Process names (`proc.name`)."""

    cel_rules = (
        CelRule(
            rule=(
                "has(self.fields) != (has(self.images) || has(self.containerNames) || has(self.processNames))"
            ),
            message=(
                "match must use either fields/comps/values or images/containerNames/processNames,"
                " exactly one of the two forms"
            ),
            check=lambda s: (
                (s.fields is not None)
                != any(x is not None for x in (s.images, s.container_names, s.process_names))
            ),
        ),
        CelRule(
            rule="has(self.fields) == has(self.values)",
            message="fields and values must be given together",
            check=lambda s: (s.fields is None) == (s.values is None),
        ),
        CelRule(
            rule="has(self.fields) || !has(self.comps)",
            message="comps needs fields",
            check=lambda s: s.fields is not None or s.comps is None,
            field_path=".comps",
        ),
        CelRule(
            rule="!has(self.comps) || !has(self.fields) || size(self.comps) == size(self.fields)",
            message="comps must have one operator per field",
            check=lambda s: s.comps is None or s.fields is None or len(s.comps) == len(s.fields),
            field_path=".comps",
        ),
        CelRule(
            rule="!has(self.values) || !has(self.fields) || self.values.all(row, size(row) == size(self.fields))",
            message="every values row must have one value per field",
            check=lambda s: (
                s.values is None or s.fields is None or all(len(row) == len(s.fields) for row in s.values)
            ),
            field_path=".values",
        ),
    )


PolicyKind = Literal["ManagedPolicy", "CustomPolicy"]


class PolicyRef(PadlockModel):
    """A policy (and optionally some of its rules) the exception applies to."""

    kind: PolicyKind
    """`ManagedPolicy` or `CustomPolicy`."""
    name: ObjectName
    """Name of the policy."""
    rules: list[RuleName] | None = name_list(256)
    """Rules of that policy to apply the exception to. Unset: all its rules."""


class PolicyExceptionSpec(PadlockModel):
    """Which policies and rules, what to silence, and why."""

    policies: list[PolicyRef] = Field(min_length=1, max_length=64)
    """Policies the exception applies to."""
    match: ExceptionMatch
    """Events to silence."""
    reason: str = Field(min_length=1, max_length=1024)
    """Why the exception exists (a ticket or explanation); required for review."""
    expires_at: AwareDatetime | None = None
    """When the exception stops applying (RFC 3339). Unset: never."""


class PolicyExceptionStatus(StatusBase):
    """Whether the exception is in force."""

    active: bool | None = None
    """True while the exception is applied; false once expired or when its policies are missing."""


class PolicyException(PadlockModel):
    """Silences specific matches of policy rules, for events in this object's namespace only."""

    api_version: Literal["padlock.dev/v1alpha1"] = API_VERSION
    kind: Literal["PolicyException"] = "PolicyException"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: PolicyExceptionSpec
    """The exception."""
    status: PolicyExceptionStatus | None = None
    """Written by the operator only."""


class ClusterPolicyException(PadlockModel):
    """Silences specific matches of policy rules anywhere in the cluster (admins only)."""

    api_version: Literal["padlock.dev/v1alpha1"] = API_VERSION
    kind: Literal["ClusterPolicyException"] = "ClusterPolicyException"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: PolicyExceptionSpec
    """The exception."""
    status: PolicyExceptionStatus | None = None
    """Written by the operator only."""
