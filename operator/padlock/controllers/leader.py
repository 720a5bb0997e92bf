"""The leader election loop of ``padlock operator --leader-election`` (docs/design.md, "High availability").

Started by ``padlock.controllers.run``. Every replica runs the kopf watches, the admission webhook
and /healthz; only the leader runs the RuleSource syncs, the render loop (managed-policy writes and
publishing) and the caBundle keeper. ``on_started`` starts those; a leader that loses the lease calls
``on_lost``, which stops the process (as client-go's users do): the fence has already refused its
writes since its renew deadline, and a restart as a follower leaves no in-memory state behind. A new
leader starts like a restarted operator: from what the cluster holds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from padlock import metrics
from padlock.adapters.kube.lease import LeaseStore, NotLeader
from padlock.flows.leadership import Elector, Step, Timing

log = logging.getLogger("padlock.leader")


@dataclass(frozen=True)
class ElectionFlags:
    """``padlock operator --leader-election``: which Lease, who this replica is, and the timings."""

    namespace: str
    identity: str
    name: str = "padlock-operator"
    timing: Timing = field(default_factory=Timing)


class LeaderElection:
    def __init__(self, store: LeaseStore, elector: Elector, *, on_started: Callable[[], Awaitable[None]],
                 on_lost: Callable[[], None], clock: Callable[[], float] = time.monotonic) -> None:
        self.store, self.elector = store, elector
        self.on_started, self.on_lost, self.clock = on_started, on_lost, clock
        self.was_leading = False
        self._last_problem: str | None = None

    def leading(self) -> bool:
        return self.elector.leading(self.clock())

    def fence(self) -> None:
        """Raise ``NotLeader`` unless this replica holds the lease now (``FencedKubeClient``'s check)."""
        if not self.leading():
            raise NotLeader(f"{self.elector.identity} does not hold Lease {self.store.namespace}/{self.store.name}; "
                            "only the leader writes")

    async def _attempt(self) -> Step:
        started = self.clock()
        current = await asyncio.to_thread(self.store.get)
        step = self.elector.next_step(current, now=started, wall=dt.datetime.now(dt.UTC))
        if step.record is not None:
            write = self.store.create if step.action == "create" else self.store.update
            if await asyncio.to_thread(write, step.record):
                self.elector.written(step, started=started)
        return step

    async def run(self) -> None:
        """Until cancelled, or until leadership is lost (then ``on_lost`` and return)."""
        while True:
            try:
                step = await self._attempt()
                if self._last_problem is not None:
                    log.info("leader election: Lease %s/%s reachable again", self.store.namespace, self.store.name)
                self._last_problem = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                step = Step("wait")
                if str(exc) != self._last_problem:
                    log.warning("leader election: cannot read or write Lease %s/%s: %s",
                                self.store.namespace, self.store.name, exc)
                    self._last_problem = str(exc)
            leading = self.leading()
            if leading and not self.was_leading:
                self.was_leading = True
                metrics.LEADER.set(1)
                log.info("leader election: %s leads (took Lease %s/%s from %s)", self.elector.identity,
                         self.store.namespace, self.store.name, step.holder or "nobody")
                await self.on_started()
            elif self.was_leading and not leading:
                metrics.LEADER.set(0)
                log.error("leader election: %s lost Lease %s/%s (holder now %s); stopping", self.elector.identity,
                          self.store.namespace, self.store.name, step.holder or "unknown")
                self.on_lost()
                return
            await asyncio.sleep(self.elector.timing.retry_period)

    async def release(self) -> None:
        """Give the lease up at a clean shutdown, so the next leader need not wait for it to expire."""
        try:
            current = await asyncio.to_thread(self.store.get)
            record = None if current is None else self.elector.release(current, wall=dt.datetime.now(dt.UTC))
            if record is not None and await asyncio.to_thread(self.store.update, record):
                log.info("leader election: %s released Lease %s/%s", self.elector.identity,
                         self.store.namespace, self.store.name)
        except Exception as exc:  # the lease then expires on its own
            log.warning("leader election: cannot release the Lease: %s", exc)
