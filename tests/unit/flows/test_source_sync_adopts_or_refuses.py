"""``padlock.flows.sync_source.sync`` with fakes of every port. Covers: adopting a new release (status,
history, Event, one publish), refusing one that does not validate or needs a newer engine (nothing
applied or published, the current version kept, conditions say why), the cheap check when nothing
moved, an unreachable source, not pulling a refused digest again, Manual approval, and a failure that
is not a ``SourceError`` (a cluster read) counting as an outage."""

from __future__ import annotations

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
from padlock.sources.errors import ApprovalRequired

V1 = Bundle("1.0.0", "sha256:v1", (File("a", "x"),))
V2 = Bundle("1.1.0", "sha256:v2", (File("a", "x"), File("gpg", "y")))
V3 = Bundle("1.2.0", "sha256:v3", (File("a", "x"), File("gpg", "(")))


def run(source, state, sources, core, cluster, refused=None):
    return sync_source.sync(source, state.snapshot(), dict(state.choices), sources=sources, core=core,
                            cluster=cluster, options=OperatorOptions(), now=NOW, previous=None, refused=refused)


def cond(status, type_):
    return next(c for c in status["conditions"] if c["type"] == type_)


def adopted_state():
    state = OperatorState()
    src = rule_source({"currentVersion": "1.0.0", "currentDigest": "sha256:v1"})
    state.upsert(src)
    state.bundles["src"] = V1
    return state, src


def test_first_release_is_adopted_with_history_event_and_one_publish():
    state, cluster = OperatorState(), FakeCluster()
    src = rule_source()
    state.upsert(src)
    out = run(src, state, FakeSources(Candidate("1.0.0", "sha256:v1"), {"sha256:v1": V1}), FakeCore(), cluster)
    assert out.result == "adopted" and out.bundle is V1
    status = cluster.statuses[("RuleSource", "src")]
    assert status["currentVersion"] == "1.0.0" and status["currentDigest"] == "sha256:v1"
    assert status["history"] == [{"version": "1.0.0", "digest": "sha256:v1", "time": "2026-03-01T12:00:00Z",
                                  "added": 1, "removed": 0, "modified": 0}]
    assert cond(status, "Ready")["status"] == "True" and cond(status, "Ready")["observedGeneration"] == 1
    assert len(cluster.publishes) == 1 and cluster.recreated == [("creds", {})]  # new: created, no choices yet
    assert [e[0] for e in cluster.events] == ["ReleaseAdopted"]


def test_release_that_does_not_validate_is_refused_and_nothing_is_written():
    state, src = adopted_state()
    cluster = FakeCluster()
    sources = FakeSources(Candidate("1.2.0", "sha256:v3"), {"sha256:v3": V3})
    out = run(src, state, sources, FakeCore(broken=["sha256:v3"]), cluster)
    assert out.result == "refused" and out.bundle is V1
    assert cluster.publishes == [] and cluster.applied == []
    status = cluster.statuses[("RuleSource", "src")]
    assert status["currentVersion"] == "1.0.0"
    ready = cond(status, "Ready")
    assert ready["status"] == "False" and ready["reason"] == "ValidationFailed"
    assert 'rule "GPG": bad condition' in ready["message"] and "keeping version 1.0.0" in ready["message"]
    assert not ready["message"].count("RuleSource src:") > 1
    assert cond(status, "Degraded")["status"] == "True"
    assert [(e[0], e[2]) for e in cluster.events] == [("ReleaseRefused", True)]


def test_release_needing_a_newer_engine_is_refused_as_engine_too_old():
    state, src = adopted_state()
    cluster = FakeCluster()
    sources = FakeSources(Candidate("1.1.0", "sha256:v2"), {"sha256:v2": V2})
    out = run(src, state, sources, FakeCore(engine_broken=["sha256:v2"]), cluster)
    assert out.result == "refused"
    assert cond(cluster.statuses[("RuleSource", "src")], "Ready")["reason"] == "EngineTooOld"


def test_refused_digest_is_not_pulled_again():
    state, src = adopted_state()
    sources = FakeSources(Candidate("1.2.0", "sha256:v3"), {"sha256:v3": V3})
    first = run(src, state, sources, FakeCore(broken=["sha256:v3"]), FakeCluster())
    cluster = FakeCluster()
    second = run(src, state, sources, FakeCore(broken=["sha256:v3"]), cluster, refused=first.refusal)
    assert sources.fetched == ["sha256:v3"]
    assert second.result == "refused" and cond(cluster.statuses[("RuleSource", "src")], "Ready")["status"] == "False"


def test_unchanged_digest_only_moves_last_check_time():
    state, src = adopted_state()
    cluster, sources = FakeCluster(), FakeSources(Candidate("1.0.0", "sha256:v1"), {"sha256:v1": V1})
    out = run(src, state, sources, FakeCore(), cluster)
    assert out.result == "unchanged" and sources.fetched == [] and cluster.publishes == []
    status = cluster.statuses[("RuleSource", "src")]
    assert status["lastCheckTime"] == "2026-03-01T12:00:00Z" and "availableVersion" not in status
    assert cond(status, "UpToDate")["status"] == "True"


def test_unreachable_source_keeps_the_current_version_ready_and_says_why():
    state, src = adopted_state()
    cluster = FakeCluster()
    out = run(src, state, FakeSources(error=SourceFailure("SourceUnavailable", True)), FakeCore(), cluster)
    assert out.result == "unavailable" and out.bundle is V1
    status = cluster.statuses[("RuleSource", "src")]
    assert cond(status, "Ready")["status"] == "True"
    degraded = cond(status, "Degraded")
    assert degraded["reason"] == "SourceUnavailable" and "registry says no" in degraded["message"]


def test_manual_policy_waits_for_approval_with_available_version():
    state = OperatorState()
    src = rule_source(updatePolicy="Manual")
    state.upsert(src)
    cluster = FakeCluster()
    error = ApprovalRequired("src", "", "1.0.0")
    out = run(src, state, FakeSources(error=error), FakeCore(), cluster)
    assert out.result == "waiting_approval" and cluster.publishes == []
    status = cluster.statuses[("RuleSource", "src")]
    assert status["availableVersion"] == "1.0.0"
    assert cond(status, "UpToDate")["reason"] == "AwaitingApproval"


def test_restart_recovers_current_bundle_by_digest_without_adopting_again():
    state = OperatorState()
    src = rule_source({"currentVersion": "1.0.0", "currentDigest": "sha256:v1"})
    state.upsert(src)
    cluster = FakeCluster()
    out = run(src, state, FakeSources(Candidate("1.0.0", "sha256:v1"), {"sha256:v1": V1}), FakeCore(), cluster)
    assert out.result == "unchanged" and out.bundle is V1
    assert cluster.events == [] and cluster.publishes == []


def test_release_refused_against_other_sources_is_retried_when_they_change():
    # incubating refused while stable was not adopted yet must be retried once stable is adopted.
    state, src = adopted_state()
    sources = FakeSources(Candidate("1.2.0", "sha256:v3"), {"sha256:v3": V3})
    first = run(src, state, sources, FakeCore(broken=["sha256:v3"]), FakeCluster())
    state.bundles["other"] = Bundle("5.1.0", "sha256:stable", (File("s", "z"),))
    second = run(src, state, sources, FakeCore(), FakeCluster(), refused=first.refusal)
    assert sources.fetched == ["sha256:v3", "sha256:v3"]
    assert second.result == "adopted"


def test_a_failed_cluster_read_during_the_pull_is_an_outage_not_a_refusal():
    """Only a ``SourceError`` decides a release's fate; any other failure (here the API server
    refusing to hand out the pull secret) keeps the current version and is retried."""
    from padlock.adapters.kube.client import ApiError

    class SecretUnreadable(FakeSources):
        def fetch(self, source, candidate):
            raise ApiError("GET", "/api/v1/namespaces/padlock-system/secrets/pull", 403, "Forbidden", "no")

    state, src = adopted_state()
    cluster = FakeCluster()
    out = run(src, state, SecretUnreadable(Candidate("1.1.0", "sha256:v2")), FakeCore(), cluster)
    assert out.result == "unavailable" and out.refusal is None and out.bundle is V1
    status = cluster.statuses[("RuleSource", "src")]
    assert cond(status, "Ready")["status"] == "True"
    assert cond(status, "Degraded")["reason"] == "SourceUnavailable" and "403 Forbidden" in cond(status, "Degraded")["message"]
