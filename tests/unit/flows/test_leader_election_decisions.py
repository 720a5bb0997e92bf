"""Leader election decisions (padlock.flows.leadership) driven by a fake clock, and the loop around them.

Covers: the Lease is created when absent; the holder renews and leads only until its renew deadline
after the start of its last successful write; another replica takes the lease only a full lease
duration after it last saw the record change (its own clock), never earlier; a released lease (empty
holder) is taken at once; a replica that sees someone else's name stops leading at once; a leader
that cannot renew stops leading before any other replica may take the lease, for every timing the
flags accept; bad timings are refused naming the constraint; release gives up only one's own lease;
``LeaderElection`` starts the leader's work once, calls ``on_lost`` when the renewals fail, and the
``FencedKubeClient`` refuses writes (but not reads) while not leading; Lease records round-trip
through the API representation.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt

import pytest

from padlock.adapters.kube import lease as lease_io
from padlock.adapters.kube.client import Connection
from padlock.adapters.kube.lease import FencedKubeClient, LeaseRecord, NotLeader
from padlock.controllers.leader import LeaderElection
from padlock.flows.leadership import Elector, Timing, TimingError

T = Timing(lease_duration=15, renew_deadline=10, retry_period=2)
WALL = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def held_by(holder: str, rv: str = "1", transitions: int = 0) -> LeaseRecord:
    return LeaseRecord(holder=holder, duration_seconds=15, acquire_time=WALL, renew_time=WALL,
                       transitions=transitions, resource_version=rv)


def test_an_absent_lease_is_created_naming_this_replica() -> None:
    step = Elector("a", T).next_step(None, now=0.0, wall=WALL)
    assert step.action == "create"
    assert step.record is not None and step.record.holder == "a" and step.record.duration_seconds == 15


def test_the_holder_leads_until_its_renew_deadline_after_the_last_successful_write() -> None:
    e = Elector("a", T)
    step = e.next_step(held_by("a"), now=100.0, wall=WALL)
    assert step.action == "renew"
    assert not e.leading(100.0)  # nothing written yet
    e.written(step, started=100.0)
    assert e.leading(109.9)
    assert not e.leading(110.0)


def test_another_replica_waits_a_full_lease_duration_after_it_last_saw_a_change() -> None:
    b = Elector("b", T)
    assert b.next_step(held_by("a", "1"), now=0.0, wall=WALL).action == "wait"
    assert b.next_step(held_by("a", "2"), now=10.0, wall=WALL).action == "wait"  # renewed at 10
    assert b.next_step(held_by("a", "2"), now=24.9, wall=WALL).action == "wait"
    step = b.next_step(held_by("a", "2", transitions=3), now=25.0, wall=WALL)
    # a changed record (transitions) restarts the count; the same record for 15s is expired
    assert step.action == "wait"
    step = b.next_step(held_by("a", "2", transitions=3), now=40.0, wall=WALL)
    assert step.action == "take"
    assert step.record is not None
    assert (step.record.holder, step.record.transitions, step.record.resource_version) == ("b", 4, "2")
    assert step.holder == "a"


def test_a_released_lease_is_taken_at_once() -> None:
    b = Elector("b", T)
    released = dataclasses.replace(held_by(""), duration_seconds=1)
    assert b.next_step(released, now=0.0, wall=WALL).action == "take"


def test_a_replica_that_sees_another_holder_stops_leading_at_once() -> None:
    a = Elector("a", T)
    step = a.next_step(held_by("a"), now=0.0, wall=WALL)
    a.written(step, started=0.0)
    assert a.leading(1.0)
    assert a.next_step(held_by("b", "9"), now=2.0, wall=WALL).action == "wait"
    assert not a.leading(2.0)


@pytest.mark.parametrize("timing", [Timing(15, 10, 2), Timing(4, 3, 1), Timing(60, 59, 0.5)])
def test_a_leader_that_cannot_renew_stops_before_anyone_may_take_the_lease(timing: Timing) -> None:
    """The leader's last write starts at 0; the other replica sees it no earlier than 0."""
    a, b = Elector("a", timing), Elector("b", timing)
    rec = dataclasses.replace(held_by("a"), duration_seconds=int(timing.lease_duration))
    a.written(a.next_step(rec, now=0.0, wall=WALL), started=0.0)
    t, first_take = 0.0, None
    while t < 3 * timing.lease_duration:
        if b.next_step(rec, now=t, wall=WALL).action == "take" and first_take is None:
            first_take = t
        t += timing.retry_period / 4
    last_lead = max(x / 100 for x in range(0, int(300 * timing.lease_duration)) if a.leading(x / 100))
    assert first_take is not None
    assert last_lead < first_take


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"lease_duration": 10, "renew_deadline": 10}, "lease duration (10s) must be longer than the renew deadline"),
    ({"renew_deadline": 2, "retry_period": 2}, "renew deadline (2s) must be longer than the retry period"),
    ({"retry_period": 0}, "retry period must be positive"),
])
def test_timings_that_break_the_fencing_are_refused_naming_the_rule(kwargs: dict[str, float], words: str) -> None:
    with pytest.raises(TimingError, match=words.replace("(", r"\(").replace(")", r"\)")):
        Timing(**kwargs)


def test_release_gives_up_only_this_replicas_lease() -> None:
    a = Elector("a", T)
    a.written(a.next_step(held_by("a"), now=0.0, wall=WALL), started=0.0)
    assert a.release(held_by("b"), wall=WALL) is None
    released = a.release(held_by("a"), wall=WALL)
    assert released is not None and released.holder == "" and released.duration_seconds == 1
    assert not a.leading(0.5)


def test_lease_records_round_trip_through_the_api_representation() -> None:
    rec = LeaseRecord(holder="a", duration_seconds=15, acquire_time=WALL,
                      renew_time=WALL + dt.timedelta(microseconds=123456), transitions=2, resource_version="7")
    body = lease_io.lease_body("ns", "padlock-operator", rec)
    assert body["spec"]["renewTime"] == "2026-01-01T00:00:00.123456Z"
    assert lease_io.record_of(body) == rec


class FakeStore:
    namespace, name = "ns", "lease"

    def __init__(self) -> None:
        self.record: LeaseRecord | None = None
        self.fail = False
        self.version = 0

    def get(self) -> LeaseRecord | None:
        if self.fail:
            raise OSError("API server away")
        return self.record

    def _write(self, record: LeaseRecord) -> bool:
        if self.fail:
            raise OSError("API server away")
        self.version += 1
        self.record = dataclasses.replace(record, resource_version=str(self.version))
        return True

    create = update = _write


def test_the_loop_starts_the_leaders_work_once_and_stops_when_renewals_fail() -> None:
    clock = [0.0]
    store = FakeStore()
    started: list[int] = []
    lost: list[int] = []

    async def on_started() -> None:
        started.append(1)

    timing = Timing(lease_duration=0.3, renew_deadline=0.2, retry_period=0.05)
    election = LeaderElection(store, Elector("a", timing), on_started=on_started,  # type: ignore[arg-type]
                              on_lost=lambda: lost.append(1), clock=lambda: clock[0])

    async def scenario() -> None:
        task = asyncio.create_task(election.run())
        for _ in range(5):
            await asyncio.sleep(0.06)
            clock[0] += 0.05
        assert election.leading() and started == [1]
        store.fail = True
        for _ in range(10):
            await asyncio.sleep(0.06)
            clock[0] += 0.05
        await asyncio.wait_for(task, timeout=5)

    asyncio.run(scenario())
    assert started == [1]
    assert lost == [1]
    assert not election.leading()
    with pytest.raises(NotLeader, match="does not hold Lease ns/lease"):
        election.fence()


def test_the_fenced_client_refuses_writes_but_not_reads_while_not_leading(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr("padlock.adapters.kube.client.KubeClient.request",
                        lambda self, method, path, **kw: calls.append(method) or {})
    leading = [False]

    def fence() -> None:
        if not leading[0]:
            raise NotLeader("not the leader")

    client = FencedKubeClient(Connection(server="https://127.0.0.1:1", ca_path=None, token=None, cert_path=None,
                                         key_path=None, verify=False), fence)
    client.get("/api/v1/namespaces")
    for write in (lambda: client.create("/x", {}), lambda: client.replace("/x", {}),
                  lambda: client.merge_patch("/x", {}), lambda: client.delete("/x")):
        with pytest.raises(NotLeader):
            write()
    leading[0] = True
    client.merge_patch("/x", {})
    assert calls == ["GET", "PATCH"]

