"""``ClusterPort`` for the flows, over ``KubeClient``: apply, status, Events, publish, read published.

Stateless apart from the client and the publishing target; safe to call from worker threads.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from padlock.adapters.kube import apply, events, publish, status
from padlock.adapters.kube.client import JSON, KubeClient
from padlock.adapters.kube.resources import API_VERSION, KINDS
from padlock.policy import lock

log = logging.getLogger("padlock.adapters")


class KubeCluster:
    def __init__(self, client: KubeClient, *, namespace: str, configmap: str,
                 shards: int = lock.DEFAULT_RULES_SHARDS) -> None:
        self.client = client
        self.namespace = namespace
        self.configmap = configmap
        self.shards = shards

    def apply_managed(self, draft: Any) -> JSON:
        body = apply.managed_policy_body(draft.name, draft.spec, labels=dict(draft.labels),
                                         annotations=dict(draft.annotations))
        return apply.apply_managed_policy(self.client, body)

    def recreate_managed(self, draft: Any, choices: JSON) -> JSON:
        body = apply.managed_policy_body(draft.name, draft.spec, labels=dict(draft.labels),
                                         annotations=dict(draft.annotations))
        return apply.create_with_choices(self.client, body, choices)

    def delete_managed(self, name: str) -> None:
        """Delete a ManagedPolicy whose catalog entry is gone (a missing one is fine)."""
        self.client.delete(KINDS["ManagedPolicy"].path(name))

    def write_status(self, kind: str, name: str, desired: JSON, *, namespace: str | None = None) -> bool:
        return status.write_status(self.client, KINDS[kind], name, desired, namespace=namespace)

    def event(self, obj: JSON, reason: str, message: str, *, warning: bool = False) -> None:
        md = obj.get("metadata") or {}
        ref = events.ObjectRef(
            api_version=str(obj.get("apiVersion") or API_VERSION), kind=str(obj.get("kind")),
            name=str(md.get("name")), uid=md.get("uid"), namespace=md.get("namespace"),
        )
        try:
            events.post_event(self.client, ref, reason=reason, message=message, warning=warning)
        except Exception as exc:  # an Event is a courtesy; never fail a reconcile for it
            log.warning("cannot post Event %s for %s/%s: %s", reason, ref.kind, ref.name, exc)

    def publish(self, rendered: Any, owners: Sequence[JSON]) -> publish.PublishResult:
        return publish.publish(self.client, self.namespace, self.configmap, rendered.configmaps, owners,
                               shards=self.shards)

    def published(self) -> list[JSON]:
        return publish.read_published(self.client, self.namespace, self.configmap, self.shards)
