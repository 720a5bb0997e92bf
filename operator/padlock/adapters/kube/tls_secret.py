"""The webhook serving certificate every replica shares, kept in one Secret of the release namespace.

Called by ``padlock.controllers.webhook_wiring.load_shared_certificate`` at operator start, before
the webhook serves. The chart creates the Secret empty (templates/webhook-tls-secret.yaml); the
first replica that finds it empty (or holding a certificate it cannot use) fills it with an update
guarded by the Secret's resourceVersion. Two replicas starting together both try; the API server
accepts one write and answers the other 409 Conflict, and the loser reads and uses the winner's
certificate. So all replicas serve the same certificate and the webhook's caBundle has one value:
no replica-specific CA, no fight over the caBundle. Needs only get and update on that one Secret
by name (no create, no list). Deciding whether a certificate is usable is the caller's.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping

from padlock.adapters.kube.client import ApiError, KubeClient, q

KEYS = ("tls.crt", "tls.key", "ca.crt")
ATTEMPTS = 5


class SharedSecretError(RuntimeError):
    pass


def _decode(obj: Mapping[str, object]) -> dict[str, bytes]:
    data = obj.get("data") or {}
    assert isinstance(data, dict)
    return {k: base64.b64decode(str(v)) for k, v in data.items() if k in KEYS}


def load_or_fill(client: KubeClient, namespace: str, name: str, *, usable: Callable[[dict[str, bytes]], bool],
                 generate: Callable[[], dict[str, bytes]]) -> tuple[dict[str, bytes], bool]:
    """The Secret's ``tls.crt``/``tls.key``/``ca.crt``, and whether this call wrote them."""
    path = f"/api/v1/namespaces/{q(namespace)}/secrets/{q(name)}"
    for _ in range(ATTEMPTS):
        try:
            obj = client.get(path)
        except ApiError as exc:
            if exc.not_found:
                raise SharedSecretError(
                    f"Secret {namespace}/{name} (the webhook certificate the replicas share) does not exist: "
                    "the chart creates it empty with leaderElection.enabled; create it (type Opaque, no data) "
                    "or drop --webhook-cert-secret") from exc
            raise
        current = _decode(obj)
        if all(k in current for k in KEYS) and usable(current):
            return current, False
        fresh = generate()
        body = {
            "apiVersion": "v1", "kind": "Secret", "type": obj.get("type") or "Opaque",
            "metadata": {**(obj.get("metadata") or {}), "resourceVersion": obj["metadata"]["resourceVersion"]},
            "data": {k: base64.b64encode(fresh[k]).decode("ascii") for k in KEYS},
        }
        try:
            client.replace(path, body)
        except ApiError as exc:
            if exc.conflict:  # another replica filled it first: use theirs (next round reads it)
                continue
            raise
        return fresh, True
    raise SharedSecretError(f"Secret {namespace}/{name}: changed by others {ATTEMPTS} times while filling it")
