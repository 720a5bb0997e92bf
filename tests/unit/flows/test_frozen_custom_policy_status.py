"""CustomPolicy status written by the publishing flow: ``frozenRules`` captured once, ``ruleCount``.

Runs the real policy core (``padlock.flows.corebridge.Core``) over the example releases
(examples/rules/v1, v2) with a recording cluster. The managed originals are switched off, so only
the custom policies decide what runs. Covers: the first render of a frozen policy writes the captured
set and the count of rules it runs; the adoption of v2 that follows before the watch has brought that
status back still uses the captured set (the memo), so the new GPG rule does not run; switching to
``followUpdates: true`` clears the set and counts the followed rules, switching back captures anew;
a render that is not published records nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from flow_fakes import NOW, Bundle, FakeCluster, File, rule_source

from padlock.flows import publishing
from padlock.flows.corebridge import Core
from padlock.flows.options import OperatorOptions
from padlock.flows.state import OperatorState

RULES = Path(__file__).resolve().parents[3] / "examples" / "rules"
V1 = Bundle("1.0.0", "sha256:v1", (File("rules.yaml", (RULES / "v1" / "padlock_example_rules.yaml").read_text()),))
V2 = Bundle("1.1.0", "sha256:v2", (File("rules.yaml", (RULES / "v2" / "padlock_example_rules.yaml").read_text()),))
OPTIONS = OperatorOptions(plugins={"container": "0.4.0"})
ORIGINALS_OFF = {"credential-access": {"enabled": False}, "stable-threat-detection": {"enabled": False}}
GPG = "Search GPG Private Keys"
CRED_V1 = ["Read cloud credentials file", "Read sensitive file untrusted", "Search Private Keys or Passwords"]
CRED_V2 = sorted([*CRED_V1, GPG])


def custom(name: str, follow: bool, status: dict[str, Any] | None = None, uid: str = "uid-1") -> dict[str, Any]:
    return {"apiVersion": "padlock.dev/v1alpha1", "kind": "CustomPolicy",
            "metadata": {"name": name, "generation": 1, "uid": uid},
            "spec": {"basedOn": {"managedPolicy": "credential-access", "followUpdates": follow}},
            **({"status": status} if status is not None else {})}


def state_with(*objs: dict[str, Any]) -> OperatorState:
    state = OperatorState()
    state.upsert(rule_source({"currentVersion": "1.0.0"}))
    state.bundles["src"] = V1
    for obj in objs:
        state.upsert(obj)
    return state


def publish(state: OperatorState, core: Core, cluster: FakeCluster, **kw: Any) -> publishing.PublishOutcome:
    return publishing.render_and_publish(state.snapshot(), ORIGINALS_OFF, core=core, cluster=cluster,
                                         options=OPTIONS, now=NOW, previous=None, frozen=state.frozen, **kw)


def runs(outcome: publishing.PublishOutcome, rule: str) -> bool:
    """Whether the published policy layer leaves ``rule`` running (upstream enables every example rule)."""
    data: dict[str, str] = {}
    for cm in outcome.rendered.configmaps:
        data.update(cm.data)
    layer = yaml.safe_load(data["padlock-policies.yaml"]) or []
    return not any(i.get("rule") == rule and i.get("enabled") is False for i in layer)


def test_first_render_writes_the_captured_frozen_set_and_the_rule_count():
    state, cluster = state_with(custom("frozen", follow=False)), FakeCluster()
    outcome = publish(state, Core(OPTIONS), cluster)
    assert outcome.published
    status = cluster.statuses[("CustomPolicy", "frozen")]
    assert status["frozenRules"] == CRED_V1
    assert status["ruleCount"] == 3
    assert status["conditions"][0]["reason"] == "Rendered"
    assert state.frozen == {"uid-1": tuple(CRED_V1)}


def test_adoption_before_the_watch_brings_the_status_back_keeps_the_frozen_set():
    state, core = state_with(custom("frozen", follow=False)), Core(OPTIONS)
    publish(state, core, FakeCluster())
    # v2 is adopted at once: the stored CustomPolicy still has no status.frozenRules
    cluster = FakeCluster()
    outcome = publish(state, core, cluster, bundles={"src": V2}, old_rules={}, from_versions={"src": "1.0.0"})
    assert outcome.published
    assert not runs(outcome, GPG)
    assert runs(outcome, CRED_V1[0])
    status = cluster.statuses[("CustomPolicy", "frozen")]
    assert status["frozenRules"] == CRED_V1 and status["ruleCount"] == 3
    # without the memo that render would have captured v2's set: this is the window the memo closes
    fresh = state_with(custom("frozen", follow=False))
    unguarded = publishing.render_and_publish(fresh.snapshot(), ORIGINALS_OFF, core=core, cluster=FakeCluster(),
                                              options=OPTIONS, now=NOW, previous=None, bundles={"src": V2})
    assert runs(unguarded, GPG)


def test_stored_frozen_set_holds_across_v2_and_a_followed_copy_gains_the_new_rule():
    stored = {"frozenRules": CRED_V1, "ruleCount": 3}
    state = state_with(custom("frozen", follow=False, status=stored), custom("followed", follow=True, uid="uid-2"))
    state.bundles["src"] = V2
    cluster = FakeCluster()
    outcome = publish(state, Core(OPTIONS), cluster)
    assert runs(outcome, GPG)  # the followed copy runs it
    assert cluster.statuses[("CustomPolicy", "frozen")]["frozenRules"] == CRED_V1
    assert cluster.statuses[("CustomPolicy", "frozen")]["ruleCount"] == 3
    assert cluster.statuses[("CustomPolicy", "followed")]["ruleCount"] == 4
    assert "frozenRules" not in cluster.statuses[("CustomPolicy", "followed")]


def test_following_again_clears_the_set_and_freezing_again_captures_anew():
    stored = {"frozenRules": CRED_V1, "ruleCount": 3}
    state, core = state_with(custom("frozen", follow=True, status=stored)), Core(OPTIONS)
    state.bundles["src"] = V2
    cluster = FakeCluster()
    publish(state, core, cluster)
    status = cluster.statuses[("CustomPolicy", "frozen")]
    assert "frozenRules" not in status and status["ruleCount"] == 4
    # frozen again (the watch brought the cleared status): the set is v2's now
    state.upsert(custom("frozen", follow=False, status=status))
    cluster = FakeCluster()
    publish(state, core, cluster)
    assert cluster.statuses[("CustomPolicy", "frozen")]["frozenRules"] == CRED_V2


def test_render_that_is_not_published_records_no_frozen_set():
    state = state_with(custom("frozen", follow=False))
    broken = Bundle("9.0.0", "sha256:bad", (File("rules.yaml", "- rule: Broken\n  condition: (\n"),))
    cluster = FakeCluster()
    outcome = publish(state, Core(OPTIONS), cluster, bundles={"src": broken})
    assert not outcome.published
    assert state.frozen == {} and cluster.statuses == {}


def test_a_policy_created_again_under_the_same_name_freezes_anew():
    state, core = state_with(custom("frozen", follow=False)), Core(OPTIONS)
    publish(state, core, FakeCluster())
    state.remove(custom("frozen", follow=False))
    state.bundles["src"] = V2
    state.upsert(custom("frozen", follow=False, uid="uid-new"))
    cluster = FakeCluster()
    publish(state, core, cluster)
    assert cluster.statuses[("CustomPolicy", "frozen")]["frozenRules"] == CRED_V2
