"""The render loop: one background task that renders and publishes after changes (debounced) and
checks every ``drift_interval`` that the published ConfigMaps still hold what was published.

Waits for readiness (every RuleSource recovered or synced after startup) before its first render, so
a restart never publishes a ruleset that lacks the upstream files. Renders run in a worker thread
under the publish lock, the same lock an adoption holds.
"""

from __future__ import annotations

import asyncio
import logging

from padlock import metrics
from padlock.controllers.context import OperatorContext
from padlock.flows import publishing

log = logging.getLogger("padlock.render")


async def render_once(ctx: OperatorContext) -> None:
    async with ctx.publish_lock:
        snapshot = ctx.state.snapshot()
        outcome = await asyncio.to_thread(
            publishing.render_and_publish, snapshot, dict(ctx.state.choices), core=ctx.core, cluster=ctx.cluster,
            options=ctx.options, now=ctx.now(), previous=ctx.state.last_render, frozen=ctx.state.frozen,
        )
        ctx.state.last_render = outcome.rendered
        metrics.RENDERS.labels("publishable" if outcome.rendered.publishable else "invalid").inc()
        if outcome.published:
            ctx.state.last_published = outcome.rendered
            for name in outcome.written:
                metrics.PUBLISH_WRITES.labels("written").inc()
                log.info("published ConfigMap %s/%s (%s)", ctx.options.falco_namespace, name,
                         outcome.rendered.content_hash)
        else:
            log.warning("effective ruleset does not validate; the last good one stays published: %s",
                        "; ".join(outcome.rendered.all_errors()[:5]))
        for name in outcome.recreated:
            log.warning("ManagedPolicy %s had disappeared; recreated with the user's choices", name)


async def _drifted(ctx: OperatorContext) -> bool:
    published = ctx.state.last_published
    if published is None:
        return False
    stored = {cm["metadata"]["name"]: cm for cm in await asyncio.to_thread(ctx.cluster.published)}
    for content in published.configmaps:
        cm = stored.get(content.name)
        # immutable: set while the lock was off; the next publish replaces it (adapters.kube.publish).
        if cm is None or cm.get("immutable") is True or (cm.get("data") or {}) != dict(content.data):
            return True
    return len(stored) != len(published.configmaps)


async def run(ctx: OperatorContext) -> None:
    while not ctx.state.ready:
        await asyncio.sleep(0.1)
    ctx.request_render()
    while True:
        try:
            await asyncio.wait_for(ctx.render_wanted.wait(), timeout=ctx.runtime.drift_interval)
        except TimeoutError:
            try:
                if not await _drifted(ctx):
                    continue
                log.warning("published ConfigMaps were changed by someone else; re-rendering")
            except Exception as exc:
                log.warning("drift check failed: %s", exc)
                continue
        await asyncio.sleep(ctx.runtime.debounce)
        ctx.render_wanted.clear()
        if not ctx.state.ready or ctx.state.missing:
            continue  # never publish less than before: a source's restore brings a new request
        try:
            await render_once(ctx)
        except Exception:
            metrics.RENDERS.labels("error").inc()
            log.exception("render failed; retrying")
            await asyncio.sleep(1.0)
            ctx.request_render()
