"""Publishing the rendered ruleset as ConfigMaps in the Falco namespace.

Called by ``padlock.flows.publishing`` with exactly what the policy core rendered (never edited here).
Rules (docs/design.md "Published ruleset", docs/security.md):
- the operator touches only the ConfigMaps the Falco mount declares: ``<base>`` and ``<base>-1`` ..
  ``<base>-<shards>`` (``lock.PublishTarget``), each by name (its RBAC has no ``list``; ``get``,
  ``update`` and ``delete`` are confined to those names, ``create`` by the lock policy); a render that
  needs more ConfigMaps than that is refused before anything is written (``TooManyShards``);
- each ConfigMap is written in one request (create, or replace with its resourceVersion), so Falco
  never sees half a file set;
- the write is skipped when the stored ConfigMap already carries the same content hash and the same
  data and metadata (no needless writes, also across restarts);
- a stored ConfigMap the operator cannot or must not update in place, ``immutable: true`` or foreign
  (not labelled ``app.kubernetes.io/managed-by: padlock``, e.g. made before Padlock was installed),
  is replaced: deleted, then created, with a Warning Event ``Replaced`` on the new one saying why;
- with several shards, all are written first, then stale shards are deleted; a foreign ConfigMap
  under a reserved name the render does not use is deleted too (the mount would load it), with an
  Event ``RemovedForeign``;
- every ConfigMap carries ``app.kubernetes.io/managed-by: padlock``, the content hash and source
  version annotations, and owner references to the RuleSources it was built from.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from padlock.adapters.kube import events
from padlock.adapters.kube.client import JSON, ApiError, KubeClient
from padlock.adapters.kube.resources import configmap_path
from padlock.policy import lock

log = logging.getLogger("padlock.adapters")

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
    replaced: tuple[tuple[str, str], ...] = ()
    """(name, why) of ConfigMaps found immutable or foreign and replaced (or removed)."""


class TooManyShards(ValueError):
    """The render needs ConfigMaps the Falco mount does not declare; nothing was written."""


def unusable(stored: JSON) -> str | None:
    """Why a stored ConfigMap cannot be updated in place by the operator, or None when it can."""
    if stored.get("immutable") is True:
        return "it was immutable (immutable: true), so it could never be updated"
    if not lock.is_generated_configmap(stored):
        return f"it was not made by Padlock (no {lock.MANAGED_BY_LABEL}: {lock.MANAGED_BY_VALUE} label)"
    return None


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
    *, shards: int = lock.DEFAULT_RULES_SHARDS,
) -> PublishResult:
    """Write ``contents`` (all shards of one ruleset named ``base``), then delete stale shards.

    Only the names of ``PublishTarget(namespace, base, shards)`` are read or written.
    """
    target = lock.PublishTarget(namespace=namespace, base=base, shards=shards)
    allowed = target.names()
    extra = [c.name for c in contents if c.name not in allowed]
    if extra:
        raise TooManyShards(
            f"the render needs {len(contents)} ConfigMaps ({', '.join(c.name for c in contents)}) but the Falco "
            f"mount declares {len(allowed)} ({', '.join(allowed)}); raise falco.rulesShards (and the mount) "
            f"or publish less"
        )
    written: list[str] = []
    unchanged: list[str] = []
    replaced: list[tuple[str, str]] = []
    for content in contents:
        desired = desired_configmap(namespace, base, content, owners)
        path = configmap_path(namespace, content.name)
        stored = client.get_or_none(path)
        why = None if stored is None else unusable(stored)
        if why is not None:
            # Neither an immutable nor a foreign ConfigMap may be updated in place: replace it.
            client.delete(path)
            stored = None
            replaced.append((content.name, why))
        if stored is None:
            created = client.create(configmap_path(namespace), desired)
            written.append(content.name)
            if why is not None:
                _report(client, created or desired, "Replaced",
                        f"ConfigMap {namespace}/{content.name} was replaced by the Padlock operator: {why}")
        elif _same(stored, desired):
            unchanged.append(content.name)
        else:
            client.replace(path, _merged(stored, desired))
            written.append(content.name)
    keep = {c.name for c in contents}
    deleted: list[str] = []
    for name in allowed:
        if name in keep:
            continue
        stale = client.get_or_none(configmap_path(namespace, name))
        if stale is None:
            continue
        ours = lock.is_generated_configmap(stale) and (stale["metadata"].get("labels") or {}).get(RULESET_LABEL) == base
        try:
            client.delete(configmap_path(namespace, name))
        except ApiError as exc:  # someone else removed it meanwhile: already the goal
            if not exc.not_found:
                raise
        deleted.append(name)
        if not ours:
            why = "it was not made by Padlock, and the Falco mount would load it as a rules shard"
            replaced.append((name, why))
            _report(client, stale, "RemovedForeign", f"ConfigMap {namespace}/{name} was deleted by the Padlock "
                    f"operator: {why}")
    return PublishResult(tuple(written), tuple(unchanged), tuple(sorted(deleted)), tuple(replaced))


def read_published(client: KubeClient, namespace: str, base: str, shards: int = lock.DEFAULT_RULES_SHARDS) -> list[JSON]:
    """The published ConfigMaps of ruleset ``base`` in shard order, read by name (no ``list`` needed)."""
    found = []
    for name in lock.PublishTarget(namespace=namespace, base=base, shards=shards).names():
        stored = client.get_or_none(configmap_path(namespace, name))
        if stored is not None and (stored["metadata"].get("labels") or {}).get(RULESET_LABEL) == base:
            found.append(stored)
    return found


def _report(client: KubeClient, obj: JSON, reason: str, message: str) -> None:
    """A Warning Event on the ConfigMap; best effort, like every Event (the log has it anyway)."""
    log.warning("%s", message)
    md = obj.get("metadata") or {}
    ref = events.ObjectRef(api_version="v1", kind="ConfigMap", name=str(md.get("name")), uid=md.get("uid"),
                           namespace=md.get("namespace"))
    try:
        events.post_event(client, ref, reason=reason, message=message, warning=True)
    except Exception as exc:
        log.warning("cannot post Event %s for ConfigMap %s: %s", reason, ref.name, exc)


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
