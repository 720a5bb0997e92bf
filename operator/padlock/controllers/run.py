"""Start the operator: build the context, register handlers, run kopf cluster-wide until stopped.

Called by ``padlock operator`` (and by tests and the demo through that command in a subprocess).
kopf logs in with the same credentials as the flows' client (``--kubeconfig``/``--context`` or
in-cluster). Progress and diff base live in ``padlock.dev/`` annotations so they survive the status
schema's structural pruning and never mix with the status the flows write.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import kopf

from padlock import metrics
from padlock.adapters.kube.client import Connection, KubeClient
from padlock.adapters.kube.cluster import KubeCluster
from padlock.adapters.kube.resources import KINDS
from padlock.controllers import expiry, follower, health, render_loop, rulesource, watches, webhook_wiring
from padlock.controllers.context import OperatorContext, RuntimeOptions
from padlock.controllers.leader import ElectionFlags, LeaderElection
from padlock.controllers.tuner import TunerFlags
from padlock.controllers.webhook_wiring import WebhookFlags
from padlock.flows.options import OperatorOptions

log = logging.getLogger("padlock.operator")


def _prefill(ctx: OperatorContext) -> None:
    """Read every padlock object once before the first render, so a restart renders the same inputs."""
    for kind in ("RuleSource", "ManagedPolicy", "CustomPolicy", "PolicyException", "ClusterPolicyException"):
        k = KINDS[kind]
        for obj in ctx.client.list(k.path()):
            obj.setdefault("apiVersion", "padlock.dev/v1alpha1")
            obj.setdefault("kind", kind)
            ctx.state.upsert(obj)


def build_registry() -> kopf.OperatorRegistry:
    """kopf's default registry: the webhook's ``setup`` registers its validating handlers there too."""
    return kopf.get_default_registry()


def configure(settings: kopf.OperatorSettings) -> None:
    # Progress and diff base in annotations: status is ours alone and survives structural pruning.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="padlock.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="padlock.dev", key="last-handled-configuration")
    settings.persistence.finalizer = "padlock.dev/finalizer"
    settings.posting.level = logging.WARNING  # kopf's own Events only for problems
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 60


def _setup_webhook(settings: kopf.OperatorSettings, registry: kopf.OperatorRegistry, ctx: OperatorContext,
                   flags: WebhookFlags) -> Any:
    """The admission webhook in this process (docs/design.md, "Operator <-> webhook").

    kopf serves the handlers but never manages a webhook configuration (that would need ``create``,
    which the chart does not grant): the chart, or the harness in url mode, installs it, and
    ``keep_ca_bundle`` (started with the operator) patches its caBundle.
    """
    from padlock import webhook

    options = webhook_wiring.webhook_options(flags, plugins=ctx.options.plugins,
                                             engine_version=ctx.options.engine_version,
                                             target=ctx.options.publish_target())
    if flags.cert_secret and flags.namespace:
        # One certificate for every replica (Secret in the release namespace), read with the plain
        # client: a follower may be the first to start and fill it.
        webhook_wiring.load_shared_certificate(KubeClient(ctx.connection), flags.namespace, flags.cert_secret,
                                               options.cert_dir, options.sans(), now=ctx.now())
    made = webhook.setup(settings, options, ctx.state, now=ctx.now(), registry=registry)
    log.info("admission webhook on https://%s:%d (configuration %s, service %s)", options.listen_addr,
             options.port, flags.configuration or "-", flags.service or "-")
    return made


async def _operate(options: OperatorOptions, runtime: RuntimeOptions, connection: Connection,
                   stop_flag: asyncio.Event | None, webhook_flags: WebhookFlags | None,
                   tuner_flags: TunerFlags | None = None, election_flags: ElectionFlags | None = None) -> bool:
    """Run until stopped; True when stopped because this replica lost the leader Lease."""
    from padlock.adapters.kube.lease import FencedKubeClient, LeaseStore
    from padlock.flows import corebridge, sandbox, sourcebridge
    from padlock.flows.leadership import Elector

    # Stopped by the caller's flag, or by losing the lease.
    stopping = asyncio.Event()
    lost = False
    election: LeaderElection | None = None
    client = KubeClient(connection)
    if election_flags is not None:
        def on_lost() -> None:
            nonlocal lost
            lost = True
            stopping.set()

        async def on_started() -> None:
            start_leading()

        election = LeaderElection(
            # A Lease request that hangs must not outlive the renew deadline unnoticed.
            LeaseStore(KubeClient(connection, timeout=election_flags.timing.renew_deadline / 2),
                       election_flags.namespace, election_flags.name),
            Elector(election_flags.identity, election_flags.timing), on_started=on_started, on_lost=on_lost)
        # Every write of the flows, the render loop and the caBundle keeper goes through the fence.
        client = FencedKubeClient(connection, election.fence)
    ctx = OperatorContext(
        options=options, runtime=runtime, connection=connection, client=client,
        cluster=KubeCluster(client, namespace=options.falco_namespace, configmap=options.configmap,
                            shards=options.rules_shards),
        # each new release is read first in a child with memory and CPU limits (flows.sandbox)
        sources=sandbox.SandboxedSources(sourcebridge.Sources(client, engine_version=options.engine_version)),
        core=corebridge.Core(options),
    )
    if election is not None:
        ctx.leading, ctx.elected = election.leading, True
    registry = build_registry()
    settings = kopf.OperatorSettings()
    configure(settings)
    made = _setup_webhook(settings, registry, ctx, webhook_flags) if webhook_flags is not None else None
    rulesource.register(registry, runtime.tick)
    watches.register(registry)
    # The tuner's alert intake (docs/tuner.md), when --tuner-port is given.
    from padlock.controllers import tuner as tuner_wiring
    tuner = tuner_wiring.setup(registry, ctx, tuner_flags) if tuner_flags is not None else None

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(
            server=connection.server, ca_path=connection.ca_path, token=connection.token,
            certificate_path=connection.cert_path, private_key_path=connection.key_path,
            insecure=not connection.verify, scheme="Bearer" if connection.token else None,
        )

    def start_leading() -> None:
        """The leader's work: renders and publishing, expiry wake-ups, the webhook's caBundle."""
        if election is not None:
            follower.forget(ctx)
        ctx.tasks.append(asyncio.create_task(render_loop.run(ctx), name="padlock-render-loop"))
        ctx.tasks.append(asyncio.create_task(expiry.wake_render_on_expiry(ctx), name="padlock-expiry"))
        if made is not None and webhook_flags is not None and webhook_flags.configuration:
            ctx.tasks.append(asyncio.create_task(
                webhook_wiring.keep_ca_bundle(ctx.client, webhook_flags.configuration, made.tls.ca_pem()),
                name="padlock-webhook-cabundle"))

    @kopf.on.startup(registry=registry)
    async def startup(**_: Any) -> None:
        await asyncio.to_thread(_prefill, ctx)
        if election is None:
            start_leading()
        else:
            # Only after the prefill: a new leader renders from the objects as the cluster holds them.
            ctx.tasks.append(asyncio.create_task(election.run(), name="padlock-leader-election"))
            ctx.tasks.append(asyncio.create_task(follower.mirror(ctx, max(runtime.tick, 0.5)),
                                                 name="padlock-follower-mirror"))
        if tuner is not None:
            await tuner.start()

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        for task in ctx.tasks:
            task.cancel()
        if election is not None and election.leading():
            await election.release()

    runner = await health.start(ctx)
    if runtime.metrics_addr:
        metrics.serve(runtime.metrics_addr)
    ready_flag: asyncio.Event = asyncio.Event()
    ctx.tasks.append(asyncio.create_task(_watch_ready(ctx, ready_flag)))
    if stop_flag is not None:
        ctx.tasks.append(asyncio.create_task(_relay(stop_flag, stopping)))
    try:
        # standalone: kopf's own peering stays off; leader election is ours (flows.leadership says why).
        await kopf.operator(
            registry=registry, settings=settings, clusterwide=True, standalone=True, memo=kopf.Memo(ctx=ctx),
            stop_flag=stopping, ready_flag=ready_flag,
        )
    finally:
        for task in ctx.tasks:
            task.cancel()
        if tuner is not None:
            await tuner.stop()
        await runner.cleanup()
    return lost


async def _relay(source: asyncio.Event, target: asyncio.Event) -> None:
    await source.wait()
    target.set()


async def _watch_ready(ctx: OperatorContext, flag: asyncio.Event) -> None:
    await flag.wait()
    ctx.started = True


def run_operator(options: OperatorOptions, runtime: RuntimeOptions, connection: Connection,
                 stop_flag: threading.Event | None = None, webhook_flags: WebhookFlags | None = None,
                 tuner_flags: TunerFlags | None = None, election_flags: ElectionFlags | None = None) -> None:
    """Run until stopped (SIGTERM, or ``stop_flag``); with ``webhook_flags``, serve the webhook too.

    With ``election_flags``, a replica that loses the leader Lease exits with status 1, so its
    Deployment restarts it as a follower with no state carried over."""
    async def main() -> bool:
        flag: asyncio.Event | None = None
        if stop_flag is not None:
            flag = asyncio.Event()
            loop = asyncio.get_running_loop()
            threading.Thread(target=lambda: (stop_flag.wait(), loop.call_soon_threadsafe(flag.set)),
                             daemon=True).start()
        return await _operate(options, runtime, connection, flag, webhook_flags, tuner_flags, election_flags)

    if asyncio.run(main()):
        raise SystemExit(1)
