"""Watch handlers for ManagedPolicy, CustomPolicy, PolicyException and ClusterPolicyException.

Every change updates the shared state and asks the render loop for a render (one per burst). A
ManagedPolicy that disappears (the lock forbids it, but an admin may force it) is recreated by the
next render with the user's remembered choices. These are ``on.event`` handlers: they store no kopf
progress on the objects and write nothing to them.
"""

from __future__ import annotations

import copy
from typing import Any

import kopf

from padlock.api import kinds
from padlock.controllers.context import OperatorContext

GROUP, VERSION = kinds.MANAGED_POLICY.group, kinds.MANAGED_POLICY.version
WATCHED = tuple((k.plural, k.kind) for k in (
    kinds.MANAGED_POLICY, kinds.CUSTOM_POLICY, kinds.POLICY_EXCEPTION, kinds.CLUSTER_POLICY_EXCEPTION))
# Changes to these parts only (status, managedFields, resourceVersion) never change the render.
_IRRELEVANT = ("status", "managedFields", "resourceVersion")


def _essence(obj: dict[str, Any] | None) -> Any:
    if obj is None:
        return None
    md = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _IRRELEVANT}
    return {"metadata": md, "spec": obj.get("spec")}


def plain(body: Any, kind: str) -> dict[str, Any]:
    obj = copy.deepcopy({k: (dict(v) if hasattr(v, "items") else v) for k, v in body.items()})
    obj.setdefault("apiVersion", f"{GROUP}/{VERSION}")
    obj.setdefault("kind", kind)
    return obj


def _store(ctx: OperatorContext, kind: str) -> dict[Any, dict[str, Any]]:
    s = ctx.state
    return {"ManagedPolicy": s.managed, "CustomPolicy": s.custom}.get(kind, s.exceptions)


def register(registry: kopf.OperatorRegistry) -> None:
    for plural, kind in WATCHED:
        def make(kind: str) -> Any:
            async def on_event(type: str, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
                ctx: OperatorContext = memo.ctx
                obj = plain(body, kind)
                if type == "DELETED":
                    ctx.state.remove(obj)
                    ctx.request_render()
                    return
                md = obj["metadata"]
                key = md["name"] if kind in ("ManagedPolicy", "CustomPolicy") else (kind, md.get("namespace") or "", md["name"])
                before = _store(ctx, kind).get(key)
                ctx.state.upsert(obj)
                # Status-only updates (our own writes) do not need a render; a first sighting does
                # (its status may still be empty).
                if before is None or _essence(before) != _essence(obj) or not obj.get("status"):
                    ctx.request_render()
            return on_event

        kopf.on.event(GROUP, VERSION, plural, id=f"{plural}.track", registry=registry)(make(kind))
