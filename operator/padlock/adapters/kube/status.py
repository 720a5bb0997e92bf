"""The only writer of ``status`` for padlock objects (style guide anti-pattern 2: one status writer).

Flows build the complete status of an object once per reconcile and hand it here. The writer reads
the object's current status and writes only when something differs, with one merge patch on the
``/status`` subresource; keys that disappeared are removed explicitly (merge patches keep absent keys).
Equal status means no request at all, so re-applying the same inputs never moves a resourceVersion.
"""

from __future__ import annotations

from typing import Any

from padlock.adapters.kube.client import JSON, ApiError, KubeClient
from padlock.adapters.kube.resources import Resource


def status_patch(current: JSON | None, desired: JSON) -> JSON | None:
    """The merge patch turning ``current`` status into ``desired``, or None when they are equal."""
    current = current or {}
    if current == desired:
        return None
    patch: dict[str, Any] = dict(desired)
    for key in current:
        if key not in desired:
            patch[key] = None
    return patch


def write_status(
    client: KubeClient, kind: Resource, name: str, desired: JSON, *, namespace: str | None = None,
    current: JSON | None = None,
) -> bool:
    """Make ``status`` of the object equal to ``desired``. Returns True when a write happened.

    ``current`` is the object's current status when the caller has just read it; otherwise it is read
    here. A vanished object is not an error (it was deleted while we reconciled).
    """
    if current is None:
        try:
            obj = client.get(kind.path(name, namespace=namespace))
        except ApiError as exc:
            if exc.not_found:
                return False
            raise
        current = obj.get("status") or {}
    patch = status_patch(current, desired)
    if patch is None:
        return False
    try:
        client.merge_patch(kind.path(name, namespace=namespace, sub="status"), {"status": patch})
    except ApiError as exc:
        if exc.not_found:
            return False
        raise
    return True
