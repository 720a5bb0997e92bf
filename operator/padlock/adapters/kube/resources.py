"""API paths of the kinds the operator reads and writes (padlock.dev kinds, ConfigMaps, Events).

Plurals match the CRDs in ``crds/`` (generated from ``padlock.api``); they are repeated here as plain
strings so the adapters do not import the models.
"""

from __future__ import annotations

from dataclasses import dataclass

from padlock.adapters.kube.client import q

GROUP = "padlock.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    namespaced: bool

    def path(self, name: str | None = None, *, namespace: str | None = None, sub: str | None = None) -> str:
        base = f"/apis/{GROUP}/{VERSION}"
        if self.namespaced and namespace:
            base += f"/namespaces/{q(namespace)}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{q(name)}"
            if sub:
                base += f"/{sub}"
        return base


RULE_SOURCE = Kind("RuleSource", "rulesources", False)
MANAGED_POLICY = Kind("ManagedPolicy", "managedpolicies", False)
CUSTOM_POLICY = Kind("CustomPolicy", "custompolicies", False)
POLICY_EXCEPTION = Kind("PolicyException", "policyexceptions", True)
CLUSTER_POLICY_EXCEPTION = Kind("ClusterPolicyException", "clusterpolicyexceptions", False)

KINDS = {k.kind: k for k in (RULE_SOURCE, MANAGED_POLICY, CUSTOM_POLICY, POLICY_EXCEPTION, CLUSTER_POLICY_EXCEPTION)}


def configmap_path(namespace: str, name: str | None = None) -> str:
    base = f"/api/v1/namespaces/{q(namespace)}/configmaps"
    return base if name is None else f"{base}/{q(name)}"


def events_path(namespace: str) -> str:
    return f"/api/v1/namespaces/{q(namespace)}/events"
