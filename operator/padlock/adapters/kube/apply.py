"""Server-side apply of the operator-owned part of ManagedPolicies.

The operator applies with field manager ``padlock`` and sends ONLY the fields it owns (metadata labels
and annotations under ``padlock.dev/``, ``app.kubernetes.io/managed-by``, and the operator-owned spec
fields listed in docs/design.md). The user-choice fields ``spec.enabled``, ``spec.disabledRules`` and
``spec.scope`` are never in the applied body, so a user or a GitOps tool owns them under its own field
manager with no conflict, and an identical apply is a no-op on the server (no resourceVersion change).
"""

from __future__ import annotations

from typing import Any

from padlock.adapters.kube.client import JSON, KubeClient
from padlock.adapters.kube.resources import API_VERSION, MANAGED_POLICY
from padlock.policy import lock

FIELD_MANAGER = "padlock"
USER_CHOICE_FIELDS = lock.USER_CHOICE_SPEC_FIELDS


class OwnedFieldError(ValueError):
    """A body handed to the applier carries a user-choice field (a programming error in a flow)."""


def managed_policy_body(name: str, spec: JSON, *, labels: dict[str, str], annotations: dict[str, str]) -> JSON:
    """The apply configuration for one ManagedPolicy; refuses user-choice fields."""
    leaked = [f for f in USER_CHOICE_FIELDS if f in spec]
    if leaked:
        raise OwnedFieldError(f"ManagedPolicy {name}: spec.{leaked[0]} is a user choice; the operator never applies it")
    metadata: dict[str, Any] = {"name": name}
    # An empty map is stored as absent, so applying one would count as a change on every apply and
    # move the resourceVersion of an unchanged object: leave empty maps out.
    if labels:
        metadata["labels"] = dict(labels)
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {"apiVersion": API_VERSION, "kind": MANAGED_POLICY.kind, "metadata": metadata, "spec": spec}


def apply_managed_policy(client: KubeClient, body: JSON) -> JSON:
    """Apply ``body`` (from ``managed_policy_body``) and return the object as stored."""
    name = body["metadata"]["name"]
    return client.apply(MANAGED_POLICY.path(name), body, field_manager=FIELD_MANAGER, force=True)


def create_with_choices(client: KubeClient, body: JSON, choices: JSON) -> JSON:
    """Recreate a ManagedPolicy that disappeared, with the user's remembered choices.

    The operator-owned part is applied as ``padlock``; the user's choices are then applied under their
    own field manager (``padlock-restored-choices``) so they stay a separate owner, as they were.
    """
    stored = apply_managed_policy(client, body)
    if choices:
        name = body["metadata"]["name"]
        restore = {"apiVersion": API_VERSION, "kind": MANAGED_POLICY.kind, "metadata": {"name": name}, "spec": choices}
        stored = client.apply(MANAGED_POLICY.path(name), restore, field_manager="padlock-restored-choices", force=True)
    return stored
