"""Publishing the rendered ruleset as ConfigMaps in the Falco namespace.

Called by ``padlock.flows.publishing`` with exactly what the policy core rendered (never edited here).
Rules (docs/design.md "Published ruleset"):
- each ConfigMap is written in one request (create, or replace with its resourceVersion), so Falco
  never sees half a file set;
- the write is skipped when the stored ConfigMap already carries the same content hash and the same
  data and metadata (no needless writes, also across restarts);
- with several shards, all are written first, then stale shards (label ``padlock.dev/ruleset``) are
  deleted;
- every ConfigMap carries ``app.kubernetes.io/managed-by: padlock``, the content hash and source
  version annotations, and owner references to the RuleSources it was built from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from padlock.adapters.kube.client import JSON, ApiError, KubeClient
from padlock.adapters.kube.resources import configmap_path
from padlock.core import lock

MANAGED_BY = {lock.MANAGED_BY_LABEL: lock.MANAGED_BY_VALUE}
RULESET_LABEL = "padlock.dev/ruleset"
HASH_ANNOTATION = "padlock.dev/content-hash"
VERSIONS_ANNOTATION = "padlock.dev/source-versions"


@dataclass(frozen=True)
class ConfigMapContent:
    """One ConfigMap to publish: as rendered by the policy core."""

    name: str
    data: Mapping[str, str]
    annotations: Mapping[str, str] = field(default_factory=dict)
    """Must include ``padlock.dev/content-hash``; ``padlock.dev/source-versions`` when sources exist."""


@dataclass(frozen=True)
class PublishResult:
    written: tuple[str, ...]
    unchanged: tuple[str, ...]
    deleted: tuple[str, ...]


def desired_configmap(namespace: str, base: str, content: ConfigMapContent, owners: Sequence[JSON]) -> JSON:
    labels = {**MANAGED_BY, RULESET_LABEL: base}
    metadata: dict[str, Any] = {
        "name": content.name,
        "namespace": namespace,
        "labels": labels,
        "annotations": dict(sorted(content.annotations.items())),
    }
    if owners:
        metadata["ownerReferences"] = list(owners)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": dict(content.data)}


def _same(stored: JSON, desired: JSON) -> bool:
    sm, dm = stored.get("metadata", {}), desired["metadata"]
    labels = sm.get("labels") or {}
    annotations = sm.get("annotations") or {}
    return (
        (stored.get("data") or {}) == desired["data"]
        and all(labels.get(k) == v for k, v in dm["labels"].items())
        and all(annotations.get(k) == v for k, v in dm["annotations"].items())
        and _owner_uids(sm.get("ownerReferences")) == _owner_uids(dm.get("ownerReferences"))
    )


def _owner_uids(refs: Sequence[JSON] | None) -> list[str]:
    return sorted(str(r.get("uid")) for r in refs or ())


def _merged(stored: JSON, desired: JSON) -> JSON:
    """Keep labels/annotations others put on the ConfigMap (e.g. a GitOps tool's), replace ours and data."""
    sm = stored.get("metadata", {})
    body = {**desired, "metadata": dict(desired["metadata"])}
    body["metadata"]["labels"] = {**(sm.get("labels") or {}), **desired["metadata"]["labels"]}
    body["metadata"]["annotations"] = {**(sm.get("annotations") or {}), **desired["metadata"]["annotations"]}
    body["metadata"]["resourceVersion"] = sm.get("resourceVersion")
    return body


def publish(
    client: KubeClient, namespace: str, base: str, contents: Sequence[ConfigMapContent], owners: Sequence[JSON],
) -> PublishResult:
    """Write ``contents`` (all shards of one ruleset named ``base``), then delete stale shards."""
    written: list[str] = []
    unchanged: list[str] = []
    for content in contents:
        desired = desired_configmap(namespace, base, content, owners)
        path = configmap_path(namespace, content.name)
        stored = client.get_or_none(path)
        if stored is None:
            client.create(configmap_path(namespace), desired)
            written.append(content.name)
        elif _same(stored, desired):
            unchanged.append(content.name)
        else:
            client.replace(path, _merged(stored, desired))
            written.append(content.name)
    keep = {c.name for c in contents}
    deleted: list[str] = []
    selector = f"{RULESET_LABEL}={base}"
    for stale in client.list(configmap_path(namespace), labelSelector=selector):
        name = stale["metadata"]["name"]
        if name not in keep:
            try:
                client.delete(configmap_path(namespace, name))
            except ApiError as exc:  # someone else removed it meanwhile: already the goal
                if not exc.not_found:
                    raise
            deleted.append(name)
    return PublishResult(tuple(written), tuple(unchanged), tuple(sorted(deleted)))


def owner_reference(obj: JSON) -> JSON:
    """A non-controller, non-blocking owner reference to a cluster-scoped padlock object."""
    md = obj["metadata"]
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": md["name"],
        "uid": md["uid"],
        "controller": False,
        "blockOwnerDeletion": False,
    }
