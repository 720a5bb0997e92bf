"""The admission webhook inside ``padlock operator``: its options, and the caBundle kept current.

Called by ``padlock.controllers.run`` (the operator process). One model for every environment, so
the operator never needs more RBAC than the chart grants (get/patch on one
ValidatingWebhookConfiguration, no create):

* the configuration is installed by someone else: the chart (``templates/webhook.yaml``,
  service-based) in a cluster, or the test/demo harness as admin (``url_mode_configuration``:
  the chart's webhooks with ``url: https://127.0.0.1:<port>/<id>`` instead of the Service);
* the operator serves the handlers (``padlock.webhook.setup`` with ``managed_config=None``, so kopf
  never creates or deletes configurations) and patches the CA of the certificate it serves with into
  that configuration (``keep_ca_bundle``), at start and again every ``recheck`` seconds, so a
  configuration created after the operator, or re-applied without a caBundle by a GitOps tool, is
  repaired without a restart.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

from padlock.policy import lock

log = logging.getLogger("padlock.webhook")

DEFAULT_CONFIGURATION = "padlock.dev"
"""The chart's ``webhook.configurationName`` default, the one name its RBAC lets the operator patch."""


@dataclass(frozen=True)
class WebhookFlags:
    """What ``padlock operator`` was told about its webhook (flags, or the chart's env vars)."""

    port: int
    listen_addr: str = "127.0.0.1"
    cert_dir: str | None = None
    configuration: str | None = DEFAULT_CONFIGURATION
    """ValidatingWebhookConfiguration whose caBundle the operator keeps current; None: leave it alone."""
    service: str | None = None
    """Service name the API server calls (service mode); its DNS names go into the certificate."""
    namespace: str | None = None
    """Namespace of that Service (the pod's namespace)."""
    operator_username: str = lock.DEFAULT_OPERATOR_USERNAME
    """The identity whose writes pass the lock (the operator's own ServiceAccount)."""
    cert_secret: str | None = None
    """Secret in ``namespace`` holding the certificate all replicas share (``load_shared_certificate``)."""


def webhook_options(flags: WebhookFlags, *, plugins: dict[str, str] | None, engine_version: str | None,
                    target: lock.PublishTarget | None = None) -> Any:
    """``padlock.webhook.WebhookOptions`` for the operator: never kopf-managed (no ``create`` RBAC).

    The plugins and engine version are the operator's own (``--plugin``, ``--engine-version``), so the
    webhook judges objects against the same Falco the published ruleset is validated for.
    """
    from padlock.webhook import WebhookOptions

    return WebhookOptions(
        listen_addr=flags.listen_addr,
        port=flags.port,
        cert_dir=flags.cert_dir or "/tmp/padlock-webhook-tls",
        managed_config=None,
        ca_bundle_config=flags.configuration,
        service=flags.service,
        namespace=flags.namespace,
        operator_username=flags.operator_username,
        plugins=tuple(sorted((plugins or {}).items())),
        engine_version=engine_version,
        target=target or lock.PublishTarget(),
    )


def url_mode_configuration(chart_manifest: str, base_url: str, *, name: str | None = None) -> dict[str, Any]:
    """The chart's webhook configuration with each webhook pointed at ``base_url`` instead of the Service.

    ``chart_manifest`` is ``helm template ... --show-only templates/webhook.yaml``; every webhook keeps
    its name, rules, selectors and failurePolicy; only ``clientConfig`` becomes
    ``{url: <base_url>/<service path>}`` (the path is the handler id). Used by the harness (tests,
    ``padlock demo``) acting as admin; the operator then patches the caBundle as in a cluster.
    """
    docs = [d for d in yaml.safe_load_all(chart_manifest) if isinstance(d, dict)]
    configs = [d for d in docs if d.get("kind") == "ValidatingWebhookConfiguration"]
    if len(configs) != 1:
        raise ValueError(
            f"templates/webhook.yaml: expected one ValidatingWebhookConfiguration, found {len(configs)} "
            "(is webhook.enabled false?)"
        )
    config = copy.deepcopy(configs[0])
    if name is not None:
        config["metadata"]["name"] = name
    for index, hook in enumerate(config.get("webhooks") or []):
        service = (hook.get("clientConfig") or {}).get("service") or {}
        path = service.get("path")
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError(
                f"templates/webhook.yaml: webhooks[{index}] ({hook.get('name')}): clientConfig.service.path "
                f"must be /<handler id>, got {path!r}"
            )
        hook["clientConfig"] = {"url": base_url.rstrip("/") + path}
    return config


async def keep_ca_bundle(
    client: Any,
    name: str,
    ca_pem: bytes,
    *,
    recheck: float = 60.0,
    retry: float = 2.0,
    publish: Callable[[Any, str, bytes], bool] | None = None,
) -> None:
    """Keep ``ca_pem`` in every webhook of configuration ``name``; runs until cancelled.

    Failures (the configuration not there yet, RBAC, the API server away) are logged once per distinct
    message and retried every ``retry`` seconds; the lock meanwhile rests on the chart's
    ValidatingAdmissionPolicy and the webhooks' ``failurePolicy: Ignore``.
    """
    if publish is None:
        from padlock.webhook import publish_ca_bundle

        publish = publish_ca_bundle
    last_problem: str | None = None
    while True:
        try:
            changed = await asyncio.to_thread(publish, client, name, ca_pem)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            problem = str(exc)
            if problem != last_problem:
                log.warning("cannot publish the webhook caBundle into ValidatingWebhookConfiguration %s "
                            "(retrying every %.0fs): %s", name, retry, problem)
                last_problem = problem
            await asyncio.sleep(retry)
            continue
        if changed or last_problem is not None:
            log.info("webhook caBundle published into ValidatingWebhookConfiguration %s", name)
        last_problem = None
        await asyncio.sleep(recheck)


def load_shared_certificate(client: Any, namespace: str, secret: str, cert_dir: str, sans: list[str], *,
                            now: Any) -> bool:
    """Put the replicas' shared serving certificate (Secret ``namespace/secret``) into ``cert_dir``.

    Called at start, before ``padlock.webhook.setup`` reads ``cert_dir``. The first replica that finds
    the Secret empty or unusable fills it (``adapters.kube.tls_secret``); every other one loads that
    certificate, so all serve one CA and the leader's caBundle patch is the only one ever needed.
    Returns whether this replica wrote the Secret.
    """
    from padlock.adapters.kube import tls_secret
    from padlock.webhook import certs

    def generate() -> dict[str, bytes]:
        ca, cert, key = certs.generate(sans, now=now)
        return {certs.CA_FILE: ca, certs.CERT_FILE: cert, certs.KEY_FILE: key}

    files, wrote = tls_secret.load_or_fill(client, namespace, secret,
                                           usable=lambda f: certs.usable(f, sans, now=now), generate=generate)
    certs.write_files(cert_dir, files)
    log.info("webhook certificate %s Secret %s/%s", "generated into" if wrote else "loaded from", namespace, secret)
    return wrote
