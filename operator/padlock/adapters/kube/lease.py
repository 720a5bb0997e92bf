"""Lease I/O for leader election, and the fence that keeps a non-leader from writing.

Called by ``padlock.controllers.leader`` (the election loop) and ``padlock.controllers.run`` (which
gives the flows a ``FencedKubeClient``). The decisions (when to take, renew or give up a lease) are
pure and live in ``padlock.flows.leadership``; this module only reads and writes the
``coordination.k8s.io/v1`` Lease and must not decide anything.

Writes use the Lease's ``resourceVersion`` as a precondition (optimistic concurrency), so two
replicas that both decide to take an expired lease cannot both succeed: the API server answers the
second with 409 Conflict, which ``LeaseStore`` reports as ``False`` ("lost the race").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from padlock.adapters.kube.client import JSON, ApiError, KubeClient, q

#: Verbs that change objects: the fence refuses them while this replica does not hold the lease.
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class NotLeader(RuntimeError):
    """A write was attempted by a replica that does not (or no longer) hold the lease."""


@dataclass(frozen=True)
class LeaseRecord:
    """What the election needs of a Lease's spec (MicroTime as aware datetimes)."""

    holder: str
    duration_seconds: int
    acquire_time: dt.datetime | None
    renew_time: dt.datetime | None
    transitions: int
    resource_version: str = ""


def _time(value: Any) -> dt.datetime | None:
    if not value:
        return None
    text = str(value).replace("Z", "+00:00")
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None


def _micro(value: dt.datetime | None) -> str | None:
    # MicroTime: RFC 3339 with exactly six fractional digits, in UTC.
    return None if value is None else value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record_of(obj: JSON) -> LeaseRecord:
    spec = obj.get("spec") or {}
    return LeaseRecord(
        holder=str(spec.get("holderIdentity") or ""),
        duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
        acquire_time=_time(spec.get("acquireTime")),
        renew_time=_time(spec.get("renewTime")),
        transitions=int(spec.get("leaseTransitions") or 0),
        resource_version=str((obj.get("metadata") or {}).get("resourceVersion") or ""),
    )


def lease_body(namespace: str, name: str, record: LeaseRecord) -> JSON:
    metadata: JSON = {"name": name, "namespace": namespace}
    if record.resource_version:
        metadata["resourceVersion"] = record.resource_version
    return {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata,
        "spec": {
            "holderIdentity": record.holder or None,
            "leaseDurationSeconds": record.duration_seconds,
            "acquireTime": _micro(record.acquire_time),
            "renewTime": _micro(record.renew_time),
            "leaseTransitions": record.transitions,
        },
    }


class LeaseStore:
    """One named Lease: ``get`` (None when absent), ``create`` and ``update`` (False on a lost race)."""

    def __init__(self, client: KubeClient, namespace: str, name: str) -> None:
        self.client, self.namespace, self.name = client, namespace, name

    def _collection(self) -> str:
        return f"/apis/coordination.k8s.io/v1/namespaces/{q(self.namespace)}/leases"

    def get(self) -> LeaseRecord | None:
        obj = self.client.get_or_none(f"{self._collection()}/{q(self.name)}")
        return None if obj is None else record_of(obj)

    def create(self, record: LeaseRecord) -> bool:
        try:
            self.client.create(self._collection(), lease_body(self.namespace, self.name, record))
        except ApiError as exc:
            if exc.status == 409:  # AlreadyExists: another replica created it first
                return False
            raise
        return True

    def update(self, record: LeaseRecord) -> bool:
        """Write ``record`` if the Lease is still at ``record.resource_version``."""
        try:
            self.client.replace(f"{self._collection()}/{q(self.name)}",
                                lease_body(self.namespace, self.name, record))
        except ApiError as exc:
            if exc.conflict:
                return False
            raise
        return True


class FencedKubeClient(KubeClient):
    """A ``KubeClient`` whose writes first ask ``fence()`` (which raises ``NotLeader``) for permission.

    The flows, the render loop and the caBundle keeper get this client, so a replica that is not the
    leader, or whose leadership ran past its renew deadline, cannot write anything: one check at the
    one place every write goes through, instead of a check before each of the many writes.
    """

    def __init__(self, connection: Any, fence: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(connection, **kwargs)
        self._fence = fence

    def request(self, method: str, path: str, **kwargs: Any) -> JSON:
        if method.upper() in MUTATING:
            self._fence()
        return super().request(method, path, **kwargs)
