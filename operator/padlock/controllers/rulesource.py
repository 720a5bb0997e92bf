"""RuleSource handlers: one idempotent reconcile (create/update/resume) and a timer for due checks.

kopf stores its progress and diff base in annotations (``padlock.dev/...``), never in ``status``, so the
status written by the flow is the only status. Both handlers end in the same flow,
``padlock.flows.sync_source.sync``, under the source's lock; the publish lock is taken only for the
render and publish of a downloaded release. A sync never raises out of here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import kopf

from padlock import metrics
from padlock.adapters.kube.resources import RULE_SOURCE
from padlock.api import kinds
from padlock.controllers.context import OperatorContext
from padlock.flows import durations, statuses, sync_source
from padlock.flows.conditions import Cond
from padlock.flows.state import Snapshot

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


#: Annotation holding the release being validated and how many attempts on it started
#: (``"<digest> <count>"``), written before the attempt and removed after it: if the process dies on
#: a release, the next start sees the mark and, after ``sync_source.POISON_AFTER`` deaths, refuses
#: the release instead of dying on it again (crash-only).
ATTEMPT_ANNOTATION = "padlock.dev/validating"


def _attempts(ctx: OperatorContext, name: str, body: dict[str, Any]) -> sync_source.Attempts:
    def mark(digest: str) -> int:
        value = str(((body.get("metadata") or {}).get("annotations") or {}).get(ATTEMPT_ANNOTATION) or "")
        seen, _, count = value.partition(" ")
        died = int(count) if seen == digest and count.isdigit() else 0
        try:
            ctx.client.merge_patch(RULE_SOURCE.path(name),
                                   {"metadata": {"annotations": {ATTEMPT_ANNOTATION: f"{digest} {died + 1}"}}})
        except Exception as exc:  # no mark: a crash on this release would be retried, nothing worse
            log.warning("RuleSource %s: cannot write %s: %s", name, ATTEMPT_ANNOTATION, exc)
        return died
    return mark


def _clear_attempt(ctx: OperatorContext, name: str) -> None:
    try:
        ctx.client.merge_patch(RULE_SOURCE.path(name),
                               {"metadata": {"annotations": {ATTEMPT_ANNOTATION: None}}})
    except Exception as exc:  # the next attempt overwrites it; a stale mark only counts one death too many
        log.warning("RuleSource %s: cannot clear %s: %s", name, ATTEMPT_ANNOTATION, exc)


class _Gate:
    """``sync_source.PublishGate`` over the operator's asyncio publish lock, used from the sync's thread."""

    def __init__(self, ctx: OperatorContext, name: str, loop: asyncio.AbstractEventLoop) -> None:
        self.ctx, self.name, self.loop = ctx, name, loop

    def _on_loop(self, fn: Any) -> Any:
        async def run() -> Any:
            return fn()
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result()

    @contextlib.contextmanager
    def hold(self) -> Iterator[tuple[Snapshot, Any]]:
        asyncio.run_coroutine_threadsafe(self.ctx.publish_lock.acquire(), self.loop).result()
        try:
            yield self._on_loop(lambda: (self.ctx.state.snapshot(), self.ctx.state.last_render))
        finally:
            self.loop.call_soon_threadsafe(self.ctx.publish_lock.release)

    def apply(self, outcome: sync_source.SyncOutcome) -> None:
        self._on_loop(lambda: _apply(self.ctx, self.name, outcome))


def _apply(ctx: OperatorContext, name: str, outcome: sync_source.SyncOutcome) -> None:
    """Record a sync's outcome in the operator's state (on the event loop, under the publish lock
    when the outcome published)."""
    for other, bundle in outcome.restored.items():
        if other in ctx.state.sources and other not in ctx.state.bundles:
            ctx.state.bundles[other] = bundle
            ctx.state.changes += 1
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
    if outcome.result == "waiting_sources":
        ctx.next_check[name] = 0.0  # try again at the next tick: the other source is being restored
    if outcome.rendered is not None:
        ctx.state.last_render = outcome.rendered
        ctx.state.last_published = outcome.rendered


async def sync_now(ctx: OperatorContext, body: dict[str, Any], logger: logging.Logger | logging.LoggerAdapter[Any]) -> None:
    """One sync of one RuleSource. Never raises: whatever fails becomes a status, an Event and a
    metric, and the source is checked again at its next tick.

    Only the source's own lock is held while checking and downloading; the publish lock is taken
    (through ``_Gate``) just for the render and publish, so a slow server never delays another
    source's adoption or a policy render.
    """
    if not ctx.leading():
        # Followers leave every source due: the one that takes the lease syncs them all at once.
        return
    name = body["metadata"]["name"]
    spec = body.get("spec") or {}
    try:
        interval = durations.parse_duration(str(spec.get("interval", "1h")))
    except durations.DurationError as exc:
        await _invalid_spec(ctx, body, str(exc))
        return
    ctx.next_check[name] = ctx.monotonic() + interval
    result = "error"
    async with ctx.lock_for(name):
        started = ctx.monotonic()
        attempted: str | None = None
        try:
            # kopf's body can predate our own last status write (timer and reconcile fire close
            # together); decide on the stored object so a version is never adopted twice.
            fresh = await asyncio.to_thread(ctx.client.get_or_none, RULE_SOURCE.path(name))
            if fresh is None:
                result = "deleted"
                return
            body = {**fresh, "apiVersion": f"{GROUP}/{VERSION}", "kind": "RuleSource"}
            ctx.state.upsert(body)
            gate = _Gate(ctx, name, asyncio.get_running_loop())
            outcome = await asyncio.to_thread(
                sync_source.sync, body, ctx.state.snapshot(), dict(ctx.state.choices), sources=ctx.sources,
                core=ctx.core, cluster=ctx.cluster, options=ctx.options, now=ctx.now(),
                previous=ctx.state.last_render, refused=ctx.refused.get(name), frozen=ctx.state.frozen,
                attempts=_attempts(ctx, name, body), gate=gate,
            )
            attempted = outcome.attempted
            result = outcome.result
            if not outcome.applied:
                _apply(ctx, name, outcome)
        except Exception as exc:
            log.exception("RuleSource %s: sync failed", name, extra={"object": f"RuleSource/{name}"})
            await _sync_failed(ctx, body, exc)
            attempted = attempted or "unknown"
        finally:
            metrics.SYNC_DURATION.labels(name).observe(ctx.monotonic() - started)
            metrics.SYNCS.labels(name, result).inc()
            if name not in ctx.state.synced:
                ctx.state.synced.add(name)
                ctx.state.changes += 1  # the webhook's view is cached by this count: now it is complete
            if attempted is not None:
                await asyncio.to_thread(_clear_attempt, ctx, name)
    log.info("RuleSource %s: sync %s", name, result, extra={"object": f"RuleSource/{name}"})


async def _sync_failed(ctx: OperatorContext, body: dict[str, Any], exc: Exception) -> None:
    """A sync that failed outside the release's verdict (the API server refused a write, say): say so
    on the RuleSource, once per distinct problem, and keep what runs. Best effort: the API server may
    be what failed."""
    name = body["metadata"]["name"]
    detail = str(exc).splitlines()[0][:300] if str(exc) else ""
    msg = f"RuleSource {name}: sync failed, will retry at the next check: {type(exc).__name__}{': ' if detail else ''}{detail}"
    old = body.get("status") or {}
    before = next((c.get("message") for c in old.get("conditions") or () if c.get("type") == "Degraded"), None)
    status = statuses.rule_source(dict(old), [
        Cond("Degraded", True, "SyncFailed", msg),
    ], generation=body["metadata"].get("generation"), now=ctx.now())
    try:
        await asyncio.to_thread(ctx.cluster.write_status, "RuleSource", name, status)
        if before != msg:
            await asyncio.to_thread(lambda: ctx.cluster.event(body, "SyncFailed", msg, warning=True))
    except Exception as write_exc:
        log.warning("RuleSource %s: cannot record the failed sync: %s", name, write_exc)
    ctx.next_check[name] = min(ctx.next_check.get(name, 0.0), ctx.monotonic() + 5.0)


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
    # Only spec changes: the operator's own annotations (ATTEMPT_ANNOTATION) must not trigger a sync.
    @kopf.on.update(GROUP, VERSION, PLURAL, id="rulesource.reconcile", registry=registry, field="spec")
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
        elif not ctx.leading():
            # A follower keeps the sources as the leader writes them (status.currentDigest) for
            # admission (controllers.follower); the leader reads them fresh in every sync.
            ctx.state.upsert(_copy(body))
