"""What a follower (``--leader-election``, not holding the Lease) keeps current: the adopted rules.

Started by ``padlock.controllers.run`` on every elected replica. The admission webhook judges
CustomPolicies and exceptions against the upstream rules the RuleSources adopted; a follower never
syncs, so it reads each source's current version (``status.currentDigest``, written by the leader)
back, read only, exactly as a restarted operator recovers it (``sync_source.recover_current``), and
all replicas answer admission alike. It must not write anything: the fenced client would refuse.

On becoming leader (``forget``), the mirrored bundles and first-sync marks are dropped, so the new
leader starts like a restarted operator: every source is synced from the cluster before the first
render, and a mirror that lagged behind the last leader can never be published.
"""

from __future__ import annotations

import asyncio
import logging

from padlock.controllers.context import OperatorContext
from padlock.flows import sync_source

log = logging.getLogger("padlock.follower")


def _digest(source: dict[str, object]) -> str:
    status = source.get("status")
    return str(status.get("currentDigest") or "") if isinstance(status, dict) else ""


async def mirror_once(ctx: OperatorContext) -> int:
    """Bring every source's bundle to its current digest; returns how many changed."""
    changed = 0
    for name, source in list(ctx.state.sources.items()):
        if ctx.leading():
            return changed  # the leader's syncs own the bundles now
        digest = _digest(source)
        held = ctx.state.bundles.get(name)
        if not digest:
            ctx.state.synced.add(name)  # nothing adopted yet: nothing to wait for
            continue
        if held is not None and getattr(held, "digest", None) == digest:
            continue
        bundle = await asyncio.to_thread(sync_source.recover_current, source, ctx.sources, ctx.core, ctx.cluster)
        if bundle is None or ctx.leading() or name not in ctx.state.sources:
            continue
        ctx.state.bundles[name] = bundle
        ctx.state.synced.add(name)
        ctx.state.changes += 1
        changed += 1
        log.info("RuleSource %s: follower holds version %s (%s) for admission", name,
                 getattr(bundle, "version", "?"), digest[:19])
    return changed


async def mirror(ctx: OperatorContext, interval: float) -> None:
    """Until cancelled, or until this replica leads."""
    while not ctx.leading():
        try:
            await mirror_once(ctx)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the next round retries; admission meanwhile says "still loading"
            log.warning("follower: cannot read the adopted rules back: %s", exc)
        await asyncio.sleep(interval)


def forget(ctx: OperatorContext) -> None:
    """Drop what the follower mirrored, before the new leader's first sync (see the module docstring)."""
    ctx.state.bundles.clear()
    ctx.state.synced.clear()
    ctx.state.changes += 1
