"""``padlock.flows.publishing.render_and_publish``: the last good ruleset stays when a render is not
publishable; a vanished ManagedPolicy is recreated with the user's remembered choices; one whose catalog
entry is gone is deleted with a PolicyRemoved Event recording its choices; user choices
reach the render but never the applied (operator-owned) body; statuses are idempotent."""

from __future__ import annotations

from flow_fakes import NOW, Bundle, FakeCluster, FakeCore, File, rule_source

from padlock.flows import publishing
from padlock.flows.options import OperatorOptions
from padlock.flows.state import OperatorState

V1 = Bundle("1.0.0", "sha256:v1", (File("a", "x"),))


def state_with_policy(choices=None):
    state = OperatorState()
    state.upsert(rule_source({"currentVersion": "1.0.0"}))
    state.bundles["src"] = V1
    state.upsert({"apiVersion": "padlock.dev/v1alpha1", "kind": "ManagedPolicy",
                  "metadata": {"name": "creds", "generation": 3},
                  "spec": {"rules": [{"name": "a", "condition": "x", "priority": "WARNING"}], **(choices or {})}})
    return state


def publish(state, core=None, cluster=None):
    cluster = cluster or FakeCluster()
    out = publishing.render_and_publish(state.snapshot(), dict(state.choices), core=core or FakeCore(),
                                        cluster=cluster, options=OperatorOptions(), now=NOW, previous=None)
    return out, cluster


def test_unpublishable_render_writes_nothing():
    out, cluster = publish(state_with_policy(), core=FakeCore(broken=["sha256:v1"]))
    assert not out.published
    assert cluster.publishes == [] and cluster.applied == [] and cluster.statuses == {}


def test_user_choices_reach_the_render_but_never_the_applied_body():
    core = FakeCore()
    out, cluster = publish(state_with_policy({"disabledRules": ["a"], "enabled": True}), core=core)
    assert out.published
    assert core.renders[0].managed[0]["spec"]["disabledRules"] == ["a"]
    assert "disabledRules" not in cluster.applied[0].spec and "enabled" not in cluster.applied[0].spec
    status = cluster.statuses[("ManagedPolicy", "creds")]
    assert status["enabledRuleCount"] == 0 and status["ruleCount"] == 1 and status["observedGeneration"] == 3


def test_vanished_managed_policy_is_recreated_with_remembered_choices():
    state = state_with_policy({"disabledRules": ["a"], "scope": {"namespaces": {"exclude": ["kube-system"]}}})
    state.remove(dict(state.managed["creds"]))
    out, cluster = publish(state)
    assert cluster.recreated == [("creds", {"disabledRules": ["a"],
                                            "scope": {"namespaces": {"exclude": ["kube-system"]}}})]
    assert out.recreated == ("creds",)


def test_same_inputs_give_the_same_statuses():
    state = state_with_policy({"disabledRules": ["gone"]})
    _, first = publish(state)
    state.managed["creds"]["status"] = first.statuses[("ManagedPolicy", "creds")]
    _, second = publish(state)
    assert second.statuses == first.statuses
    assert first.statuses[("ManagedPolicy", "creds")]["missingDisabledRules"] == ["gone"]


def test_invalid_exception_gets_a_condition_and_one_event():
    from padlock.flows.rendering import Rendered

    class Core(FakeCore):
        def render(self, inputs, now):
            ok = super().render(inputs, now)
            return Rendered(True, ok.content_hash, ok.configmaps,
                            {("PolicyException", "shop", "bad"): ("PolicyException shop/bad: spec.match: empty [x]",)})

    state = state_with_policy()
    state.upsert({"apiVersion": "padlock.dev/v1alpha1", "kind": "PolicyException",
                  "metadata": {"name": "bad", "namespace": "shop", "generation": 1}, "spec": {}})
    out, cluster = publish(state, core=Core())
    status = cluster.statuses[("PolicyException", "bad")]
    assert status["active"] is False
    assert status["conditions"][0]["reason"] == "Invalid" and "spec.match: empty" in status["conditions"][0]["message"]
    assert [e[0] for e in cluster.events] == ["Invalid"]
    again = FakeCluster()
    publishing.render_and_publish(state.snapshot(), {}, core=Core(), cluster=again, options=OperatorOptions(),
                                  now=NOW, previous=out.rendered)
    assert again.events == []


def _catalog_policy(name, spec_extra=None):
    return {"apiVersion": "padlock.dev/v1alpha1", "kind": "ManagedPolicy", "metadata": {"name": name, "uid": "u"},
            "spec": {"catalog": {"name": "padlock-builtin", "version": "1.0.0", "policy": name},
                     "rules": [{"name": "a", "condition": "x", "priority": "WARNING"}], **(spec_extra or {})}}


def test_policy_whose_catalog_entry_is_gone_is_deleted_with_an_event_recording_the_choices():
    state = state_with_policy()
    state.upsert(_catalog_policy("stable-threat-detection", {"disabledRules": ["a"], "enabled": True}))
    state.upsert(_catalog_policy("untouched-gone"))
    state.upsert({"apiVersion": "padlock.dev/v1alpha1", "kind": "ManagedPolicy", "metadata": {"name": "by-hand"},
                  "spec": {"rules": []}})  # not generated from a catalog: not the operator's to remove
    out, cluster = publish(state)
    assert out.removed == ("stable-threat-detection", "untouched-gone")
    assert cluster.deleted == ["stable-threat-detection", "untouched-gone"]
    removed = [e for e in cluster.events if e[0] == "PolicyRemoved"]
    assert removed[0] == ("PolicyRemoved", "the policy catalog no longer has stable-threat-detection: deleted; "
                          'your choices on it were {"disabledRules":["a"],"enabled":true}', True)
    assert removed[1] == ("PolicyRemoved", "the policy catalog no longer has untouched-gone: deleted; "
                          "your choices on it were none", False)


def test_nothing_is_deleted_when_the_render_is_not_published():
    state = state_with_policy()
    state.upsert(_catalog_policy("stable-threat-detection"))
    out, cluster = publish(state, core=FakeCore(broken=["sha256:v1"]))
    assert not out.published and cluster.deleted == []
