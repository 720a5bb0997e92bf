"""The tuner's Kubernetes side (padlock.flows.tuning) against a recording fake client.

Covers: a new suggestion is created in the workload's namespace then its status patched; later rounds
patch only the status (never spec.state); an object that already exists (409) is adopted; a refused
write affects only its own suggestion; decisions read back from objects reach the tuner (Accepted
silences, Dismissed stops proposing, deletion forgets) and are loaded at startup; samples are left
out when switched off; feedback Events are posted on the published ConfigMap once per reason and host
per interval; ruleset_view derives running and known rules and the policies per rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from padlock.adapters.kube.client import ApiError
from padlock.flows.tuning import SuggestionWriter, ruleset_view
from padlock.policy.policy_objects import ObjectRef
from padlock.policy.tuning.alerts import from_json
from padlock.policy.tuning.feedback import RELOAD_FAILED, Feedback
from padlock.policy.tuning.objects import suggestion_object
from padlock.policy.tuning.suggest import COUNTED, SILENCED, Tuner, TunerConfig
from support_alerts import falco_alert

T0 = 1_767_268_800.0


@dataclass
class FakeClient:
    calls: list[tuple[str, str, Any]] = field(default_factory=list)
    existing: set[str] = field(default_factory=set)
    refuse: set[str] = field(default_factory=set)
    listed: list[dict[str, Any]] = field(default_factory=list)

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        name = body["metadata"].get("name", "")
        if name in self.refuse:
            raise ApiError("POST", path, 403, "Forbidden", "no")
        if name in self.existing:
            raise ApiError("POST", path, 409, "AlreadyExists", "exists")
        self.calls.append(("create", path, body))
        return body

    def merge_patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("patch", path, body))
        return body

    def list(self, path: str) -> list[dict[str, Any]]:
        return self.listed


def setup(**config: Any) -> tuple[Tuner, FakeClient, SuggestionWriter]:
    tuner = Tuner(TunerConfig(min_hits=3, **config), policies_for=lambda _r: (("ManagedPolicy", "execution"),))
    client = FakeClient()
    writer = SuggestionWriter(client, tuner, cluster_namespace="padlock-system")  # type: ignore[arg-type]
    return tuner, client, writer


def feed(tuner: Tuner, n: int, **alert: Any) -> list[str]:
    return [tuner.observe(from_json(falco_alert(**alert)), T0 + i) for i in range(n)]


def test_a_new_suggestion_is_created_then_only_its_status_is_patched() -> None:
    tuner, client, writer = setup()
    feed(tuner, 4)
    (s,) = tuner.due(T0 + 5)
    assert writer.write([s]) == 1
    (create, status) = client.calls
    assert create[0] == "create" and create[1].endswith("/namespaces/shop/tuningsuggestions")
    assert "status" not in create[2] and create[2]["spec"]["state"] == "Open"
    assert status[1].endswith(f"/namespaces/shop/tuningsuggestions/{s.name}/status")
    assert status[2]["status"]["hits"] == 4 and status[2]["status"]["samples"]
    client.calls.clear()
    feed(tuner, 1)
    writer.write(tuner.due(T0 + 6))
    assert [c[0] for c in client.calls] == ["patch"] and "spec" not in client.calls[0][2]


def test_an_existing_object_is_adopted_and_a_refused_one_affects_only_itself() -> None:
    tuner, client, writer = setup()
    feed(tuner, 4)
    feed(tuner, 4, ns="web", image="docker.io/library/redis")
    nginx, redis = sorted(tuner.due(T0 + 5), key=lambda s: s.name)
    client.existing.add(nginx.name)
    client.refuse.add(redis.name)
    assert writer.write([nginx, redis]) == 1
    assert writer.states == {("shop", nginx.name): "Open"}


def test_samples_are_left_out_when_switched_off() -> None:
    tuner, client, writer = setup()
    writer.samples = False
    feed(tuner, 4)
    writer.write(tuner.due(T0 + 5))
    assert "samples" not in client.calls[-1][2]["status"]


def test_decisions_read_back_reach_the_tuner_and_are_loaded_at_startup() -> None:
    tuner, _, _ = setup()
    feed(tuner, 4)
    (s,) = tuner.due(T0 + 5)
    body = suggestion_object(s, cluster_namespace="padlock-system")
    body["spec"]["state"] = "Accepted"
    fresh, _, restarted = setup()
    restarted.client.listed = [body]  # type: ignore[attr-defined]
    restarted.load()
    assert set(feed(fresh, 3)) == {SILENCED}
    assert restarted.open_count() == 0
    body["spec"]["state"] = "Dismissed"
    restarted.observe(body)
    assert set(feed(fresh, 4)) == {COUNTED}  # no longer silenced, but not proposed again
    assert fresh.due(T0 + 10) == []
    restarted.observe(body, deleted=True)
    feed(fresh, 1)
    assert [x.name for x in fresh.due(T0 + 11)] == [s.name]


def test_feedback_events_go_on_the_published_configmap_once_per_reason_host_and_interval() -> None:
    _, client, writer = setup()
    now = [100.0]
    writer.clock = lambda: now[0]
    fb = Feedback(RELOAD_FAILED, "node-2", "Falco on node-2 refused to reload")
    assert writer.report([fb, fb]) == 1
    (call,) = [c for c in client.calls if c[0] == "create"]
    assert call[1] == "/api/v1/namespaces/falco/events"
    assert call[2]["involvedObject"] == {"apiVersion": "v1", "kind": "ConfigMap", "name": "padlock-rules",
                                         "namespace": "falco"}
    assert call[2]["type"] == "Warning" and call[2]["reason"] == RELOAD_FAILED
    assert writer.report([Feedback(RELOAD_FAILED, "node-3", "other host")]) == 1
    now[0] += 301
    assert writer.report([fb]) == 1


def test_the_ruleset_view_comes_from_the_published_render() -> None:
    @dataclass
    class Raw:
        policy_rules: dict[ObjectRef, tuple[str, ...]]

    @dataclass
    class Published:
        raw: Raw

    published = Published(Raw({ObjectRef("ManagedPolicy", "execution"): ("Terminal shell in container",),
                               ObjectRef("ManagedPolicy", "stable"): ("Terminal shell in container", "B"),
                               ObjectRef("CustomPolicy", "mine"): ()}))
    managed = {"stable": {"spec": {"rules": [{"name": "B"}, {"name": "Disabled rule"}]}}}
    policies, view = ruleset_view(published, managed)
    assert policies["Terminal shell in container"] == (("ManagedPolicy", "execution"), ("ManagedPolicy", "stable"))
    assert view.running == {"Terminal shell in container", "B"}
    assert view.known == {"Terminal shell in container", "B", "Disabled rule"}
    assert ruleset_view(None, {})[1].running == frozenset()
