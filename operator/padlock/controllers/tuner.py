"""The tuner in the operator process: the alert intake, the suggestion watch and the writer task.

``setup(registry, ctx, flags)`` registers a kopf event handler for TuningSuggestions (the user's
decisions reach the tuner through it) and returns a ``TunerRuntime``; its ``start()`` (from the
operator's startup handler) reads the existing suggestions, starts the HTTPS intake and the background
task that, every ``interval`` seconds, refreshes the ruleset view from the last published render,
writes at most ``max_writes`` due suggestions, posts Events for Falco's feedback and, at most every
``condition_interval`` seconds and only when it changed (or once a minute to repair a status another
writer replaced), the ``FalcoLoaded`` condition on every RuleSource in the published ruleset, all in a
worker thread. The intake's handler never waits for any of it.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kopf

from padlock import metrics
from padlock.adapters.kube.resources import configmap_path
from padlock.api import kinds
from padlock.controllers import watches
from padlock.controllers.context import OperatorContext
from padlock.controllers.intake import Intake, IntakeOptions
from padlock.flows import falco_loaded
from padlock.flows.tuning import SuggestionWriter, ruleset_view, write_falco_loaded
from padlock.policy.tuning.feedback import RulesetView
from padlock.policy.tuning.suggest import PolicyRef, Tuner, TunerConfig

log = logging.getLogger("padlock.tuner")
CA_CONFIGMAP = kinds.TUNER_CA_CONFIGMAP
"""ConfigMap in the Falco namespace holding the intake's CA (key ca.crt), for Falco's http_output.ca_cert."""


@dataclass(frozen=True)
class TunerFlags:
    intake: IntakeOptions
    config: TunerConfig = field(default_factory=TunerConfig)
    samples: bool = True
    cluster_namespace: str = "padlock-system"
    interval: float = 1.0
    max_writes: int = 100
    reload_grace: float = 120.0
    """Seconds after a publish before Falco's alerts count as evidence about it (the kubelet's delay)."""
    condition_interval: float = 5.0
    """Least seconds between two writes of the FalcoLoaded condition."""
    condition_resync: float = 60.0


@dataclass
class TunerRuntime:
    ctx: OperatorContext
    flags: TunerFlags
    policies: dict[str, tuple[PolicyRef, ...]] = field(default_factory=dict)
    view: RulesetView | None = None
    runner: Any = None
    published: falco_loaded.Published | None = None
    _published: Any = None
    _restart_checked: bool = False

    def __post_init__(self) -> None:
        self.tuner = Tuner(self.flags.config, policies_for=lambda rule: self.policies.get(rule, ()))
        self.hosts = falco_loaded.HostTracker(grace=self.flags.reload_grace)
        self.gate = falco_loaded.WriteGate(self.flags.condition_interval, self.flags.condition_resync)
        self.intake = Intake(self.flags.intake, self.tuner, view=self.current_view,
                             published=self.current_published, hosts=self.hosts)
        self.writer = SuggestionWriter(
            self.ctx.client, self.tuner, cluster_namespace=self.flags.cluster_namespace, samples=self.flags.samples,
            falco_namespace=self.ctx.options.falco_namespace, configmap=self.ctx.options.configmap,
        )

    async def start(self) -> None:
        await asyncio.to_thread(self.writer.load)
        cert_dir = Path(self.flags.intake.cert_dir or tempfile.mkdtemp(prefix="padlock-tuner-tls-"))
        self.runner = await self.intake.start(cert_dir)
        log.info("tuner intake on https://%s:%d", self.flags.intake.addr, self.flags.intake.port)
        if self.intake.tls_files is not None:
            try:
                await asyncio.to_thread(self.publish_ca, self.intake.tls_files.ca_pem().decode())
            except Exception as exc:  # Falco can still be given the CA by hand (docs/tuner.md)
                log.warning("tuner CA not published to ConfigMap %s/%s: %s", self.ctx.options.falco_namespace,
                            CA_CONFIGMAP, exc)
        self.ctx.tasks.append(asyncio.create_task(self.run(), name="padlock-tuner"))

    def publish_ca(self, ca_pem: str) -> None:
        """Create or update the CA ConfigMap by name: the RBAC grants get/update on this one name
        and create confined by the lock policy, no patch (tuner-rbac.yaml)."""
        namespace = self.ctx.options.falco_namespace
        body: dict[str, Any] = {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": CA_CONFIGMAP, "namespace": namespace,
                         "labels": {"app.kubernetes.io/managed-by": "padlock"}},
            "data": {"ca.crt": ca_pem},
        }
        current = self.ctx.client.get_or_none(configmap_path(namespace, CA_CONFIGMAP))
        if current is None:
            self.ctx.client.create(configmap_path(namespace), body)
        elif (current.get("data") or {}) != body["data"]:
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            self.ctx.client.replace(configmap_path(namespace, CA_CONFIGMAP), body)

    def current_view(self) -> RulesetView | None:
        """The view of the ruleset published now (recomputed only when a new one was published)."""
        self.refresh_view()
        return self.view

    def current_published(self) -> falco_loaded.Published | None:
        self.refresh_view()
        return self.published

    def refresh_view(self) -> None:
        published = self.ctx.state.last_published
        if published is self._published:
            return
        self._published = published
        before = self.view
        self.policies, self.view = ruleset_view(published, self.ctx.state.managed, self.ctx.state.custom)
        content_hash = str(getattr(published, "content_hash", "") or "")
        if not content_hash:
            self.published = None
        elif self.published is None or self.published.content_hash != content_hash:
            # A re-render with the same content is no new publish: Falco has nothing new to reload.
            started = self.view.running - before.running if before is not None and self.published else frozenset()
            self.published = falco_loaded.Published(content_hash, self.view.running, self.view.known,
                                                    frozenset(started), time.time())

    async def write_condition(self) -> None:
        """``FalcoLoaded`` on the published RuleSources, when due and changed (never per alert)."""
        now = time.monotonic()
        cond = falco_loaded.condition(self.hosts, self.published)
        sources = tuple(getattr(self._published, "sources", ()) or ())
        if cond is None and sources and not self._restart_checked:
            self._restart_checked = True
            for name in sources:
                said = falco_loaded.after_restart(
                    ((self.ctx.state.sources.get(name) or {}).get("status") or {}).get("conditions"))
                if said is not None:
                    await asyncio.to_thread(write_falco_loaded, self.ctx.client, (name,), said, self.ctx.now())
        if cond is None or not self.gate.due(cond, sources, now):
            return
        await asyncio.to_thread(write_falco_loaded, self.ctx.client, sources, cond, self.ctx.now())
        self.gate.written(cond, sources, now)

    async def step(self) -> None:
        self.refresh_view()
        due = self.tuner.due(time.time(), limit=self.flags.max_writes)
        if due:
            await asyncio.to_thread(self.writer.write, due)
        feedback = self.intake.take_feedback()
        if feedback:
            await asyncio.to_thread(self.writer.report, feedback)
        await self.write_condition()
        metrics.TUNER_SUGGESTIONS_OPEN.set(self.writer.open_count())
        metrics.TUNER_TRACKED.set(self.tuner.tracked)

    async def run(self) -> None:
        while True:
            try:
                await self.step()
            except asyncio.CancelledError:
                raise
            except Exception:  # one failed round must not stop the tuner; the next one retries
                log.exception("tuner round failed")
            await asyncio.sleep(self.flags.interval)

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


def setup(registry: kopf.OperatorRegistry, ctx: OperatorContext, flags: TunerFlags) -> TunerRuntime:
    runtime = TunerRuntime(ctx, flags)
    kind = kinds.BY_KIND["TuningSuggestion"]

    @kopf.on.event(kind.group, kind.version, kind.plural, registry=registry)
    async def on_suggestion(type: str, body: kopf.Body, **_: Any) -> None:
        runtime.writer.observe(watches.plain(body, kind.kind), deleted=type == "DELETED")

    return runtime
