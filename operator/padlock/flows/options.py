"""Settings of a running operator that flows need (from ``padlock operator`` flags)."""

from __future__ import annotations

from dataclasses import dataclass, field

from padlock.policy import lock, sharding


@dataclass(frozen=True)
class Limits:
    """What one object and one namespace may add to a render (docs/limits.md; chart values
    ``limits.*``). An object over a limit, or that does not fit in the ConfigMaps the Falco mount
    declares (``OperatorOptions.rules_shards``), is left out with a condition saying why."""

    object_bytes: int = sharding.DEFAULT_MAX_OBJECT_BYTES
    """Bytes one object's items may take in the generated policy layer (``--max-object-bytes``)."""
    namespace_bytes: int = sharding.DEFAULT_MAX_NAMESPACE_BYTES
    """Bytes the PolicyExceptions of one namespace may take together (``--max-namespace-bytes``)."""


@dataclass(frozen=True)
class OperatorOptions:
    falco_namespace: str = "falco"
    """Namespace of the published rules ConfigMap(s) (where Falco runs)."""
    configmap: str = "padlock-rules"
    """Name of the published ConfigMap; shards get ``-1``, ``-2``... as the policy core names them."""
    engine_version: str | None = None
    """Falco engine version of the cluster (``0.43.0``); None skips the engine check."""
    plugins: dict[str, str] | None = None
    """Plugins Falco loads, name -> version. They decide which fields exist and whether
    ``required_plugin_versions`` hold; None means no plugin is loaded (as in the rules core)."""
    rules_shards: int = lock.DEFAULT_RULES_SHARDS
    """Shards ``<configmap>-1..N`` the Falco mount declares besides ``<configmap>`` (``--rules-shards``,
    chart ``falco.rulesShards``): the operator writes no other ConfigMap, and a render never needs
    more than ``rules_shards + 1`` (``max_shards``)."""
    limits: Limits = field(default_factory=Limits)
    """Per-object and per-namespace limits of the published ruleset."""
    history_limit: int = 20
    """Entries kept in RuleSource ``status.history`` (at most 20, the CRD's bound). ManagedPolicy
    ``status.changes`` is bounded by the policy core (``padlock.policy.changes.MAX_CHANGES``)."""

    def publish_target(self) -> lock.PublishTarget:
        """The ConfigMap names the operator may publish (and the lock reserves for it)."""
        return lock.PublishTarget(namespace=self.falco_namespace, base=self.configmap, shards=self.rules_shards)
