"""API paths of the kinds the operator reads and writes (padlock.dev kinds, ConfigMaps, Events).

Group, version, plural, kind and scope of the padlock kinds come from ``padlock.api.kinds`` (the same
table the CRDs are generated from); this module only turns them into REST paths.
"""

from __future__ import annotations

from dataclasses import dataclass

from padlock.adapters.kube.client import q
from padlock.api import kinds
from padlock.api.common import API_VERSION

__all__ = ["API_VERSION", "KINDS", "Resource", "configmap_path", "events_path"]


@dataclass(frozen=True)
class Resource:
    """REST paths of one padlock kind (``padlock.api.kinds.Kind``)."""

    info: kinds.Kind

    @property
    def kind(self) -> str:
        return self.info.kind

    @property
    def plural(self) -> str:
        return self.info.plural

    @property
    def namespaced(self) -> bool:
        return self.info.namespaced

    def path(self, name: str | None = None, *, namespace: str | None = None, sub: str | None = None) -> str:
        base = f"/apis/{self.info.group}/{self.info.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{q(namespace)}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{q(name)}"
            if sub:
                base += f"/{sub}"
        return base


KINDS: dict[str, Resource] = {k.kind: Resource(k) for k in kinds.ALL}
RULE_SOURCE = KINDS[kinds.RULE_SOURCE.kind]
MANAGED_POLICY = KINDS[kinds.MANAGED_POLICY.kind]
CUSTOM_POLICY = KINDS[kinds.CUSTOM_POLICY.kind]
POLICY_EXCEPTION = KINDS[kinds.POLICY_EXCEPTION.kind]
CLUSTER_POLICY_EXCEPTION = KINDS[kinds.CLUSTER_POLICY_EXCEPTION.kind]


def configmap_path(namespace: str, name: str | None = None) -> str:
    base = f"/api/v1/namespaces/{q(namespace)}/configmaps"
    return base if name is None else f"{base}/{q(name)}"


def events_path(namespace: str) -> str:
    return f"/api/v1/namespaces/{q(namespace)}/events"
