"""Re-render when an exception's ``expiresAt`` passes, so it stops applying without any other change.

Started by ``padlock.controllers.run`` as a background task next to the render loop. The render itself
decides what has expired (``padlock.policy.exceptions_render`` with ``now``); this task only makes sure
a render happens soon after each expiry time, since nothing in the cluster changes at that moment.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from padlock.policy.policy_objects import parse_time

POLL_SECONDS = 1.0
"""How often the task looks at the clock: an expiry takes effect within about this long (+ debounce)."""


def expiry_times(exceptions: Iterable[Mapping[str, Any]], custom: Iterable[Mapping[str, Any]]) -> list[dt.datetime]:
    """Every ``expiresAt`` of (Cluster)PolicyExceptions and of CustomPolicy ``spec.exceptions[]``."""
    raw: list[Any] = [(e.get("spec") or {}).get("expiresAt") for e in exceptions]
    for policy in custom:
        for entry in (policy.get("spec") or {}).get("exceptions") or []:
            if isinstance(entry, Mapping):
                raw.append(entry.get("expiresAt"))
    return sorted(t for t in (parse_time(v) for v in raw if v) if t is not None)


def passed_between(times: Iterable[dt.datetime], since: dt.datetime, now: dt.datetime) -> bool:
    """True if some time is in ``(since, now]``: an exception expired since the last look."""
    return any(since < t <= now for t in times)


async def wake_render_on_expiry(ctx: Any, *, poll: float = POLL_SECONDS) -> None:
    """Ask ``ctx`` (``OperatorContext``) for a render whenever an expiry time passes; runs until cancelled."""
    since = ctx.now()
    while True:
        await asyncio.sleep(poll)
        now = ctx.now()
        state = ctx.state
        if passed_between(expiry_times(state.exceptions.values(), state.custom.values()), since, now):
            ctx.request_render()
        since = now
