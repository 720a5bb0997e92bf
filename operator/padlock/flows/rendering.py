"""The data flows exchange with the core: render inputs, the rendered result, managed policy drafts.

Plain frozen data. ``padlock.flows.corebridge`` fills these from ``padlock.policy``; the publishing and
sync flows read them. Keeping the flows' view in one module means a change of the core's shapes is
absorbed in the bridge.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from padlock.adapters.kube.publish import ConfigMapContent
from padlock.sources.bundles import Bundle

JSON = dict[str, Any]
ObjectKey = tuple[str, str, str]
"""(kind, namespace or "", name) of a padlock object."""


@dataclass(frozen=True)
class ManagedDraft:
    """The operator-owned part of one ManagedPolicy (never ``enabled``/``disabledRules``/``scope``)."""

    name: str
    spec: JSON
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    source: str = ""
    """RuleSource name the rules come from."""


@dataclass(frozen=True)
class RenderInputs:
    """Everything the effective ruleset depends on (and nothing else: no clock, no cluster)."""

    bundles: Mapping[str, Bundle]
    """Adopted (or candidate) bundle per RuleSource name."""
    load_orders: Mapping[str, int]
    """``spec.loadOrder`` per RuleSource name."""
    managed: tuple[JSON, ...]
    """ManagedPolicy objects: operator-owned spec from the drafts plus the user's choices."""
    custom: tuple[JSON, ...]
    exceptions: tuple[JSON, ...]
    engine_version: str | None
    plugins: Mapping[str, str] | None
    configmap: str


@dataclass(frozen=True)
class Rendered:
    """One effective render, as the flows use it."""

    publishable: bool
    content_hash: str
    configmaps: tuple[ConfigMapContent, ...]
    diagnostics: Mapping[ObjectKey, tuple[str, ...]]
    """One-line error diagnostics per object (``("RuleSource", "", "falco-rules")`` for a source)."""
    warnings: Mapping[ObjectKey, tuple[str, ...]] = field(default_factory=dict)
    expired: frozenset[ObjectKey] = frozenset()
    """Exceptions left out because ``expiresAt`` has passed."""
    engine_errors: tuple[str, ...] = ()
    """Diagnostics about the required engine version (reason ``EngineTooOld``)."""
    plugin_errors: tuple[str, ...] = ()
    """Diagnostics about required plugin versions (reason ``PluginRequirementNotMet``)."""
    rule_counts: Mapping[ObjectKey, int] = field(default_factory=dict)
    """Rules each rendered policy runs (CustomPolicy ``status.ruleCount``); absent: none."""
    running: Mapping[ObjectKey, JSON] = field(default_factory=dict)
    """Effective state per policy as status fields (``runningRules``, ``runningRuleCount``,
    ``stillRunning``: ``padlock.policy.running``); absent: not rendered."""
    frozen_capture: Mapping[ObjectKey, tuple[str, ...] | None] = field(default_factory=dict)
    """CustomPolicy ``status.frozenRules`` decided by the core: a set captured by this render, or
    None to drop the stored one; absent: keep what is stored."""
    exclusions: Mapping[ObjectKey, str] = field(default_factory=dict)
    """Why each object with errors is left out of the published ruleset: ``Invalid``, ``TooLarge``,
    ``NamespaceLimit`` or ``NoRoom`` (its ``Ready`` condition's reason, its Event's reason)."""
    raw: Any = None
    """The core's own result object (for the webhook and the CLI)."""
    sources: tuple[str, ...] = ()
    """RuleSources whose content the render holds (they carry the tuner's ``FalcoLoaded`` condition)."""

    def errors_for(self, key: ObjectKey) -> tuple[str, ...]:
        return tuple(self.diagnostics.get(key, ()))

    def reason_for(self, key: ObjectKey) -> str:
        """Why ``key`` is left out (``Invalid`` unless a limit decided it)."""
        return self.exclusions.get(key, "Invalid")

    def all_errors(self) -> list[str]:
        return [msg for key in sorted(self.diagnostics) for msg in self.diagnostics[key]]
