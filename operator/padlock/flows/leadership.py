"""Leader election decisions over a coordination.k8s.io Lease: pure, driven by the caller's clocks.

Called by ``padlock.controllers.leader`` (which reads and writes the Lease through
``padlock.adapters.kube.lease``) once per retry period. It must not do I/O or read a clock itself, so
the unit tests drive it with a fake clock.

The rules are client-go's ``leaderelection`` package, re-stated:

* a Lease held by someone else expires ``leaseDurationSeconds`` after this replica last *saw it
  change* (its own monotonic clock; wall clocks of different nodes are never compared);
* the holder renews every retry period and counts itself leader only until ``renew_deadline``
  after the start of its last successful write. Since ``renew_deadline < lease_duration`` and the
  others start counting no earlier than that write, a replica that cannot renew stops writing (the
  fence in ``FencedKubeClient`` refuses) at least ``lease_duration - renew_deadline`` seconds before
  anyone else may take the lease;
* writes carry the Lease's resourceVersion, so of two replicas taking an expired lease one wins.

Why not kopf peering: kopf's peering (kopf/_core/engines/peering.py) pauses *all* processing of
lower-priority operators, including the watches that feed the webhook's view of the objects, has no
per-object lock, and lets same-priority peers run on with a warning. Padlock needs the opposite:
every replica watches and answers admission; exactly one writes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from dataclasses import dataclass
from typing import Literal

from padlock.adapters.kube.lease import LeaseRecord


class TimingError(ValueError):
    pass


@dataclass(frozen=True)
class Timing:
    """Seconds; client-go's defaults (15/10/2) and its constraints."""

    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not self.retry_period > 0:
            raise TimingError(f"leader election: retry period must be positive, got {self.retry_period}")
        if not self.renew_deadline > self.retry_period:
            raise TimingError(f"leader election: renew deadline ({self.renew_deadline}s) must be longer than "
                              f"the retry period ({self.retry_period}s), or a single slow renewal loses the lease")
        if not self.lease_duration > self.renew_deadline:
            raise TimingError(f"leader election: lease duration ({self.lease_duration}s) must be longer than the "
                              f"renew deadline ({self.renew_deadline}s): a leader that cannot renew must stop "
                              f"writing before another replica may take the lease")


Action = Literal["create", "renew", "take", "wait"]


@dataclass(frozen=True)
class Step:
    """What to do now: write ``record`` (create the Lease, renew it, take it over) or wait."""

    action: Action
    record: LeaseRecord | None = None
    holder: str = ""
    """The current holder (for logs), "" when none."""


class Elector:
    """One replica's view of the election. Feed it every observation; ask it whether it leads."""

    def __init__(self, identity: str, timing: Timing) -> None:
        if not identity:
            raise ValueError("leader election: the identity of this replica must not be empty")
        self.identity = identity
        self.timing = timing
        self._observed: LeaseRecord | None = None
        self._observed_at = -math.inf
        self._valid_until = -math.inf

    def _duration(self) -> int:
        return max(1, math.ceil(self.timing.lease_duration))

    def next_step(self, current: LeaseRecord | None, *, now: float, wall: dt.datetime) -> Step:
        """The step for the Lease as just read (``None``: absent); ``now`` is monotonic, ``wall`` UTC."""
        if current is None:
            return Step("create", LeaseRecord(holder=self.identity, duration_seconds=self._duration(),
                                              acquire_time=wall, renew_time=wall, transitions=0))
        if current != self._observed:
            self._observed, self._observed_at = current, now
        if current.holder == self.identity:
            return Step("renew", dataclasses.replace(current, renew_time=wall,
                                                     duration_seconds=self._duration()), holder=current.holder)
        # Someone else holds it (or held it): this replica is not the leader, whatever it thought.
        self._valid_until = -math.inf
        expired = now >= self._observed_at + max(current.duration_seconds, 1)
        if current.holder and not expired:
            return Step("wait", holder=current.holder)
        return Step("take", dataclasses.replace(
            current, holder=self.identity, duration_seconds=self._duration(), acquire_time=wall,
            renew_time=wall, transitions=current.transitions + 1), holder=current.holder)

    def written(self, step: Step, *, started: float) -> None:
        """``step``'s write succeeded; ``started`` is the monotonic time before the Lease was read."""
        if step.action in ("create", "renew", "take"):
            self._valid_until = started + self.timing.renew_deadline

    def leading(self, now: float) -> bool:
        """Whether this replica may write at monotonic time ``now``."""
        return now < self._valid_until

    def release(self, current: LeaseRecord, *, wall: dt.datetime) -> LeaseRecord | None:
        """The record that gives the lease up at shutdown (so a successor need not wait), or None."""
        if current.holder != self.identity:
            return None
        self._valid_until = -math.inf
        # client-go's ReleaseOnCancel: empty holder, a 1s duration, renewed now.
        return dataclasses.replace(current, holder="", duration_seconds=1, renew_time=wall)
