"""``padlock.flows.sync_source.sync`` facing releases that crash the core, kill the process, or arrive
while another source is not restored yet, with fakes of every port.

Covers: a core that raises (RecursionError, MemoryError, any bug) on a release gives a refusal with a
message a user can act on and one Event, nothing published; polling the same refusal again sends no
second Event; a release the process died on ``POISON_AFTER`` times is refused without being pulled;
a refusal is not reused once the spec points elsewhere (a changed URL with the same pinned sha256);
an early refusal (at the cheap check) gets one Event naming the source once; and an adoption never
publishes without a source that published before: it restores that source first, or waits.
"""

from __future__ import annotations

from typing import Any

from flow_fakes import (
    NOW,
    Bundle,
    Candidate,
    FakeCluster,
    FakeCore,
    FakeSources,
    File,
    SourceFailure,
    rule_source,
)

from padlock.flows import sync_source
from padlock.flows.options import OperatorOptions
from padlock.flows.state import OperatorState

V1 = Bundle("1.0.0", "sha256:v1", (File("a", "x"),))
V2 = Bundle("1.1.0", "sha256:v2", (File("a", "x"), File("b", "y")))
OTHER = Bundle("9.0.0", "sha256:o9", (File("other", "z"),))


class CrashingCore(FakeCore):
    def __init__(self, exc: BaseException) -> None:
        super().__init__()
        self.exc = exc

    def render(self, inputs: Any, now: Any) -> Any:
        raise self.exc


def run(source: dict[str, Any], state: OperatorState, sources: Any, core: Any, cluster: FakeCluster,
        **kw: Any) -> sync_source.SyncOutcome:
    return sync_source.sync(source, state.snapshot(), dict(state.choices), sources=sources, core=core,
                            cluster=cluster, options=OperatorOptions(), now=NOW, previous=None, **kw)


def cond(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == type_)


def adopted() -> tuple[OperatorState, dict[str, Any]]:
    state = OperatorState()
    src = rule_source({"currentVersion": "1.0.0", "currentDigest": "sha256:v1"})
    state.upsert(src)
    state.bundles["src"] = V1
    return state, src


def test_a_core_crash_on_a_release_is_a_refusal_with_one_event_and_nothing_published() -> None:
    for exc, words in [(RecursionError("maximum recursion depth exceeded"), "nests too deeply"),
                       (MemoryError(), "more memory than the operator may use"),
                       (KeyError("boom"), "internal error KeyError")]:
        state, src = adopted()
        cluster = FakeCluster()
        out = run(src, state, FakeSources(Candidate("1.1.0", "sha256:v2"), {"sha256:v2": V2}), CrashingCore(exc),
                  cluster)
        assert out.result == "refused" and out.bundle is V1
        assert out.refusal is not None and out.refusal.reason == "ValidationFailed"
        assert cluster.publishes == [] and cluster.applied == []
        status = cluster.statuses[("RuleSource", "src")]
        ready = cond(status, "Ready")
        assert ready["status"] == "False" and ready["reason"] == "ValidationFailed"
        assert words in ready["message"] and "keeping version 1.0.0" in ready["message"]
        assert ready["message"].count("RuleSource src") == 1 and ready["message"].count("sha256:v2") == 1
        assert [(e[0], e[2]) for e in cluster.events] == [("ReleaseRefused", True)]


def test_the_same_refusal_seen_again_sends_no_second_event() -> None:
    state, src = adopted()
    cluster = FakeCluster()
    sources = FakeSources(Candidate("1.1.0", "sha256:v2"), {"sha256:v2": V2})
    first = run(src, state, sources, CrashingCore(RecursionError()), cluster)
    src = {**src, "status": first.status}
    state.upsert(src)
    run(src, state, sources, CrashingCore(RecursionError()), cluster)  # no memo: tried again, same verdict
    run(src, state, sources, CrashingCore(RecursionError()), cluster, refused=first.refusal)
    assert [e[0] for e in cluster.events] == ["ReleaseRefused"]


def test_a_release_the_operator_died_on_three_times_is_refused_without_pulling_it() -> None:
    state, src = adopted()
    cluster = FakeCluster()
    sources = FakeSources(Candidate("1.1.0", "sha256:v2"), {"sha256:v2": V2})
    marked: list[str] = []

    def attempts(digest: str) -> int:
        marked.append(digest)
        return sync_source.POISON_AFTER

    out = run(src, state, sources, FakeCore(), cluster, attempts=attempts)
    assert out.result == "refused" and out.refusal is not None
    assert out.refusal.reason == "ReleaseCrashedOperator" and out.attempted == "sha256:v2"
    assert marked == ["sha256:v2"] and sources.fetched == [] and cluster.publishes == []
    assert "stopped 3 times while validating it" in cond(out.status, "Ready")["message"]
    assert [e[0] for e in cluster.events] == ["ReleaseRefused"]


def test_a_release_the_operator_died_on_fewer_times_is_tried_again_and_adopted() -> None:
    state, src = adopted()
    cluster = FakeCluster()
    sources = FakeSources(Candidate("1.1.0", "sha256:v2"), {"sha256:v2": V2})
    out = run(src, state, sources, FakeCore(), cluster, attempts=lambda d: sync_source.POISON_AFTER - 1)
    assert out.result == "adopted" and out.attempted == "sha256:v2"


def test_a_refusal_is_not_reused_once_the_spec_points_elsewhere() -> None:
    state, src = adopted()
    cluster = FakeCluster()
    sources = FakeSources(error=None, candidate=Candidate("1.1.0", "sha256:v2"), bundles={"sha256:v2": V2})
    refused = run(src, state, sources, CrashingCore(RecursionError()), cluster).refusal
    assert refused is not None
    moved = {**src, "spec": {**src["spec"], "oci": {"repository": "mirror.example/rules", "tag": "1"}}}
    state.upsert(moved)
    out = run(moved, state, sources, FakeCore(), cluster, refused=refused)
    assert out.result == "adopted" and sources.fetched == ["sha256:v2", "sha256:v2"]


def test_an_early_refusal_gets_one_event_naming_the_source_once() -> None:
    state, src = adopted()
    cluster = FakeCluster()
    failing = FakeSources(error=SourceFailure("IntegrityError", retryable=False))
    first = run(src, state, failing, FakeCore(), cluster)
    assert first.result == "refused"
    assert [e[0] for e in cluster.events] == ["ReleaseRefused"]
    assert cluster.events[0][1].count("RuleSource src") == 1
    state.upsert({**src, "status": first.status})
    run({**src, "status": first.status}, state, failing, FakeCore(), cluster)
    assert len(cluster.events) == 1


def two_sources_after_restart() -> tuple[OperatorState, dict[str, Any]]:
    """State right after a restart: both sources published before, neither bundle restored yet."""
    state = OperatorState()
    src = rule_source({"currentVersion": "1.0.0", "currentDigest": "sha256:v1"})
    other = rule_source({"currentVersion": "9.0.0", "currentDigest": "sha256:o9"})
    other["metadata"] = {**other["metadata"], "name": "other", "uid": "uid-other"}
    state.upsert(src)
    state.upsert(other)
    return state, src


def test_an_adoption_right_after_a_restart_restores_the_other_sources_before_publishing() -> None:
    state, src = two_sources_after_restart()
    cluster = FakeCluster()
    core = FakeCore()
    sources = FakeSources(Candidate("1.1.0", "sha256:v2"), {"sha256:v1": V1, "sha256:v2": V2, "sha256:o9": OTHER})
    out = run(src, state, sources, core, cluster)
    assert out.result == "adopted" and out.restored == {"other": OTHER}
    assert len(cluster.publishes) == 1
    assert set(core.renders[-1].bundles) == {"src", "other"}


def test_an_adoption_waits_when_another_source_cannot_be_restored() -> None:
    state, src = two_sources_after_restart()
    cluster = FakeCluster()
    sources = FakeSources(Candidate("1.1.0", "sha256:v2"), {"sha256:v1": V1, "sha256:v2": V2})  # o9 unreachable
    out = run(src, state, sources, FakeCore(), cluster)
    assert out.result == "waiting_sources" and cluster.publishes == []
    ready = cond(out.status, "Ready")
    assert ready["reason"] == "WaitingForSources" and "RuleSource other" in ready["message"]
    assert state.missing == ["other", "src"]
