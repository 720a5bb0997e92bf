"""``padlock operator``: run the Padlock operator (kopf, cluster-wide) against a cluster.

Wiring only: parse flags into ``OperatorOptions`` (what flows need), ``RuntimeOptions`` (addresses,
timings) and ``WebhookFlags`` (the admission webhook, when ``--webhook-port`` is given), configure
logging, load credentials, and hand over to ``padlock.controllers.run``. The chart's Deployment sets
the webhook's service-mode values through env vars (``PADLOCK_WEBHOOK_SERVICE``,
``PADLOCK_WEBHOOK_CA_BUNDLE_CONFIG``, ``POD_NAMESPACE``, ``PADLOCK_OPERATOR_USERNAME``), which the
flags of the same meaning read.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from padlock.cli import defaults
from padlock.cli.tuner_flags import build as build_tuner_flags
from padlock.cli.tuner_flags import tuner_options
from padlock.flows.options import Limits, OperatorOptions
from padlock.policy import lock


def _addr(value: str | None, flag: str) -> str | None:
    if value is None or value in ("", "0", "off"):
        return None
    _host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise click.BadParameter(f'"{value}": expected HOST:PORT, e.g. 127.0.0.1:8080', param_hint=flag)
    return value


@click.command(name="operator")
@click.option("--kubeconfig", type=click.Path(exists=True, dir_okay=False), help="Kubeconfig (default: in-cluster, then ~/.kube/config).")
@click.option("--context", "context_", help="Kubeconfig context.")
@click.option("--falco-namespace", default="falco", show_default=True, help="Namespace of the published rules ConfigMap.")
@click.option("--configmap", default="padlock-rules", show_default=True, help="Name of the published rules ConfigMap.")
@click.option("--rules-shards", type=click.IntRange(0, 63), default=lock.DEFAULT_RULES_SHARDS, show_default=True,
              help="Shards <configmap>-1..N the Falco mount declares besides <configmap>; the operator writes no "
                   "other ConfigMap, and leaves out of the ruleset what does not fit (docs/limits.md).")
@click.option("--engine-version", help="Falco engine version of the cluster (X.Y.Z); releases needing more are refused.")
@click.option("--plugin", "plugins", multiple=True, metavar="NAME=VER", help="A plugin Falco loads, for plugin requirements.")
@click.option("--max-object-bytes", type=click.IntRange(min=1), default=Limits.object_bytes, show_default=True,
              help="Bytes one object may add to the generated policy layer; a larger one is left out (docs/limits.md).")
@click.option("--max-namespace-bytes", type=click.IntRange(min=1), default=Limits.namespace_bytes, show_default=True,
              help="Bytes the PolicyExceptions of one namespace may add together; the newest over it are left out.")
@click.option("--health-addr", default="127.0.0.1:8080", show_default=True, help="Address of /healthz and /readyz.")
@click.option("--metrics-addr", default="127.0.0.1:9090", show_default=True, help="Address of /metrics ('off' to disable).")
@click.option("--webhook-addr", default="127.0.0.1", show_default=True, help="Address the admission webhook listens on.")
@click.option("--webhook-port", type=int, help="Port of the admission webhook (unset: no webhook in this process).")
@click.option("--webhook-cert-dir", type=click.Path(file_okay=False), help="Directory with tls.crt/tls.key/ca.crt (generated if absent).")
@click.option("--webhook-configuration", envvar="PADLOCK_WEBHOOK_CA_BUNDLE_CONFIG", default="padlock.dev", show_default=True,
              help="ValidatingWebhookConfiguration whose caBundle the operator keeps current ('' to leave it alone).")
@click.option("--webhook-service", envvar="PADLOCK_WEBHOOK_SERVICE",
              help="Service the API server calls (service mode); its DNS names go into the certificate.")
@click.option("--webhook-namespace", envvar="POD_NAMESPACE", help="Namespace of that Service (default: the pod's).")
@click.option("--operator-username", envvar="PADLOCK_OPERATOR_USERNAME", default="system:serviceaccount:padlock-system:padlock",
              show_default=True, help="The operator's own identity, whose writes pass the lock.")
@click.option("--webhook-cert-secret", envvar="PADLOCK_WEBHOOK_CERT_SECRET",
              help="Secret in the webhook namespace holding the certificate all replicas share (filled by the first).")
@click.option("--leader-election/--no-leader-election", default=False, show_default=True,
              help="Take a Lease before syncing and publishing; every replica still serves admission.")
@click.option("--leader-election-namespace", envvar="POD_NAMESPACE", help="Namespace of the Lease (default: the pod's).")
@click.option("--leader-election-id", default="padlock-operator", show_default=True, help="Name of the Lease.")
@click.option("--leader-identity", envvar="POD_NAME", help="This replica's name in the Lease (default: host name and pid).")
@click.option("--lease-duration", type=float, default=15.0, show_default=True,
              help="Seconds a Lease not renewed stays with its holder.")
@click.option("--renew-deadline", type=float, default=10.0, show_default=True,
              help="Seconds the leader keeps writing without a renewal (shorter than --lease-duration).")
@click.option("--retry-period", type=float, default=2.0, show_default=True, help="Seconds between Lease attempts.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--identity-check/--no-identity-check", default=False, help="Print the identity the operator runs as, then exit.")
@click.option("--tick", type=float, default=1.0, show_default=True, hidden=True, help="Seconds between RuleSource timer ticks.")
@click.option("--drift-interval", type=float, default=10.0, show_default=True, hidden=True, help="Seconds between ConfigMap drift checks.")
@click.option("--debounce", type=float, default=0.3, show_default=True, hidden=True, help="Seconds to collapse a burst of changes.")
@tuner_options
def command(
    kubeconfig: str | None, context_: str | None, falco_namespace: str, configmap: str, rules_shards: int,
    engine_version: str | None,
    plugins: tuple[str, ...], health_addr: str, metrics_addr: str, webhook_addr: str, webhook_port: int | None,
    webhook_cert_dir: str | None, webhook_configuration: str, webhook_service: str | None,
    webhook_namespace: str | None, operator_username: str, log_format: str, identity_check: bool, tick: float, drift_interval: float,
    debounce: float, max_object_bytes: int = Limits.object_bytes, max_namespace_bytes: int = Limits.namespace_bytes,
    webhook_cert_secret: str | None = None, leader_election: bool = False, leader_election_namespace: str | None = None,
    leader_election_id: str = "padlock-operator", leader_identity: str | None = None, lease_duration: float = 15.0,
    renew_deadline: float = 10.0, retry_period: float = 2.0,
    **tuner: Any,
) -> None:
    """Run the Padlock operator: follow RuleSources, keep managed policies, publish the ruleset."""
    from padlock import logging_setup
    from padlock.adapters.kube.client import KubeClient, load_connection
    from padlock.controllers.context import RuntimeOptions
    from padlock.controllers.webhook_wiring import WebhookFlags

    defaults.engine_version(engine_version)
    options = OperatorOptions(falco_namespace=falco_namespace, configmap=configmap, rules_shards=rules_shards,
                              engine_version=engine_version,
                              plugins=defaults.plugins(plugins) if plugins else None,  # none given: no plugin
                              limits=Limits(object_bytes=max_object_bytes, namespace_bytes=max_namespace_bytes))
    runtime = RuntimeOptions(
        health_addr=_addr(health_addr, "--health-addr") or "127.0.0.1:8080",
        metrics_addr=_addr(metrics_addr, "--metrics-addr"), webhook_addr=webhook_addr, webhook_port=webhook_port,
        webhook_cert_dir=webhook_cert_dir, tick=tick, drift_interval=drift_interval, debounce=debounce,
    )
    webhook_flags = None
    if webhook_port is not None:
        if webhook_service and not webhook_namespace:
            raise click.BadParameter("with --webhook-service, give --webhook-namespace (or POD_NAMESPACE)",
                                     param_hint="--webhook-namespace")
        webhook_flags = WebhookFlags(
            port=webhook_port, listen_addr=webhook_addr, cert_dir=webhook_cert_dir,
            configuration=webhook_configuration or None, service=webhook_service or None,
            namespace=webhook_namespace or None, operator_username=operator_username,
            cert_secret=webhook_cert_secret or None,
        )
        if webhook_cert_secret and not webhook_namespace:
            raise click.BadParameter("with --webhook-cert-secret, give --webhook-namespace (or POD_NAMESPACE)",
                                     param_hint="--webhook-namespace")
    election_flags = _election(leader_election, leader_election_namespace, leader_election_id, leader_identity,
                               lease_duration, renew_deadline, retry_period)
    tuner_flags = build_tuner_flags(tuner)
    logging_setup.configure(log_format)
    try:
        connection = load_connection(kubeconfig, context_)
    except Exception as exc:
        click.echo(f"padlock operator: cannot load credentials ({kubeconfig or 'in-cluster/default'}): {exc}", err=True)
        sys.exit(2)
    if identity_check:
        review = KubeClient(connection).create(
            "/apis/authentication.k8s.io/v1/selfsubjectreviews", {"apiVersion": "authentication.k8s.io/v1",
                                                                   "kind": "SelfSubjectReview"})
        click.echo(((review.get("status") or {}).get("userInfo") or {}).get("username", "?"))
        return
    from padlock.controllers.run import run_operator

    run_operator(options, runtime, connection, webhook_flags=webhook_flags, tuner_flags=tuner_flags,
                 election_flags=election_flags)


def _election(enabled: bool, namespace: str | None, name: str, identity: str | None, duration: float,
              deadline: float, retry: float) -> Any:
    """``ElectionFlags`` for --leader-election, or None; bad timings are a usage error naming them."""
    if not enabled:
        return None
    import os
    import socket

    from padlock.controllers.leader import ElectionFlags
    from padlock.flows.leadership import Timing, TimingError

    if not namespace:
        raise click.BadParameter("with --leader-election, give --leader-election-namespace (or POD_NAMESPACE)",
                                 param_hint="--leader-election-namespace")
    try:
        timing = Timing(lease_duration=duration, renew_deadline=deadline, retry_period=retry)
    except TimingError as exc:
        raise click.BadParameter(str(exc), param_hint="--lease-duration/--renew-deadline/--retry-period") from exc
    return ElectionFlags(namespace=namespace, name=name, identity=identity or f"{socket.gethostname()}-{os.getpid()}",
                         timing=timing)
