"""Kubernetes Events for padlock objects (adopted or refused releases, invalid objects, publishes).

Events are ``core/v1`` so ``kubectl describe`` and ``kubectl get events`` show them. Cluster-scoped
objects get their Events in the ``default`` namespace, as kopf and kube-controller-manager do.
Posting an Event is best effort: a failure is logged by the caller, never fatal to a reconcile.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from padlock.adapters.kube.client import KubeClient
from padlock.adapters.kube.resources import events_path
from padlock.policy import changes

COMPONENT = "padlock"
# Event messages are capped by the API server at 1 KiB; keep the head, which names the problem.
MAX_MESSAGE = 1024


@dataclass(frozen=True)
class ObjectRef:
    """Which object an Event is about."""

    api_version: str
    kind: str
    name: str
    uid: str | None = None
    namespace: str | None = None


def post_event(
    client: KubeClient, ref: ObjectRef, *, reason: str, message: str, warning: bool = False,
    now: dt.datetime | None = None,
) -> None:
    when = changes.format_time(now or dt.datetime.now(dt.UTC))
    namespace = ref.namespace or "default"
    involved: dict[str, str] = {"apiVersion": ref.api_version, "kind": ref.kind, "name": ref.name}
    if ref.uid:
        involved["uid"] = ref.uid
    if ref.namespace:
        involved["namespace"] = ref.namespace
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - 3] + "..."
    body = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{ref.name}.", "namespace": namespace},
        "involvedObject": involved,
        "reason": reason,
        "message": message,
        "type": "Warning" if warning else "Normal",
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": COMPONENT,
        "firstTimestamp": when,
        "lastTimestamp": when,
        "count": 1,
    }
    client.create(events_path(namespace), body)
