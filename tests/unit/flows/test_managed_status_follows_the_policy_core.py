"""ManagedPolicy, CustomPolicy and exception statuses written by the publishing flow.

Covers: a new policy's first status records its whole rule set as one change (the policy core's
``next_status``); a render that is not an adoption keeps ``lastUpdated`` and ``changes``; an adoption
that changes a rule records it with from/to versions; what is written is exactly the ``padlock.api``
status model's dump (it validates and dumps back unchanged).
"""

from __future__ import annotations

import datetime as dt

from flow_fakes import NOW, Bundle, FakeCluster, FakeCore, File, rule_source

from padlock.api.custompolicy import CustomPolicyStatus
from padlock.api.exception import PolicyExceptionStatus
from padlock.api.managedpolicy import ManagedPolicyStatus
from padlock.flows import publishing
from padlock.flows.options import OperatorOptions
from padlock.flows.state import OperatorState

V1 = Bundle("1.0.0", "sha256:v1", (File("a", "x"),))
V2 = Bundle("1.1.0", "sha256:v2", (File("a", "x and y"), File("b", "z")))
LATER = NOW + dt.timedelta(days=3)


def state_at(bundle: Bundle) -> OperatorState:
    state = OperatorState()
    state.upsert(rule_source({"currentVersion": bundle.version}))
    state.bundles["src"] = bundle
    return state


def publish(state: OperatorState, now: dt.datetime, **adoption) -> FakeCluster:
    cluster = FakeCluster()
    publishing.render_and_publish(state.snapshot(), dict(state.choices), core=FakeCore(), cluster=cluster,
                                  options=OperatorOptions(), now=now, previous=None, **adoption)
    return cluster


def stored(state: OperatorState, cluster: FakeCluster, bundle: Bundle) -> None:
    """What the watch would report after the operator's writes."""
    draft = FakeCore().managed_drafts({"src": bundle}, NOW)[0]
    state.upsert({"apiVersion": "padlock.dev/v1alpha1", "kind": "ManagedPolicy",
                  "metadata": {"name": draft.name, "generation": 1}, "spec": dict(draft.spec),
                  "status": cluster.statuses[("ManagedPolicy", draft.name)]})


def test_first_status_records_the_whole_rule_set_as_added():
    status = publish(state_at(V1), NOW).statuses[("ManagedPolicy", "creds")]
    assert status["lastUpdated"] == "2026-03-01T12:00:00Z" and status["sourceVersion"] == "1.0.0"
    assert status["changes"] == [{"time": "2026-03-01T12:00:00Z", "toVersion": "1.0.0", "added": ["a"],
                                  "removed": [], "modified": []}]
    assert status["enabled"] is True and (status["ruleCount"], status["enabledRuleCount"]) == (1, 1)


def test_render_without_adoption_keeps_last_updated_and_changes():
    state = state_at(V1)
    stored(state, publish(state, NOW), V1)
    first = state.managed["creds"]["status"]
    again = publish(state, LATER).statuses[("ManagedPolicy", "creds")]
    assert again["lastUpdated"] == first["lastUpdated"] == "2026-03-01T12:00:00Z"
    assert again["changes"] == first["changes"] and len(again["changes"]) == 1


def test_adoption_that_changes_a_rule_records_it_with_both_versions():
    state = state_at(V1)
    stored(state, publish(state, NOW), V1)
    old_rules = {"creds": list(state.managed["creds"]["spec"]["rules"])}
    status = publish(state, LATER, bundles={"src": V2}, old_rules=old_rules,
                     from_versions={"src": "1.0.0"}).statuses[("ManagedPolicy", "creds")]
    assert status["lastUpdated"] == "2026-03-04T12:00:00Z" and status["sourceVersion"] == "1.1.0"
    assert status["changes"][0] == {"time": "2026-03-04T12:00:00Z", "fromVersion": "1.0.0", "toVersion": "1.1.0",
                                    "added": ["b"], "removed": [], "modified": ["a"]}
    assert len(status["changes"]) == 2


def test_written_statuses_are_the_api_models_dumps():
    state = state_at(V1)
    state.upsert({"apiVersion": "padlock.dev/v1alpha1", "kind": "CustomPolicy",
                  "metadata": {"name": "mine", "generation": 2}, "spec": {"rules": ["a"]},
                  "status": {"ruleCount": 5}})
    state.upsert({"apiVersion": "padlock.dev/v1alpha1", "kind": "PolicyException",
                  "metadata": {"name": "quiet", "namespace": "shop", "generation": 1}, "spec": {}})
    cluster = publish(state, NOW)
    for key, model in ((("ManagedPolicy", "creds"), ManagedPolicyStatus), (("CustomPolicy", "mine"), CustomPolicyStatus),
                       (("PolicyException", "quiet"), PolicyExceptionStatus)):
        written = cluster.statuses[key]
        assert model.model_validate(written).to_dict() == written
    assert cluster.statuses[("CustomPolicy", "mine")]["ruleCount"] == 1  # from the render, not the stored 5
    assert cluster.statuses[("PolicyException", "quiet")]["active"] is True
