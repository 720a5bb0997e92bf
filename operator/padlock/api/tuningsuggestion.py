"""``TuningSuggestion`` (namespaced): an exception the tuner proposes from Falco's real alerts.

Written by the operator's tuner (``padlock.flows.tuning``) in the workload's namespace, so a tenant
sees and decides on the suggestions about their own workloads under ordinary RBAC; a suggestion whose
alerts span namespaces proposes a ClusterPolicyException and lives in the operator's namespace. The
user decides with ``spec.state`` (``padlock tune accept`` creates ``spec.exception`` through normal
admission, then sets Accepted; ``padlock tune dismiss`` sets Dismissed). The operator owns every other
field and the status (hits, first and last seen, optional sample outputs).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, Field

from padlock.api.common import (
    API_VERSION,
    CelRule,
    DnsLabel,
    FalcoPriority,
    ObjectMeta,
    ObjectName,
    PadlockModel,
    RuleName,
    StatusBase,
    list_type,
)
from padlock.api.exception import PolicyExceptionSpec, PolicyRef

SuggestionState = Literal["Open", "Accepted", "Dismissed"]
MatchValues = Annotated[
    list[Annotated[str, Field(max_length=4096)]], Field(min_length=1, max_length=8, json_schema_extra=list_type("set"))
]


class SuggestedMatch(PadlockModel):
    """The workload as the alerts showed it: every distinct value seen per field (unset: not matched)."""

    namespaces: MatchValues | None = None
    """`k8s.ns.name` values."""
    images: MatchValues | None = None
    """`container.image.repository` values."""
    container_names: MatchValues | None = None
    """`container.name` values."""
    process_names: MatchValues | None = None
    """`proc.name` values."""
    parent_process_names: MatchValues | None = None
    """`proc.pname` values."""


class SuggestedException(PadlockModel):
    """The exact exception accepting creates."""

    kind: Literal["PolicyException", "ClusterPolicyException"]
    """PolicyException (one namespace) or ClusterPolicyException (the alerts span namespaces)."""
    name: ObjectName
    """Name of the exception object."""
    namespace: DnsLabel | None = None
    """Namespace of a PolicyException (unset for a ClusterPolicyException)."""
    spec: PolicyExceptionSpec
    """Its spec, as it will be created (`padlock tune accept` may set reason and expiresAt)."""

    cel_rules = (
        CelRule(
            rule="(self.kind == 'PolicyException') == has(self.namespace)",
            message="a PolicyException needs a namespace and a ClusterPolicyException has none",
            check=lambda s: (s.kind == "PolicyException") == (s.namespace is not None),
        ),
    )


class TuningSuggestionSpec(PadlockModel):
    """What is proposed and why; the user's decision is `state`."""

    rule: RuleName
    """The Falco rule the workload keeps triggering."""
    priority: FalcoPriority
    """Priority of the rule's alerts."""
    policies: list[PolicyRef] = Field(min_length=1, max_length=64)
    """Policies that run the rule (the exception applies to the rule in each)."""
    scope: Literal["Namespace", "Cluster"]
    """Namespace: a PolicyException in this namespace. Cluster: the alerts span namespaces, so the
    proposal is a ClusterPolicyException (admins only)."""
    workload: str = Field(max_length=1024)
    """The workload in words, e.g. `image docker.io/library/nginx, process bash`."""
    match: SuggestedMatch
    """The values the alerts carried, which the exception matches exactly."""
    exception: SuggestedException
    """The exception accepting creates."""
    state: SuggestionState = "Open"
    """Open (undecided), Accepted (the exception was created) or Dismissed (not wanted; the tuner does
    not propose it again)."""


class TuningSuggestionStatus(StatusBase):
    """Evidence, kept current by the operator while alerts arrive."""

    hits: int | None = Field(default=None, ge=0)
    """Alerts of the rule from this workload in the tuner's sliding window."""
    rule_hits: int | None = Field(default=None, ge=0)
    """Alerts of the rule from every workload in the same window."""
    first_seen: AwareDatetime | None = None
    """First alert counted."""
    last_seen: AwareDatetime | None = None
    """Last alert counted."""
    samples: list[Annotated[str, Field(max_length=512)]] | None = Field(default=None, max_length=5)
    """A few alert outputs, truncated (absent when the chart switches samples off: outputs can hold
    command lines)."""


class TuningSuggestion(PadlockModel):
    """An exception proposed from the alerts one workload keeps raising; accept or dismiss it."""

    api_version: Literal["padlock.dev/v1alpha1"] = API_VERSION
    kind: Literal["TuningSuggestion"] = "TuningSuggestion"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: TuningSuggestionSpec
    """The proposal and the user's decision."""
    status: TuningSuggestionStatus | None = None
    """Written by the operator only."""


__all__ = ["ObjectName", "SuggestedException", "SuggestedMatch", "TuningSuggestion", "TuningSuggestionSpec"]
