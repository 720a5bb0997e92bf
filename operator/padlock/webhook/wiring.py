"""Wire the admission webhook into a kopf operator: TLS, server, webhook configuration, handlers.

Called once from the operator's ``@kopf.on.startup`` handler (``padlock operator``, owned by the
operator entry point) and from ``padlock.webhook.standalone`` (tests, bench)::

    padlock.webhook.setup(settings, WebhookOptions(...), state, now=datetime.now(UTC))

Two ways the API server finds the webhook:

* url mode (local runs, integration tests): ``options.managed_config`` names a
  ValidatingWebhookConfiguration that kopf creates and keeps patched with
  ``https://<host>:<port>/<handler id>`` and the caBundle (kopf's ``settings.admission.managed``).
* service mode (the chart): ``managed_config=None``; the chart's ``webhook.yaml`` holds a
  service-based configuration; with ``ca_bundle_config`` set, ``publish_ca_bundle`` writes the CA of
  the certificate in use into it, so a rotated Secret never leaves a stale caBundle behind.
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import kopf

from padlock.adapters.kube.client import JSON_PATCH, KubeClient
from padlock.policy import lock
from padlock.webhook import certs, handlers
from padlock.webhook.views import ViewCache

VWC_PATH = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"


@dataclass(frozen=True)
class WebhookOptions:
    """How the webhook listens, proves its identity, and is registered."""

    listen_addr: str = "0.0.0.0"
    """Address to bind: 127.0.0.1 in tests and local runs, all interfaces in a pod."""
    port: int = 9443
    host: str | None = None
    """Host put in the webhook URL in url mode (default: ``listen_addr``, or 127.0.0.1 for 0.0.0.0)."""
    cert_dir: str = "/tmp/padlock-webhook-tls"
    """Holds tls.crt, tls.key, ca.crt (a mounted Secret); generated there when absent."""
    managed_config: str | None = "padlock.dev"
    """Name of the kopf-managed ValidatingWebhookConfiguration (url mode); None in service mode."""
    ca_bundle_config: str | None = None
    """Service mode: name of the chart's ValidatingWebhookConfiguration whose caBundle is kept current."""
    service: str | None = None
    """Service name and namespace the API server uses in service mode; added as DNS SANs."""
    namespace: str | None = None
    operator_username: str = lock.DEFAULT_OPERATOR_USERNAME
    extra_sans: tuple[str, ...] = ()
    plugins: tuple[tuple[str, str], ...] = ()
    """Plugins the cluster's Falco loads, (name, version): container.* fields need ``container``."""
    engine_version: str | None = None
    """Falco engine version of the cluster, as ``padlock operator --engine-version``."""
    target: lock.PublishTarget = field(default_factory=lock.PublishTarget)
    """Where the operator publishes (Falco namespace, ConfigMap name, shard count): reserved names."""

    @property
    def url_host(self) -> str:
        if self.host:
            return self.host
        return "127.0.0.1" if self.listen_addr in ("0.0.0.0", "::", "") else self.listen_addr

    def sans(self) -> list[str]:
        names: list[str] = [self.url_host]
        if self.listen_addr not in ("0.0.0.0", "::", "", self.url_host):
            names.append(self.listen_addr)
        if self.service and self.namespace:
            names.extend(certs.service_sans(self.service, self.namespace))
        names.extend(self.extra_sans)
        return list(dict.fromkeys(names))


@dataclass
class WebhookRuntime:
    """What ``setup`` made, for the caller's logs and for tests."""

    tls: certs.TlsFiles
    context: handlers.AdmissionContext
    server: kopf.WebhookServer
    handler_ids: Sequence[str] = field(default_factory=lambda: handlers.HANDLER_IDS)


def setup(
    settings: kopf.OperatorSettings,
    options: WebhookOptions,
    state: Any | None,
    *,
    now: datetime.datetime,
    registry: kopf.OperatorRegistry | None = None,
) -> WebhookRuntime:
    """Register the handlers and configure kopf's admission server; returns what it set up."""
    tls = certs.ensure(options.cert_dir, options.sans(), now=now)
    context = handlers.AdmissionContext(
        identity=lock.Identity(options.operator_username),
        target=options.target,
        state=state,
        views=ViewCache(dict(options.plugins), options.engine_version),
    )
    handlers.register(registry if registry is not None else kopf.get_default_registry(), context)
    server = kopf.WebhookServer(
        addr=options.listen_addr,
        port=options.port,
        host=options.url_host,
        certfile=str(tls.certfile),
        pkeyfile=str(tls.pkeyfile),
        cafile=str(tls.cafile),
    )
    settings.admission.server = server
    settings.admission.managed = options.managed_config
    return WebhookRuntime(tls=tls, context=context, server=server)


def publish_ca_bundle(client: KubeClient, config_name: str, ca_pem: bytes) -> bool:
    """Write ``ca_pem`` into every webhook of a ValidatingWebhookConfiguration; True if it changed.

    A JSON patch guarded by a ``test`` of
    the resourceVersion read, not a merge patch (which would replace the whole ``webhooks`` list).
    Needs RBAC get/patch on that one configuration (the chart's rbac.yaml grants exactly that).
    """
    encoded = base64.b64encode(ca_pem).decode("ascii")
    path = f"{VWC_PATH}/{config_name}"
    body = client.get(path)
    ops: list[dict[str, Any]] = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": body["metadata"]["resourceVersion"]}
    ]
    for index, webhook in enumerate(body.get("webhooks") or []):
        if (webhook.get("clientConfig") or {}).get("caBundle") != encoded:
            ops.append({"op": "add", "path": f"/webhooks/{index}/clientConfig/caBundle", "value": encoded})
    if len(ops) == 1:
        return False
    client.request("PATCH", path, body=ops, content_type=JSON_PATCH)
    return True
