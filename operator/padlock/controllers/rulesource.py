"""RuleSource handlers: one idempotent reconcile (create/update/resume) and a timer for due checks.

kopf stores its progress and diff base in annotations (``padlock.dev/...``), never in ``status``, so the
status written by the flow is the only status. Both handlers end in the same flow,
``padlock.flows.sync_source.sync``, under the source's lock and the publish lock.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from padlock import metrics
from padlock.adapters.kube.resources import RULE_SOURCE
from padlock.api import kinds
from padlock.controllers.context import OperatorContext
from padlock.flows import durations, statuses, sync_source
from padlock.flows.conditions import Cond

GROUP, VERSION, PLURAL = kinds.RULE_SOURCE.group, kinds.RULE_SOURCE.version, kinds.RULE_SOURCE.plural
log = logging.getLogger("padlock.sync")


def _plain(body: Any) -> dict[str, Any]:
    obj = {k: dict(v) if hasattr(v, "items") else v for k, v in body.items()}
    obj.setdefault("apiVersion", f"{GROUP}/{VERSION}")
    obj.setdefault("kind", "RuleSource")
    return obj


def _copy(body: Any) -> dict[str, Any]:
    import copy
    return copy.deepcopy(_plain(body))


async def sync_now(ctx: OperatorContext, body: dict[str, Any], logger: logging.Logger | logging.LoggerAdapter[Any]) -> None:
    name = body["metadata"]["name"]
    spec = body.get("spec") or {}
    try:
        interval = durations.parse_duration(str(spec.get("interval", "1h")))
    except durations.DurationError as exc:
        await _invalid_spec(ctx, body, str(exc))
        return
    ctx.next_check[name] = ctx.monotonic() + interval
    async with ctx.lock_for(name), ctx.publish_lock:
        # kopf's body can predate our own last status write (timer and reconcile fire close together);
        # decide on the stored object so a version is never adopted twice.
        fresh = await asyncio.to_thread(ctx.client.get_or_none, RULE_SOURCE.path(name))
        if fresh is None:
            return
        body = {**fresh, "apiVersion": f"{GROUP}/{VERSION}", "kind": "RuleSource"}
        ctx.state.upsert(body)
        snapshot = ctx.state.snapshot()
        started = ctx.monotonic()
        try:
            outcome = await asyncio.to_thread(
                sync_source.sync, body, snapshot, dict(ctx.state.choices), sources=ctx.sources, core=ctx.core,
                cluster=ctx.cluster, options=ctx.options, now=ctx.now(), previous=ctx.state.last_render,
                refused=ctx.refused.get(name), frozen=ctx.state.frozen,
            )
        except Exception:
            metrics.SYNCS.labels(name, "error").inc()
            ctx.state.synced.add(name)
            raise
        finally:
            metrics.SYNC_DURATION.labels(name).observe(ctx.monotonic() - started)
        metrics.SYNCS.labels(name, outcome.result).inc()
        if outcome.bundle is not None and name in ctx.state.sources:
            recovered = name not in ctx.state.bundles
            ctx.state.bundles[name] = outcome.bundle
            ctx.state.changes += 1
            metrics.set_source_version(name, outcome.bundle.version, outcome.bundle.digest)
            if recovered and outcome.result != "adopted":
                ctx.request_render()  # same inputs as before the restart: the publisher skips the write
        if outcome.refusal is not None:
            ctx.refused[name] = outcome.refusal
        elif outcome.result == "adopted":
            ctx.refused.pop(name, None)
            # Releases refused against the previous rules of this source may validate now: check
            # them at the next tick instead of a whole interval later.
            for other in ctx.refused:
                ctx.next_check[other] = 0.0
        if outcome.rendered is not None:
            ctx.state.last_render = outcome.rendered
            ctx.state.last_published = outcome.rendered
        ctx.state.synced.add(name)
    log.info("RuleSource %s: sync %s", name, outcome.result, extra={"object": f"RuleSource/{name}"})


async def _invalid_spec(ctx: OperatorContext, body: dict[str, Any], message: str) -> None:
    name = body["metadata"]["name"]
    gen = body["metadata"].get("generation")
    msg = f"RuleSource {name}: {message}"
    status = statuses.rule_source(body.get("status") or {}, [
        Cond("Ready", False, "InvalidSpec", msg), Cond("Degraded", True, "InvalidSpec", msg),
    ], generation=gen, now=ctx.now())
    await asyncio.to_thread(ctx.cluster.write_status, "RuleSource", name, status)
    ctx.state.synced.add(name)


def register(registry: kopf.OperatorRegistry, tick: float) -> None:
    @kopf.on.resume(GROUP, VERSION, PLURAL, id="rulesource.reconcile", registry=registry)
    @kopf.on.create(GROUP, VERSION, PLURAL, id="rulesource.reconcile", registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, id="rulesource.reconcile", registry=registry)
    async def reconcile(body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
        await sync_now(memo.ctx, _copy(body), logger)

    @kopf.timer(GROUP, VERSION, PLURAL, id="rulesource.poll", interval=tick, registry=registry)
    async def poll(body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
        ctx: OperatorContext = memo.ctx
        name = body["metadata"]["name"]
        due = ctx.next_check.get(name)
        if due is not None and ctx.monotonic() < due:
            return
        await sync_now(ctx, _copy(body), logger)

    @kopf.on.event(GROUP, VERSION, PLURAL, id="rulesource.track", registry=registry)
    async def track(type: str, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        ctx: OperatorContext = memo.ctx
        if type == "DELETED":
            ctx.state.remove(_copy(body))
            ctx.next_check.pop(body["metadata"]["name"], None)
            ctx.request_render()
